"""Prometheus metrics: one `CollectorRegistry` per application, never the global one.

A per-app registry keeps every app (tests create many in one process; a worker process has
exactly one) with its own counters. Requests, latency and in-flight requests are counted by
the request-context middleware (middleware.py) through `request_started`/`request_done`,
which class each request by route, so their labels stay bounded: `page` (proxied to the
CRM), `api`, `auth`, `softphone`, `ops`, and `other` for unknown `/aliyun/` paths. Those
per-request series are plain numbers turned into Prometheus samples at scrape time (see
`_CountedDurations`). Events inside handlers (sign-ins, refreshes, revocations, POP calls) are
counted where they happen through `record` and `count_pop`, each a no-op in an app built
without metrics, so the modules that call them never depend on this one being set up.

With several workers every process has its own registry; each serves its own numbers (see
README "Metrics with several workers"): the `ccc_gateway_worker_info` series tells them apart.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Literal

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ccc_gateway.http.errors import NotFound
from ccc_gateway.keys import METRICS
from ccc_gateway.ops.health import readiness_response, shows_details

Event = Literal["signin", "refresh", "revoke"]

NAMESPACE = "ccc_gateway"
# Requests span loopback health checks (ms) to streamed CRM downloads (minutes).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
POP_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CRM_FAILURES = frozenset({502, 504})  # the proxy's answers when the CRM fails or is too slow
OTHER_ACTION = "other"  # label for actions outside the known list (bounded cardinality)


class Metrics:
    """Every series the gateway exports, registered in a private registry."""

    def __init__(self, *, known_actions: frozenset[str], worker: int = 0) -> None:
        """`known_actions` label POP calls by name; any other is `other` (app.py passes the
        configured allow-list, or the workbench's actions when every action is allowed)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.known_actions = known_actions
        r = self.registry
        self.requests = _CountedDurations(
            r,
            (
                f"{NAMESPACE}_requests",
                "Requests answered, by route class and status.",
                ("route", "method", "status"),
            ),
            (
                f"{NAMESPACE}_request_duration_seconds",
                "Time to answer a request, including streaming the body, by route class.",
            ),
            REQUEST_BUCKETS,
        )
        self.in_flight = 0  # requests between request_started and request_done
        Gauge(
            f"{NAMESPACE}_requests_in_flight", "Requests being answered now.", registry=r
        ).set_function(lambda: self.in_flight)
        self.crm_errors = Counter(
            f"{NAMESPACE}_crm_errors",
            "Proxied requests the CRM failed (502) or answered too slowly (504).",
            ["status"],
            registry=r,
        )
        self.events = {
            event: Counter(f"{NAMESPACE}_{name}", help_text, ["outcome"], registry=r)
            for event, name, help_text in (
                ("signin", "signins", "Alibaba sign-ins finished at the callback, by outcome."),
                ("refresh", "token_refreshes", "Alibaba token refreshes, by outcome."),
                ("revoke", "revocations", "Sign-outs with revocation at Alibaba, by outcome."),
            )
        }
        self.pop = _CountedDurations(
            r,
            (
                f"{NAMESPACE}_pop_calls",
                "CCC OpenAPI calls, by action and outcome.",
                ("action", "outcome"),
            ),
            (f"{NAMESPACE}_pop_call_duration_seconds", "CCC OpenAPI call latency, by action."),
            POP_BUCKETS,
        )
        self.crm_events = Counter(
            f"{NAMESPACE}_crm_events",
            "Call events posted to the CRM, by outcome (delivered, retried, failed, dropped).",
            ["outcome"],
            registry=r,
        )
        self._worker_info = Gauge(
            f"{NAMESPACE}_worker_info",
            "Which worker process serves these numbers (always 1).",
            ["worker", "pid"],
            registry=r,
        )
        self.set_worker(worker)

    def set_worker(self, worker: int) -> None:
        """Name the worker process (index from the supervisor) these numbers belong to."""
        self._worker_info.clear()
        self._worker_info.labels(worker=str(worker), pid=str(os.getpid())).set(1)

    def request_started(self) -> None:
        self.in_flight += 1

    def request_done(self, path: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (`path` as routed, `status` as sent) and time it."""
        self.in_flight -= 1
        # A path outside /aliyun is a page without route_class's call (nearly every request).
        route = route_class(path) if path.startswith("/aliyun") else "page"
        self.requests.observe((route, method if method in _METHODS else "other", status), seconds)
        if status in CRM_FAILURES and route == "page":
            self.crm_errors.labels(status=str(status)).inc()

    def observe_pop_call(self, action: str, outcome: str, seconds: float) -> None:
        """Count one CCC OpenAPI call of `action` (any name: labelled through action_label)."""
        self.pop.observe((self.action_label(action), outcome), seconds)

    def action_label(self, action: str) -> str:
        # With allowed_actions "*" the action name comes from the browser: keep labels bounded.
        return action if action in self.known_actions else OTHER_ACTION

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def setup(app: web.Application, metrics: Metrics, *, serve_route: bool = True) -> None:
    """Keep `metrics` for `app`'s handlers; serve `/aliyun/metrics` unless a separate port does.

    Requests are counted by the request-context middleware given the same `metrics`.
    """
    app[METRICS] = metrics
    if serve_route:
        app.router.add_get("/aliyun/metrics", metrics_view)


async def metrics_view(request: web.Request) -> web.Response:
    # On the public port only for clients on this host, unless listen.public_metrics: a 404
    # as for any unknown gateway route, so the route does not even show it exists.
    if not shows_details(request):
        raise NotFound(f"No gateway route {request.method} {request.path}.")
    return exposition_response(request.app[METRICS])


def exposition_response(metrics: Metrics) -> web.Response:
    response = web.Response(body=metrics.exposition(), headers={"Cache-Control": "no-store"})
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def metrics_app(metrics: Metrics, gateway: web.Application | None = None) -> web.Application:
    """The private metrics listener (`listen.metrics_port`): the exposition and, given the
    gateway's app, its readiness with every check's details (`/readyz`, `/aliyun/readyz`)."""

    async def view(request: web.Request) -> web.Response:
        return exposition_response(metrics)

    app = web.Application()
    app.router.add_get("/metrics", view)
    app.router.add_get("/aliyun/metrics", view)
    if gateway is not None:
        ready_app = gateway

        async def ready(request: web.Request) -> web.Response:
            return await readiness_response(ready_app, details=True)

        app.router.add_get("/readyz", ready)
        app.router.add_get("/aliyun/readyz", ready)
    return app


def route_class(path: str) -> str:
    if not (path == "/aliyun" or path.startswith("/aliyun/")):
        return "page"
    rest = path[len("/aliyun/") :]
    head = rest.split("/", 1)[0]
    if head in ("ccc", "call-events"):
        return "api"
    if head in ("auth", "refresh", "revoke", "session"):
        return "auth"
    if head == "softphone":
        return "softphone"
    if head in ("healthz", "readyz", "metrics"):
        return "ops"
    return "other"


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _CountedDurations:
    """A counter and a duration histogram fed together (requests; CCC OpenAPI calls), kept as
    plain numbers and made into samples when the registry is collected.

    prometheus_client's Counter and Histogram take a lock for every increment (a histogram
    observation is two), which made counting a request cost as much as building its access
    line. These series are only ever updated from the event loop's thread and scraped from it
    too (`/aliyun/metrics` and the private listener are handlers on the same loop), so every
    scrape sees exact totals without a lock. The exposition is the one a
    `Counter(counted_labels)` and a `Histogram(counted_labels[:1], buckets=buckets)` make:
    `_total`, cumulative `_bucket`s, `_count`, `_sum`, and `_created` per label set, series in
    the order they first appear (tests/test_metrics.py compares the bytes).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        counted: tuple[str, str, tuple[str, ...]],  # counter name, help, label names
        timed: tuple[str, str],  # histogram name, help; labelled by the first counted label
        buckets: tuple[float, ...],
    ) -> None:
        self._counted, self._timed, self._buckets = counted, timed, buckets
        self._bounds = _bounds(buckets)
        self._counts: dict[tuple[object, ...], int] = {}  # label values -> count
        self._created: dict[tuple[object, ...], float] = {}
        self._timers: dict[object, _Timer] = {}  # first label value -> its histogram
        registry.register(self)

    def observe(self, key: tuple[object, ...], seconds: float) -> None:
        count = self._counts.get(key)
        if count is None:
            self._created[key] = time.time()
            count = 0
        self._counts[key] = count + 1
        timer = self._timers.get(key[0])
        if timer is None:
            timer = self._timers[key[0]] = _Timer(len(self._bounds))
        # The first bound at or above `seconds` (Prometheus buckets are "less than or equal");
        # past the last one, the +Inf bucket.
        timer.counts[bisect_left(self._buckets, seconds)] += 1
        timer.total += seconds

    def collect(self) -> Iterator[Metric]:
        name, help_text, labels = self._counted
        counter = CounterMetricFamily(name, help_text, labels=list(labels))
        for key, count in self._counts.items():
            counter.add_metric([str(v) for v in key], count, created=self._created[key])
        yield counter
        histogram = HistogramMetricFamily(*self._timed, labels=[labels[0]])
        for value, timer in self._timers.items():
            timer.add_to(histogram, labels[0], str(value), self._bounds)
        yield histogram


def _bounds(buckets: tuple[float, ...]) -> list[str]:
    """The `le` label values of `buckets` and +Inf, as prometheus_client writes them."""
    return [
        floatToGoString(bound)  # type: ignore[no-untyped-call]  # prometheus_client is untyped
        for bound in (*buckets, float("inf"))
    ]


class _Timer:
    """One label value's duration histogram (a route class's, an action's)."""

    __slots__ = ("counts", "created", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size  # per bucket, not cumulative; the last one is +Inf
        self.total = 0.0
        self.created = time.time()

    def add_to(
        self, family: HistogramMetricFamily, label: str, value: str, bounds: list[str]
    ) -> None:
        """This histogram's samples, as a labelled Histogram child gives them."""
        family.add_metric(
            [value], list(zip(bounds, accumulate(self.counts), strict=True)), self.total
        )
        family.samples.append(Sample(f"{family.name}_created", {label: value}, self.created))


def record(request: web.Request, event: Event, outcome: str) -> None:
    """Count one sign-in / refresh / revocation `outcome` (no-op in an app without metrics).

    `outcome` is a bounded label the caller picks (ok, refused, timeout, unavailable, …).
    """
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.events[event].labels(outcome=outcome).inc()


def count_pop(app: web.Application, action: str, outcome: str, seconds: float) -> None:
    """Count one finished CCC OpenAPI call (no-op in an app without metrics); `outcome` is
    the caller's bounded label (ok, error, timeout, unavailable, failed)."""
    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.observe_pop_call(action, outcome, seconds)


def count_crm_event(app: web.Application, outcome: str) -> None:
    """Count one call event's delivery outcome (no-op in an app without metrics)."""
    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.crm_events.labels(outcome=outcome).inc()
