"""Runs the gateway exactly as `ccc-gateway run --config FILE` does, with optional what-ifs.

Without options this *is* `ccc_gateway.runtime.cli.main(["run", "--config", FILE])`. The options try
a proposed change without editing the gateway's modules, so its effect can be measured
side by side with the unchanged gateway in the same run:

  --uvloop          the uvloop event loop instead of asyncio's (a policy set before `run`)
  --inject          wire `inject.WidgetInjector` into the proxy when the app has not yet
  --no-access-log   the access logger off (what `log.access_log: false` should do)
  --plain-access-log  access lines written, but not run through the redaction regexes
  --tls-buffer      asyncio's per-TLS-connection read buffer at 64 KiB instead of 256 KiB

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--inject", action="store_true")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--tls-buffer", action="store_true")
    parser.add_argument("--plain-access-log", action="store_true")
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
    if args.tls_buffer:
        # Every TLS connection preallocates (and zero-fills) a max_size bytearray: 256 KiB
        # each, 128 MiB at 512 connections. TLS records are at most 16 KiB.
        asyncio.sslproto.SSLProtocol.max_size = 64 * 1024
    from ccc_gateway.runtime.cli import main as cli_main

    return cli_main(["run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
