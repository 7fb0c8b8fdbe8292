"""same_origin: the gateway's state-changing routes refuse cross-site requests."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from ccc_gateway.http.errors import Forbidden
from ccc_gateway.http.origin import check_same_origin

PUBLIC = "https://crm.example.com"


def _request(**headers: str):
    return make_mocked_request("POST", "/aliyun/refresh", headers=headers)


def _refused(**headers: str) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        check_same_origin(_request(**headers), PUBLIC)
    assert caught.value.error_code == "CrossSiteRequest"
    assert caught.value.status == 403
    return caught.value


def test_matching_origin_is_accepted():
    """Origin equal to the public origin passes."""
    check_same_origin(_request(Origin=PUBLIC), PUBLIC)


def test_origin_of_the_host_header_is_accepted():
    """Origin equal to scheme://Host (the gateway reached by another name) passes."""
    check_same_origin(_request(Origin="http://gw.local:8443", Host="gw.local:8443"), PUBLIC)


def test_same_origin_fetch_metadata_is_accepted():
    """Sec-Fetch-Site same-origin with a matching Origin passes."""
    check_same_origin(_request(**{"Sec-Fetch-Site": "same-origin", "Origin": PUBLIC}), PUBLIC)


def test_sec_fetch_site_same_origin_alone_is_accepted():
    """A browser that sends Sec-Fetch-Site but no Origin (a same-origin GET) passes."""
    check_same_origin(_request(**{"Sec-Fetch-Site": "same-origin"}), PUBLIC)


def test_other_origin_is_refused():
    """An Origin of another site is refused."""
    assert "evil" in _refused(Origin="https://evil.example").message


def test_null_origin_is_refused():
    """`Origin: null` (sandboxed iframe, data: URL) is refused."""
    _refused(Origin="null")


def test_neither_header_is_refused():
    """A request that says nothing about where it comes from is refused."""
    _refused()


@pytest.mark.parametrize("site", ["same-site", "cross-site", "none"])
def test_other_fetch_sites_are_refused(site: str):
    """Sec-Fetch-Site same-site (a sibling subdomain), cross-site and none are refused."""
    _refused(**{"Sec-Fetch-Site": site, "Origin": PUBLIC})


def test_origin_with_other_port_is_refused():
    """The same host on another port is another origin."""
    _refused(Origin="https://crm.example.com:8443")


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("gw.local:8443", "http://gw.local:8443"),
        ("GW.Local:8443", "http://gw.local:8443"),  # browsers write the host in lower case
        ("gw.local:80", "http://gw.local"),  # and leave the default port out
        ("10.0.0.5", "http://10.0.0.5"),
    ],
)
def test_one_request_origin_for_same_origin_and_the_widget(host: str, origin: str):
    """The same-origin check accepts exactly the origin the widget's CSP rewrite names."""
    from ccc_gateway.http.origin import request_origin

    request = _request(Origin=origin, Host=host)
    assert str(request_origin(request)) == origin
    check_same_origin(request, PUBLIC)


def test_no_host_no_request_origin_match():
    request = make_mocked_request("POST", "/aliyun/refresh", headers={"Origin": "http://x"})
    with pytest.raises(Forbidden):
        check_same_origin(request, PUBLIC)
