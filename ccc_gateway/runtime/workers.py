"""Running the gateway in production: one process, or a supervisor of `listen.workers` processes.

One worker is one full gateway (its own app, outbound pools and metrics) listening on the
shared port with SO_REUSEPORT, so the kernel spreads new connections across workers. The
supervisor starts each worker as `ccc-gateway run --config FILE --worker-index I`, restarts
one that dies, forwards SIGTERM/SIGINT (drain and stop) and SIGHUP (reload) and exits 0 once
every worker has drained and exited 0. It gives up (exit 1) on a crash loop, e.g. a port that
can never be bound, rather than restarting forever.

SIGHUP in a worker re-reads the configuration file and swaps in its TLS certificate and its
session key ring; anything else in the file needs a restart. A broken file changes nothing:
every problem is logged and the running configuration stays.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from aiohttp import web

from ccc_gateway.config.load import Config, ConfigError, load_config
from ccc_gateway.keys import METRICS
from ccc_gateway.ops.metrics import metrics_app
from ccc_gateway.runtime.memory import settle_after_start, trim_periodically
from ccc_gateway.runtime.serve import (
    Listener,
    StartupError,
    https_redirect_app,
    reload_certificate,
    serve,
    server_options,
)
from ccc_gateway.runtime.tls import TlsError, server_context

log = logging.getLogger("ccc_gateway")

POLL_INTERVAL = 0.2  # how often the supervisor looks at its workers
RESTART_DELAY = 1.0  # before restarting a crashed worker (no tight loop)
CRASH_LIMIT = 5  # this many crashes within CRASH_WINDOW: give up
CRASH_WINDOW = 60.0
KILL_GRACE = 5.0  # beyond shutdown_timeout before a worker that does not stop is killed


def gateway_listeners(config: Config, worker: int = 0) -> list[Listener]:
    """The gateway's listeners: HTTPS, optional HTTP redirect, optional private metrics."""
    from ccc_gateway.app import create_app

    if config.tls is None:
        raise StartupError("tls: a certificate and key are required to serve HTTPS")
    listen = config.listen
    shared = listen.workers > 1  # every worker binds the same ports
    options = server_options(listen)  # every listener: none may be held open by a slow client
    app = create_app(config)
    app[METRICS].set_worker(worker)
    tls = server_context(config.tls.cert, config.tls.key)
    listeners = [
        Listener("gateway", app, listen.host, listen.port, tls, reuse_port=shared, options=options)
    ]
    if listen.http_redirect_port:
        redirect = https_redirect_app(config.aliyun.public_origin)
        listeners.append(
            Listener(
                "HTTP redirect",
                redirect,
                listen.host,
                listen.http_redirect_port,
                reuse_port=shared,
                options=options,
            )
        )
    if listen.metrics_port:
        # One port per worker: a scraper must reach each worker, SO_REUSEPORT would pick one.
        listeners.append(
            Listener(
                "metrics",
                metrics_app(app[METRICS], app),
                listen.metrics_host,
                listen.metrics_port + worker,
                options=options,
            )
        )
    return listeners


class Reloader:
    """SIGHUP: re-read `path`, then swap the certificate and session keys in, or change nothing."""

    def __init__(self, path: Path, app: web.Application, listener: Listener) -> None:
        self.path = path
        self.app = app
        self.listener = listener

    def __call__(self) -> bool:
        """Reload now; True when the new certificate and keys are in use."""
        from ccc_gateway.app import reload_keys

        log.info("SIGHUP: reloading the certificate and session keys from %s", self.path)
        try:
            config = load_config(self.path)
            if config.tls is None or self.listener.ssl_context is None:
                raise ConfigError(["tls: a certificate and key are required"], str(self.path))
            keys = [key.reveal() for key in config.session.keys]
            reload_certificate(self.listener.ssl_context, config.tls.cert, config.tls.key)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s: %s", exc.source, problem)
            log.error("reload failed: %d problem(s); still running as before", len(exc.problems))
            return False
        except TlsError as exc:
            log.error("reload: tls: %s", exc)
            log.error("reload failed: 1 problem(s); still running as before")
            return False
        reload_keys(self.app, keys)
        log.info(
            "reloaded the certificate and %d session key(s); other settings need a restart",
            len(keys),
        )
        return True


async def run_gateway(config_path: Path, config: Config, worker: int = 0) -> None:
    """Serve the gateway until SIGTERM/SIGINT, reloading on SIGHUP."""
    listeners = gateway_listeners(config, worker)
    reloader = Reloader(config_path, listeners[0].app, listeners[0])
    # Give the heap's freed memory back after bursts of connections (see memory.py).
    trimmer = asyncio.create_task(trim_periodically())

    def started() -> None:
        settle_after_start()
        log.info("ccc-gateway listening on %s (worker %d)", listeners[0].url, worker)

    try:
        await serve(
            listeners,
            shutdown_timeout=config.listen.shutdown_timeout,
            on_started=started,
            on_reload=reloader,
        )
    finally:
        trimmer.cancel()


def worker_command(config_path: Path, index: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ccc_gateway",
        "run",
        "--config",
        str(config_path),
        "--worker-index",
        str(index),
    ]


class Supervisor:
    """Keeps `count` worker processes running; see the module docstring."""

    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        count: int,
        shutdown_timeout: float,
    ) -> None:
        self.command = command
        self.count = count
        self.shutdown_timeout = shutdown_timeout
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.crashes: list[float] = []
        self.stopping = False
        self.reload_pending = False

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (then drain: 0 if every worker exited 0) or a crash loop."""
        handlers = {
            signal.SIGTERM: self._on_stop,
            signal.SIGINT: self._on_stop,
            signal.SIGHUP: self._on_hup,
        }
        previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
        try:
            for index in range(self.count):
                self._start(index)
            log.info("supervising %d workers", self.count)
            healthy = True
            while not self.stopping and healthy:
                time.sleep(POLL_INTERVAL)
                if self.reload_pending:
                    self.reload_pending = False
                    self._signal_all(signal.SIGHUP)
                healthy = self._restart_exited()
            code = self._stop_all()
            return code if healthy else 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_pending = True

    def _start(self, index: int) -> None:
        # Workers share the terminal's process group: a Ctrl-C reaches them too and drains
        # them exactly like the SIGTERM the supervisor then sends.
        self.workers[index] = subprocess.Popen(self.command(index))  # noqa: S603 - our own CLI

    def _restart_exited(self) -> bool:
        for index, process in list(self.workers.items()):
            code = process.poll()
            if code is None or self.stopping:
                continue
            log.warning("worker %d (pid %d) exited with %s; restarting", index, process.pid, code)
            now = time.monotonic()
            self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW] + [now]
            if len(self.crashes) >= CRASH_LIMIT:
                log.error("workers keep exiting (%d in %gs): giving up", CRASH_LIMIT, CRASH_WINDOW)
                return False
            time.sleep(RESTART_DELAY)
            self._start(index)
        return True

    def _signal_all(self, signum: int) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signum)

    def _stop_all(self) -> int:
        """SIGTERM every worker, wait for the drain, kill stragglers; 0 if all exited 0."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + KILL_GRACE
        result = 0
        for index, process in self.workers.items():
            try:
                code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in time: killing it", index)
                process.kill()
                code = process.wait()
            if code != 0:
                result = 1
        log.info("all workers stopped")
        return result


def supervise(config_path: Path, config: Config) -> int:
    """The supervisor's entry point for `listen.workers` > 1."""
    supervisor = Supervisor(
        lambda index: worker_command(config_path, index),
        config.listen.workers,
        config.listen.shutdown_timeout,
    )
    return supervisor.run()
