"""The reverse proxy to the CRM: every request not under /aliyun/ goes through `CrmProxy`.

Bodies stream both ways, chunk by chunk, so a 1 GB download costs the gateway no more memory
than a small page. Requests go over the page pool (ccc_gateway/upstream/, the CRM's budget in
proxy/pool.py); websockets over aiohttp's client (proxy/websocket.py). Only an HTML page the
response filter wants (the softphone widget) is read whole, up to a cap, decoded, transformed
and sent with a fresh Content-Length. Header rules live in proxy/headers.py and
proxy/forwarding.py, body limits and decoding in proxy/body.py (docs/proxy.md).

Request bodies reach the CRM exactly as the client sent them (never decompressed: see
runtime/serve.py `server_options`), at `upstream.min_upload_rate` at least and within
`upstream.upload_timeout`, else 408. Failures of the hop are mapped to answers here, and only
here: the client's fault (a request head that cannot be written) is a 400, the CRM's (no
connection, an answer that is not HTTP, a disguised redirect) a 502, its slowness a 504.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict
from yarl import URL

from ccc_gateway.http.errors import (
    BadGateway,
    BadRequest,
    GatewayError,
    GatewayTimeout,
    PayloadTooLarge,
    RequestTimeout,
)
from ccc_gateway.http.request_id import of as request_id_of
from ccc_gateway.proxy import headers as rules
from ccc_gateway.proxy.body import (
    Pace,
    RequestBody,
    ResponseFilter,
    decode_body,
    describe_new_body,
    too_large_message,
)
from ccc_gateway.proxy.forwarding import Peer, is_trusted
from ccc_gateway.proxy.pool import create_page_pool
from ccc_gateway.proxy.websocket import IdentityWatch, WebsocketProxy
from ccc_gateway.upstream.errors import (
    BadResponse,
    ConnectFailed,
    InvalidRequestHead,
    UploadTimeout,
)
from ccc_gateway.upstream.response import HttpResponse

if TYPE_CHECKING:
    from ccc_gateway.config.load import UpstreamConfig
    from ccc_gateway.config.values import IpNetwork

log = logging.getLogger(__name__)

MiB = 1024 * 1024
FILTER_MAX_BODY = 5 * MiB  # larger pages are passed through without the widget
# A body the CRM declares at most this long is read whole and sent in one write with the
# headers: streaming it cost one more TLS record and send() for the headers alone, which was
# a tenth of a proxied page's CPU (bench/RESULTS.md). Larger bodies stream.
WHOLE_MAX_BODY = 64 * 1024
# The CRM's response headers as the proxy passes them to aiohttp's responses, which copy them
# into a multidict of their own: a list of pairs, so that they are built into one just once.
Headers = list[tuple[str, str]]

# Nothing to transform in these: no body, or only a part of one.
_UNFILTERED_STATUSES = frozenset({204, 206, 304})


class _PageResponse(web.Response):
    """A CRM page answered whole, letting go of its body once sent.

    aiohttp's connection loop keeps the last response in a local variable until the next
    request arrives on that keep-alive connection, so an idle browser connection would hold
    its last page: 10 MiB at 512 connections in the benchmark (bench/RESULTS.md, E).
    """

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)
        self.body = None


def _client_gone(request: web.Request) -> web.Response:
    """What to hand aiohttp once the browser has left: nothing will be sent (nginx's 499)."""
    log.debug("client left before the CRM's answer was relayed: %s", request.path)
    return web.Response(status=499, reason="Client Closed Request")


def _describe(exc: BaseException) -> str:
    """An exception for the log: never its repr or str, which may hold the request headers."""
    # aiohttp's ClientResponseError carries the RequestInfo, cookies and all.
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectFailed):
        return f"{type(exc).__name__} ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{type(exc).__name__} ({exc.status})"
    return type(exc).__name__


def _abort(request: web.Request) -> None:
    # Closing without the final chunk (or short of Content-Length) tells the browser the
    # body is incomplete; a normal end would make a truncated page look whole.
    if request.transport is not None:
        request.transport.abort()


class CrmProxy:
    """Forwards a request to the CRM and streams its answer back (the catch-all handler).

    `client` (aiohttp's, proxy/pool.py) and `identity_watch` are for websocket upgrades only
    (proxy/websocket.py); requests go over the proxy's own page pool, closed by `close()`.
    """

    def __init__(
        self,
        upstream: UpstreamConfig,
        client: aiohttp.ClientSession,
        *,
        trusted_proxies: tuple[IpNetwork, ...] = (),
        is_gateway_cookie: Callable[[str], bool] = lambda name: False,
        identity_headers: Callable[[web.Request], Mapping[str, str]] | None = None,
        identity_watch: IdentityWatch | None = None,
        response_filter: ResponseFilter | None = None,
        filter_max_body: int = FILTER_MAX_BODY,
        public_host: str | None = None,
    ) -> None:
        self._host = public_host if upstream.preserve_host else None  # CSRF origin checks
        self._pool = create_page_pool(upstream, self._host)
        self._websockets = WebsocketProxy(client, upstream.max_websockets, identity_watch)
        self._origin = upstream.url.origin()
        self._origin_text = str(self._origin)
        # The CRM's address, for the log only: error pages never name it.
        self._where = f"{upstream.url.host_subcomponent}:{upstream.url.port}"
        self._upstream = upstream
        self._max_body = upstream.max_body_size
        self._upload_timeout = upstream.upload_timeout
        self._trusted = trusted_proxies
        self._is_gateway_cookie = is_gateway_cookie
        self._identity = identity_headers
        self._filter = response_filter
        self._filter_max_body = filter_max_body
        # The gateway's public host[:port] (from aliyun.redirect_uri). A client's own Host is
        # not passed on as X-Forwarded-Host: a CRM building links from it (password-reset
        # mails, redirects) would point them at whatever host the client made up.
        self._public_host = public_host

    async def close(self) -> None:
        await self._pool.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The catch-all route: proxy `request` to the CRM."""
        request_id = request_id_of(request)  # the request-context middleware's
        if request.method == hdrs.METH_GET and rules.is_websocket_upgrade(request.headers):
            return await self._websocket(request, request_id)
        declared = request.content_length
        if self._max_body and declared is not None and declared > self._max_body:
            raise PayloadTooLarge(too_large_message(self._max_body))
        headers = self._outgoing_headers(request, request_id, websocket=False)
        body = None
        if request.body_exists:
            pace = Pace(self._upstream.min_upload_rate, self._upstream.min_upload_rate_window)
            body = RequestBody(request.content, self._max_body, pace)
        try:
            upstream = await self._pool.request(
                request.method,
                self._target(request),
                headers,
                body.chunks() if body is not None else None,
            )
        except (OSError, aiohttp.ClientError, PayloadTooLarge) as exc:  # TimeoutError is one
            if body is not None and body.client_failed:
                return _client_gone(request)
            raise self._failure(exc, body) from None
        try:
            return await self._respond(request, upstream, request_id)
        except rules.DisguisedLocation as exc:
            log.warning("CRM redirect refused, it leaves the site in disguise: %r", exc.args[0])
            raise BadGateway("The CRM answered with a redirect that cannot be followed.") from None
        finally:
            upstream.release()  # back to the pool, or closed if the body was not read out

    @staticmethod
    def _target(request: web.Request) -> str:
        # The raw target as the client sent it: `%2F` must stay `%2F` for the CRM.
        target = request.raw_path
        if not target.startswith("/"):  # absolute-form request target
            target = request.rel_url.raw_path_qs
        return target

    def _url(self, request: web.Request) -> URL:
        return URL(self._origin_text + self._target(request), encoded=True)

    def _peer(self, request: web.Request) -> Peer:
        # Trust is decided on the socket's peer, never on a value a middleware derived from
        # headers (request.remote may have been rewritten by one). aiohttp's protocol holds
        # the peer once per connection; the TLS transport would ask the socket every time.
        peername = request.protocol.peername
        address = peername[0] if isinstance(peername, tuple) and peername else request.remote
        return Peer(address, is_trusted(address, self._trusted), request.secure)

    def _outgoing_headers(
        self, request: web.Request, request_id: str, *, websocket: bool
    ) -> list[tuple[str, str]]:
        """The headers the CRM gets for `request` (rules in proxy/headers.py)."""
        return rules.request_header_pairs(
            request.headers,
            self._peer(request),
            request_id=request_id,
            is_gateway_cookie=self._is_gateway_cookie,
            identity=self._identity(request) if self._identity is not None else None,
            websocket=websocket,
            decodable_only=self._decodable_only(request),
            public_host=self._public_host,
            host=self._host if websocket else None,  # a page's: the page pool writes it
        )

    def _decodable_only(self, request: web.Request) -> bool:
        # A page the filter may rewrite must come in an encoding we can decode (no br).
        return (
            self._filter is not None
            and request.method == hdrs.METH_GET
            and "text/html" in request.headers.get(hdrs.ACCEPT, "")
        )

    def _failure(self, exc: BaseException, body: RequestBody | None) -> GatewayError:
        """The error to show for a CRM request that failed before its answer began."""
        if body is not None and body.too_large:
            return PayloadTooLarge(too_large_message(self._max_body))
        if isinstance(exc, InvalidRequestHead):
            # The client's request cannot be written to the CRM as HTTP/1.1 (a value with a
            # line break): its fault, and nothing was sent.
            log.info("request not forwarded to the CRM: %s", exc)
            return BadRequest("The request cannot be forwarded.")
        log.warning("CRM request to %s failed: %s", self._where, _describe(exc))
        if isinstance(exc, UploadTimeout):
            return RequestTimeout(
                f"The upload to the CRM did not finish within {self._upload_timeout:g} seconds."
            )
        if isinstance(exc, TimeoutError):  # connect and read timeouts alike
            return GatewayTimeout("The CRM did not answer in time.")
        if isinstance(exc, aiohttp.ClientConnectorError | ConnectFailed):
            return BadGateway("The CRM is not reachable.")
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            return BadGateway(f"The CRM refused the websocket ({exc.status}).")
        if isinstance(exc, BadResponse):
            return BadGateway("The CRM's answer is not valid HTTP.")
        return BadGateway("The CRM failed to answer.")

    async def _respond(
        self, request: web.Request, upstream: HttpResponse, request_id: str
    ) -> web.StreamResponse:
        headers = rules.response_header_pairs(
            upstream.headers,
            origin=self._origin,
            request_id=request_id,
            is_gateway_cookie=self._is_gateway_cookie,
        )
        if self._filter is not None and self._filterable(request, upstream, self._filter):
            return await self._filtered(request, upstream, headers, self._filter)
        if self._small(request, upstream):
            # Read whole, then answered with headers and body together (WHOLE_MAX_BODY).
            body = await self._read_all(upstream)
            return _PageResponse(
                status=upstream.status, reason=upstream.reason, body=body, headers=headers
            )
        return await self._stream(request, upstream, headers)

    @staticmethod
    def _small(request: web.Request, upstream: HttpResponse) -> bool:
        length = upstream.content_length
        return (
            length is not None
            and length <= WHOLE_MAX_BODY
            and request.method != hdrs.METH_HEAD  # its Content-Length describes no body here
            and upstream.status >= 200
            and upstream.status not in _UNFILTERED_STATUSES
        )

    async def _read_all(self, upstream: HttpResponse) -> bytes:
        try:
            return await upstream.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Nothing is sent yet, so a body cut short is an honest 502/504, not a truncation.
            raise self._failure(exc, None) from None

    @staticmethod
    def _filterable(
        request: web.Request, upstream: HttpResponse, response_filter: ResponseFilter
    ) -> bool:
        status = upstream.status
        if (
            request.method != hdrs.METH_GET
            or status < 200
            or status in _UNFILTERED_STATUSES
            or not response_filter.wants(request, status, upstream.headers)
        ):
            return False
        coding = upstream.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()
        return not coding or coding in rules.DECODABLE_CODINGS

    async def _stream(
        self,
        request: web.Request,
        upstream: HttpResponse,
        headers: Headers,
        already_read: Iterable[bytes] = (),
    ) -> web.StreamResponse:
        """Send the status and headers now, then the body as it arrives."""
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        try:
            await response.prepare(request)
            for chunk in already_read:
                await response.write(chunk)
        except ConnectionError:
            return _client_gone(request)
        try:
            async for chunk in upstream.content.iter_any():
                try:
                    await response.write(chunk)
                except ConnectionError:
                    upstream.close()  # stop reading a body nobody will receive
                    log.debug("client left during the download of %s", request.path)
                    return response
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The status line is gone already: the only honest signal left is an abort.
            log.warning(
                "CRM response broke off after %d bytes: %s", response.body_length, _describe(exc)
            )
            upstream.close()
            _abort(request)
            return response
        await response.write_eof()
        return response

    async def _filtered(
        self,
        request: web.Request,
        upstream: HttpResponse,
        headers: Headers,
        response_filter: ResponseFilter,
    ) -> web.StreamResponse:
        """Read the page whole (up to the cap), decode, transform, send with a new length."""
        length = upstream.content_length
        if length is not None and length > self._filter_max_body:
            return await self._stream(request, upstream, headers)
        if length is not None:
            # Within the cap as declared, and the parser delivers no more than declared.
            body = await self._read_all(upstream)
        else:
            chunks, complete = await self._read_capped(upstream)
            if not complete:
                return await self._stream(request, upstream, headers, chunks)
            body = b"".join(chunks)
        coding = upstream.headers.get(hdrs.CONTENT_ENCODING)
        # Most pages come unencoded: nothing to decode, and no Content-Encoding to drop.
        decoded = body if coding is None else decode_body(body, coding, self._filter_max_body)
        if decoded is None:
            return await self._stream(request, upstream, headers, (body,))
        edited = CIMultiDict(headers)  # the original headers stay valid for the fallback below
        if coding is not None:
            edited.popall(hdrs.CONTENT_ENCODING, None)
        try:
            new_body = response_filter.transform(request, decoded, edited)
        except Exception:
            # The CRM page matters more than the widget: send it as the CRM made it.
            log.exception("response filter failed on %s; page passed through", request.path)
            return await self._stream(request, upstream, headers, (body,))
        describe_new_body(edited, len(new_body))
        return _PageResponse(
            status=upstream.status, reason=upstream.reason, body=new_body, headers=edited
        )

    async def _read_capped(self, upstream: HttpResponse) -> tuple[list[bytes], bool]:
        """The body's chunks; False when it passed the cap (the rest is still unread)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in upstream.content.iter_any():
                chunks.append(chunk)
                size += len(chunk)
                if size > self._filter_max_body:
                    return chunks, False
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc, None) from None  # nothing sent yet: a 502/504 page
        return chunks, True

    async def _websocket(self, request: web.Request, request_id: str) -> web.StreamResponse:
        headers = self._outgoing_headers(request, request_id, websocket=True)
        try:
            return await self._websockets.handle(request, self._url(request), headers, request_id)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc, None) from None
