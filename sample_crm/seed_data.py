"""The demo accounts and customers written into a fresh database.

`Mr Lu` and `Miss Lu` and the two users are those of Alibaba's Java CRM demo, which the tests
and the README's walk-through rely on; the rest only make the list look like a real CRM.
Most of CCC's users are Chinese call centres, so Chinese customers with ordinary 11-digit
mainland mobile numbers (1xx xxxx xxxx) stand beside them. Phone numbers are unique.
"""

from __future__ import annotations

from typing import NamedTuple


class SeedUser(NamedTuple):
    username: str  # stored lower case; login names are case-insensitive
    password: str
    display_name: str


class SeedCustomer(NamedTuple):
    name: str
    company: str
    phone: str
    email: str
    notes: str


USERS: tuple[SeedUser, ...] = (
    SeedUser("edward", "1234", "Edward"),
    SeedUser("sissi", "5678", "Sissi"),
)

CUSTOMERS: tuple[SeedCustomer, ...] = (
    SeedCustomer(
        "Mr Lu",
        "Lu Trading Co.",
        "135012345678",
        "mr.lu@lutrading.example",
        "Prefers calls in the morning. Interested in the premium plan.",
    ),
    SeedCustomer(
        "Miss Lu",
        "Lu Trading Co.",
        "135012345679",
        "miss.lu@lutrading.example",
        "Handles invoicing for Lu Trading.",
    ),
    SeedCustomer(
        "陆建国",
        "上海陆氏贸易有限公司",
        "13912345601",
        "lu.jianguo@lushi.example",
        "上午方便接听电话，关注高级套餐。",
    ),
    SeedCustomer(
        "陆晓雯",
        "上海陆氏贸易有限公司",
        "13912345602",
        "lu.xiaowen@lushi.example",
        "负责陆氏贸易的开票事宜。",
    ),
    SeedCustomer(
        "王芳",
        "杭州丝绸织造厂",
        "13812345603",
        "wang.fang@hzsilk-cn.example",
        "下季度合同到期，需提前跟进续约。",
    ),
    SeedCustomer(
        "张伟",
        "深圳电路科技有限公司",
        "15012345604",
        "zhang.wei@szdl.example",
        "咨询 200 个坐席的报价。",
    ),
    SeedCustomer(
        "李娜",
        "北京茶馆连锁",
        "18612345605",
        "li.na@bjchaguan.example",
        "2016 年起的老客户。",
    ),
    SeedCustomer(
        "陈静",
        "成都物流有限公司",
        "17712345606",
        "chen.jing@cdwl.example",
        "曾反馈账单问题，已解决。",
    ),
    SeedCustomer(
        "刘洋",
        "广州陶瓷进出口公司",
        "13712345607",
        "liu.yang@gztc.example",
        "展会结束后回电。",
    ),
    SeedCustomer(
        "黄敏",
        "苏州园林酒店",
        "15812345608",
        "huang.min@szyl.example",
        "常为客户预订会议室。",
    ),
    SeedCustomer(
        "Wang Fang",
        "Hangzhou Silk Works",
        "135012345680",
        "wang.fang@hzsilk.example",
        "Renewal due next quarter.",
    ),
    SeedCustomer(
        "Zhang Wei",
        "Shenzhen Circuit Ltd",
        "135012345681",
        "zhang.wei@szcircuit.example",
        "Asked for a quote on 200 seats.",
    ),
    SeedCustomer(
        "Li Na",
        "Beijing Tea House",
        "135012345682",
        "li.na@bjtea.example",
        "Long-standing customer since 2016.",
    ),
    SeedCustomer(
        "Chen Jing",
        "Chengdu Logistics",
        "135012345683",
        "chen.jing@cdlog.example",
        "Reported a billing issue; resolved.",
    ),
    SeedCustomer(
        "Liu Yang",
        "Guangzhou Ceramics",
        "135012345684",
        "liu.yang@gzceramics.example",
        "Call back after the trade fair.",
    ),
    SeedCustomer(
        "Huang Min",
        "Suzhou Gardens Hotel",
        "135012345685",
        "huang.min@szgardens.example",
        "Books conference rooms for clients.",
    ),
    SeedCustomer(
        "Zhao Lei",
        "Xi'an Heritage Tours",
        "135012345686",
        "zhao.lei@xatours.example",
        "Prefers e-mail over phone.",
    ),
    SeedCustomer(
        "Zhou Xin",
        "Nanjing Pharma",
        "135012345687",
        "zhou.xin@njpharma.example",
        "Needs a data-processing agreement.",
    ),
    SeedCustomer(
        "Wu Hao",
        "Wuhan Steel Parts",
        "135012345688",
        "wu.hao@whsteel.example",
        "Evaluating a competitor; follow up.",
    ),
    SeedCustomer(
        "Sun Li",
        "Qingdao Brewing Supplies",
        "135012345689",
        "sun.li@qdbrew.example",
        "Asked about weekend support hours.",
    ),
    SeedCustomer(
        "Emma Schmidt",
        "Rheinland Maschinenbau GmbH",
        "4930123456701",
        "emma.schmidt@rheinland.example",
        "German-speaking support preferred.",
    ),
    SeedCustomer(
        "Lucas Martin",
        "Boulangerie Martin SARL",
        "3314567890102",
        "lucas.martin@boulangerie.example",
        "Small shop; monthly billing.",
    ),
    SeedCustomer(
        "Olivia Brown",
        "Thames Analytics Ltd",
        "442071234503",
        "olivia.brown@thames.example",
        "Trial ends on the 30th.",
    ),
    SeedCustomer(
        "Hiroshi Tanaka",
        "Tanaka Robotics K.K.",
        "81312345604",
        "hiroshi.tanaka@tanaka-robotics.example",
        "Time zone JST; call before 10:00 CST.",
    ),
    SeedCustomer(
        "Priya Sharma",
        "Bangalore Soft Services",
        "918012345605",
        "priya.sharma@blrsoft.example",
        "Interested in the CCC integration.",
    ),
    SeedCustomer(
        "Carlos García",
        "Iberia Foods S.L.",
        "34912345606",
        "carlos.garcia@iberiafoods.example",
        "Spanish or English.",
    ),
    SeedCustomer(
        "Kim Min-jun",
        "Seoul Display Co.",
        "82212345607",
        "minjun.kim@seouldisplay.example",
        "Escalated a delivery delay last month.",
    ),
    SeedCustomer(
        "Nguyen Thi Mai",
        "Saigon Coffee Export",
        "84812345608",
        "mai.nguyen@saigoncoffee.example",
        "Seasonal orders in autumn.",
    ),
    SeedCustomer(
        "Sofia Rossi",
        "Rossi Design Studio",
        "39612345609",
        "sofia.rossi@rossi.example",
        "Wants a demo of screen pop.",
    ),
    SeedCustomer(
        "James O'Connor",
        "Harbour Insurance",
        "35312345610",
        "james.oconnor@harbour.example",
        "Compliance team must approve call recording.",
    ),
    SeedCustomer(
        "Ahmed Hassan",
        "Nile Shipping Agency",
        "20212345611",
        "ahmed.hassan@nileshipping.example",
        "Prefers WhatsApp for quick questions.",
    ),
)
