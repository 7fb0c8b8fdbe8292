"""The processes of one benchmark run on loopback: upstream nginx, baseline nginx proxy,
fake POP endpoint and gateways, each started, awaited and stopped through one ProcessSet.
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import apache, nginx
from bench.fixtures import PAGE_PATH, Session, gateway_yaml, signed_in_session, write_site
from bench.procs import ProcessSet, free_port, rss_bytes, tree_pids, wait_port

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    port: int
    pid: int
    scheme: str = "https"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def processes(self) -> int:
        return len(tree_pids(self.pid))

    def rss(self) -> int:
        return rss_bytes(tree_pids(self.pid))


@dataclass
class Stack:
    workdir: Path
    procs: ProcessSet
    cert: Path
    key: Path
    session: Session = field(default_factory=signed_in_session)
    upstream: Server | None = None
    pop: Server | None = None
    emulator: Server | None = None

    @classmethod
    def create(cls, workdir: Path) -> Stack:
        from ccc_gateway.runtime.tls import ensure_self_signed

        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)
        cert, key = ensure_self_signed(workdir / "tls")
        (workdir / "tls").chmod(0o755)
        key.chmod(0o644)  # nginx's master reads it as root; loopback-only throwaway key
        return cls(workdir, ProcessSet(workdir / "logs"), cert, key)

    def start_upstream(self) -> Server:
        port = free_port()
        root = write_site(self.workdir / "site")
        conf = nginx.upstream_conf(self.workdir / "nginx-upstream", port=port, root=root)
        proc = self.procs.start("nginx-upstream", nginx.argv(conf))
        wait_port(port, proc)
        self.upstream = Server("upstream nginx", port, proc.pid, "http")
        return self.upstream

    def start_nginx_proxy(self, workers: int) -> Server:
        assert self.upstream is not None
        port = free_port()
        conf = nginx.proxy_conf(
            self.workdir / f"nginx-proxy-{workers}",
            port=port,
            upstream_port=self.upstream.port,
            cert=self.cert,
            key=self.key,
            workers=workers,
        )
        proc = self.procs.start(f"nginx-proxy-{workers}", nginx.argv(conf))
        wait_port(port, proc)
        return Server(f"nginx proxy ×{workers}", port, proc.pid)

    def start_pop(self) -> Server:
        port = free_port()
        proc = self.procs.start(
            "popfake", [sys.executable, "-m", "bench.popfake", "--port", str(port)], env=env()
        )
        wait_port(port, proc)
        self.pop = Server("fake POP", port, proc.pid, "http")
        return self.pop

    def start_floor(self) -> Server:
        """The bare aiohttp relay of bench/floor.py, on the same upstream and fake POP."""
        assert self.upstream is not None and self.pop is not None
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "bench.floor",
            *("--port", str(port), "--cert", str(self.cert), "--key", str(self.key)),
            *("--upstream-port", str(self.upstream.port), "--pop-port", str(self.pop.port)),
        ]
        proc = self.procs.start("floor", argv, env=env())
        wait_port(port, proc, timeout=30)
        return Server("bare aiohttp relay (floor)", port, proc.pid)

    def start_emulator(self, redirect_uris: tuple[str, ...]) -> Server:
        """`ccc-gateway emulator` with the bench's certificate (its --data-dir is the bench's
        tls/ directory, whose tls.crt/tls.key it reuses) and the given redirect URIs."""
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "ccc_gateway",
            "emulator",
            *("--port", str(port), "--data-dir", str(self.cert.parent)),
            *(arg for uri in redirect_uris for arg in ("--redirect-uri", uri)),
        ]
        proc = self.procs.start(f"emulator-{port}", argv, env=env())
        wait_port(port, proc, timeout=30)
        self.emulator = Server("Alibaba emulator", port, proc.pid)
        return self.emulator

    def start_apache(self) -> tuple[Server, str]:
        """Apache httpd + mod_auth_openidc (bench/apache.py) against a fresh emulator, and the
        Cookie header of a browser that signed in to it through the emulator's form."""
        from ccc_gateway.emulator.settings import DEMO_AGENTS, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

        assert self.upstream is not None
        port = free_port()
        emulator = self.start_emulator((f"https://127.0.0.1:{port}{apache.REDIRECT_PATH}",))
        conf = apache.conf(
            self.workdir / f"apache-{port}",
            port=port,
            upstream_port=self.upstream.port,
            cert=self.cert,
            key=self.key,
            issuer=emulator.url(""),
            ca=self.cert,  # the emulator serves the bench's self-signed certificate
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
        )
        proc = self.procs.start(f"apache-{port}", apache.argv(conf))
        wait_port(port, proc, timeout=30)
        server = Server("Apache + mod_auth_openidc", port, proc.pid)
        agent = DEMO_AGENTS[0]
        cookie = apache.signed_in_cookie(
            server.url(PAGE_PATH), self.cert, agent.upn, agent.password
        )
        return server, cookie

    def gateway_config(self, label: str, port: int, workers: int = 1) -> Path:
        assert self.upstream is not None and self.pop is not None
        return gateway_yaml(
            self.workdir / f"{label}-{port}.yaml",
            port=port,
            upstream_port=self.upstream.port,
            pop_port=self.pop.port,
            cert=self.cert,
            key=self.key,
            session_key=self.session.key,
            workers=workers,
        )

    def gateway_argv(self, workers: int = 1, flags: tuple[str, ...] = ()) -> tuple[int, list[str]]:
        """A free port and the command that runs the gateway on it with the bench's config."""
        port = free_port()
        label = "-".join(("gateway", str(workers), *(f.lstrip("-") for f in flags)))
        config = self.gateway_config(label, port, workers)
        return port, [sys.executable, "-m", "bench.gateway_proc", "--config", str(config), *flags]

    def start_tree_gateway(self, name: str, tree: Path) -> Server:
        """`python -m ccc_gateway run --config …` from the source tree `tree` (its directory
        the working directory and the only PYTHONPATH entry, so no other tree's modules are
        imported), with the bench's config. `check-config` with that tree first: a config key
        it does not know fails here, with its own message."""
        port = free_port()
        config = self.gateway_config(f"tree-{name}", port)
        tree_env = env(tree)
        run = [sys.executable, "-m", "ccc_gateway"]
        check = subprocess.run(
            [*run, "check-config", str(config)],
            cwd=tree,
            env=tree_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(
                f"the {name} tree ({tree}) refuses the bench's config: "
                f"{(check.stderr or check.stdout).strip()}"
            )
        proc = self.procs.start(
            f"gateway-{name}-{port}", [*run, "run", "--config", str(config)], env=tree_env, cwd=tree
        )
        wait_port(port, proc, timeout=30)
        return Server(f"gateway ({name})", port, proc.pid)

    def start_gateway(self, workers: int = 1, flags: tuple[str, ...] = ()) -> Server:
        port, argv = self.gateway_argv(workers, flags)
        proc = self.procs.start(f"gateway-{port}", argv, env=env())
        wait_port(port, proc, timeout=30)
        time.sleep(0.5)  # let any worker processes finish starting before RSS is read
        name = "gateway" + (f" ×{workers}" if workers > 1 else "") + "".join(f" {f}" for f in flags)
        return Server(name, port, proc.pid)

    def stop(self, server: Server) -> None:
        for proc in list(self.procs.procs):
            if proc.pid == server.pid:
                self.procs.stop(proc)

    def close(self) -> None:
        self.procs.close()


def env(tree: Path | None = None) -> dict[str, str]:
    """The environment of the processes started: PYTHONPATH with this repository first, or
    with `tree` alone (a gateway from another source tree must not import this one's)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def fetch(server: Server, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET, for checking that a scenario's request does what it should before loading it."""
    if server.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", server.port, context=context, timeout=10
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.getheader("Content-Encoding"):
            body = b""  # only the identity answers are inspected
        return response.status, body
    finally:
        conn.close()
