"""The sample CRM's words in English and Simplified Chinese: one catalog per language.

The CRM is a stand-in for the customer's own system and imports nothing of the gateway, so it
keeps its own catalogs and its own copy of the language rule: a configured `zh-CN` or `en`
wins; `auto` follows the browser's Accept-Language (its most preferred Chinese or English
tag; neither gives English). Customer data (names, notes) is data, not translated.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from .keys import LANGUAGE

ENGLISH = "en"
CHINESE = "zh-CN"

EN: dict[str, str] = {
    "app.name": "Sample CRM",
    "nav.home": "Home",
    "nav.customers": "Customers",
    "account.signed_in_as": "Signed in as",
    "account.log_out": "Log out",
    "home.title": "Home",
    "home.welcome": "Welcome, {name}",
    "home.intro": "This is your customer relationship workspace.",
    "home.customer_list": "Click here to see a customer list.",
    "customers.title": "Customers",
    "customer.name": "Name",
    "customer.company": "Company",
    "customer.phone": "Phone",
    "customer.email": "E-mail",
    "customer.notes": "Notes",
    "customer.not_found": "Customer not found",
    "customer.no_phone": "No customer with phone number {number}.",
    "customer.no_name": "No customer named {name}.",
    "login.title": "Sign in",
    "login.username": "User name",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.expired": "This form expired or was sent from another site. Please sign in again.",
    "login.wrong": "Unknown user name or wrong password.",
    "logout.refused": "Sign-out refused",
    "logout.stale": "The sign-out form was stale or sent from another site.",
    "error.back": "Back to the home page",
    "error.title.400": "Bad Request",
    "error.title.404": "Not Found",
    "error.title.405": "Method Not Allowed",
    "error.title.413": "Request Entity Too Large",
    "error.title.other": "Something went wrong",
    "error.400": "The request could not be understood. Please go back and try again.",
    "error.404": "There is no page at this address.",
    "error.405": "This address does not accept that kind of request.",
    "error.413": "The request was too large.",
    "error.other": "The request could not be completed.",
    "calls.title": "Calls",
    "calls.none": "No calls yet.",
    "calls.started": "Started (UTC)",
    "calls.direction": "Direction",
    "calls.agent": "Agent",
    "calls.duration": "Duration",
    "calls.outcome": "Outcome",
    "calls.notes": "Notes",
    "calls.seconds": "s",
}

ZH_CN: dict[str, str] = {
    "app.name": "示例 CRM",
    "nav.home": "首页",
    "nav.customers": "客户",
    "account.signed_in_as": "当前用户",
    "account.log_out": "退出登录",
    "home.title": "首页",
    "home.welcome": "欢迎，{name}",
    "home.intro": "这是您的客户关系管理工作台。",
    "home.customer_list": "点击此处查看客户列表。",
    "customers.title": "客户",
    "customer.name": "姓名",
    "customer.company": "公司",
    "customer.phone": "电话",
    "customer.email": "电子邮箱",
    "customer.notes": "备注",
    "customer.not_found": "未找到客户",
    "customer.no_phone": "没有电话号码为 {number} 的客户。",
    "customer.no_name": "没有名为 {name} 的客户。",
    "login.title": "登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.expired": "表单已过期或来自其他网站，请重新登录。",
    "login.wrong": "用户名或密码错误。",
    "logout.refused": "退出被拒绝",
    "logout.stale": "退出表单已过期或来自其他网站。",
    "error.back": "返回首页",
    "error.title.400": "请求有误",
    "error.title.404": "页面不存在",
    "error.title.405": "不支持的请求方式",
    "error.title.413": "请求过大",
    "error.title.other": "出错了",
    "error.400": "无法理解该请求，请返回后重试。",
    "error.404": "此地址没有页面。",
    "error.405": "此地址不接受这种请求。",
    "error.413": "请求内容过大。",
    "error.other": "无法完成该请求。",
    "calls.title": "通话记录",
    "calls.none": "暂无通话。",
    "calls.started": "开始时间（UTC）",
    "calls.direction": "方向",
    "calls.agent": "坐席",
    "calls.duration": "时长",
    "calls.outcome": "结果",
    "calls.notes": "备注",
    "calls.seconds": "秒",
}

CATALOGS: Mapping[str, Mapping[str, str]] = {ENGLISH: EN, CHINESE: ZH_CN}


def pick_language(accept_language: str | None, configured: str) -> str:
    """`configured` when it is a language; for `auto`, the browser's first zh* or en* tag."""
    if configured in CATALOGS:
        return configured
    ranked = []
    for index, item in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            quality = float(q)
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag.lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith(("zh", "en")):
            return CHINESE if tag.startswith("zh") else ENGLISH
    return ENGLISH


def language(request: web.Request) -> str:
    """The language of the page answering `request`."""
    configured = request.app.get(LANGUAGE, "auto")
    return pick_language(request.headers.get("Accept-Language"), configured)


def t(request: web.Request, key: str, **values: object) -> str:
    """The text `key` in the request's language (plain text: escape it into markup)."""
    template = CATALOGS[language(request)][key]
    return template.format(**values) if values else template
