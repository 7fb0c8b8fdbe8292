"""A bounded soak: the whole system on loopback under mixed traffic for N minutes.

Not part of `make test`. It starts the Alibaba emulator (`ccc-gateway emulator`), the sample
CRM (`python -m sample_crm`) and the gateway itself as `ccc-gateway run --config FILE` — a
real subprocess, so its resident memory and open file descriptors can be read from /proc.
Then a fixed number of simulated agents (the concurrency bound) loop for the whole run: log in
to the CRM, sign in to Alibaba through the emulator's form, then mix CRM pages, static files,
softphone API calls, session checks and forced refreshes, and after a while sign out (revoke)
and start over as a new browser, so sign-ins keep happening too.

It reports, and `--write` puts into a Markdown file:
- every 5xx answer (the CRM and the emulator are healthy, so a 5xx is the gateway's own);
- the gateway's RSS growth from the end of the warm-up to the end of the run (target < 10 %);
- the gateway's open file descriptors over the run (target: flat, no steady climb).

Run: .venv/bin/python -m bench.soak --minutes 10 [--agents 8] [--write bench/SOAK.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
from cryptography.fernet import Fernet
from yarl import URL

from bench.procs import ProcessSet, free_port, raise_on_sigterm, rss_bytes, tree_pids, wait_port

SAMPLE_EVERY = 5.0  # seconds between RSS / fd samples
OPS_PER_BROWSER = 150  # requests before an agent signs out and starts as a new browser
CRM_USERS = (("edward", "1234"), ("sissi", "5678"))
AGENTS = (
    ("agent1@ccc-demo.onaliyun.com", "agent1-pass"),
    ("agent2@ccc-demo.onaliyun.com", "agent2-pass"),
)
API_ACTIONS = ("GetServiceExtensions", "ListSkillGroupsOfUser", "GetConfig", "RequestLoginInfo")
PAGES = ("/", "/customers", "/customer/phoneNumber/135012345678", "/customer/userName/Mr%20Lu")
STATIC = ("/static/crm.css", "/aliyun/softphone/widget.js", "/aliyun/softphone/softphone.css")
NAVIGATE = {"Accept": "text/html,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}


# The processes


@dataclass
class System:
    procs: ProcessSet
    workdir: Path
    gateway_pid: int
    gateway_url: URL
    emulator_url: URL
    cert: Path
    gateway_log: Path


def _python() -> str:
    return sys.executable


def start_system(workdir: Path) -> System:
    from ccc_gateway.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    from ccc_gateway.runtime.tls import ensure_self_signed

    tls_dir = workdir / "tls"
    cert, key = ensure_self_signed(tls_dir)  # the emulator's --data-dir reuses the same pair
    gw_port, crm_port, emu_port = free_port(), free_port(), free_port()
    gateway_url = URL(f"https://127.0.0.1:{gw_port}")
    emulator_url = URL(f"https://127.0.0.1:{emu_port}")
    procs = ProcessSet(workdir / "logs")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    emulator = procs.start(
        "emulator",
        [
            *(_python(), "-m", "ccc_gateway", "emulator", "--host", "127.0.0.1"),
            *("--port", str(emu_port), "--data-dir", str(tls_dir)),
            *("--redirect-uri", f"{gateway_url}/aliyun/auth/callback"),
        ],
        env=env,
    )
    crm = procs.start(
        "crm",
        [
            *(_python(), "-m", "sample_crm", "--host", "127.0.0.1", "--port", str(crm_port)),
            *("--db", str(workdir / "crm.sqlite3")),
        ],
        env=env,
    )
    base = str(emulator_url)
    config = {
        "listen": {"host": "127.0.0.1", "port": gw_port},
        "tls": {"cert": str(cert), "key": str(key)},
        "upstream": {"url": f"http://127.0.0.1:{crm_port}"},
        "aliyun": {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uri": f"{gateway_url}/aliyun/auth/callback",
            "authorize_url": f"{base}/oauth2/v1/auth",
            "token_url": f"{base}/v1/token",
            "revoke_url": f"{base}/v1/revoke",
            "userinfo_url": f"{base}/v1/userinfo",
            "jwks_url": f"{base}/v1/keys",
            "issuer": base,
            "ca_file": str(cert),
        },
        "ccc": {"instance_id": "ccc-demo-instance", "endpoint": f"{base}/"},
        "session": {"keys": [Fernet.generate_key().decode()]},
        "softphone": {"inject": True},
        "log": {"level": "INFO", "format": "text", "access_log": True},
    }
    config_path = workdir / "gateway.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    gateway = procs.start(
        "gateway", [_python(), "-m", "ccc_gateway", "run", "--config", str(config_path)], env=env
    )
    for port, proc in ((emu_port, emulator), (crm_port, crm), (gw_port, gateway)):
        wait_port(port, proc)
    return System(
        procs, workdir, gateway.pid, gateway_url, emulator_url, cert, workdir / "logs/gateway.log"
    )


def fd_count(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


# One simulated agent


class _Form(HTMLParser):
    """The first form's action and its named text/hidden inputs (CRM login, emulator sign-in)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        if tag == "input" and a.get("name") and a.get("type") in ("hidden", None, "text"):
            self.fields[a["name"] or ""] = a.get("value") or ""


def _form(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html)
    return parser.fields


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    client_failures: Counter[str] = field(default_factory=Counter)
    signins: int = 0
    requests: int = 0

    def note(self, kind: str, status: int, what: str) -> None:
        self.requests += 1
        self.statuses[(kind, status // 100 * 100)] += 1
        if status >= 500 and len(self.server_errors) < 50:
            self.server_errors.append(f"{status} {what}")


class Agent:
    def __init__(self, system: System, tally: Tally, rng: random.Random, n: int) -> None:
        self.system = system
        self.tally = tally
        self.rng = rng
        self.crm_user = CRM_USERS[n % 2]
        self.agent = AGENTS[n % 2]
        self.ssl = ssl.create_default_context(cafile=str(system.cert))

    def _client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=4),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    def url(self, path: str) -> URL:
        return self.system.gateway_url.join(URL(path))

    async def _get(self, client: aiohttp.ClientSession, kind: str, path: str, **kw: object) -> int:
        async with client.get(self.url(path), **kw) as response:  # type: ignore[arg-type]
            await response.read()
            self.tally.note(kind, response.status, f"GET {path}")
            return response.status

    async def _post(self, client: aiohttp.ClientSession, kind: str, path: str, **kw: object) -> int:
        headers = {
            "Origin": str(self.system.gateway_url),
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "cors",  # a fetch from the page, as the softphone makes it
            "Sec-Fetch-Dest": "empty",
        }
        async with client.post(self.url(path), headers=headers, **kw) as response:  # type: ignore[arg-type]
            await response.read()
            self.tally.note(kind, response.status, f"POST {path}")
            return response.status

    async def sign_in(self, client: aiohttp.ClientSession) -> None:
        async with client.get(self.url("/login")) as page:
            fields = _form(await page.text())
        fields.update(username=self.crm_user[0], password=self.crm_user[1])
        async with client.post(self.url("/login"), data=fields) as done:
            await done.read()
            self.tally.note("crm-login", done.status, "POST /login")
        async with client.get(self.url("/aliyun/auth"), allow_redirects=False) as start:
            self.tally.note("sign-in", start.status, "GET /aliyun/auth")
            authorize = URL(start.headers["Location"])
        async with client.get(authorize) as form_page:
            fields = _form(await form_page.text())
        fields.update(username=self.agent[0], password=self.agent[1], action="signin")
        emulator_form = self.system.emulator_url / "oauth2/v1/auth"
        async with client.post(emulator_form, data=fields, allow_redirects=False) as answer:
            callback = URL(answer.headers["Location"])
        async with client.get(callback, allow_redirects=False) as finished:
            await finished.read()
            self.tally.note("sign-in", finished.status, "GET /aliyun/auth/callback")
        self.tally.signins += 1

    async def one_op(self, client: aiohttp.ClientSession) -> None:
        roll = self.rng.random()
        if roll < 0.40:
            await self._get(client, "page", self.rng.choice(PAGES), headers=NAVIGATE)
        elif roll < 0.55:
            await self._get(client, "static", self.rng.choice(STATIC))
        elif roll < 0.85:
            action = self.rng.choice(API_ACTIONS)
            request = {"name": "AutoAnswer"} if action == "GetConfig" else {}
            await self._post(
                client,
                "api",
                "/aliyun/ccc/api",
                params={"action": action},
                data={"request": json.dumps(request)},
            )
        elif roll < 0.95:
            await self._get(client, "session", "/aliyun/session")
        else:
            await self._post(client, "refresh", "/aliyun/refresh")

    async def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            async with self._client() as client:
                try:
                    await self.sign_in(client)
                    for _ in range(OPS_PER_BROWSER):
                        if time.monotonic() >= deadline:
                            break
                        await self.one_op(client)
                    await self._post(client, "revoke", "/aliyun/revoke")
                except (aiohttp.ClientError, TimeoutError, KeyError) as exc:
                    # A dropped connection or a missing redirect: counted, and a fresh browser.
                    self.tally.client_failures[type(exc).__name__] += 1
                    await asyncio.sleep(0.5)


# Sampling and the report


@dataclass
class Sample:
    at: float
    rss: int
    fds: int


async def sample_loop(pid: int, samples: list[Sample], started: float, deadline: float) -> None:
    while True:
        pids = tree_pids(pid)
        samples.append(Sample(time.monotonic() - started, rss_bytes(pids), fd_count(pids)))
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(SAMPLE_EVERY, max(0.0, deadline - time.monotonic())))


def _median_rss(samples: list[Sample]) -> float:
    return statistics.median(s.rss for s in samples)


def summarise(
    samples: list[Sample], warmup: float, tally: Tally, minutes: float
) -> dict[str, object]:
    after = [s for s in samples if s.at >= warmup] or samples[-3:]
    start_rss = _median_rss(after[:3])
    end_rss = _median_rss(after[-3:])
    growth = (end_rss - start_rss) / start_rss * 100
    fds = [s.fds for s in after]
    five_xx = sum(n for (kind, cls), n in tally.statuses.items() if cls == 500)
    return {
        "minutes": minutes,
        "requests": tally.requests,
        "signins": tally.signins,
        "five_xx": five_xx,
        "rss_start_mib": start_rss / 2**20,
        "rss_end_mib": end_rss / 2**20,
        "rss_peak_mib": max(s.rss for s in samples) / 2**20,
        "rss_growth_pct": growth,
        "fd_start": fds[0],
        "fd_end": fds[-1],
        "fd_min": min(fds),
        "fd_max": max(fds),
        "client_failures": dict(tally.client_failures),
        "statuses": {
            f"{k} {c}xx".replace("00xx", "xx"): n for (k, c), n in sorted(tally.statuses.items())
        },
        "server_errors": tally.server_errors,
    }


def verdict(summary: dict[str, object], fd_slack: int) -> list[str]:
    problems = []
    if summary["five_xx"]:
        problems.append(f"{summary['five_xx']} answers with a 5xx status")
    if float(summary["rss_growth_pct"]) >= 10:  # type: ignore[arg-type]
        problems.append(f"RSS grew {summary['rss_growth_pct']:.1f} % after the warm-up")
    if int(summary["fd_end"]) - int(summary["fd_start"]) > fd_slack:  # type: ignore[call-overload]
        problems.append(f"file descriptors climbed {summary['fd_start']} → {summary['fd_end']}")
    return problems


def markdown(summary: dict[str, object], problems: list[str], args: argparse.Namespace) -> str:
    statuses = summary["statuses"]
    assert isinstance(statuses, dict)
    day = time.strftime("%Y-%m-%d")
    rows = "\n".join(f"| {k} | {v} |" for k, v in statuses.items())
    rss = (
        f"{summary['rss_start_mib']:.1f} MiB → {summary['rss_end_mib']:.1f} MiB"
        f" ({summary['rss_growth_pct']:+.1f} %)"
    )
    fds = f"{summary['fd_start']} → {summary['fd_end']} ({summary['fd_min']}–{summary['fd_max']})"
    return f"""# Soak run

`python -m bench.soak --minutes {args.minutes:g} --agents {args.agents}` on {day},
loopback, one gateway process (`ccc-gateway run`), sample CRM and Alibaba emulator as
subprocesses. {args.agents} simulated agents loop: CRM login → Alibaba sign-in → {OPS_PER_BROWSER}
mixed requests (40 % CRM pages, 15 % static files, 30 % softphone API calls, 10 % session
checks, 5 % forced refreshes) → revoke → a new browser. Warm-up: first {args.warmup:g} s.

| figure | value |
|---|---|
| duration | {summary["minutes"]:g} min |
| requests through the gateway | {summary["requests"]} |
| Alibaba sign-ins | {summary["signins"]} |
| 5xx answers | {summary["five_xx"]} |
| RSS after warm-up → end | {rss} |
| RSS peak | {summary["rss_peak_mib"]:.1f} MiB |
| open fds after warm-up → end (min–max) | {fds} |
| client-side failures | {summary["client_failures"] or "none"} |

Verdict: {"PASS" if not problems else "FAIL: " + "; ".join(problems)} (targets: zero 5xx, RSS
growth < 10 % after warm-up, fd count flat within ±{args.agents * 2 + 10}).

| requests by kind and status class | count |
|---|---|
{rows}
"""


async def soak(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ccc-soak-") as tmp:
        system = start_system(Path(tmp))
        try:
            tally = Tally()
            samples: list[Sample] = []
            started = time.monotonic()
            deadline = started + args.minutes * 60
            rng = random.Random(args.seed)
            agents = [
                Agent(system, tally, random.Random(rng.random()), n) for n in range(args.agents)
            ]
            await asyncio.gather(
                sample_loop(system.gateway_pid, samples, started, deadline),
                *(agent.run(deadline) for agent in agents),
            )
            log_text = system.gateway_log.read_text(errors="replace")
            tracebacks = log_text.count("Traceback")
            first = log_text.find("Traceback")
            if first >= 0:  # the first one, for the report: the rest are usually the same
                print(log_text[max(0, first - 300) : first + 3000], file=sys.stderr)
        finally:
            system.procs.close()
    summary = summarise(samples, args.warmup, tally, args.minutes)
    problems = verdict(summary, args.agents * 2 + 10)
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the gateway log")
    report = markdown(summary, problems, args)
    print(report)
    if summary["server_errors"]:
        print("5xx answers:", *summary["server_errors"], sep="\n  ")  # type: ignore[misc]
    if args.write:
        Path(args.write).write_text(report)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (10)")
    parser.add_argument("--agents", type=int, default=8, help="concurrent simulated agents (8)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds (20 %% of the run, ≥ 30)"
    )
    parser.add_argument("--seed", type=int, default=1, help="traffic mix seed (1)")
    parser.add_argument("--write", metavar="FILE", help="also write the Markdown report here")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = max(30.0, args.minutes * 60 * 0.2)
    raise_on_sigterm()
    try:
        return asyncio.run(soak(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
