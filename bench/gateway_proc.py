"""Runs the gateway exactly as `ccc-gateway run --config FILE` does, with optional what-ifs.

Without options this *is* `ccc_gateway.runtime.cli.main(["run", "--config", FILE])`. The options try
a proposed change without editing the gateway's modules, so its effect can be measured
side by side with the unchanged gateway in the same run:

  --uvloop          the uvloop event loop instead of asyncio's (a policy set before `run`)
  --inject          wire `inject.WidgetInjector` into the proxy when the app has not yet
  --no-access-log   the access logger off (what `log.access_log: false` should do)
  --plain-access-log  access lines written, but not run through the redaction regexes
  --tls-buffer      asyncio's per-TLS-connection read buffer at 64 KiB instead of 256 KiB
  --lean-record     the access line's record made directly from a template, handled without
                    Logger.info/makeRecord, the redaction filter called directly: the most a
                    leaner logging path could save (session 6)

Run: python -m bench.gateway_proc --config FILE [options]
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.sslproto
import logging
import sys
from typing import Any


def _wire_injection() -> None:
    """Give the CRM proxy the widget filter once the app has built it (if app.py did not)."""
    import ccc_gateway.app as gateway_app
    from ccc_gateway.softphone.inject import WidgetInjector

    original = gateway_app.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)

        async def add_filter(app: Any) -> None:
            proxy = app[gateway_app.PROXY]
            if getattr(proxy, "_filter", None) is None:
                proxy._filter = WidgetInjector()

        # on_startup hooks added now run after the cleanup contexts that create the proxy.
        app.on_startup.append(add_filter)
        return app

    gateway_app.create_app = create_app


def _silence_access_log() -> None:
    from ccc_gateway.ops.log import ACCESS_LOGGER

    original = logging.Logger.setLevel

    # setup_logging runs inside cli.main; keep the access logger above INFO afterwards too.
    def set_level(self: logging.Logger, level: int | str) -> None:
        original(self, level)
        if self.name == ACCESS_LOGGER or self is logging.getLogger():
            original(logging.getLogger(ACCESS_LOGGER), logging.WARNING)

    logging.Logger.setLevel = set_level  # type: ignore[method-assign]


def _plain_access_log() -> None:
    from ccc_gateway.ops import log as gateway_log

    original = gateway_log.RedactingFilter.filter

    # The access line is built from method, path, status and numbers: nothing to redact but
    # phone numbers in the path, which the mask alone handles (one regex instead of three).
    def filter(self: logging.Filter, record: logging.LogRecord) -> bool:
        if record.name == gateway_log.ACCESS_LOGGER:
            record.msg = gateway_log.mask_phone_numbers(record.getMessage())
            record.args = None
            return True
        return original(self, record)  # type: ignore[arg-type]

    gateway_log.RedactingFilter.filter = filter  # type: ignore[method-assign]


def _lean_record() -> None:
    """The access line's record made directly, as a copy of one made once (makeRecord, the
    caller/thread/process look-ups and the extra-dict loop skipped), handled by the logger
    without Logger.info/_log, and the handler calling its redaction filter directly: the most
    a leaner record path could save. Not for the gateway as it is: the copied record keeps
    the thread and process of the one made first."""
    import time as time_module

    from ccc_gateway.http import middleware
    from ccc_gateway.ops import log as gateway_log

    template = logging.LogRecord("", logging.INFO, "(unknown file)", 0, "", None, None)
    start = logging._startTime  # type: ignore[attr-defined]
    access = middleware.access_log

    def log_access(request, request_id, response, status, duration):  # type: ignore[no-untyped-def]
        size = 0
        if response is not None:
            size = response.body_length if response.prepared else (response.content_length or 0)
        record = logging.LogRecord.__new__(logging.LogRecord)
        record.__dict__.update(template.__dict__)
        now = time_module.time()
        record.name = access.name
        record.msg = f"{request.method} {request.path} {status}"
        record.created = now
        record.msecs = int((now - int(now)) * 1000) + 0.0
        record.relativeCreated = (now - start) * 1000
        record.fields = {
            "request_id": request_id,
            "duration_ms": round(duration * 1000, 1),
            "bytes": size,
            "remote": request.remote,
        }
        access.handle(record)

    middleware._log_access = log_access

    def handle(self, record):  # type: ignore[no-untyped-def]
        filters = self.filters
        if len(filters) == 1 and isinstance(filters[0], gateway_log.RedactingFilter):
            filters[0].filter(record)
        elif not self.filter(record):
            return False
        self.emit(record)
        return True

    gateway_log.LineHandler.handle = handle  # type: ignore[method-assign]


def _unchecked_head() -> None:
    """The request head built without its per-piece checks (the framing rules kept): the
    most any cheaper way of checking the head could save."""
    from ccc_gateway.upstream import head, pool

    def build_head(method, target, host, headers, body):  # type: ignore[no-untyped-def]
        parts = [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"]
        streamed = body is not None and not isinstance(body, bytes)
        declared = False
        for name, value in headers:
            lower = name.lower()
            if lower in head._FRAMING_HEADERS:
                if lower != "content-length" or not streamed:
                    continue
                declared = True
            parts += (name, ": ", value, "\r\n")
        chunked = streamed and not declared
        if isinstance(body, bytes):
            parts += ("Content-Length: ", str(len(body)), "\r\n")
        elif chunked:
            parts.append("Transfer-Encoding: chunked\r\n")
        elif body is None and method not in head._BODYLESS_METHODS:
            parts.append("Content-Length: 0\r\n")
        parts.append("\r\n")
        return "".join(parts).encode("utf-8", "surrogateescape"), chunked

    pool.build_head = build_head


def _header_memo() -> None:
    """request_header_pairs with each header name's verdict remembered (names only, bounded),
    as edfa90b had it: what remembering the name rules would save."""
    from ccc_gateway.proxy import headers as rules

    original = rules.request_header_pairs
    verdicts: dict[tuple[str, bool], str] = {}  # name -> "drop", "keep", "cookie", "ae"

    def verdict(name: str, websocket: bool) -> str:
        found = verdicts.get((name, websocket))
        if found is None:
            lower = name.lower()
            dashed = lower.replace("_", "-")
            drop = rules._WEBSOCKET_DROP if websocket else rules._REQUEST_DROP
            if dashed in drop or dashed.startswith(rules.IDENTITY_PREFIX):
                found = "drop"
            else:
                found = {"cookie": "cookie", "accept-encoding": "ae"}.get(lower, "keep")
            if len(verdicts) < 1024:
                verdicts[(name, websocket)] = found
        return found

    def request_header_pairs(
        incoming,
        peer,
        *,
        request_id,
        is_gateway_cookie,
        identity=None,  # type: ignore[no-untyped-def]
        websocket=False,
        decodable_only=False,
        public_host=None,
    ):
        if websocket or not rules.connection_tokens(incoming) <= rules._REQUEST_DROP:
            return original(
                incoming,
                peer,
                request_id=request_id,
                is_gateway_cookie=is_gateway_cookie,
                identity=identity,
                websocket=websocket,
                decodable_only=decodable_only,
                public_host=public_host,
            )
        out = []
        for name, value in incoming.items():
            kind = verdict(name, websocket)
            if kind == "keep":
                out.append((name, value))
            elif kind == "cookie":
                stripped = rules.strip_cookies(value, is_gateway_cookie)
                if stripped is not None:
                    out.append((name, stripped))
            elif kind == "ae":
                if not decodable_only:
                    out.append((name, value))
                elif (narrowed := rules.decodable_accept_encoding(value)) is not None:
                    out.append((name, narrowed))
        out += rules.forwarding_headers(incoming, peer, public_host=public_host).items()
        out.append((rules.X_REQUEST_ID, request_id))
        for name, value in (identity or {}).items():
            if not name.lower().startswith(rules.IDENTITY_PREFIX):
                out = [pair for pair in out if pair[0].lower() != name.lower()]
            out.append((name, value))
        return out

    rules.request_header_pairs = request_header_pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--inject", action="store_true")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--tls-buffer", action="store_true")
    parser.add_argument("--plain-access-log", action="store_true")
    parser.add_argument("--lean-record", action="store_true")
    parser.add_argument("--unchecked-head", action="store_true")
    parser.add_argument("--header-memo", action="store_true")
    args = parser.parse_args(argv)
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.inject:
        _wire_injection()
    if args.no_access_log:
        _silence_access_log()
    if args.plain_access_log:
        _plain_access_log()
    if args.lean_record:
        _lean_record()
    if args.unchecked_head:
        _unchecked_head()
    if args.header_memo:
        _header_memo()
    if args.tls_buffer:
        # Every TLS connection preallocates (and zero-fills) a max_size bytearray: 256 KiB
        # each, 128 MiB at 512 connections. TLS records are at most 16 KiB.
        asyncio.sslproto.SSLProtocol.max_size = 64 * 1024
    from ccc_gateway.runtime.cli import main as cli_main

    return cli_main(["run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
