"""Forwarding headers for the CRM: who the client is, as far as the gateway can tell.

Pure functions, no aiohttp.web. X-Forwarded-For/-Host/-Proto and X-Real-IP are believed only
from a trusted proxy (`listen.trusted_proxies`: the load balancer, the ingress); anyone
else's are replaced with what the gateway saw itself (docs/proxy.md).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from aiohttp import hdrs
from multidict import MultiMapping

from ccc_gateway.config.values import IpNetwork

X_FORWARDED_FOR = "X-Forwarded-For"
X_FORWARDED_HOST = "X-Forwarded-Host"
X_FORWARDED_PROTO = "X-Forwarded-Proto"
X_REAL_IP = "X-Real-IP"
# The client's own: never copied, `forwarding_headers` states them anew (and Forwarded,
# which the gateway does not write, is dropped rather than left to contradict them).
FORWARDING_HEADERS = (
    hdrs.FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
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
    """X-Forwarded-For/-Host/-Proto for the CRM.

    Only a trusted proxy may speak for the client: its chain is extended with its own address
    and its -Host/-Proto are kept. Anyone else's values are lies until proven otherwise, so
    they are replaced with what the gateway saw itself; `public_host` (the gateway's own
    host[:port]), when given, stands in for the Host such a client sent.
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
    return result
