"""Scenario F's peer: Apache httpd + mod_auth_openidc in front of the same upstream.

It does what the gateway does for a signed-in page: terminates TLS with the same certificate,
reads the sign-in from a client-side session cookie (`OIDCSessionType client-cookie`: an
encrypted JWT carrying the tokens and claims, as the gateway's Fernet cookie does), passes the
user's claims to the upstream as headers, strips its session cookie from what the upstream
gets (as the gateway does), proxies over a keep-alive pool with X-Forwarded-*,
and writes one access-log line per request.

OIDC runs against the repo's Alibaba emulator (`ccc-gateway emulator`) through its discovery
document, trusting the emulator's certificate (the bench's own self-signed one) with
`OIDCCABundlePath`. The emulator's access tokens are `token_type: Bearer` by default; its
`sts` format (`AliyunSTS`) is refused by mod_auth_openidc, which wants Bearer tokens for the
userinfo endpoint.

One server process: mpm_event with `ServerLimit 1`, so the parent only supervises (as
nginx's master does) and one child serves every connection with its threads, Apache's only
way of running a blocking proxy hop concurrently within a process. `-X` would give one
process too, but it is httpd's debug mode (signals, no child management), not how it runs.
The child's threads can use both cores where the gateway's one event loop uses one: compare
CPU per request first; the row's note says how many cores Apache kept busy.

`signed_in_cookie()` drives the OIDC flow once, as a browser would, and returns the session
cookie(s) mod_auth_openidc set.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import secrets
import shutil
import ssl
from pathlib import Path

from yarl import URL

MODULES = Path("/usr/lib/apache2/modules")
OIDC_MODULE = MODULES / "mod_auth_openidc.so"
SESSION_COOKIE_PREFIX = "mod_auth_openidc_session"
REDIRECT_PATH = "/redirect_uri"
THREADS = 64  # one per wrk connection: a thread is busy for the whole proxied request

_MODULES = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("headers_module", "mod_headers.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("ssl_module", "mod_ssl.so"),
    ("auth_openidc_module", "mod_auth_openidc.so"),
)

CONF = """\
ServerRoot {prefix}
ServerName 127.0.0.1
PidFile {prefix}/httpd.pid
DefaultRuntimeDir {prefix}/run
ErrorLog {prefix}/error.log
LogLevel warn
{modules}
{user}
Listen 127.0.0.1:{port}
DocumentRoot {prefix}/htdocs

# One server process (see bench/apache.py): the parent supervises, one child serves.
StartServers 1
ServerLimit 1
ThreadLimit {threads}
ThreadsPerChild {threads}
MaxRequestWorkers {threads}
MinSpareThreads 1
MaxSpareThreads {threads}
MaxConnectionsPerChild 0

KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" bench
CustomLog {prefix}/access.log bench

SSLEngine on
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
SSLSessionCache none

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCCABundlePath {ca}
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI https://127.0.0.1:{port}{redirect_path}
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid profile"
OIDCSessionType client-cookie
# The upstream never sees the session, as the gateway strips its own cookie (the same work).
OIDCStripCookies {session_cookies}
# The bench replays one cookie for minutes: no inactivity expiry, no refresh during the run.
OIDCSessionInactivityTimeout 86400
OIDCSessionMaxDuration 86400

<Location />
    AuthType openid-connect
    Require valid-user
</Location>

ProxyPass {redirect_path} !
ProxyPass / http://127.0.0.1:{upstream_port}/
ProxyPassReverse / http://127.0.0.1:{upstream_port}/
ProxyPreserveHost On
RequestHeader set X-Forwarded-Proto https
"""


def apache_binary() -> str | None:
    return shutil.which("apache2") or next(
        (p for p in ("/usr/sbin/apache2", "/usr/sbin/httpd") if Path(p).is_file()), None
    )


def available() -> bool:
    return apache_binary() is not None and OIDC_MODULE.is_file()


def conf(
    directory: Path,
    *,
    port: int,
    upstream_port: int,
    cert: Path,
    key: Path,
    issuer: str,
    ca: Path,
    client_id: str,
    client_secret: str,
) -> Path:
    for sub in ("", "run", "htdocs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / sub).chmod(0o755)
    # As root httpd's child drops to www-data (it reads the certificate, not the key, then).
    user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
    text = CONF.format(
        prefix=directory,
        modules="\n".join(f"LoadModule {name} {MODULES / so}" for name, so in _MODULES),
        user=user,
        port=port,
        threads=THREADS,
        cert=cert,
        key=key,
        issuer=issuer.rstrip("/"),
        ca=ca,
        client_id=client_id,
        client_secret=client_secret,
        redirect_path=REDIRECT_PATH,
        passphrase=secrets.token_urlsafe(32),
        session_cookies=" ".join(
            [SESSION_COOKIE_PREFIX, f"{SESSION_COOKIE_PREFIX}_chunks"]
            + [f"{SESSION_COOKIE_PREFIX}_{i}" for i in range(4)]
        ),
        upstream_port=upstream_port,
    )
    path = directory / "httpd.conf"
    path.write_text(text)
    return path


def argv(conf_path: Path) -> list[str]:
    binary = apache_binary()
    if binary is None:
        raise RuntimeError("apache2 is not installed (bench/setup.sh installs it)")
    return [binary, "-f", str(conf_path), "-DFOREGROUND"]


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]*)">')


async def _sign_in(url: str, ca: Path, username: str, password: str) -> dict[str, str]:
    import aiohttp

    context = ssl.create_default_context(cafile=str(ca))
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP-address host
    async with aiohttp.ClientSession(
        cookie_jar=jar, connector=aiohttp.TCPConnector(ssl=context)
    ) as http:
        # Protected page → 302 to the emulator's authorize endpoint → its sign-in form.
        async with http.get(url, headers={"Accept": "text/html"}) as response:
            page = await response.text()
            signin_url = response.url
        action = _FORM_ACTION.search(page)
        if response.status != 200 or action is None:
            raise RuntimeError(
                f"F: expected the emulator's sign-in form at {signin_url}, got "
                f"{response.status}: {page[:300]!r}"
            )
        form = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page)}
        form |= {"username": username, "password": password, "action": "signin"}
        target = signin_url.join(URL(html.unescape(action.group(1))))
        # Sign-in → 302 to mod_auth_openidc's redirect URI with the code → the code exchanged,
        # the session cookie set → 302 back to the page.
        async with http.post(target, data=form) as response:
            body = await response.read()
            if response.status != 200 or response.url.path != URL(url).path:
                raise RuntimeError(
                    f"F: sign-in did not land on the page: {response.status} at "
                    f"{response.url}: {body[:300]!r}"
                )
        cookies = {name: m.value for name, m in jar.filter_cookies(URL(url)).items()}
    return {k: v for k, v in cookies.items() if k.startswith(SESSION_COOKIE_PREFIX)}


def signed_in_cookie(url: str, ca: Path, username: str, password: str) -> str:
    """The Cookie header value of a browser signed in to Apache through the emulator."""
    cookies = asyncio.run(_sign_in(url, ca, username, password))
    if not cookies:
        raise RuntimeError("F: mod_auth_openidc set no session cookie")
    return "; ".join(f"{k}={v}" for k, v in sorted(cookies.items()))
