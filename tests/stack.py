"""The whole system on loopback for end-to-end tests: sample CRM, Alibaba emulator, gateway.

The gateway serves HTTPS with a generated certificate (its cookies are `Secure`, as in
production); the CRM and the emulator speak plain HTTP on loopback. `Browser` is an aiohttp
client with a cookie jar that does what a person's browser does: log in to the CRM, click
"Sign in to Alibaba Cloud", fill in the emulator's form, follow the redirects.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from yarl import URL

from ccc_gateway.app import create_app
from ccc_gateway.auth.oauth.client import Endpoints
from ccc_gateway.config.load import (
    AliyunConfig,
    CccConfig,
    Config,
    ListenConfig,
    Secret,
    SessionConfig,
    TlsConfig,
    UpstreamConfig,
)
from ccc_gateway.config.model import SDK_ASSETS, SDK_FOR_VERSION
from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.settings import EmulatorSettings, OAuthClient
from ccc_gateway.runtime.serve import server_options
from ccc_gateway.runtime.tls import client_context, server_context
from sample_crm.app import create_app as create_crm_app

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret-xyz"
AGENT1 = ("agent1@ccc-demo.onaliyun.com", "agent1-pass")
AGENT2 = ("agent2@ccc-demo.onaliyun.com", "agent2-pass")


class Clock:
    """A settable clock shared by the gateway and the emulator (tests move time, never sleep)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stack:
    gateway: TestServer
    crm: TestServer
    emulator: TestServer
    emulator_settings: EmulatorSettings
    config: Config
    cert: Path
    clock: Clock
    app: web.Application

    @property
    def url(self) -> URL:
        return URL(f"https://127.0.0.1:{self.gateway.port}")

    @property
    def emulator_url(self) -> URL:
        return URL(self.emulator_settings.public_url)  # https with start_stack(emulator_tls=True)

    def browser(self) -> Browser:
        return Browser(self)

    def emulator_client(self) -> aiohttp.ClientSession:
        """A client for the emulator's test routes (trusts the stack's certificate)."""
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(self.cert)))

    async def emulator_requests(self, path: str | None = None) -> list[dict[str, Any]]:
        async with self.emulator_client() as client:
            async with client.get(self.emulator_url / "_emulator/requests") as response:
                entries: list[dict[str, Any]] = (await response.json())["requests"]
        return [e for e in entries if path is None or e["path"] == path]

    async def emulator_knob(self, method: str, path: str, body: Any = None) -> Any:
        async with self.emulator_client() as client:
            async with client.request(method, self.emulator_url / path, json=body) as response:
                assert response.status < 300, await response.text()
                return await response.json()


def gateway_config(
    *,
    port: int,
    crm_port: int,
    emulator_url: URL,
    cert: Path,
    key: Path,
    session_keys: tuple[str, ...] | None = None,
    **sections: Any,
) -> Config:
    base = str(emulator_url).rstrip("/")
    config = Config(
        listen=ListenConfig(host="127.0.0.1", port=port),
        tls=TlsConfig(cert, key),
        upstream=UpstreamConfig(url=URL(f"http://127.0.0.1:{crm_port}")),
        aliyun=AliyunConfig(
            client_id=CLIENT_ID,
            client_secret=Secret(CLIENT_SECRET),
            redirect_uri=URL(f"https://127.0.0.1:{port}/aliyun/auth/callback"),
            endpoints=Endpoints(
                authorize_url=f"{base}/oauth2/v1/auth",
                token_url=f"{base}/v1/token",
                revoke_url=f"{base}/v1/revoke",
                userinfo_url=f"{base}/v1/userinfo",
                jwks_url=f"{base}/v1/keys",
                issuer=base,
            ),
        ),
        # Classic unless a test says otherwise (ccc={"version": "2020-07-01", ...}).
        ccc=CccConfig(
            instance_id="ccc-demo-instance", endpoint=URL(f"{base}/"), version="2017-07-05"
        ),
        session=SessionConfig(
            keys=tuple(Secret(k) for k in (session_keys or (Fernet.generate_key().decode(),)))
        ),
    )
    # The softphone's SDK follows the CCC generation, as `sdk: auto` does in load.py.
    sdk = SDK_FOR_VERSION[sections.get("ccc", {}).get("version", config.ccc.version)]
    assets = SDK_ASSETS[sdk]
    sections["softphone"] = {
        "sdk": sdk,
        "sdk_scripts": assets.scripts,
        "sdk_styles": assets.styles,
        **sections.get("softphone", {}),
    }
    for name, changes in sections.items():
        config = dataclasses.replace(
            config, **{name: dataclasses.replace(getattr(config, name), **changes)}
        )
    return config


async def start_stack(
    tmp_path: Path,
    port_factory: Callable[[], int],
    *,
    emulator_changes: dict[str, Any] | None = None,
    emulator_tls: bool = False,
    extend: Callable[[web.Application], None] | None = None,
    **config_sections: Any,
) -> Stack:
    """Start CRM, emulator and gateway.

    `emulator_tls=True` serves the emulator over https with the gateway's certificate (a
    browser refuses an http script on the https softphone page). String values in the
    `softphone` section may say `{emulator}`: it becomes the emulator's base URL.
    """
    from ccc_gateway.runtime.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path / "tls")
    clock = Clock()
    crm = TestServer(create_crm_app(tmp_path / "crm.sqlite3"), host="127.0.0.1")
    await crm.start_server()
    gateway_port = port_factory()
    settings = EmulatorSettings(
        public_url="http://placeholder",
        clients=(
            OAuthClient(
                CLIENT_ID,
                CLIENT_SECRET,
                (f"https://127.0.0.1:{gateway_port}/aliyun/auth/callback",),
            ),
        ),
        clock=clock,
        **(emulator_changes or {}),
    )
    scheme = "https" if emulator_tls else "http"
    emulator = TestServer(create_emulator_app(settings), host="127.0.0.1", scheme=scheme)
    await emulator.start_server(ssl=server_context(cert, key) if emulator_tls else None)
    settings.public_url = f"{scheme}://127.0.0.1:{emulator.port}"
    settings.issuer = settings.public_url
    if emulator_tls:
        config_sections["aliyun"] = {"ca_file": cert, **config_sections.get("aliyun", {})}
    if "softphone" in config_sections:
        config_sections["softphone"] = _with_emulator(
            config_sections["softphone"], settings.public_url
        )
    config = gateway_config(
        port=gateway_port,
        crm_port=crm.port,
        emulator_url=URL(settings.public_url),
        cert=cert,
        key=key,
        **config_sections,
    )
    app = create_app(config, clock=clock)
    if extend is not None:
        extend(app)  # what code extending the gateway adds (routes) before it starts
    gateway = TestServer(app, host="127.0.0.1", port=gateway_port, scheme="https")
    # The server settings of production (bodies not decompressed, the request-head timeout).
    await gateway.start_server(ssl=server_context(cert, key), **server_options(config.listen))
    return Stack(gateway, crm, emulator, settings, config, cert, clock, app)


def _with_emulator(changes: dict[str, Any], base: str) -> dict[str, Any]:
    def sub(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{emulator}", base)
        if isinstance(value, tuple):
            return tuple(sub(v) for v in value)
        return value

    return {key: sub(value) for key, value in changes.items()}


async def stop_stack(stack: Stack) -> None:
    for server in (stack.gateway, stack.emulator, stack.crm):
        await server.close()


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        if tag == "input" and a.get("name") and a.get("type") in ("hidden", None, "text"):
            self.fields[a["name"] or ""] = a.get("value") or ""


def parse_form(html: str) -> tuple[str | None, dict[str, str]]:
    parser = _Form()
    parser.feed(html)
    return parser.action, parser.fields


@dataclass
class Browser:
    stack: Stack
    client: aiohttp.ClientSession = field(init=False)
    ssl_context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.ssl_context = client_context(self.stack.cert)
        self.client = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(ssl=self.ssl_context),
        )

    async def close(self) -> None:
        await self.client.close()

    def url(self, path: str) -> URL:
        return self.stack.url.join(URL(path))

    def origin_headers(self) -> dict[str, str]:
        """What a browser sends with a fetch/XHR from one of the gateway's own pages."""
        return {
            "Origin": str(self.stack.url),
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Dest": "empty",
        }

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.client.get(self.url(path), **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {**self.origin_headers(), **kwargs.pop("headers", {})}
        return await self.client.post(self.url(path), headers=headers, **kwargs)

    async def login_crm(self, username: str = "edward", password: str = "1234") -> None:
        async with self.client.get(self.url("/login")) as page:
            _, fields = parse_form(await page.text())
        fields.update(username=username, password=password)
        async with self.client.post(self.url("/login"), data=fields) as response:
            assert response.status == 200, await response.text()
            assert str(response.url).startswith(str(self.stack.url))

    async def logout_crm(self) -> None:
        async with self.client.get(self.url("/")) as page:
            html = await page.text()
        start = html.index('action="/logout"')
        _, fields = parse_form(html[html.rindex("<form", 0, start) :])
        async with self.client.post(self.url("/logout"), data=fields) as response:
            assert response.status == 200

    async def start_sign_in(self, return_to: str | None = None) -> URL:
        """GET /aliyun/auth; returns the authorize URL the gateway redirected to."""
        params = {"return_to": return_to} if return_to else {}
        async with self.client.get(
            self.url("/aliyun/auth"), params=params, allow_redirects=False
        ) as r:
            assert r.status == 302, await r.text()
            return URL(r.headers["Location"])

    async def authorize(
        self, authorize_url: URL, agent: tuple[str, str] = AGENT1
    ) -> aiohttp.ClientResponse:
        """Fill in the emulator's sign-in form; returns its (unfollowed) answer."""
        async with self.client.get(authorize_url) as page:
            assert page.status == 200, await page.text()
            _, fields = parse_form(await page.text())
        fields.update(username=agent[0], password=agent[1], action="signin")
        return await self.client.post(
            self.stack.emulator_url / "oauth2/v1/auth", data=fields, allow_redirects=False
        )

    async def sign_in(
        self, agent: tuple[str, str] = AGENT1, return_to: str | None = None
    ) -> aiohttp.ClientResponse:
        authorize_url = await self.start_sign_in(return_to)
        answer = await self.authorize(authorize_url, agent)
        assert answer.status == 302, await answer.text()
        callback = URL(answer.headers["Location"])
        return await self.client.get(callback, allow_redirects=False)

    async def session(self) -> dict[str, Any]:
        async with self.client.get(self.url("/aliyun/session")) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body

    def cookie(self, name: str) -> str | None:
        for cookie in self.client.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


def form_field(html: str, name: str) -> str | None:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    return match.group(1) if match else None
