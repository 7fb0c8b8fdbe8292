"""Property tests (hypothesis): arbitrary input never escapes as a 500, and invariants hold.

Pure functions are called directly; cookies and API requests go through the real gateway
(HTTPS, emulator and sample CRM behind it), which runs in an event loop on a helper thread
so that hypothesis can drive it from ordinary synchronous tests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from stack import Browser, Stack, start_stack, stop_stack
from yarl import URL

from ccc_gateway.auth.login_state import COOKIE_NAME as LOGIN_COOKIE
from ccc_gateway.auth.return_to import DEFAULT_RETURN_TO, safe_return_to
from ccc_gateway.config.load import Config, ConfigError, parse_config
from ccc_gateway.proxy.forwarding import X_FORWARDED_FOR, Peer
from ccc_gateway.proxy.headers import (
    HOP_BY_HOP,
    X_REQUEST_ID,
    connection_tokens,
    request_header_pairs,
    response_header_pairs,
)
from ccc_gateway.sessions.manager import SESSION_COOKIE

T = TypeVar("T")
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
API = "/aliyun/ccc/api"


# ---------------------------------------------------------------- the gateway on a thread


class LoopThread:
    """An event loop on its own thread; `run` executes a coroutine there and waits (bounded)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Live:
    """A running stack, a signed-in browser and a cookie-less client, all on `thread`."""

    def __init__(
        self, thread: LoopThread, stack: Stack, agent: Browser, bare: aiohttp.ClientSession
    ):
        self.thread, self.stack, self.agent, self.bare = thread, stack, agent, bare


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    thread = LoopThread()
    tmp: Path = tmp_path_factory.mktemp("fuzz")

    async def start() -> Live:
        stack = await start_stack(tmp, _free_port)
        agent = stack.browser()
        await agent.login_crm()
        assert (await agent.sign_in()).status == 303
        bare = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=agent.ssl_context),
            cookie_jar=aiohttp.DummyCookieJar(),  # the Cookie header is exactly what we send
        )
        return Live(thread, stack, agent, bare)

    state = thread.run(start())

    async def stop() -> None:
        await state.bare.close()
        await state.agent.close()
        await stop_stack(state.stack)

    try:
        yield state
    finally:
        thread.run(stop())
        thread.close()


# ---------------------------------------------------------------- configuration

SECTIONS = ["listen", "tls", "upstream", "aliyun", "ccc", "session", "softphone", "log", "colour"]
KEYS = (
    "access_log ajax_method allowed_actions auth ca_file cert client_id client_secret "
    "connect_timeout crm_binding endpoint format host hsts_max_age http_redirect_port "
    "identity_headers idle_timeout inject instance_id issuer key keys level login_path "
    "login_state_ttl max_age max_body_size max_connections max_request_size max_response_size "
    "metrics_host metrics_port port read_timeout refresh_leeway region reshape screen_pop_url "
    "sdk_scripts sdk_styles shutdown_timeout site store timeout trusted_proxies url version "
    "whoami_cache_ttl whoami_path workers redirect_uri token_url jwks_url scope confirm_dial "
    "public_metrics request_head_timeout min_upload_rate min_upload_rate_window upload_timeout "
    "max_websockets sdk"
).split()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "10s",
            "5m",
            "-1s",
            "1e999d",
            "64KiB",
            "0",
            "${NOPE}",
            "${X:-y}",
            "http://127.0.0.1:1/",
            "https://x/aliyun/auth/callback",
            "*",
            "sts",
            "0.0.0.0/0",
            "::1",
            "/etc/passwd",
            "china",
            "json",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
SECTION = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), VALUES, max_size=8)
CONFIGS = st.dictionaries(
    st.one_of(st.sampled_from(SECTIONS), st.text(max_size=8)),
    st.one_of(SECTION, SCALARS),
    max_size=9,
)


@FAST
@given(CONFIGS)
def test_config_from_any_mapping_is_a_config_or_a_config_error(document: dict[Any, Any]) -> None:
    """Whatever YAML mapping is loaded, the outcome is a Config or a ConfigError, nothing else."""
    text = yaml.safe_dump(document)
    try:
        config = parse_config(text, {"X": "1"})
    except ConfigError as error:
        assert error.args or str(error)
    else:
        assert isinstance(config, Config)


@FAST
@given(st.text(max_size=200))
def test_config_from_any_text_is_a_config_or_a_config_error(text: str) -> None:
    """Arbitrary text (not YAML, not a mapping, tabs, anchors) is only ever a ConfigError."""
    try:
        parse_config(text, {})
    except ConfigError:
        return
    raise AssertionError("a configuration without tls/aliyun/ccc/session cannot be valid")


# ---------------------------------------------------------------- cookies through the real app

COOKIE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=";")
COOKIE_NAMES = st.one_of(
    st.sampled_from(
        [
            SESSION_COOKIE,
            f"{SESSION_COOKIE}-1",
            f"{SESSION_COOKIE}-2",
            f"{SESSION_COOKIE}-99",
            LOGIN_COOKIE,
            "crm_session",
            "__Host-ccc-x",
        ]
    ),
    st.text(COOKIE_CHARS.filter(lambda c: c != "="), min_size=1, max_size=12),
)
COOKIE_VALUES = st.one_of(
    st.text(COOKIE_CHARS, max_size=60),
    st.text(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="),
        min_size=40,
        max_size=300,
    ).map(lambda s: "gAAAAA" + s),
    st.integers(0, 9000).map(lambda n: "x" * n),
)
COOKIE_HEADERS = st.one_of(
    st.lists(st.tuples(COOKIE_NAMES, COOKIE_VALUES), min_size=1, max_size=5).map(
        lambda pairs: "; ".join(f"{k}={v}" for k, v in pairs)
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),
)


@FAST
@given(COOKIE_HEADERS)
def test_random_cookie_headers_never_500_and_never_sign_in(live: Live, cookie: str) -> None:
    """Any Cookie header: /aliyun/session says signed out, API and refresh are 401 (or 400/431)."""

    async def probe() -> list[tuple[str, int, Any]]:
        out = []
        url = live.stack.url
        same = {
            "Origin": str(url),
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "cors",  # a fetch from the page, as the softphone makes it
            "Sec-Fetch-Dest": "empty",
            "Cookie": cookie,
        }
        async with live.bare.get(url / "aliyun/session", headers={"Cookie": cookie}) as r:
            out.append(("session", r.status, await r.json() if r.status == 200 else None))
        async with live.bare.post(
            url.with_path(API).with_query(action="GetServiceExtensions"),
            data={"request": "{}"},
            headers=same,
        ) as r:
            out.append(("api", r.status, None))
        async with live.bare.post(url / "aliyun/refresh", headers=same) as r:
            out.append(("refresh", r.status, None))
        return out

    for what, status, body in live.thread.run(probe()):
        assert status < 500, (what, status)
        if what == "session" and status == 200:
            assert body["signedIn"] is False
        elif status < 400 or status == 403:
            raise AssertionError((what, status))
        else:
            assert status in (400, 401, 431), (what, status)


# ---------------------------------------------------------------- header filtering

TOKEN = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}", fullmatch=True)
HEADER_NAMES = st.one_of(
    TOKEN,
    st.sampled_from(sorted(HOP_BY_HOP)),
    st.sampled_from(
        [
            "X-Ccc-Agent-Upn",
            "x-ccc-anything",
            "X_Ccc_Agent_Name",
            "X-CCC-ROLE",
            "X-Forwarded-For",
            "X_Forwarded_Host",
            "Forwarded",
            "X-Real-IP",
            "Host",
            "Cookie",
            "Set-Cookie",
            "X-Request-Id",
            "Expect",
            "Proxy_Authorization",
        ]
    ),
)
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.lists(
        st.one_of(TOKEN, st.sampled_from(["close", "keep-alive", "X-Ccc-Agent-Upn"])),
        min_size=1,
        max_size=4,
    ).map(", ".join),
    st.lists(
        st.tuples(st.sampled_from([SESSION_COOKIE, LOGIN_COOKIE, "a", "crm"]), TOKEN),
        min_size=1,
        max_size=4,
    ).map(lambda ps: "; ".join(f"{k}={v}" for k, v in ps)),
)
HEADER_LISTS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12)


def _gateway_cookie(name: str) -> bool:
    return name.startswith("__Host-ccc-")


@FAST
@given(HEADER_LISTS, st.booleans())
def test_request_header_filter_never_passes_hop_by_hop_or_identity(
    pairs: list[tuple[str, str]], websocket: bool
) -> None:
    """To the CRM: no hop-by-hop, Connection-named, X-Ccc-* (any spelling) or gateway cookie."""
    incoming = CIMultiDict(pairs)
    out = CIMultiDict(
        request_header_pairs(
            incoming,
            Peer("127.0.0.1", False, True),
            request_id="rid",
            is_gateway_cookie=_gateway_cookie,
            websocket=websocket,
        )
    )
    named = connection_tokens(incoming)
    for name, value in out.items():
        dashed = name.lower().replace("_", "-")
        assert dashed not in HOP_BY_HOP and not dashed.startswith("x-ccc-"), name
        if name.lower() not in (
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-request-id",
        ):
            assert name.lower() not in named, name
        if name.lower() == "cookie":
            assert "__Host-ccc-" not in value
    assert out.getall(X_FORWARDED_FOR) == ["127.0.0.1"]
    assert out.getall(X_REQUEST_ID) == ["rid"]


@FAST
@given(HEADER_LISTS)
def test_response_header_filter_never_passes_hop_by_hop_or_gateway_cookies(
    pairs: list[tuple[str, str]],
) -> None:
    """To the browser: no hop-by-hop, no Connection-named header, no Set-Cookie of ours."""
    upstream = CIMultiDict(pairs)
    out = CIMultiDict(
        response_header_pairs(
            upstream,
            origin=URL("http://127.0.0.1:8080"),
            request_id="rid",
            is_gateway_cookie=_gateway_cookie,
        )
    )
    named = connection_tokens(upstream)
    for name, value in out.items():
        assert name.lower() not in HOP_BY_HOP, name
        if name.lower() != "x-request-id":
            assert name.lower() not in named, name
        if name.lower() == "set-cookie":
            assert not value.strip().startswith("__Host-ccc-"), value
    assert out.getall(X_REQUEST_ID) == ["rid"]


# ---------------------------------------------------------------- return_to

TRICKY = st.lists(
    st.one_of(
        st.sampled_from(
            [
                *"/\\.:@%?#&=;~ \t\r\n\x00",
                "%2f",
                "%2F",
                "%5c",
                "%2e",
                "%25",
                "%0d%0a",
                "%09",
                "\u202e",
                "\u3002",
            ]
        ),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(),
    ),
    max_size=40,
).map("".join)
RETURN_TO = st.one_of(
    st.text(max_size=60),
    st.tuples(
        st.sampled_from(
            ["/", "//", "/\\", "\\", "https:", "http://", "/./", "/%2F", "javascript:", " ", ""]
        ),
        TRICKY,
    ).map("".join),
)
GATEWAY = URL("https://crm.example.com")


@settings(max_examples=300, deadline=None)
@given(RETURN_TO)
def test_return_to_result_is_root_or_a_single_slash_same_origin_path(value: str) -> None:
    """`/`, or the value itself: one leading `/`, no scheme, backslash, control or odd char."""
    result = safe_return_to(value)
    if result == DEFAULT_RETURN_TO:
        return
    assert result == value
    assert result.startswith("/") and not result.startswith("//")
    assert "\\" not in result and all(0x21 <= ord(c) <= 0x7E for c in result)
    decoded = result
    for _ in range(3):
        decoded = unquote(decoded)
    path = decoded.split("?", 1)[0].split("#", 1)[0]
    assert not path.startswith("//") and "\\" not in path
    assert GATEWAY.join(URL(result)).origin() == GATEWAY.origin()


# ---------------------------------------------------------------- the API request parser, live

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
REQUESTS = st.one_of(
    st.dictionaries(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(
                [
                    "instanceId",
                    "InstanceId",
                    "INSTANCEID",
                    "name",
                    "Signature",
                    "userId",
                    "a.b",
                    "1",
                ]
            ),
        ),
        JSON,
        max_size=5,
    ).map(json.dumps),
    JSON.map(json.dumps),
    st.text(max_size=80),
)


@FAST
@given(REQUESTS, st.booleans())
def test_any_request_parameter_never_yields_a_500(live: Live, request: str, as_json: bool) -> None:
    """Random `request` values (form or JSON body) are answered, never with a 500 of ours."""

    async def post() -> tuple[int, Any]:
        agent = live.agent
        if as_json:
            try:
                value: Any = json.loads(request)
            except ValueError:
                value = request
            kwargs: dict[str, Any] = {"json": {"action": "GetConfig", "request": value}}
        else:
            kwargs = {"params": {"action": "GetConfig"}, "data": {"request": request}}
        async with await agent.post(API, **kwargs) as response:
            return response.status, await response.json()

    status, body = live.thread.run(post())
    assert status != 500, body
    assert {"requestId", "errorCode", "message"} <= set(body) or status == 200, body
