"""Several worker processes on one port: supervision, restarts, per-worker metrics, exit 0."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_serve import WAIT, healthy, start_gateway, stop, wait_until, write_config

from ccc_gateway.runtime import workers as workers
from ccc_gateway.runtime.workers import Supervisor


def consecutive_free_ports(count: int) -> int:
    """A port P such that P … P+count-1 are free now (worker i's metrics use P+i)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", first + offset))
            return int(first)
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no run of free ports found")


def worker_pid(metrics_port: int) -> tuple[str, str] | None:
    """(worker index, pid) from a worker's private metrics listener, None while it is down."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=5)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
        connection.close()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ccc_gateway_worker_info":
                return sample.labels["worker"], sample.labels["pid"]
    return None


def test_workers_share_the_port_restart_and_drain(tmp_path: Path, unused_tcp_port_factory):
    """Two workers serve one port; a killed worker is replaced; SIGTERM ends with exit 0."""
    port, metrics_port = unused_tcp_port_factory(), consecutive_free_ports(2)
    config = write_config(
        tmp_path, port=port, workers=2, metrics_port=metrics_port, shutdown_timeout="5s"
    )
    process = start_gateway(config, tmp_path / "gateway.log")
    try:
        wait_until(lambda: healthy(port, process), "gateway up")
        found: dict[int, tuple[str, str] | None] = {}

        def both_up() -> bool:
            for index in (0, 1):
                found[index] = worker_pid(metrics_port + index)
            return all(found.values())

        wait_until(both_up, "both workers up")
        assert found[0] is not None and found[1] is not None
        assert found[0][0] == "0" and found[1][0] == "1"
        first_pid = found[0][1]
        assert first_pid != found[1][1]
        os.kill(int(first_pid), signal.SIGKILL)

        def replaced() -> bool:
            current = worker_pid(metrics_port)
            return current is not None and current[1] != first_pid

        wait_until(replaced, "worker 0 restarted")
        wait_until(lambda: healthy(port, process), "serving after the restart")
        process.send_signal(signal.SIGHUP)  # forwarded; the workers reload and keep serving
        wait_until(
            lambda: (tmp_path / "gateway.log").read_text().count("reloaded the certificate") == 2,
            "both workers reloaded",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT) == 0
    finally:
        stop(process)
    log = (tmp_path / "gateway.log").read_text()
    assert "worker 0" in log and "restarting" in log
    assert "all workers stopped" in log


def test_supervisor_gives_up_on_a_crash_loop(monkeypatch: pytest.MonkeyPatch):
    """Workers that keep dying make the supervisor stop with exit 1 instead of looping."""
    monkeypatch.setattr(workers, "RESTART_DELAY", 0.01)
    monkeypatch.setattr(workers, "POLL_INTERVAL", 0.01)
    supervisor = Supervisor(lambda index: [sys.executable, "-c", "raise SystemExit(3)"], 2, 1.0)
    before = signal.getsignal(signal.SIGTERM)
    assert supervisor.run() == 1
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored for the caller
