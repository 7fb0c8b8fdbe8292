"""Forwarding headers for the CRM: who the client is, as far as the gateway can tell.

Pure functions, no aiohttp.web. X-Forwarded-For/-Host/-Proto/-Port, Forwarded (RFC 7239) and
X-Real-IP are believed only from a trusted proxy (`listen.trusted_proxies`: the load
balancer, the ingress); anyone else's are replaced with what the gateway saw itself
(docs/proxy.md). Both header families are sent, saying the same thing, because frameworks
read one or the other (Django and Rails X-Forwarded-*, Spring and Laravel either).
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from aiohttp import hdrs
from multidict import MultiMapping

from ccc_gateway.config.values import IpNetwork

X_FORWARDED_FOR = "X-Forwarded-For"
X_FORWARDED_HOST = "X-Forwarded-Host"
X_FORWARDED_PROTO = "X-Forwarded-Proto"
X_FORWARDED_PORT = "X-Forwarded-Port"
X_REAL_IP = "X-Real-IP"
# tchar (RFC 9110 §5.6.2): one C-speed match rather than a Python step per character of the
# Host on every proxied request (bench/RESULTS.md, session 6, later).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]*")
# The client's own: never copied, `forwarding_headers` states them anew.
FORWARDING_HEADERS = (
    hdrs.FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    X_FORWARDED_PORT,
    X_REAL_IP,
)


def is_trusted(peer: str | None, trusted_proxies: tuple[IpNetwork, ...]) -> bool:
    """The direct peer is one of our own proxies (load balancer, ingress)."""
    if not peer or not trusted_proxies:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted_proxies)


class Peer(NamedTuple):
    """What the gateway knows about the connection a request came on."""

    address: str | None  # the direct peer's IP; None on a Unix socket
    trusted: bool  # the peer is a trusted proxy: its X-Forwarded-* are believed
    secure: bool  # the gateway itself served TLS on this connection


def forwarding_headers(
    incoming: MultiMapping[str], peer: Peer, *, public_host: str | None = None
) -> dict[str, str]:
    """X-Forwarded-For/-Host/-Proto/-Port and Forwarded for the CRM.

    Only a trusted proxy may speak for the client: its chains (X-Forwarded-For, Forwarded)
    are extended with its own address and its -Host/-Proto/-Port are kept. Anyone else's
    values are lies until proven otherwise, so they are replaced with what the gateway saw
    itself; `public_host` (the gateway's own host[:port]), when given, stands in for the Host
    such a client sent.
    """
    address = peer.address or "unknown"
    proto = "https" if peer.secure else "http"
    host = incoming.get(hdrs.HOST)
    result: dict[str, str] = {}
    if peer.trusted:
        chain = ", ".join(incoming.getall(X_FORWARDED_FOR, ()))
        result[X_FORWARDED_FOR] = f"{chain}, {address}" if chain else address
        proto = incoming.get(X_FORWARDED_PROTO, proto)
        host = incoming.get(X_FORWARDED_HOST, host)
        if X_REAL_IP in incoming:
            result[X_REAL_IP] = incoming[X_REAL_IP]
    else:
        result[X_FORWARDED_FOR] = address
        if public_host is not None:
            host = public_host
    result[X_FORWARDED_PROTO] = proto
    if host:
        result[X_FORWARDED_HOST] = host
    port = incoming.get(X_FORWARDED_PORT) if peer.trusted else None
    result[X_FORWARDED_PORT] = port or _port_of(host, proto)
    element = _forwarded_element(address, host, proto)
    earlier = ", ".join(incoming.getall(hdrs.FORWARDED, ())) if peer.trusted else ""
    result[hdrs.FORWARDED] = f"{earlier}, {element}" if earlier else element
    return result


def _port_of(host: str | None, proto: str) -> str:
    """The port in a Host value, else the scheme's default."""
    if host:
        authority = host.rpartition("]")[2]  # an IPv6 literal's colons are not the port's
        _, colon, port = authority.rpartition(":")
        if colon and port.isdigit():
            return port
    return "443" if proto == "https" else "80"


def _forwarded_element(address: str, host: str | None, proto: str) -> str:
    """One RFC 7239 element: quoted where the value is not a token (IPv6, host:port)."""
    node = f'"[{address}]"' if ":" in address else address
    parts = [f"for={node}", f"proto={proto}"]
    if host:
        parts.append(f'host="{_quoted(host)}"' if not _is_token(host) else f"host={host}")
    return ";".join(parts)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _is_token(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None
