"""TLS: the demo's self-signed certificate, server contexts, and clear errors for bad pairs."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from ccc_gateway.runtime.serve import Listener, start
from ccc_gateway.runtime.tls import TlsError, client_context, ensure_self_signed, server_context


def test_self_signed_certificate_is_created_once(tmp_path: Path):
    """The demo certificate names 127.0.0.1 and localhost, has an owner-only key, and is reused."""
    cert, key = ensure_self_signed(tmp_path / "data")
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert key.stat().st_mode & 0o077 == 0
    first = cert.read_bytes()
    assert ensure_self_signed(tmp_path / "data") == (cert, key)
    assert cert.read_bytes() == first


def test_server_context_refuses_old_protocols(tmp_path: Path):
    """The listener speaks TLS 1.2 or newer only."""
    context = server_context(*ensure_self_signed(tmp_path))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_missing_and_mismatched_pairs_have_clear_errors(tmp_path: Path):
    """A missing file, a key of another certificate and garbage each give a one-line reason."""
    cert_a, _ = ensure_self_signed(tmp_path / "a")
    _, key_b = ensure_self_signed(tmp_path / "b")
    with pytest.raises(TlsError, match="file not found"):
        server_context(tmp_path / "none.crt", key_b)
    with pytest.raises(TlsError, match="does not belong to the certificate"):
        server_context(cert_a, key_b)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsError, match="cannot load"):
        server_context(garbage, garbage)


async def test_https_round_trip_with_the_generated_certificate(
    tmp_path: Path, unused_tcp_port: int
):
    """A server with the demo certificate is reachable by a client that trusts that certificate."""
    cert, key = ensure_self_signed(tmp_path)
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"secure={request.secure}")

    app.router.add_get("/", hello)
    runner = await start(
        Listener("test", app, "127.0.0.1", unused_tcp_port, server_context(cert, key))
    )
    try:
        connector = aiohttp.TCPConnector(ssl=client_context(cert))
        async with aiohttp.ClientSession(connector=connector) as client:
            async with client.get(f"https://127.0.0.1:{unused_tcp_port}/") as response:
                assert await response.text() == "secure=True"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await client.get(f"https://127.0.0.1:{unused_tcp_port}/", ssl=client_context())
    finally:
        await runner.cleanup()
