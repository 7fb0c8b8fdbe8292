"""The emulator's pages in English and Simplified Chinese: one catalog per language.

Alibaba's sign-in page follows the browser's language, and so does the emulator's: the most
preferred Chinese (`zh*`) or English tag of Accept-Language; neither gives English. The
emulator imports nothing of the gateway, so this is its own copy of the rule.
"""

# ruff: noqa: E501 (a sentence stays on one line, where a search for it finds it)

from __future__ import annotations

from collections.abc import Mapping

ENGLISH = "en"
CHINESE = "zh-CN"

EN: dict[str, str] = {
    "signin.title": "Alibaba Cloud – RAM user sign-in (emulator)",
    "signin.username": "RAM user name",
    "signin.password": "Password",
    "signin.submit": "Sign in",
    "signin.cancel": "Cancel",
    "signin.note": "This is the Alibaba Cloud emulator, not the real sign-in page.",
    "signin.wrong": "Wrong user name or password.",
    "rejected.title": "Sign-in request rejected (emulator)",
    "rejected.heading": "Sign-in request rejected",
    "rejected.note": (
        "Alibaba Cloud emulator: the application sent an invalid authorization request, "
        "so it is not sent back to it."
    ),
    "rejected.form": "The sign-in form must be posted as a URL-encoded form.",
    "return.title": "Returning to the application",
    "return.heading": "Returning to the application…",
    "return.continue": "Continue",
    "ring.title": "Alibaba Cloud emulator",
    "ring.lead": "Ring an agent: an incoming call to the agent's softphone. Open the softphone (sign in to Alibaba Cloud from the CRM) first.",
    "ring.agent": "Agent",
    "ring.caller": "Caller's number",
    "ring.ring": "Ring",
    "ring.cli": "From a shell:",
    "ring.ringing": "Ringing: call {id}.",
    "ring.offline": "This agent has no softphone connected: open the softphone first.",
    "ring.failed": "Refused: {error}",
}

ZH_CN: dict[str, str] = {
    "signin.title": "阿里云 – RAM 用户登录（模拟器）",
    "signin.username": "RAM 用户名",
    "signin.password": "密码",
    "signin.submit": "登录",
    "signin.cancel": "取消",
    "signin.note": "这是阿里云模拟器，不是真实的登录页面。",
    "signin.wrong": "用户名或密码错误。",
    "rejected.title": "登录请求被拒绝（模拟器）",
    "rejected.heading": "登录请求被拒绝",
    "rejected.note": "阿里云模拟器：应用发送的授权请求无效，因此不会跳转回该应用。",
    "rejected.form": "登录表单必须以 URL 编码表单的形式提交。",
    "return.title": "正在返回应用",
    "return.heading": "正在返回应用…",
    "return.continue": "继续",
    "ring.title": "阿里云模拟器",
    "ring.lead": "呼叫坐席：向坐席的软电话推送一个来电。请先打开软电话（在 CRM 中登录阿里云）。",
    "ring.agent": "坐席",
    "ring.caller": "主叫号码",
    "ring.ring": "呼叫",
    "ring.cli": "命令行：",
    "ring.ringing": "正在振铃：通话 {id}。",
    "ring.offline": "该坐席没有已连接的软电话：请先打开软电话。",
    "ring.failed": "被拒绝：{error}",
}

CATALOGS: Mapping[str, Mapping[str, str]] = {ENGLISH: EN, CHINESE: ZH_CN}


def pick_language(accept_language: str | None) -> str:
    """The browser's most preferred of Chinese and English (by q-value); English otherwise."""
    ranked = []
    for index, item in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        params = params.strip()
        try:
            quality = float(params[2:]) if params.startswith("q=") else 1.0
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag.lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return CHINESE
        if tag.startswith("en"):
            return ENGLISH
    return ENGLISH
