"""bench.calls: Python calls per request by module, from cProfile's table."""

from __future__ import annotations

import pytest

from bench.calls import calls_by_module, module_of, requests_seen

PROXY = "/x/ccc_gateway/proxy/headers.py"
LOG = "/x/ccc_gateway/ops/log.py"
LOWER = ("~", 0, "<method 'lower' of 'str' objects>")


def _row(calls: int, callers: dict | None = None) -> tuple:
    return (calls, calls, 0.0, 0.0, callers or {})


def test_module_names_are_short():
    """A file is named by its path inside ccc_gateway, its library, or its own name."""
    assert module_of(PROXY) == "ccc_gateway/proxy/headers.py"
    assert module_of("/venv/lib/site-packages/aiohttp/web_request.py") == "aiohttp/web_request.py"
    assert module_of("<frozen posixpath>") == "<frozen posixpath>"


def test_idle_calls_are_taken_off_and_builtins_go_to_their_callers():
    """Start-up calls are not counted; a built-in's calls are shared as its callers made them."""
    loaded = {
        (PROXY, 1, "request_header_pairs"): _row(110),
        (LOG, 2, "scrubbed"): _row(100),
        LOWER: _row(
            400, {(PROXY, 1, "request_header_pairs"): (300, 300, 0.0, 0.0), (LOG, 2, "x"): 100}
        ),
    }
    idle = {(PROXY, 1, "request_header_pairs"): _row(10)}
    out = calls_by_module(loaded, idle, requests=100)
    assert out["ccc_gateway/proxy/headers.py"] == pytest.approx(1 + 3)
    assert out["ccc_gateway/ops/log.py"] == pytest.approx(1 + 1)


def test_requests_are_counted_by_the_access_line():
    """The middleware's `_log_access` runs once per request: its calls are the requests."""
    stats = {
        ("/x/ccc_gateway/http/middleware.py", 9, "_log_access"): _row(1232),
        (LOG, 2, "f"): _row(5),
    }
    assert requests_seen(stats) == 1232


def test_rows_by_function_name_the_function_and_its_builtins():
    """With `function_of`, a row is a function, and a built-in's calls go to the function."""
    from bench.calls import function_of

    loaded = {
        (PROXY, 1, "request_header_pairs"): _row(100),
        LOWER: _row(300, {(PROXY, 1, "request_header_pairs"): 300}),
    }
    out = calls_by_module(loaded, {}, requests=100, name=function_of)
    assert out == {"ccc_gateway/proxy/headers.py:request_header_pairs": pytest.approx(1 + 3)}


def test_bench_config_pins_the_classic_api(tmp_path):
    """The bench's API call is classic (2017-07-05) whatever the gateway's default."""
    import json

    from bench.fixtures import gateway_yaml

    path = gateway_yaml(
        tmp_path / "g.yaml",
        port=1,
        upstream_port=2,
        pop_port=3,
        cert=tmp_path / "c",
        key=tmp_path / "k",
        session_key="x",
    )
    assert json.loads(path.read_text())["ccc"]["version"] == "2017-07-05"


def test_builtin_calls_of_the_start_up_stay_with_the_start_up():
    """A built-in's callers are counted less their idle calls: start-up callers get none."""
    compiler = ("/lib/re/_compiler.py", 1, "_compile")
    loaded = {LOWER: _row(1300, {(PROXY, 1, "request_header_pairs"): 300, compiler: 1000})}
    idle = {LOWER: _row(1000, {compiler: 1000})}
    out = calls_by_module(loaded, idle, requests=100)
    assert out == {"ccc_gateway/proxy/headers.py": pytest.approx(3)}
