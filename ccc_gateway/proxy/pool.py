"""The connections to the CRM: one budget, `upstream.max_connections`, made here.

It is cut in three shares that add up to it (config/load.py checks that each is at least one
connection, docs/proxy.md):

- pages: `UpstreamConfig.page_connections`, the proxy's `HttpPool` (every proxied request but
  websockets);
- websockets: `upstream.max_websockets` open at once (the proxy refuses more with a 503), on
  aiohttp's client, which does the upgrade handshake;
- control: `CONTROL_CONNECTIONS`, on that same client, for the whoami lookup
  (sessions/crm_binding.py) and the readiness check (`crm_reachable`), which therefore find a
  connection when pages and websockets are saturated.
"""

from __future__ import annotations

import aiohttp
from aiohttp import hdrs, web

from ccc_gateway.config.load import CONTROL_CONNECTIONS, UpstreamConfig
from ccc_gateway.keys import CONFIG, UPSTREAM_CLIENT
from ccc_gateway.upstream.pool import HttpPool

# CRMs send long Content-Security-Policy and Set-Cookie lines; aiohttp's 8 KiB default would
# turn such a page into a 502.
UPSTREAM_MAX_FIELD_SIZE = 32 * 1024
# The client must forward the browser's headers, not invent its own: no default Accept,
# Accept-Encoding, User-Agent or Content-Type.
_SKIP_AUTO_HEADERS = (hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE)


def create_page_pool(upstream: UpstreamConfig, host: str | None = None) -> HttpPool:
    """The pages' share: the keep-alive pool proxied requests go over (all but websockets);
    `host` is the Host it sends (None: the CRM's own)."""
    return HttpPool(
        upstream.url.origin(),
        max_connections=upstream.page_connections,
        connect_timeout=upstream.connect_timeout,
        # No total: a long download is fine as long as bytes keep coming.
        read_timeout=upstream.read_timeout,
        upload_timeout=upstream.upload_timeout,
        max_field_size=UPSTREAM_MAX_FIELD_SIZE,
        host_header=host,
    )


def create_upstream_client(upstream: UpstreamConfig) -> aiohttp.ClientSession:
    """The websockets' and the control share: aiohttp's client to the CRM (call inside the
    loop). The proxy keeps websockets to their share, so the control share is always there."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=upstream.max_websockets + CONTROL_CONNECTIONS  # keep-alive on
        ),
        # No total: a long download is fine as long as bytes keep coming (sock_read).
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=upstream.connect_timeout,
            sock_connect=upstream.connect_timeout,
            sock_read=upstream.read_timeout,
        ),
        auto_decompress=False,  # bodies pass through exactly as the CRM encoded them
        cookie_jar=aiohttp.DummyCookieJar(),  # a shared jar would hand user A's cookies to B
        skip_auto_headers=_SKIP_AUTO_HEADERS,
        trust_env=False,  # an HTTP(S)_PROXY in the environment must not divert CRM traffic
        max_field_size=UPSTREAM_MAX_FIELD_SIZE,
    )


async def crm_reachable(app: web.Application) -> str | None:
    """The "crm" readiness check (ops/health.py): any HTTP answer from the CRM counts, as
    readiness is about reachability, not its pages."""
    upstream = app[CONFIG].upstream
    try:
        async with app[UPSTREAM_CLIENT].head(upstream.url, allow_redirects=False) as response:
            return None if response.status < 500 else f"answered {response.status}"
    except (aiohttp.ClientError, OSError) as exc:
        return f"unreachable: {type(exc).__name__}"
