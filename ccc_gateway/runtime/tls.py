"""TLS for the listener and for outbound calls, and the demo's self-signed certificate.

The softphone needs a secure page (the browser only grants the microphone to HTTPS origins),
so the gateway terminates TLS itself: TLS 1.2 or newer, the certificate pair from
`tls.cert`/`tls.key`, reloadable on SIGHUP by loading a new pair into a fresh context.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TlsError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with modern defaults, or TlsError with a one-line reason."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    _load_pair(context, cert, key)
    return context


def _load_pair(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    for path in (cert, key):
        if not path.is_file():
            raise TlsError(f"file not found: {path}")
        if not os.access(path, os.R_OK):
            raise TlsError(f"file not readable: {path}")
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in reason.upper():
            raise TlsError(f"the key {key} does not belong to the certificate {cert}") from None
        raise TlsError(f"cannot load {cert} / {key}: {reason}") from None
    except OSError as exc:
        raise TlsError(f"cannot read {cert} / {key}: {exc.strerror or exc}") from None


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Outbound trust: the system's CAs, plus `ca_file` when given (private CA, the demo's cert)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def ensure_self_signed(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> tuple[Path, Path]:
    """Create `tls.crt`/`tls.key` for `hosts` under `directory` unless they already exist."""
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert_pem = self_signed_certificate(key, hosts).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is written owner-only before it has any content.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def self_signed_certificate(
    key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...]
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ccc-gateway demo ({hosts[0]})")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
