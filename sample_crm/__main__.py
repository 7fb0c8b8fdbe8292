"""``python -m sample_crm``: run the sample CRM alone."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys

from aiohttp import web

from .app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DB = "sample_crm.sqlite3"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m sample_crm",
        description="Run the sample CRM (login and customers, backed by SQLite).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (%(default)s)")
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="FILE",
        help="SQLite file, created and seeded on first start (%(default)s)",
    )
    parser.add_argument(
        "--language",
        choices=("auto", "zh-CN", "en"),
        default="auto",
        help="page language; auto follows the browser's Accept-Language (%(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; 1 with one line on stderr when the port or database fails."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        web.run_app(create_app(args.db, language=args.language), host=args.host, port=args.port)
    except OSError as exc:
        # aiohttp wraps the errno in a long message; the plain errno text is the useful part.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"sample_crm: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"sample_crm: cannot use database {args.db}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
