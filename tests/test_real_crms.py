"""A real CRM behind the gateway: a stock Django project (admin + a Contact model).

Django's CSRF protection compares the Origin of a POST with the scheme and Host it was served
on. Through a proxy that rewrites Host to the CRM's own address and serves over HTTPS, the
two never agree and every form post is a 403. With `upstream.preserve_host` and the recipe's
one Django setting (`SECURE_PROXY_SSL_HEADER`, docs/crm/django.md) login, list, edit and save
work unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from stack import Browser, Stack, parse_form
from yarl import URL

from ccc_gateway.proxy.forwarding import Peer
from ccc_gateway.proxy.headers import request_header_pairs

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


@pytest.fixture
def django_crm(tmp_path: Path, unused_tcp_port_factory: Callable[[], int]) -> Iterator[URL]:
    """The Django CRM on loopback, in its own process, with the recipe's setting on."""
    port = unused_tcp_port_factory()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_CRM_DB": str(tmp_path / "django.sqlite3"),
        "DJANGO_CRM_BEHIND_PROXY": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.django_crm.serve", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        _wait_for_port(port)
        yield URL(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the Django CRM did not listen on {port}")


async def _stack(make_stack: Callable[..., Awaitable[Stack]], crm: URL, **upstream: Any) -> Stack:
    return await make_stack(
        upstream={"url": crm, "whoami_path": None, "login_path": "/admin/login/", **upstream},
        session={"crm_binding": "cookie", "crm_session_cookie": "sessionid"},
        softphone={"screen_pop_url": "/admin/contacts/contact/?q={caller}"},
    )


async def _login(browser: Browser) -> aiohttp.ClientResponse:
    async with browser.client.get(browser.url("/admin/login/?next=/admin/")) as page:
        assert page.status == 200
        _, fields = parse_form(await page.text())
    fields.update(username="edward", password="1234")
    return await browser.post("/admin/login/?next=/admin/", data=fields, allow_redirects=False)


async def test_django_admin_login_list_edit_save(
    make_stack: Callable[..., Awaitable[Stack]], django_crm: URL
) -> None:
    """Through the gateway with preserve_host, Django's CSRF check passes: log in, list a
    contact, edit it and save; the saved value is what the list shows afterwards."""
    stack = await _stack(make_stack, django_crm, preserve_host=True)
    browser = stack.browser()
    try:
        login = await _login(browser)
        assert login.status == 302, await login.text()
        assert login.headers["Location"] == "/admin/"
        async with browser.client.get(browser.url("/admin/contacts/contact/")) as listing:
            html = await listing.text()
            assert listing.status == 200 and "Mr Lu" in html
        change = re.search(r'href="(/admin/contacts/contact/(\d+)/change/[^"]*)"', html)
        assert change is not None
        edit_path = unescape(change.group(1))
        async with browser.client.get(browser.url(edit_path)) as form_page:
            assert form_page.status == 200
            _, fields = parse_form(await form_page.text())
        assert fields["name"] == "Mr Lu"
        fields.update(name="Mr Lu Senior", phone="135012345678", _save="Save")
        async with await browser.post(edit_path, data=fields, allow_redirects=False) as saved:
            assert saved.status == 302, await saved.text()
        async with browser.client.get(browser.url("/admin/contacts/contact/")) as listing:
            assert "Mr Lu Senior" in await listing.text()
    finally:
        await browser.close()


async def test_django_login_fails_without_preserve_host(
    make_stack: Callable[..., Awaitable[Stack]], django_crm: URL
) -> None:
    """The control: with the CRM's own Host, Django refuses the login form (CSRF 403)."""
    stack = await _stack(make_stack, django_crm, preserve_host=False)
    browser = stack.browser()
    try:
        login = await _login(browser)
        assert login.status == 403
        assert "CSRF" in await login.text()
    finally:
        await browser.close()


# ---------------------------------------------------------------- the headers a CRM is given


def _pairs(peer: Peer, *incoming: tuple[str, str], host: str | None = None) -> dict[str, str]:
    return dict(
        request_header_pairs(
            CIMultiDictProxy(CIMultiDict(incoming)),
            peer,
            request_id="r1",
            is_gateway_cookie=lambda name: False,
            public_host="crm.corp.example:8443",
            host=host,
        )
    )


def test_preserve_host_sends_the_public_host_never_the_clients() -> None:
    """With preserve_host the CRM's Host is the gateway's public host, whatever the client
    sent; without it no Host is passed (the upstream client states the CRM's own)."""
    peer = Peer("203.0.113.7", trusted=False, secure=True)
    sent = _pairs(peer, ("Host", "evil.example"), host="crm.corp.example:8443")
    assert sent["Host"] == "crm.corp.example:8443"
    assert "Host" not in _pairs(peer, ("Host", "evil.example"))


def test_forwarding_headers_are_complete_and_agree() -> None:
    """X-Forwarded-For/-Proto/-Host/-Port and Forwarded say the same, for an IPv6 client too."""
    sent = _pairs(Peer("2001:db8::7", trusted=False, secure=True), ("Host", "x"))
    assert sent["X-Forwarded-For"] == "2001:db8::7"
    assert sent["X-Forwarded-Proto"] == "https"
    assert sent["X-Forwarded-Host"] == "crm.corp.example:8443"
    assert sent["X-Forwarded-Port"] == "8443"
    assert sent["Forwarded"] == 'for="[2001:db8::7]";proto=https;host="crm.corp.example:8443"'


def test_a_trusted_proxys_forwarded_chain_is_extended() -> None:
    """Behind a trusted load balancer its Forwarded and X-Forwarded-Port are kept and extended."""
    sent = _pairs(
        Peer("10.0.0.2", trusted=True, secure=False),
        ("Forwarded", "for=198.51.100.1;proto=https"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "crm.corp.example"),
        ("X-Forwarded-Port", "443"),
    )
    assert sent["Forwarded"] == (
        "for=198.51.100.1;proto=https, for=10.0.0.2;proto=https;host=crm.corp.example"
    )
    assert sent["X-Forwarded-Port"] == "443"
