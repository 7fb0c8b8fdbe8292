"""The CRM's pages: home, the customer list, customer detail, whoami and health."""

from __future__ import annotations

from aiohttp import web

from .call_log import history_html
from .db import Customer
from .i18n import t
from .keys import DB, USER
from .layout import error_response, esc, path_segment, render
from .phone import lookup_candidates, tel_href


def _phone_link(number: str) -> str:
    return f'<a class="phone" href="{esc(tel_href(number))}">{esc(number)}</a>'


def _name_link(customer: Customer) -> str:
    href = "/customer/userName/" + path_segment(customer.name)
    return f'<a href="{esc(href)}">{esc(customer.name)}</a>'


def _email_link(email: str) -> str:
    return f'<a href="mailto:{esc(email)}">{esc(email)}</a>' if email else ""


async def home(request: web.Request) -> web.StreamResponse:
    """GET /: a greeting and where to go next."""
    user = request.get(USER)
    name = user.display_name if user else ""
    body = (
        f"<h1>{esc(t(request, 'home.welcome', name=name))}</h1>"
        f"<p>{esc(t(request, 'home.intro'))}</p>"
        f'<ul class="links"><li><a href="/customers">{esc(t(request, "home.customer_list"))}'
        "</a></li></ul>"
    )
    return render(request, t(request, "home.title"), body)


def _customer_row(customer: Customer) -> str:
    return (
        f"<tr><td>{_name_link(customer)}</td><td>{esc(customer.company)}</td>"
        f"<td>{_phone_link(customer.phone)}</td><td>{_email_link(customer.email)}</td></tr>"
    )


def _heading(request: web.Request, key: str) -> str:
    return f'<th scope="col">{esc(t(request, key))}</th>'


async def customers(request: web.Request) -> web.StreamResponse:
    """GET /customers: every customer in a table."""
    rows = "".join(_customer_row(c) for c in request.app[DB].customers())
    columns = ("customer.name", "customer.company", "customer.phone", "customer.email")
    head = "".join(_heading(request, key) for key in columns)
    body = (
        f"<h1>{esc(t(request, 'customers.title'))}</h1>"
        f'<table class="customers"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )
    return render(request, t(request, "customers.title"), body)


def _field(request: web.Request, key: str, value_markup: str) -> str:
    return f"<dt>{esc(t(request, key))}</dt><dd>{value_markup}</dd>"


def _detail(request: web.Request, customer: Customer) -> web.Response:
    body = (
        f'<p class="crumbs"><a href="/customers">{esc(t(request, "customers.title"))}</a>'
        f" › {esc(customer.name)}</p>"
        f"<h1>{esc(customer.name)}</h1>"
        '<dl class="customer">'
        + _field(request, "customer.company", esc(customer.company))
        + _field(request, "customer.phone", _phone_link(customer.phone))
        + _field(request, "customer.email", _email_link(customer.email))
        + _field(request, "customer.notes", esc(customer.notes))
        + "</dl>"
        + history_html(request, request.app[DB].connection, customer.phone)
    )
    return render(request, customer.name, body)


async def customer_by_phone(request: web.Request) -> web.StreamResponse:
    """GET /customer/phoneNumber/{phone}: the screen-pop target."""
    raw = request.match_info["phone"]
    customer = request.app[DB].customer_by_phone(lookup_candidates(raw))
    if customer is None:
        message = t(request, "customer.no_phone", number=raw)
        return error_response(request, 404, t(request, "customer.not_found"), message)
    return _detail(request, customer)


async def customer_by_name(request: web.Request) -> web.StreamResponse:
    """GET /customer/userName/{name}: a customer by exact (case-insensitive) name."""
    name = request.match_info["name"]
    customer = request.app[DB].customer_by_name(name.strip())
    if customer is None:
        message = t(request, "customer.no_name", name=name)
        return error_response(request, 404, t(request, "customer.not_found"), message)
    return _detail(request, customer)


async def api_me(request: web.Request) -> web.StreamResponse:
    """GET /api/me: who is signed in (the gateway's whoami); 401 JSON, never a redirect."""
    user = request.get(USER)
    if user is None:
        return web.json_response({"error": "not_authenticated"}, status=401)
    return web.json_response({"user": user.username})


async def healthz(request: web.Request) -> web.StreamResponse:
    """GET/HEAD /healthz: the process is up and serving."""
    return web.Response(text="ok")


def setup_routes(app: web.Application) -> None:
    """Register the page routes."""
    app.router.add_get("/", home)
    app.router.add_get("/customers", customers)
    app.router.add_get("/customer/phoneNumber/{phone}", customer_by_phone)
    app.router.add_get("/customer/userName/{name}", customer_by_name)
    app.router.add_get("/api/me", api_me)
    app.router.add_get("/healthz", healthz)
