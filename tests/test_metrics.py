"""Prometheus metrics (per-app registry, request classes, event counters) and readiness."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from stack import AGENT1, Browser, Stack

from ccc_gateway.app import create_app
from ccc_gateway.config.load import parse_config
from ccc_gateway.keys import METRICS
from ccc_gateway.ops.metrics import Metrics, metrics_app, route_class
from ccc_gateway.runtime.tls import ensure_self_signed

MakeStack = Callable[..., Awaitable[Stack]]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(browser: Browser) -> str:
    async with await browser.get("/aliyun/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return await response.text()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "page"),
        ("/customer/1", "page"),
        ("/aliyunx", "page"),
        ("/aliyun/ccc/api", "api"),
        ("/aliyun/auth", "auth"),
        ("/aliyun/auth/callback", "auth"),
        ("/aliyun/refresh", "auth"),
        ("/aliyun/revoke", "auth"),
        ("/aliyun/session", "auth"),
        ("/aliyun/softphone", "softphone"),
        ("/aliyun/softphone/widget.js", "softphone"),
        ("/aliyun/healthz", "ops"),
        ("/aliyun/readyz", "ops"),
        ("/aliyun/metrics", "ops"),
        ("/aliyun/nope", "other"),
    ],
)
def test_route_class(path, expected):
    """Each path falls into one bounded route class."""
    assert route_class(path) == expected


async def test_requests_are_counted_by_route_class_and_status(stack: Stack, browser: Browser):
    """Pages, ops and unknown gateway paths are counted with their status and latency."""
    async with await browser.get("/login") as response:
        assert response.status == 200
    async with await browser.get("/aliyun/healthz") as response:
        assert response.status == 200
    async with await browser.get("/aliyun/nope") as response:
        assert response.status == 404
    text = await scrape(browser)
    total = "ccc_gateway_requests_total"
    assert value(text, total, route="page", method="GET", status="200") == 1
    assert value(text, total, route="ops", method="GET", status="200") == 1
    assert value(text, total, route="other", method="GET", status="404") == 1
    count = "ccc_gateway_request_duration_seconds_count"
    assert value(text, count, route="page") == 1
    # The scrape itself is the one request in flight while the exposition is written.
    assert value(text, "ccc_gateway_requests_in_flight") == 1


async def test_each_app_has_its_own_registry(make_stack: MakeStack):
    """Two apps in one process never share counters (no global registry)."""
    first, second = await make_stack(), await make_stack()
    one, two = first.browser(), second.browser()
    try:
        for _ in range(3):
            async with await one.get("/aliyun/healthz"):
                pass
        text = await scrape(two)
    finally:
        await one.close()
        await two.close()
    assert value(text, "ccc_gateway_requests_total", route="ops", method="GET", status="200") == 0
    assert first.app[METRICS].registry is not second.app[METRICS].registry


async def test_crm_failures_are_counted(stack: Stack, browser: Browser):
    """A page the CRM cannot answer (CRM down) counts as a 502 CRM error."""
    await stack.crm.close()
    async with await browser.get("/customers") as response:
        assert response.status == 502
    text = await scrape(browser)
    assert value(text, "ccc_gateway_crm_errors_total", status="502") == 1
    assert value(text, "ccc_gateway_requests_total", route="page", method="GET", status="502") == 1


async def test_signin_refresh_revoke_and_pop_calls_are_counted(stack: Stack, browser: Browser):
    """Sign-in, on-demand refresh, an API call and revocation each move their counter."""
    await browser.login_crm()
    answer = await browser.sign_in(AGENT1)
    assert answer.status == 303
    async with await browser.post("/aliyun/refresh") as response:
        assert response.status == 200
    data = {"request": json.dumps({})}
    async with await browser.post(
        "/aliyun/ccc/api", params={"action": "GetServiceExtensions"}, data=data
    ) as response:
        assert response.status == 200, await response.text()
    async with await browser.post("/aliyun/revoke") as response:
        assert (await response.json())["revoked"] is True
    text = await scrape(browser)
    assert value(text, "ccc_gateway_signins_total", outcome="ok") == 1
    assert value(text, "ccc_gateway_token_refreshes_total", outcome="ok") == 1
    assert value(text, "ccc_gateway_revocations_total", outcome="ok") == 1
    pop = "ccc_gateway_pop_calls_total"
    assert value(text, pop, action="GetServiceExtensions", outcome="ok") == 1
    latency = "ccc_gateway_pop_call_duration_seconds_count"
    assert value(text, latency, action="GetServiceExtensions") == 1


async def test_a_replayed_callback_counts_as_invalid_state(stack: Stack, browser: Browser):
    """A callback whose state is unknown is counted, so key mismatches between replicas show."""
    async with await browser.get("/aliyun/auth/callback?state=forged&code=x") as response:
        assert response.status == 400
    text = await scrape(browser)
    assert value(text, "ccc_gateway_signins_total", outcome="invalid_state") == 1


def test_pop_action_labels_stay_bounded():
    """An action outside the known list is labelled `other` (the browser names actions)."""
    metrics = Metrics(known_actions=frozenset({"GetUser"}))
    assert metrics.action_label("GetUser") == "GetUser"
    assert metrics.action_label("Anything" * 10) == "other"


def test_worker_info_names_the_worker():
    """The worker index set by the supervisor appears in ccc_gateway_worker_info."""
    metrics = Metrics(known_actions=frozenset())
    metrics.set_worker(3)
    text = metrics.exposition().decode()
    assert any(
        name == "ccc_gateway_worker_info" and ("worker", "3") in labels
        for (name, labels) in samples(text)
    )


def test_metrics_port_is_a_listen_key(tmp_path):
    """listen.metrics_port / metrics_host parse; the host defaults to loopback."""
    cert, key = ensure_self_signed(tmp_path)
    data = {
        "listen": {"metrics_port": 9100},
        "tls": {"cert": str(cert), "key": str(key)},
        "aliyun": {
            "client_id": "a",
            "client_secret": "b",
            "redirect_uri": "https://h/aliyun/auth/callback",
        },
        "ccc": {"instance_id": "i"},
        "session": {"keys": [Fernet.generate_key().decode()]},
    }
    config = parse_config(yaml.safe_dump(data), {})
    assert config.listen.metrics_port == 9100
    assert config.listen.metrics_host == "127.0.0.1"


async def test_private_metrics_listener_moves_the_route(stack: Stack):
    """With listen.metrics_port the main port answers 404 and the metrics app serves them."""
    listen = dataclasses.replace(stack.config.listen, metrics_port=9100)
    app = create_app(dataclasses.replace(stack.config, listen=listen))
    private = metrics_app(app[METRICS])
    async with TestClient(TestServer(app)) as main, TestClient(TestServer(private)) as side:
        async with main.get("/aliyun/healthz") as response:
            assert response.status == 200
        async with main.get("/aliyun/metrics") as response:
            assert response.status == 404
        for path in ("/metrics", "/aliyun/metrics"):
            async with side.get(path) as response:
                text = await response.text()
                assert (
                    value(
                        text, "ccc_gateway_requests_total", route="ops", method="GET", status="200"
                    )
                    == 1
                )


async def test_readyz_names_the_failing_crm(stack: Stack, browser: Browser):
    """With the CRM down /aliyun/readyz answers 503 and names the crm check."""
    await stack.crm.close()
    async with await browser.get("/aliyun/readyz") as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["crm"].startswith("unreachable")
    assert body["checks"]["jwks"] == "ok"


async def test_readyz_names_the_failing_jwks(make_stack: MakeStack):
    """With Alibaba's JWKS unreachable /aliyun/readyz answers 503 and names the jwks check."""
    stack = await make_stack()
    await stack.emulator.close()
    async with aiohttp.ClientSession() as client:
        async with client.get(stack.url / "aliyun/readyz", ssl=False) as response:
            body = await response.json()
            assert response.status == 503
    assert body["checks"]["crm"] == "ok"
    assert body["checks"]["jwks"].startswith("cannot load JWKS")


def test_pop_series_expose_what_prometheus_client_would(monkeypatch: pytest.MonkeyPatch):
    """The POP series, plain numbers, are written byte for byte as a labelled Counter and
    Histogram of prometheus_client would write the same calls (bounds, +Inf, created)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from ccc_gateway.ops.metrics import POP_BUCKETS

    clock = iter(range(1_700_000_000, 1_700_001_000))
    monkeypatch.setattr("time.time", lambda: float(next(clock)) + 0.25)
    calls = [
        ("GetUser", "ok", 0.012),
        ("ListSkillGroupsOfUser", "ok", 0.1),  # exactly on a bound: "le" counts it
        ("GetUser", "error", 3.0),
        ("Anything", "timeout", 10.0),
        ("GetUser", "ok", 11.5),  # past the last bound: +Inf only
        ("ListSkillGroupsOfUser", "unavailable", 0.0),
    ]
    reference = CollectorRegistry()
    counter = Counter(
        "ccc_gateway_pop_calls",
        "CCC OpenAPI calls, by action and outcome.",
        ["action", "outcome"],
        registry=reference,
    )
    histogram = Histogram(
        "ccc_gateway_pop_call_duration_seconds",
        "CCC OpenAPI call latency, by action.",
        ["action"],
        buckets=POP_BUCKETS,
        registry=reference,
    )
    metrics = Metrics(known_actions=frozenset({"GetUser", "ListSkillGroupsOfUser"}))
    for action, outcome, seconds in calls:
        label = metrics.action_label(action)
        counter.labels(action=label, outcome=outcome).inc()
        histogram.labels(action=label).observe(seconds)
    clock = iter(range(1_700_000_000, 1_700_001_000))  # the same creation times again
    for action, outcome, seconds in calls:
        metrics.observe_pop_call(action, outcome, seconds)

    def pop_lines(text: bytes) -> list[bytes]:
        return [line for line in text.splitlines() if b"ccc_gateway_pop_" in line]

    expected = pop_lines(generate_latest(reference))
    assert len(expected) > 40
    assert pop_lines(metrics.exposition()) == expected
