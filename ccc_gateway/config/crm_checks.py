"""Configuration checks for putting the gateway in front of a CRM other than the sample.

The CRM binding's values (`session.crm_binding`, `session.crm_session_cookie`), the
redirect_uri's scheme, and the warnings `check-config` prints and `run` logs for a CRM set-up
left half-adapted: binding off, the sample CRM's screen-pop page, placeholder or
unresolvable hosts (docs/crm/README.md).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from yarl import URL

from ccc_gateway.config.model import Config, SessionConfig, SoftphoneConfig, UpstreamConfig
from ccc_gateway.config.values import Section, as_str, choice


def crm_warnings(config: Config) -> list[str]:
    """What `config_warnings` adds for the CRM side."""
    return _binding_and_screen_pop(config) + _host_warnings(config)


_BINDING_MODES = ("whoami", "cookie", "off")


def as_binding_mode(value: Any) -> str:
    """whoami | cookie | off; the booleans of older configurations mean whoami and off."""
    if isinstance(value, bool):
        return "whoami" if value else "off"
    return choice(*_BINDING_MODES)(value)


# A cookie name is an RFC 6265 token: no separators, spaces or controls.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def as_cookie_name(value: Any) -> str:
    text = as_str(value).strip()
    if not _COOKIE_NAME.fullmatch(text):
        raise ValueError("not a cookie name")
    return text


def check_binding(s: Section, session: SessionConfig) -> None:
    """The binding's keys together: `cookie` needs the cookie's name."""
    if session.crm_binding == "cookie" and session.crm_session_cookie is None:
        s.problems.add(
            s.key_path("crm_session_cookie"),
            "required with crm_binding: cookie (the name of the CRM's session cookie, "
            "e.g. sessionid for Django, PHPSESSID for PHP, JSESSIONID for Java)",
        )


def redirect_uri_problem(uri: URL) -> str | None:
    """Plain http carries the authorization code in clear: only for a loopback host."""
    if uri.scheme == "http" and not is_loopback(uri):
        return (
            "must be https (the gateway's public address; Alibaba sends the code there); "
            "http only for a loopback host"
        )
    return None


def is_loopback(url: URL) -> bool:
    host = (url.host or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _binding_and_screen_pop(config: Config) -> list[str]:
    """Settings left as they are for the sample CRM, or without a CRM binding."""
    warnings = []
    if config.crm_binding == "off":
        warnings.append(
            "CRM binding is off (session.crm_binding, upstream.whoami_path): the Alibaba "
            "sign-in is not tied to the CRM user, so on a shared PC the next CRM user inherits "
            "the agent's phone line; set session.crm_binding: cookie with "
            "session.crm_session_cookie (no change to the CRM), or whoami"
        )
    sample = SoftphoneConfig.screen_pop_url
    if config.softphone.screen_pop_url == sample and not _looks_like_the_sample_crm(config):
        warnings.append(
            f"softphone.screen_pop_url is still the sample CRM's page ({sample}) while "
            "upstream.url is another CRM: an incoming call would open a page it does not "
            "have; set the CRM's own search or contact page, with {caller}"
        )
    return warnings


def _looks_like_the_sample_crm(config: Config) -> bool:
    """On this host and bound the sample CRM's way (its whoami and login paths): the demo and
    the tests, whatever port. Any other CRM needs another binding or login path, or is
    elsewhere."""
    upstream, defaults = config.upstream, UpstreamConfig()
    return (
        is_loopback(upstream.url)
        and config.crm_binding == "whoami"
        and upstream.whoami_path == defaults.whoami_path
        and upstream.login_path == defaults.login_path
    )


# Names for documentation examples (RFC 2606, RFC 6761): a configuration naming one was
# copied and not yet adapted.
_PLACEHOLDER_DOMAINS = ("example", "invalid", "test", "example.com", "example.org", "example.net")


def is_placeholder(host: str) -> bool:
    name = host.lower().rstrip(".")
    return any(name == d or name.endswith("." + d) for d in _PLACEHOLDER_DOMAINS)


def _host_warnings(config: Config) -> list[str]:
    """Hosts left as placeholders, and a CRM host this machine cannot resolve."""
    warnings = []
    for key, url in (
        ("aliyun.redirect_uri", config.aliyun.redirect_uri),
        ("upstream.url", config.upstream.url),
    ):
        if url.host and is_placeholder(url.host):
            warnings.append(f"{key} names a placeholder host ({url.host}): put the real one")
    crm = config.upstream.url.host
    if crm and not is_placeholder(crm) and not _resolves(crm):
        warnings.append(
            f"upstream.url: the host {crm} does not resolve from here; every page would be a 502"
        )
    return warnings


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True
