"""Which paths are the gateway's, however spelled (routing.is_gateway_path)."""

from __future__ import annotations

import itertools

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ccc_gateway.http.routing import (
    GATEWAY_PREFIX,
    CatchAllResource,
    is_gateway_path,
    is_gateway_target,
    normalise_path,
)

DISGUISES = [
    "/aliyun",
    "/aliyun/",
    "/ALIYUN/ccc/api",
    "/Aliyun/session",
    "//aliyun/ccc/api",
    "/aliyun/./ccc/api",
    "/x/../aliyun/ccc/api",
    "/aliyun%2Fccc%2Fapi",
    "/%61liyun/ccc/api",
    "/aliyun%252Fccc%252Fapi",
    "/aliyun%5Cccc%5Capi",
    "/aliyun;/ccc/api",
    "/aliyun;jsessionid=1/session",
    "/aliyun?x=1",
]
CRM_PATHS = ["/", "/customers.html", "/aliyunx", "/x/aliyun", "/a%2Fb", "/q?next=/aliyun/ccc"]


@pytest.mark.parametrize("path", DISGUISES)
def test_disguised_prefixes_are_gateway_paths(path: str):
    assert is_gateway_path(make_mocked_request("GET", path))


@pytest.mark.parametrize("path", CRM_PATHS)
def test_crm_paths_are_not(path: str):
    assert not is_gateway_path(make_mocked_request("GET", path))


@pytest.mark.parametrize("path", ["/ALIYUN/ccc/api", "/aliyun%2Fsession", "/x/../aliyun"])
def test_absolute_form_targets_are_judged_by_the_path_the_crm_would_get(path: str):
    """`GET http://host/ALIYUN/…` is the gateway's too: the proxy would send its path part."""
    assert is_gateway_path(make_mocked_request("GET", "http://evil.example" + path))
    assert not is_gateway_path(make_mocked_request("GET", "http://evil.example/customers"))


def test_fast_path_agrees_with_full_normalisation():
    """Every short path over the characters that matter gets the full normaliser's answer."""
    alphabet = ["/", ".", "a", "A", "%", "2f", "%61", ";", "\\", "x", "aliyun", "ALIYUN", "liyun"]
    for size in range(1, 5):
        for parts in itertools.product(alphabet, repeat=size):
            path = "/" + "".join(parts)
            normal = normalise_path(path)
            expected = normal == GATEWAY_PREFIX.rstrip("/") or normal.startswith(GATEWAY_PREFIX)
            assert is_gateway_target(path) == expected, path


async def _handler(request: web.Request) -> web.StreamResponse:
    return web.Response()


@pytest.mark.parametrize(
    "path",
    ["/", "/customers.html", "/a/b/c.html?x=1", "/a%2Fb", "/a%0Ab", "/%0A", "/x\n", "*", "/é"],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PROPFIND"])
async def test_catch_all_matches_what_the_stock_pattern_does(path: str, method: str) -> None:
    """CatchAllResource answers exactly like add_route("*", "/{tail:.*}", handler)."""
    stock = web.UrlDispatcher()
    stock.add_route("*", "/{tail:.*}", _handler)
    fast = web.UrlDispatcher()
    fast.register_resource(CatchAllResource(_handler))
    request = make_mocked_request(method, path)
    expected = await stock.resolve(request)
    got = await fast.resolve(request)
    assert type(got) is type(expected)
    assert got.http_exception.__class__ is expected.http_exception.__class__
    if expected.http_exception is None:
        assert got.handler is _handler and got.route.method == "*"
    assert CatchAllResource(_handler).canonical == "/{tail}"
