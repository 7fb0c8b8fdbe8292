"""The benchmark's D ceiling: what the cores allow 2 workers, from the 1-worker rounds' CPU."""

from __future__ import annotations

import pytest

from bench.load import LoadResult
from bench.scenarios import d_ceiling, pooled


def _run(requests: int, cpu_s: float, load_cpu_s: float) -> LoadResult:
    return LoadResult(
        requests=requests,
        seconds=1.0,
        rps=float(requests),
        p50_ms=1.0,
        p99_ms=2.0,
        errors=0,
        cpu_s=cpu_s,
        rss_peak=0,
        load_cpu_s=load_cpu_s,
    )


def test_ceiling_when_the_cores_are_shared_with_the_load():
    # 200 µs of gateway and 50 µs of wrk + upstream per request: 1 worker serves at most
    # 5,000 req/s (one core), 2 cores carry at most 8,000 req/s of gateway + load: 1.6×.
    ceiling, note = d_ceiling(_run(1000, cpu_s=0.2, load_cpu_s=0.05), cores=2)
    assert ceiling == pytest.approx(1.6)
    assert "gateway used 200 µs" in note and "upstream 50 µs" in note
    assert "at most 1.60× 1 worker's rate" in note


def test_ceiling_when_the_cores_are_not_the_limit():
    # 4 cores: 2 workers at 5,000 req/s each fit (2 × 250 µs per request-pair < 4 cores).
    ceiling, note = d_ceiling(_run(1000, cpu_s=0.2, load_cpu_s=0.05), cores=4)
    assert ceiling == pytest.approx(2.0)
    assert "at most 2.00× 1 worker's rate" in note


def test_ceiling_below_the_target_when_the_gateway_is_lean():
    # A leaner gateway makes the load a bigger share of the cores: 2·150/(150+70) = 1.36×.
    _, note = d_ceiling(_run(1000, cpu_s=0.15, load_cpu_s=0.07), cores=2)
    assert "at most 1.36× 1 worker's rate" in note


def test_pooled_runs_keep_the_load_side_cpu():
    both = pooled([_run(1000, 0.2, 0.05), _run(3000, 0.6, 0.15)])
    assert both.load_cpu_s == 0.2
    assert both.requests == 4000 and both.cpu_s == 0.8
