"""The sample CRM: login, sessions, CSRF, customer pages, whoami and the command line."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from sample_crm.app import create_app
from sample_crm.passwords import hash_password, verify_password
from sample_crm.phone import lookup_candidates, normalise_phone
from sample_crm.redirects import login_url, safe_next

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class FakeClock:
    """A settable clock so session expiry is deterministic."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crm.sqlite3"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def crm(aiohttp_client: MakeClient, db_path: Path, clock: FakeClock) -> Client:
    return await aiohttp_client(create_app(db_path, clock=clock))


async def csrf_from(client: Client, path: str) -> str:
    """The hidden CSRF token on the page at ``path``."""
    resp = await client.get(path)
    match = CSRF_RE.search(await resp.text())
    assert match is not None, f"no CSRF field on {path}"
    return match.group(1)


async def login(
    client: Client, username: str = "edward", password: str = "1234", next_path: str = ""
) -> ClientResponse:
    """Fill in and post the login form like a browser would."""
    token = await csrf_from(client, "/login")
    form = {"username": username, "password": password, "csrf_token": token, "next": next_path}
    return await client.post("/login", data=form, allow_redirects=False)


def session_cookie_header(resp: ClientResponse) -> str:
    """The Set-Cookie header that sets crm_session."""
    headers = [h for h in resp.headers.getall("Set-Cookie", []) if h.startswith("crm_session=")]
    assert len(headers) == 1
    return headers[0]


# --- seeding and password storage ------------------------------------------------------------


async def test_seeding_is_idempotent_and_never_stores_plaintext(
    aiohttp_client: MakeClient, db_path: Path
) -> None:
    """Starting twice on one file keeps one copy of each row and scrypt hashes, not passwords."""
    await aiohttp_client(create_app(db_path))
    with sqlite3.connect(db_path) as conn:
        first = conn.execute("SELECT username, password_hash FROM users ORDER BY 1").fetchall()
        customers = conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    await aiohttp_client(create_app(db_path))
    with sqlite3.connect(db_path) as conn:
        second = conn.execute("SELECT username, password_hash FROM users ORDER BY 1").fetchall()
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == customers
    assert first == second
    assert [u for u, _ in first] == ["edward", "sissi"]
    assert customers >= 20
    for _, stored in first:
        assert stored.startswith("scrypt$")
        assert "1234" not in stored.split("$", 4)[4] and "5678" not in stored


async def test_seed_contains_contract_customers(crm: Client, db_path: Path) -> None:
    """Mr Lu and Miss Lu exist with the contract's numbers, and phone numbers are unique."""
    with sqlite3.connect(db_path) as conn:
        rows = dict(conn.execute("SELECT name, phone FROM customers").fetchall())
        phones = [p for (p,) in conn.execute("SELECT phone FROM customers")]
    assert rows["Mr Lu"] == "135012345678"
    assert rows["Miss Lu"] == "135012345679"
    assert len(phones) == len(set(phones))


def test_password_hashes_are_salted_and_verify() -> None:
    """Two hashes of one password differ (salt); the right password verifies, others do not."""
    a, b = hash_password("secret"), hash_password("secret")
    assert a != b
    assert verify_password("secret", a) and verify_password("secret", b)
    assert not verify_password("Secret", a)


@pytest.mark.parametrize("stored", ["", "plain", "md5$x$y", "scrypt$a$b$c$d$e", "scrypt$$$$$"])
def test_malformed_stored_hash_never_matches(stored: str) -> None:
    """A corrupt or foreign stored hash is a mismatch, not an exception."""
    assert not verify_password("anything", stored)


# --- login -----------------------------------------------------------------------------------


async def test_login_success_sets_a_hardened_session_cookie(crm: Client) -> None:
    """Correct credentials give a 303 home and an HttpOnly, SameSite=Lax, Path=/ cookie."""
    resp = await login(crm)
    assert resp.status == 303
    assert resp.headers["Location"] == "/"
    cookie = session_cookie_header(resp)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http with no forwarding header
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(value) >= 43


async def test_login_form_has_fields_and_csrf(crm: Client) -> None:
    """GET /login shows a form posting username, password and a hidden CSRF token."""
    resp = await crm.get("/login")
    text = await resp.text()
    assert resp.status == 200
    assert 'action="/login"' in text and 'method="post"' in text
    assert 'name="username"' in text and 'name="password"' in text
    assert CSRF_RE.search(text)


async def test_wrong_password_shows_the_form_again(crm: Client) -> None:
    """A wrong password answers 401 with the form and a clear message, and no session."""
    resp = await login(crm, password="wrong")
    text = await resp.text()
    assert resp.status == 401
    assert "Unknown user name or wrong password." in text
    assert 'name="password"' in text
    assert not any(h.startswith("crm_session=") for h in resp.headers.getall("Set-Cookie", []))


async def test_unknown_user_gets_the_same_answer(crm: Client) -> None:
    """An unknown user name gives the same 401 message as a wrong password."""
    resp = await login(crm, username="mallory", password="1234")
    assert resp.status == 401
    assert "Unknown user name or wrong password." in await resp.text()


async def test_login_name_is_case_insensitive(crm: Client) -> None:
    """'Edward' (as the original doc writes it) signs in as edward."""
    resp = await login(crm, username=" Edward ")
    assert resp.status == 303
    me = await crm.get("/api/me")
    assert await me.json() == {"user": "edward"}


async def test_second_demo_user_signs_in(crm: Client) -> None:
    """sissi/5678 is the second demo account."""
    assert (await login(crm, username="sissi", password="5678")).status == 303
    assert await (await crm.get("/api/me")).json() == {"user": "sissi"}


@pytest.mark.parametrize("token", [None, "", "x" * 43])
async def test_login_without_matching_csrf_is_refused(crm: Client, token: str | None) -> None:
    """A login post whose CSRF field is missing or differs from the cookie gets 403."""
    await crm.get("/login")  # sets the double-submit cookie
    form = {"username": "edward", "password": "1234"}
    if token is not None:
        form["csrf_token"] = token
    resp = await crm.post("/login", data=form, allow_redirects=False)
    assert resp.status == 403
    assert "another site" in await resp.text()
    assert (await crm.get("/api/me")).status == 401


async def test_login_without_csrf_cookie_is_refused(
    aiohttp_client: MakeClient, db_path: Path
) -> None:
    """A cross-site post carries a token but not our cookie: 403."""
    first = await aiohttp_client(create_app(db_path))
    token = await csrf_from(first, "/login")
    first.session.cookie_jar.clear()
    form = {"username": "edward", "password": "1234", "csrf_token": token}
    resp = await first.post("/login", data=form, allow_redirects=False)
    assert resp.status == 403


async def test_login_redirects_to_a_safe_next(crm: Client) -> None:
    """A same-site relative `next` is where login lands."""
    resp = await login(crm, next_path="/customer/phoneNumber/135012345678?x=1")
    assert resp.status == 303
    assert resp.headers["Location"] == "/customer/phoneNumber/135012345678?x=1"


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "evil.example",
        "/logout",
    ],
)
async def test_open_redirect_next_values_go_home(crm: Client, next_path: str) -> None:
    """Off-site or odd `next` values are replaced by `/`."""
    resp = await login(crm, next_path=next_path)
    assert resp.status == 303
    assert resp.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/customers", "/customers"),
        ("/a?b=c#d", "/a?b=c#d"),
        (None, "/"),
        ("", "/"),
        ("//x", "/"),
        ("/\\x", "/"),
        ("http://x/", "/"),
        ("/login?next=/x", "/"),
        ("/a\nb", "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    """safe_next keeps same-site paths and replaces everything else with `/`."""
    assert safe_next(value) == expected


def test_login_url_quotes_next() -> None:
    """The login URL carries the return path as an encoded query parameter."""
    assert login_url("/customers?a=1&b=2") == "/login?next=/customers?a%3D1%26b%3D2"
    assert login_url("//evil.example") == "/login"


async def test_signed_out_pages_redirect_to_login(crm: Client) -> None:
    """A signed-out page request gets 303 to /login with the path as `next`."""
    resp = await crm.get("/customers", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/login?next=/customers"
    resp = await crm.get("/customer/userName/Mr%20Lu", allow_redirects=False)
    assert resp.headers["Location"] == "/login?next=/customer/userName/Mr%2520Lu"


async def test_redirect_round_trip_lands_on_the_page(crm: Client) -> None:
    """Following the login redirect and signing in returns to the requested page."""
    resp = await crm.get("/customer/userName/Mr%20Lu", allow_redirects=False)
    next_path = resp.headers["Location"].split("next=", 1)[1]
    resp = await login(crm, next_path=unquote(next_path))
    assert resp.headers["Location"] == "/customer/userName/Mr%20Lu"
    page = await crm.get(resp.headers["Location"])
    assert page.status == 200 and "Lu Trading Co." in await page.text()


async def test_signed_in_user_visiting_login_goes_on(crm: Client) -> None:
    """GET /login with a valid session skips the form."""
    await login(crm)
    resp = await crm.get("/login?next=/customers", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/customers"


async def test_login_rotates_the_session_id(crm: Client) -> None:
    """Signing in while holding a session issues a new id and the old one stops working."""
    first = session_cookie_header(await login(crm)).split(";")[0]
    # Double-submit: any well-formed token works when cookie and field agree.
    token = "t" * 43
    crm.session.cookie_jar.update_cookies({"crm_login_csrf": token})
    form = {"username": "sissi", "password": "5678", "csrf_token": token}
    resp = await crm.post("/login", data=form, allow_redirects=False)
    second = session_cookie_header(resp).split(";")[0]
    assert first != second
    assert await (await crm.get("/api/me")).json() == {"user": "sissi"}
    crm.session.cookie_jar.clear()
    name, value = first.split("=", 1)
    resp = await crm.get("/api/me", cookies={name: value})
    assert resp.status == 401


async def test_session_expires(crm: Client, clock: FakeClock) -> None:
    """After 12 hours the session is gone and pages redirect to login again."""
    await login(crm)
    assert (await crm.get("/api/me")).status == 200
    clock.now += 12 * 3600 + 1
    assert (await crm.get("/api/me")).status == 401
    assert (await crm.get("/", allow_redirects=False)).status == 303


async def test_secure_cookie_behind_https_gateway(crm: Client) -> None:
    """With X-Forwarded-Proto: https the session cookie gets the Secure flag."""
    token = await csrf_from(crm, "/login")
    form = {"username": "edward", "password": "1234", "csrf_token": token}
    resp = await crm.post(
        "/login", data=form, allow_redirects=False, headers={"X-Forwarded-Proto": "https"}
    )
    assert resp.status == 303
    assert "Secure" in session_cookie_header(resp)


async def test_tampered_session_cookie_is_signed_out(crm: Client) -> None:
    """An unknown or oversized session cookie value counts as signed out."""
    for value in ("not-a-session", "x" * 5000):
        resp = await crm.get("/api/me", cookies={"crm_session": value})
        assert resp.status == 401


# --- logout ----------------------------------------------------------------------------------


async def test_logout_ends_the_session(crm: Client) -> None:
    """POST /logout with the page's token deletes the session; the old cookie is dead."""
    await login(crm)
    old = {c.key: c.value for c in crm.session.cookie_jar}["crm_session"]
    token = await csrf_from(crm, "/")
    resp = await crm.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert (await crm.get("/api/me")).status == 401
    resp = await crm.get("/api/me", cookies={"crm_session": old})
    assert resp.status == 401


async def test_logout_with_wrong_csrf_is_refused(crm: Client) -> None:
    """A logout post without the session's token gets 403 and the session stays."""
    await login(crm)
    for form in ({}, {"csrf_token": "forged"}):
        resp = await crm.post("/logout", data=form, allow_redirects=False)
        assert resp.status == 403
        assert "<!doctype html>" in await resp.text()
    assert (await crm.get("/api/me")).status == 200


async def test_logout_form_on_every_page(crm: Client) -> None:
    """Every signed-in page has a CSRF-protected Log out button."""
    await login(crm)
    for path in (
        "/",
        "/customers",
        "/customer/phoneNumber/135012345678",
        "/customer/userName/Miss%20Lu",
        "/customer/userName/nobody",
    ):
        text = await (await crm.get(path)).text()
        assert 'action="/logout"' in text, path
        assert "Log out" in text and CSRF_RE.search(text), path


async def test_signed_out_logout_goes_to_login(crm: Client) -> None:
    """POST /logout without a session just sends the browser to the login form."""
    resp = await crm.post("/logout", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"


# --- pages -----------------------------------------------------------------------------------


async def test_customer_list_has_tel_links(crm: Client) -> None:
    """The list shows Mr Lu and Miss Lu with tel: links and links to their pages."""
    await login(crm)
    text = await (await crm.get("/customers")).text()
    assert '<a class="phone" href="tel:135012345678">135012345678</a>' in text
    assert '<a class="phone" href="tel:135012345679">135012345679</a>' in text
    assert 'href="/customer/userName/Mr%20Lu">Mr Lu</a>' in text
    assert 'href="/customer/userName/Miss%20Lu">Miss Lu</a>' in text


async def test_customer_list_escapes_text(crm: Client) -> None:
    """Interpolated values are HTML-escaped (apostrophes in seeded names)."""
    await login(crm)
    text = await (await crm.get("/customers")).text()
    assert "James O&#x27;Connor" in text
    assert "O'Connor" not in text


@pytest.mark.parametrize(
    "path", ["135012345678", "+135012345678", "135-0123-45678", "135%200123%2045678"]
)
async def test_phone_lookup_finds_customer(crm: Client, path: str) -> None:
    """The screen-pop route finds Mr Lu with plus, spaces or dashes in the number."""
    await login(crm)
    resp = await crm.get(f"/customer/phoneNumber/{path}")
    text = await resp.text()
    assert resp.status == 200
    assert "<h1>Mr Lu</h1>" in text and 'href="tel:135012345678"' in text
    assert "Lu Trading Co." in text and "mr.lu@lutrading.example" in text


@pytest.mark.parametrize("number", ["999", "not-a-number", "<script>"])
async def test_unknown_phone_is_a_404_page(crm: Client, number: str) -> None:
    """An unknown number gives a 404 HTML page naming it, escaped."""
    await login(crm)
    resp = await crm.get(f"/customer/phoneNumber/{number}")
    text = await resp.text()
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "No customer with phone number" in text
    assert "<script>" not in text


@pytest.mark.parametrize("name", ["Mr%20Lu", "mr%20lu", "Miss%20Lu"])
async def test_name_lookup_finds_customer(crm: Client, name: str) -> None:
    """The name route finds customers by exact name, ignoring case."""
    await login(crm)
    resp = await crm.get(f"/customer/userName/{name}")
    assert resp.status == 200
    assert "Lu Trading Co." in await resp.text()


async def test_unknown_name_is_a_404_page(crm: Client) -> None:
    """An unknown name gives a 404 HTML page."""
    await login(crm)
    resp = await crm.get("/customer/userName/Nobody%20Here")
    assert resp.status == 404
    assert "No customer named Nobody Here." in await resp.text()


async def test_home_greets_the_user(crm: Client) -> None:
    """The home page greets the signed-in user and links to the customer list."""
    await login(crm)
    text = await (await crm.get("/")).text()
    assert "Welcome, Edward" in text and 'href="/customers"' in text


async def test_pages_are_complete_documents(crm: Client) -> None:
    """Pages have a doctype, charset, title and end with </body></html> for injection."""
    for path in ("/login", "/", "/customers", "/customer/phoneNumber/1"):
        if path == "/":
            await login(crm)
        resp = await crm.get(path)
        text = await resp.text()
        assert text.startswith("<!doctype html>"), path
        assert '<meta charset="utf-8">' in text and "<title>" in text, path
        assert text.endswith("</body></html>"), path
        assert "Sample CRM" in text, path
        assert "<script" not in text and "style=" not in text, path


async def test_security_headers(crm: Client) -> None:
    """Pages, JSON and static files carry nosniff, a strict CSP and frame-ancestors."""
    for path in ("/login", "/api/me", "/static/crm.css", "/healthz"):
        resp = await crm.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp, path
    assert (await crm.get("/login")).headers["Cache-Control"] == "no-store"


async def test_stylesheet_is_local(crm: Client) -> None:
    """/static/crm.css is served without a session and loads nothing external."""
    resp = await crm.get("/static/crm.css")
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/css"
    assert "http" not in text and "@import" not in text


async def test_unknown_route_and_wrong_method_are_pages(crm: Client) -> None:
    """Router errors render as HTML pages with honest statuses (404, 405 + Allow)."""
    await login(crm)
    resp = await crm.get("/no/such/page")
    assert resp.status == 404 and "<!doctype html>" in await resp.text()
    resp = await crm.get("/logout")
    assert resp.status == 405 and "POST" in resp.headers["Allow"]
    assert "<!doctype html>" in await resp.text()


async def test_oversized_login_input_is_rejected_cleanly(crm: Client) -> None:
    """Absurdly long credentials give the 401 form, not an error."""
    resp = await login(crm, username="e" * 500, password="p" * 5000)
    assert resp.status == 401


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=z"])
async def test_malformed_form_body_is_a_400_page(crm: Client, content_type: str) -> None:
    """A login post that is not a parseable form gets a 400 page, not a crash."""
    resp = await crm.post("/login", data=b"garbage", headers={"Content-Type": content_type})
    assert resp.status == 400
    assert "<!doctype html>" in await resp.text()


# --- whoami and health -----------------------------------------------------------------------


async def test_api_me_signed_out(crm: Client) -> None:
    """/api/me answers 401 JSON (never a redirect) without a session."""
    resp = await crm.get("/api/me", allow_redirects=False)
    assert resp.status == 401
    assert await resp.json() == {"error": "not_authenticated"}


async def test_api_me_signed_in(crm: Client) -> None:
    """/api/me names the signed-in user."""
    await login(crm)
    resp = await crm.get("/api/me")
    assert resp.status == 200
    assert await resp.json() == {"user": "edward"}


async def test_api_errors_are_json(crm: Client) -> None:
    """A wrong method under /api/ gets a JSON error body."""
    resp = await crm.post("/api/me")
    assert resp.status == 405
    assert await resp.json() == {"error": "method_not_allowed"}


async def test_healthz(crm: Client) -> None:
    """GET and HEAD /healthz answer 200 without a session."""
    resp = await crm.get("/healthz")
    assert resp.status == 200 and await resp.text() == "ok"
    assert (await crm.head("/healthz")).status == 200


# --- phone normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("135012345678", "135012345678"),
        ("+86 135-0123-4567", "+8613501234567"),
        ("(010) 1234.5678", "01012345678"),
        ("abc", None),
        ("", None),
        ("++1", None),
        ("1" * 21, None),
    ],
)
def test_normalise_phone(raw: str, expected: str | None) -> None:
    """Separators are dropped, a leading + kept, and non-numbers rejected."""
    assert normalise_phone(raw) == expected


def test_lookup_candidates_try_without_plus() -> None:
    """A +number is tried as written, then without the plus (the seed stores bare digits)."""
    assert lookup_candidates("+135012345678") == ("+135012345678", "135012345678")
    assert lookup_candidates("x") == ()


# --- command line ----------------------------------------------------------------------------


def test_cli_help(tmp_path: Path) -> None:
    """`python -m sample_crm --help` prints the options and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "sample_crm", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--db"):
        assert option in result.stdout


def test_cli_busy_port_is_one_line(tmp_path: Path) -> None:
    """A busy port gives exit 1 and one clear line on stderr, no traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sample_crm",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "crm.sqlite3"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"sample_crm: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


# --- two languages and Chinese customers (issue 18) --------------------------------------------

CHINESE_MOBILE = re.compile(r"1[3-9][0-9]{9}")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


async def test_seed_has_chinese_customers_with_mainland_mobiles(crm: Client, db_path: Path):
    """Chinese customers with ordinary 11-digit mobiles stand beside the seed's Mr and Miss Lu."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT name, company, phone FROM customers").fetchall()
    chinese = [(n, c, p) for n, c, p in rows if re.search(r"[\u4e00-\u9fff]", n)]
    assert len(chinese) >= 6
    assert all(CHINESE_MOBILE.fullmatch(p) for _, _, p in chinese)
    assert all(re.search(r"[\u4e00-\u9fff]", c) for _, c, _ in chinese)  # Chinese companies
    assert {"Mr Lu", "Miss Lu"} <= {n for n, _, _ in rows}


async def test_screen_pop_finds_a_chinese_customer(crm: Client) -> None:
    """The screen-pop route finds 陆晓雯 by her mobile, also with dashes or China's code."""
    await login(crm)
    for path in ("13912345602", "139-1234-5602", "+8613912345602", "008613912345602"):
        resp = await crm.get(f"/customer/phoneNumber/{path}", headers=ZH)
        text = await resp.text()
        assert resp.status == 200 and "<h1>陆晓雯</h1>" in text, path
        assert "<title>陆晓雯 · 示例 CRM</title>" in text


async def test_pages_speak_the_browsers_language(crm: Client) -> None:
    """Home, list, detail and 404 pages are Chinese for zh browsers and English otherwise."""
    await login(crm)
    for path, chinese, english in [
        ("/", "欢迎，Edward", "Welcome, Edward"),
        ("/customers", '<th scope="col">电话</th>', '<th scope="col">Phone</th>'),
        ("/customer/userName/Mr%20Lu", "<dt>公司</dt>", "<dt>Company</dt>"),
        ("/customer/phoneNumber/999", "没有电话号码为 999 的客户。", "No customer with phone"),
        ("/nowhere", "此地址没有页面。", "There is no page at this address."),
    ]:
        zh = await (await crm.get(path, headers=ZH)).text()
        en = await (await crm.get(path, headers={"Accept-Language": "en-US"})).text()
        assert chinese in zh and '<html lang="zh-CN">' in zh and "退出登录" in zh, path
        assert english in en and '<html lang="en">' in en and "Log out" in en, path


async def test_login_errors_in_chinese(crm: Client) -> None:
    """A wrong password is told in Chinese to a Chinese browser (the form's words too)."""
    token = await csrf_from(crm, "/login")
    resp = await crm.post(
        "/login",
        data={"csrf_token": token, "username": "edward", "password": "nope", "next": "/"},
        headers=ZH,
    )
    text = await resp.text()
    assert resp.status == 401 and "用户名或密码错误。" in text and "用户名" in text


async def test_language_option_fixes_the_language(tmp_path: Path, aiohttp_client: MakeClient):
    """create_app(language="en") (python -m sample_crm --language en) ignores Accept-Language."""
    client = await aiohttp_client(create_app(tmp_path / "crm.sqlite3", language="en"))
    text = await (await client.get("/login", headers=ZH)).text()
    assert "User name" in text and '<html lang="en">' in text


def test_language_option_is_validated() -> None:
    """--language accepts auto, zh-CN and en only (argparse refuses others)."""
    from sample_crm.__main__ import parse_args

    assert parse_args(["--language", "zh-CN"]).language == "zh-CN"
    assert parse_args([]).language == "auto"
    with pytest.raises(SystemExit):
        parse_args(["--language", "fr"])
