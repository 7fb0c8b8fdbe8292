"""The application factory shared by ``python -m sample_crm``, the gateway's demo and tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from . import auth_views, call_log, views
from .db import Database, connect, initialise
from .errors import error_pages
from .headers import add_security_headers
from .keys import CLOCK, DB, DB_PATH, EVENTS_SECRET, LANGUAGE

STATIC_DIR = Path(__file__).with_name("static")


async def _database(app: web.Application) -> AsyncIterator[None]:
    # Seeding hashes passwords with scrypt; a thread keeps the loop (and a co-hosted gateway)
    # responsive during the first start.
    await asyncio.to_thread(initialise, app[DB_PATH])
    db = Database(connect(app[DB_PATH]))
    app[DB] = db
    yield
    db.close()


def create_app(
    db_path: str | os.PathLike[str],
    *,
    clock: Callable[[], float] = time.time,
    language: str = "auto",
    call_events_secret: str | None = None,
) -> web.Application:
    """Build the CRM app; the SQLite file is created and seeded when the app starts.

    ``clock`` (seconds since the epoch) is injectable so tests can expire sessions.
    ``language``: ``auto`` (the browser's), ``zh-CN`` or ``en`` (i18n.pick_language).
    ``call_events_secret`` (else ``SAMPLE_CRM_EVENTS_SECRET``) turns on the call-event receiver.
    """
    app = web.Application(middlewares=[error_pages, auth_views.require_login])
    app[DB_PATH] = os.fspath(db_path)
    app[CLOCK] = clock
    app[LANGUAGE] = language
    app[EVENTS_SECRET] = call_events_secret or os.environ.get("SAMPLE_CRM_EVENTS_SECRET", "")
    app.cleanup_ctx.append(_database)
    app.on_response_prepare.append(add_security_headers)
    auth_views.setup_routes(app)
    views.setup_routes(app)
    call_log.setup(app)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    return app
