"""Serving: SIGTERM drains in-flight requests; SIGHUP reloads the certificate and session keys."""

from __future__ import annotations

import asyncio
import http.client
import logging
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from stack import AGENT1, Stack

from ccc_gateway.runtime.serve import Listener
from ccc_gateway.runtime.tls import ensure_self_signed, server_context
from ccc_gateway.runtime.workers import Reloader

MakeStack = Callable[..., Awaitable[Stack]]
WAIT = 20.0  # upper bound of every wait for a process to come up or change state


def config_data(
    tmp_path: Path, *, port: int, crm_port: int = 9, keys: list[str] | None = None, **listen: Any
) -> dict[str, Any]:
    cert, key = ensure_self_signed(tmp_path / "tls")
    return {
        "listen": {"host": "127.0.0.1", "port": port, **listen},
        "tls": {"cert": str(cert), "key": str(key)},
        "upstream": {"url": f"http://127.0.0.1:{crm_port}", "whoami_path": None},
        "aliyun": {
            "client_id": "client",
            "client_secret": "secret",
            "redirect_uri": f"https://127.0.0.1:{port}/aliyun/auth/callback",
        },
        "ccc": {"instance_id": "ccc-demo-instance"},
        "session": {"keys": keys or [Fernet.generate_key().decode()]},
        "log": {"level": "INFO"},
    }


def write_config(tmp_path: Path, **kwargs: Any) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config_data(tmp_path, **kwargs)))
    return path


def start_gateway(config: Path, log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ccc_gateway", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=WAIT)


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def healthy(port: int, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the gateway exited"
    try:
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=insecure(), timeout=5)
        connection.request("GET", "/aliyun/healthz")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def peer_certificate(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with insecure().wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def certificate_der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_sigterm_drains_the_request_in_flight_and_refuses_new_ones(tmp_path, unused_tcp_port):
    """A slow request in flight at SIGTERM completes; a new connection is refused; exit 0."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.wait_for(release.wait(), WAIT)
        return web.Response(text="finished")

    crm_app = web.Application()
    crm_app.router.add_get("/slow", slow)
    async with TestServer(crm_app, host="127.0.0.1") as crm:
        config = write_config(tmp_path, port=unused_tcp_port, crm_port=crm.port)
        process = start_gateway(config, tmp_path / "gateway.log")
        try:
            await asyncio.to_thread(
                wait_until, lambda: healthy(unused_tcp_port, process), "gateway up"
            )
            async with aiohttp.ClientSession() as client:
                url = f"https://127.0.0.1:{unused_tcp_port}/slow"
                pending = asyncio.ensure_future(client.get(url, ssl=False))
                await asyncio.wait_for(arrived.wait(), WAIT)
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(
                    wait_until, lambda: refused(unused_tcp_port), "listener closed"
                )
                release.set()
                async with await asyncio.wait_for(pending, WAIT) as response:
                    assert response.status == 200
                    assert await response.text() == "finished"
            assert await asyncio.to_thread(process.wait, WAIT) == 0
        finally:
            stop(process)
    assert "draining in-flight requests" in (tmp_path / "gateway.log").read_text()


def test_sighup_reloads_the_certificate_for_new_connections(tmp_path, unused_tcp_port):
    """After SIGHUP a new connection sees the new certificate; an open keep-alive one works."""
    config = write_config(tmp_path, port=unused_tcp_port)
    cert, key = tmp_path / "tls" / "tls.crt", tmp_path / "tls" / "tls.key"
    process = start_gateway(config, tmp_path / "gateway.log")
    try:
        wait_until(lambda: healthy(unused_tcp_port, process), "gateway up")
        old = certificate_der(cert)
        assert peer_certificate(unused_tcp_port) == old
        kept = http.client.HTTPSConnection(
            "127.0.0.1", unused_tcp_port, context=insecure(), timeout=5
        )
        kept.request("GET", "/aliyun/healthz")
        assert kept.getresponse().read()
        new_cert, new_key = ensure_self_signed(tmp_path / "renewed")
        shutil.copyfile(new_key, key)
        shutil.copyfile(new_cert, cert)
        process.send_signal(signal.SIGHUP)
        new = certificate_der(new_cert)
        wait_until(lambda: peer_certificate(unused_tcp_port) == new, "new certificate served")
        kept.request("GET", "/aliyun/healthz")
        answer = kept.getresponse()
        assert answer.status == 200
        answer.read()
        assert kept.sock is not None
        assert kept.sock.getpeercert(binary_form=True) == old  # the same connection as before
        kept.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT) == 0
    finally:
        stop(process)
    assert "reloaded the certificate and 1 session key(s)" in (tmp_path / "gateway.log").read_text()


async def signed_in_browser(stack: Stack) -> Any:
    browser = stack.browser()
    await browser.login_crm()
    answer = await browser.sign_in(AGENT1)
    assert answer.status == 303
    return browser


def reloader_for(stack: Stack, path: Path) -> tuple[Reloader, ssl.SSLContext]:
    assert stack.config.tls is not None
    context = server_context(stack.config.tls.cert, stack.config.tls.key)
    listener = Listener("gateway", stack.app, "127.0.0.1", 0, context)
    return Reloader(path, stack.app, listener), context


def write_keys(path: Path, stack: Stack, keys: list[str]) -> None:
    data = config_data(path.parent, port=8443, keys=keys)
    assert stack.config.tls is not None
    data["tls"] = {"cert": str(stack.config.tls.cert), "key": str(stack.config.tls.key)}
    path.write_text(yaml.safe_dump(data))


async def test_reload_swaps_the_session_key_ring(make_stack: MakeStack, tmp_path):
    """Cookies sealed with a key still in the new ring open; a dropped key no longer does."""
    first, second, third = (Fernet.generate_key().decode() for _ in range(3))
    stack = await make_stack(session_keys=(first,))
    path = tmp_path / "reload.yaml"
    reloader, _ = reloader_for(stack, path)
    browser = await signed_in_browser(stack)
    try:
        write_keys(path, stack, [second, first])
        assert reloader()
        assert (await browser.session())["signedIn"] is True
        write_keys(path, stack, [third])
        assert reloader()
        assert (await browser.session())["signedIn"] is False
    finally:
        await browser.close()


async def test_broken_reload_keeps_everything_and_logs_every_problem(
    make_stack: MakeStack, tmp_path, caplog
):
    """A reload from a broken file changes nothing and logs each problem by key path."""
    stack = await make_stack()
    path = tmp_path / "broken.yaml"
    reloader, _ = reloader_for(stack, path)
    browser = await signed_in_browser(stack)
    try:
        data = config_data(tmp_path, port=8443)
        data["session"]["keys"] = ["not-a-key"]
        data["listen"]["colour"] = "blue"
        path.write_text(yaml.safe_dump(data))
        with caplog.at_level(logging.ERROR, logger="ccc_gateway"):
            assert reloader() is False
        messages = "\n".join(record.getMessage() for record in caplog.records)
        assert "session.keys: item 1: not a session key" in messages
        assert "listen.colour" in messages
        assert "still running as before" in messages
        assert (await browser.session())["signedIn"] is True
    finally:
        await browser.close()


async def test_reload_refuses_a_mismatched_certificate(make_stack: MakeStack, tmp_path, caplog):
    """A new certificate whose key does not match is refused; the old pair keeps serving."""
    stack = await make_stack()
    path = tmp_path / "mismatch.yaml"
    reloader, _ = reloader_for(stack, path)
    cert, _ = ensure_self_signed(tmp_path / "a")
    _, key = ensure_self_signed(tmp_path / "b")
    data = config_data(tmp_path, port=8443)
    data["tls"] = {"cert": str(cert), "key": str(key)}
    path.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.ERROR, logger="ccc_gateway"):
        assert reloader() is False
    assert any("does not belong to the certificate" in r.getMessage() for r in caplog.records)


def test_run_refuses_a_missing_config(tmp_path):
    """`run` with a missing file exits 2 without a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "ccc_gateway", "run", "--config", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr
