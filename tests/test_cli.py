"""The `ccc-gateway` command: help, keygen, check-config, and operator errors without tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from ccc_gateway.runtime.tls import ensure_self_signed

COMMANDS = ["demo", "run", "check-config", "keygen", "emulator"]


def ccc(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccc_gateway", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def write_config(
    directory: Path, *, port: int = 8443, cert: Path | None = None, key: Path | None = None
) -> Path:
    if cert is None or key is None:
        cert, key = ensure_self_signed(directory / "tls")
    path = directory / "gateway.yaml"
    path.write_text(f"""
listen: {{host: 127.0.0.1, port: {port}}}
tls: {{cert: "{cert}", key: "{key}"}}
aliyun: {{client_id: "1", client_secret: "${{SECRET}}", redirect_uri: "https://127.0.0.1:{port}/aliyun/auth/callback"}}
ccc: {{instance_id: i}}
session: {{keys: ["{Fernet.generate_key().decode()}"]}}
""")
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    """Each subcommand explains itself with --help and exits 0."""
    result = ccc(command, "--help")
    assert result.returncode == 0
    assert f"ccc-gateway {command}" in result.stdout


def test_keygen_prints_a_usable_session_key():
    """keygen prints a fresh Fernet key each time."""
    first, second = ccc("keygen").stdout.strip(), ccc("keygen").stdout.strip()
    assert first != second
    Fernet(first.encode())


def test_check_config_valid_and_invalid(tmp_path):
    """check-config exits 0 for a valid file and 2 listing every problem otherwise."""
    path = write_config(tmp_path)
    ok = ccc("check-config", str(path), env={"SECRET": "s"})
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout
    bad = ccc("check-config", str(path), env={"SECRET": ""})
    assert bad.returncode == 2
    assert "aliyun.client_secret: environment variable SECRET is not set" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_check_config_reports_a_mismatched_certificate(tmp_path):
    """A key that does not belong to the certificate fails check-config with a clear line."""
    cert, _ = ensure_self_signed(tmp_path / "a")
    _, key = ensure_self_signed(tmp_path / "b")
    result = ccc(
        "check-config", str(write_config(tmp_path, cert=cert, key=key)), env={"SECRET": "s"}
    )
    assert result.returncode == 2
    assert "does not belong to the certificate" in result.stderr


def test_missing_config_file_is_one_line(tmp_path):
    """run and check-config name a missing file without a traceback."""
    for args in (
        ["run", "--config", str(tmp_path / "none.yaml")],
        ["check-config", str(tmp_path / "none.yaml")],
    ):
        result = ccc(*args)
        assert result.returncode == 2
        assert "none.yaml" in result.stderr and "file not found" in result.stderr
        assert "Traceback" not in result.stderr


def test_busy_port_is_explained(tmp_path):
    """run on a port that is taken says which port and what to do, and exits 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = ccc("run", "--config", str(write_config(tmp_path, port=port)), env={"SECRET": "s"})
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_demo_runs_the_whole_system_and_stops_cleanly(tmp_path):
    """`demo` serves gateway, CRM and emulator, logs a CRM user in through it, stops on SIGTERM."""
    import asyncio
    import signal

    import aiohttp

    ports = [free_port() for _ in range(3)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccc_gateway",
        "demo",
        "--port",
        str(ports[0]),
        "--crm-port",
        str(ports[1]),
        "--emulator-port",
        str(ports[2]),
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = ""
        while "Press Ctrl-C" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "demo exited early"
            banner += line.decode()
        assert f"https://127.0.0.1:{ports[0]}/" in banner and "edward / 1234" in banner
        assert (tmp_path / "data" / "tls.crt").is_file()
        assert (tmp_path / "data" / "session.key").stat().st_mode & 0o077 == 0
        base = f"https://127.0.0.1:{ports[0]}"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(
            cookie_jar=jar, connector=aiohttp.TCPConnector(ssl=False)
        ) as client:
            async with client.get(f"{base}/aliyun/readyz") as ready:
                assert ready.status == 200, await ready.text()
            async with client.get(f"{base}/login") as page:
                html = await page.text()
            token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            form = {
                "username": "edward",
                "password": "1234",
                "csrf_token": token,
                "next": "/customers",
            }
            async with client.post(f"{base}/login", data=form) as logged_in:
                assert logged_in.status == 200
                assert "135012345678" in await logged_in.text()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
        await process.communicate()
    assert code == 0
