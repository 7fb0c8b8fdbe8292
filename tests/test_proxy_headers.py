"""Proxy header rules: hop-by-hop, forwarding, identity, cookies, request ids, Location."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ccc_gateway.proxy.forwarding import Peer, forwarding_headers, is_trusted
from ccc_gateway.proxy.headers import (
    connection_tokens,
    decodable_accept_encoding,
    is_websocket_upgrade,
    request_header_pairs,
    response_header_pairs,
    rewrite_location,
    strip_cookies,
)

ORIGIN = URL("http://crm.internal:8080")
UNTRUSTED = Peer("203.0.113.7", trusted=False, secure=True)
UNTRUSTED_PLAIN = Peer("203.0.113.7", trusted=False, secure=False)
TRUSTED = Peer("10.0.0.2", trusted=True, secure=True)


def gateway_cookie(name: str) -> bool:
    return name.startswith("__Host-ccc-")


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def forward(*pairs: tuple[str, str], peer: Peer = UNTRUSTED, **kwargs: object) -> CIMultiDict[str]:
    return CIMultiDict(
        request_header_pairs(
            headers(*pairs),
            peer,
            request_id="rid-1",
            is_gateway_cookie=gateway_cookie,
            **kwargs,  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], frozenset()),
        (["keep-alive"], {"keep-alive"}),
        (["Keep-Alive, X-Secret"], {"keep-alive", "x-secret"}),
        (["close", " Upgrade ,,x-a"], {"close", "upgrade", "x-a"}),
    ],
)
def test_connection_tokens(values: list[str], expected: set[str]) -> None:
    """Every Connection header is split into lower-cased names, empty items ignored."""
    assert connection_tokens(headers(*(("Connection", v) for v in values))) == expected


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((("Connection", "Upgrade"), ("Upgrade", "websocket")), True),
        ((("Connection", "keep-alive, upgrade"), ("Upgrade", "WebSocket")), True),
        ((("Connection", "keep-alive"), ("Connection", "Upgrade"), ("Upgrade", "websocket")), True),
        ((("Upgrade", "websocket"),), False),
        ((("Connection", "upgrade"),), False),
        ((("Connection", "upgrade"), ("Upgrade", "h2c")), False),
        ((("Connection", "upgraded"), ("Upgrade", "websocket")), False),
    ],
)
def test_websocket_upgrade_needs_both_headers(
    pairs: tuple[tuple[str, str], ...], expected: bool
) -> None:
    """Only Connection: upgrade together with Upgrade: websocket makes a websocket request."""
    assert is_websocket_upgrade(headers(*pairs)) is expected


def test_hop_by_hop_request_headers_dropped() -> None:
    """Hop-by-hop headers, and any header Connection names, never reach the CRM."""
    out = forward(
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "s"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authenticate", "Basic"),
        ("Proxy-Authorization", "Basic eA=="),
        ("TE", "trailers"),
        ("Trailer", "X-Sum"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Expect", "100-continue"),
        ("Host", "gateway.example"),
        ("Accept", "text/html"),
    )
    assert set(out) == {
        "Accept",
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "X-Forwarded-Port",
        "X-Request-Id",
    }
    assert out["Accept"] == "text/html"


def test_end_to_end_headers_kept_in_order_and_multiplicity() -> None:
    """Other headers pass unchanged, repeated ones stay repeated and in order."""
    out = forward(("Accept", "a"), ("X-Multi", "1"), ("Content-Length", "5"), ("x-multi", "2"))
    assert out.getall("X-Multi") == ["1", "2"]
    assert out["Content-Length"] == "5"


def test_websocket_handshake_headers_dropped_for_websocket_only() -> None:
    """The client redoes the websocket handshake, so the browser's key and version stay."""
    pairs = (("Sec-WebSocket-Key", "k"), ("Sec-WebSocket-Version", "13"), ("Origin", "https://g"))
    assert set(forward(*pairs, websocket=True)) >= {"Origin"}
    assert "Sec-WebSocket-Key" not in forward(*pairs, websocket=True)
    assert "Sec-WebSocket-Key" in forward(*pairs)


@pytest.mark.parametrize(
    ("peer", "expected_for", "expected_proto", "expected_host"),
    [
        (UNTRUSTED, "203.0.113.7", "https", "gateway.example"),
        (UNTRUSTED_PLAIN, "203.0.113.7", "http", "gateway.example"),
        (TRUSTED, "198.51.100.1, 198.51.100.2, 10.0.0.2", "http", "crm.example.com"),
        (Peer(None, trusted=False, secure=True), "unknown", "https", "gateway.example"),
    ],
)
def test_forwarding_headers(
    peer: Peer, expected_for: str, expected_proto: str, expected_host: str
) -> None:
    """Client-sent forwarding values count only from a trusted proxy; else they are replaced."""
    incoming = headers(
        ("Host", "gateway.example"),
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Forwarded-For", "198.51.100.2"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "crm.example.com"),
    )
    out = forwarding_headers(incoming, peer)
    assert {k: v for k, v in out.items() if k not in ("Forwarded", "X-Forwarded-Port")} == {
        "X-Forwarded-For": expected_for,
        "X-Forwarded-Proto": expected_proto,
        "X-Forwarded-Host": expected_host,
    }


def test_trusted_peer_without_chain_starts_one() -> None:
    """A trusted proxy that sent no chain gets its own address and the gateway's view."""
    out = forwarding_headers(headers(("Host", "g.example")), TRUSTED)
    assert out == {
        "X-Forwarded-For": "10.0.0.2",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "g.example",
        "X-Forwarded-Port": "443",
        "Forwarded": "for=10.0.0.2;proto=https;host=g.example",
    }


def test_forwarded_and_real_ip_from_untrusted_client_dropped() -> None:
    """Forwarded and X-Real-IP are spoofable: replaced, or extended only from a trusted proxy."""
    pairs = (("Forwarded", "for=1.2.3.4"), ("X-Real-IP", "1.2.3.4"))
    untrusted = forward(*pairs)
    assert "1.2.3.4" not in untrusted["Forwarded"] and "X-Real-IP" not in untrusted
    trusted = forward(*pairs, peer=TRUSTED)
    assert trusted["Forwarded"].startswith("for=1.2.3.4, for=10.0.0.2;")
    assert trusted["X-Real-IP"] == "1.2.3.4"


@pytest.mark.parametrize(
    ("peer", "networks", "expected"),
    [
        ("10.0.0.2", ("10.0.0.0/8",), True),
        ("10.0.0.2", ("192.168.0.0/16",), False),
        ("::ffff:10.0.0.2", ("10.0.0.0/8",), True),
        ("fd00::1", ("fd00::/8",), True),
        ("10.0.0.2", (), False),
        (None, ("0.0.0.0/0",), False),
        ("not-an-ip", ("0.0.0.0/0",), False),
    ],
)
def test_is_trusted(peer: str | None, networks: tuple[str, ...], expected: bool) -> None:
    """The peer is trusted only inside a configured network (IPv4-mapped IPv6 included)."""
    nets = tuple(ipaddress.ip_network(n) for n in networks)
    assert is_trusted(peer, nets) is expected


def test_client_identity_headers_always_stripped() -> None:
    """Any X-Ccc-* from the client is dropped; the gateway's identity headers are added."""
    pairs = (("X-Ccc-Agent-Upn", "evil@x"), ("x-ccc-agent-name", "Evil"), ("X-CCC-Other", "1"))
    assert not [name for name in forward(*pairs) if name.lower().startswith("x-ccc-")]
    out = forward(*pairs, identity={"X-Ccc-Agent-Upn": "agent1@ccc-demo.onaliyun.com"})
    assert out.getall("X-Ccc-Agent-Upn") == ["agent1@ccc-demo.onaliyun.com"]
    assert "X-Ccc-Agent-Name" not in out


def test_request_id_replaces_client_copy() -> None:
    """The CRM gets exactly one X-Request-Id: the one the gateway chose."""
    assert forward(("X-Request-Id", "a"), ("X-Request-Id", "b")).getall("X-Request-Id") == ["rid-1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a=1; b=2", "a=1; b=2"),
        ("a=1; __Host-ccc-session=s; b=2", "a=1; b=2"),
        ("__Host-ccc-session=s; a=1", "a=1"),
        ("a=1;__Host-ccc-session=s", "a=1"),
        ('a="x y";  b=%20; __Host-ccc-login=z', 'a="x y";  b=%20'),
        ("__Host-ccc-session=s; __Host-ccc-login=l", None),
        ("__Host-ccc-session", None),
        ("a", "a"),
    ],
)
def test_strip_cookies(value: str, expected: str | None) -> None:
    """The gateway's cookies are removed; the rest stay byte-exact and in order."""
    assert strip_cookies(value, gateway_cookie) == expected


def test_cookie_header_dropped_when_only_gateway_cookies() -> None:
    """No Cookie header reaches the CRM when every cookie was the gateway's."""
    assert "Cookie" not in forward(("Cookie", "__Host-ccc-session=s"))
    assert forward(("Cookie", "__Host-ccc-session=s; crm=1"))["Cookie"] == "crm=1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("br, gzip, deflate", "gzip, deflate"),
        ("gzip;q=0.5, br;q=1.0, zstd", "gzip;q=0.5"),
        ("br", None),
        ("identity, br", "identity"),
        ("x-gzip", "x-gzip"),
    ],
)
def test_decodable_accept_encoding(value: str, expected: str | None) -> None:
    """Only codings the filter can decode stay, with the client's own q-values."""
    assert decodable_accept_encoding(value) == expected


def test_accept_encoding_narrowed_only_when_asked() -> None:
    """The Accept-Encoding rewrite applies only to requests the filter may transform."""
    pair = ("Accept-Encoding", "br, gzip")
    assert forward(pair)["Accept-Encoding"] == "br, gzip"
    assert forward(pair, decodable_only=True)["Accept-Encoding"] == "gzip"
    assert "Accept-Encoding" not in forward(("Accept-Encoding", "br"), decodable_only=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://crm.internal:8080/next?a=%2F#frag", "/next?a=%2F#frag"),
        ("HTTP://CRM.internal:8080/x", "/x"),
        ("http://crm.internal:8080", "/"),
        ("http://crm.internal:8080?q=1", "/?q=1"),
        ("http://crm.internal:8080/a/../b", "/a/../b"),
        ("http://crm.internal:8081/x", "http://crm.internal:8081/x"),
        ("https://crm.internal:8080/x", "https://crm.internal:8080/x"),
        ("http://crm.internal/x", "http://crm.internal/x"),
        ("https://elsewhere.example/x", "https://elsewhere.example/x"),
        ("/relative?a=1", "/relative?a=1"),
        ("//crm.internal:8080/x", "//crm.internal:8080/x"),
        ("http://crm.internal:8080//evil.example/x", "http://crm.internal:8080//evil.example/x"),
        ("next", "next"),
    ],
)
def test_rewrite_location(value: str, expected: str) -> None:
    """Redirects to the CRM's origin become paths on the gateway; all others stay as sent."""
    assert rewrite_location(value, ORIGIN) == expected


def test_rewrite_location_default_port() -> None:
    """An upstream on the default port matches Locations with or without the port."""
    origin = URL("https://crm.internal")
    assert rewrite_location("https://crm.internal:443/a", origin) == "/a"
    assert rewrite_location("https://crm.internal/a", origin) == "/a"


def test_response_headers() -> None:
    """Hop-by-hop gone, Set-Cookie kept several times, gateway cookies and Location handled."""
    upstream = headers(
        ("Connection", "X-Drop"),
        ("X-Drop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
        ("Set-Cookie", "__Host-ccc-session=forged; Path=/; Secure"),
        ("Location", "http://crm.internal:8080/home"),
        ("X-Request-Id", "crm-id"),
        ("Content-Type", "text/html"),
    )
    out = CIMultiDict(
        response_header_pairs(
            upstream, origin=ORIGIN, request_id="rid", is_gateway_cookie=gateway_cookie
        )
    )
    assert list(out.items()) == [
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
        ("Location", "/home"),
        ("Content-Type", "text/html"),
        ("X-Request-Id", "rid"),
    ]
