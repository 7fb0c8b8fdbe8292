"""A browser's cookie jar against a SessionManager, for the session tests: requests that carry
a jar, and the jar a response's Set-Cookie headers leave behind."""

from __future__ import annotations

from http.cookies import SimpleCookie

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ccc_gateway.sessions.manager import SessionManager
from ccc_gateway.sessions.signin import SignIn


def request_with(jar: dict[str, str] | None = None) -> web.Request:
    header = "; ".join(f"{k}={v}" for k, v in (jar or {}).items())
    return make_mocked_request(
        "GET", "/aliyun/session", headers={"Cookie": header} if header else {}
    )


async def cookies_of(manager: SessionManager, request: web.Request) -> dict[str, str]:
    """The cookies the response to `request` sets (a cleared cookie is left out)."""
    response = web.Response()
    await manager.write_cookie(request, response)
    jar: dict[str, str] = {}
    for header in response.headers.getall("Set-Cookie", []):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        jar.update({name: m.value for name, m in parsed.items() if m.value})
    return jar


async def saved(manager: SessionManager, signin: SignIn) -> dict[str, str]:
    """The jar a browser holds after `signin` is saved."""
    request = request_with()
    await manager.save(request, signin)
    return await cookies_of(manager, request)
