"""What the benchmark serves and sends: the CRM page, a real session cookie, the gateway's
configuration and a canned ListSkillGroupsOfUser answer.

The cookie is made by the gateway's own SessionCodec from a realistic SignIn (an AliyunSTS
access token of ~1.5 KB, as Alibaba issues them), so its size and decode cost are the real ones.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from ccc_gateway.auth.oauth.tokens import TOKEN_TYPE_STS, TokenSet
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.manager import SESSION_COOKIE
from ccc_gateway.sessions.signin import Agent, SignIn

PAGE_PATH = "/customers.html"
PAGE_BYTES = 20 * 1024
INSTANCE_ID = "bench-instance"
# The API scenario is a classic call (ListSkillGroupsOfUser, API 2017-07-05), pinned now that
# the default is CCC 2.0: T compares with trees from before CCC 2.0 (which know the key, with
# only this value), so the comparison stays classic with classic.
CLASSIC_VERSION = "2017-07-05"
API_ACTION = "ListSkillGroupsOfUser"
STS_TOKEN_CHARS = 1500  # an AliyunSTS access token as Alibaba issues them (base64url JSON)
# Headers of a person's page navigation in a current browser (what the widget filter wants).
NAVIGATION_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate",
    "Accept-Language": "en-GB,en;q=0.9,zh-CN;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
}
CRM_COOKIES = "crm_session=" + "a" * 43 + "; crm_csrf=" + "b" * 32  # the CRM's own cookies


def crm_page(size: int = PAGE_BYTES) -> bytes:
    """A customer-list page of about `size` bytes, deterministic, with a `</body>`."""
    rng = random.Random(7)
    head = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Customers</title>'
        '<link rel="stylesheet" href="/static/crm.css"></head><body><h1>Customers</h1>'
        "<table><tr><th>Name</th><th>Phone</th><th>Company</th><th>Owner</th></tr>\n"
    )
    rows: list[str] = []
    tail = '</table><script src="/static/crm.js"></script></body></html>\n'
    while len(head) + sum(map(len, rows)) + len(tail) < size - 160:
        n = len(rows)
        rows.append(
            f'<tr><td><a href="/customer/{n}">Customer {n}</a></td>'
            f'<td><a href="tel:1350{rng.randrange(10**7, 10**8)}">1350…</a></td>'
            f"<td>Company {rng.randrange(1000)}</td><td>edward</td></tr>\n"
        )
    return (head + "".join(rows) + tail).encode()


def write_site(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / PAGE_PATH.lstrip("/")).write_bytes(crm_page())
    return root


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sts_access_token(chars: int = STS_TOKEN_CHARS) -> str:
    """base64url JSON {AccessKeyId, AccessKeySecret, SecurityToken} of about `chars`."""
    fields = {
        "AccessKeyId": "STS.NT" + secrets.token_hex(12),
        "AccessKeySecret": _b64(secrets.token_bytes(33)),
        "SecurityToken": "",
    }
    overhead = len(_b64(json.dumps(fields).encode()))
    # SecurityToken is itself base64 text of random bytes (incompressible, as in reality).
    fields["SecurityToken"] = _b64(secrets.token_bytes((chars - overhead) * 9 // 16))
    return _b64(json.dumps(fields).encode())


@dataclass(frozen=True)
class Session:
    key: str  # the Fernet key the gateway is configured with
    cookie: str  # the Cookie header a signed-in browser sends (session + CRM cookies)
    token_chars: int  # length of the sealed session token alone


def signed_in_session(now: float | None = None) -> Session:
    now = time.time() if now is None else now
    key = Fernet.generate_key().decode()
    tokens = TokenSet(
        access_token=sts_access_token(),
        token_type=TOKEN_TYPE_STS,
        expires_at=now + 3600,  # far from refresh_leeway: no refresh during the run
        refresh_token=secrets.token_urlsafe(48),
        scope="openid aliuid profile /acs/ccc",
    )
    agent = Agent("agent1@ccc-demo.onaliyun.com", "Agent One", str(random.randrange(10**15)))
    signin = SignIn.new(tokens, agent, None, now)  # crm_user None: binding off in the bench
    token = SessionCodec([key]).encode(signin.to_payload(), now=now)
    cookie = f"{CRM_COOKIES}; {SESSION_COOKIE}={token}"
    return Session(key, cookie, len(token))


def gateway_yaml(
    path: Path,
    *,
    port: int,
    upstream_port: int,
    pop_port: int,
    cert: Path,
    key: Path,
    session_key: str,
    workers: int = 1,
) -> Path:
    """The bench's gateway configuration (YAML, loaded by `ccc-gateway run --config`)."""
    dead = "http://127.0.0.1:9"  # OAuth endpoints are never called during the bench
    config = {
        "listen": {"host": "127.0.0.1", "port": port, "workers": workers},
        "tls": {"cert": str(cert), "key": str(key)},
        "upstream": {
            "url": f"http://127.0.0.1:{upstream_port}",
            "whoami_path": None,  # no CRM whoami in the bench: CRM binding is off
            # Makes every page request read the session (to send the agent to the CRM): the
            # per-request session lookup the architecture describes, and its worst case.
            "identity_headers": True,
        },
        "aliyun": {
            "client_id": "bench-client",
            "client_secret": "bench-secret",
            "redirect_uri": f"https://127.0.0.1:{port}/aliyun/auth/callback",
            **{
                k: f"{dead}/{k}"
                for k in ("authorize_url", "token_url", "revoke_url", "userinfo_url", "jwks_url")
            },
            "issuer": dead,
        },
        "ccc": {
            "instance_id": INSTANCE_ID,
            "endpoint": f"http://127.0.0.1:{pop_port}/",
            "version": CLASSIC_VERSION,
        },
        "session": {"keys": [session_key], "crm_binding": False},
        "softphone": {"inject": True},
        "log": {"level": "INFO", "format": "text", "access_log": True},
    }
    # JSON is YAML: no quoting pitfalls for keys and URLs.
    path.write_text(json.dumps(config, indent=2))
    return path


def pop_answer() -> bytes:
    """A ListSkillGroupsOfUser answer as the CCC OpenAPI sends it: two groups with numbers."""
    levels = []
    for n in range(2):
        numbers = [
            {
                "PhoneNumberId": f"pn-{n}-{i}",
                "Number": f"0215100{n}{i:03d}",
                "Usage": "Bidirection",
                "Province": "Shanghai",
                "City": "Shanghai",
                "InstanceId": INSTANCE_ID,
                "TestOnly": False,
                "RemainingTime": 0,
                "AllowOutbound": True,
                "Trunks": 1,
            }
            for i in range(3)
        ]
        levels.append(
            {
                "SkillLevelId": f"sl-{n}",
                "Level": 5 - n,
                "Skill": {
                    "InstanceId": INSTANCE_ID,
                    "SkillGroupId": f"sg-{n:04d}-{'f' * 24}",
                    "SkillGroupName": f"Group {n}",
                    "SkillGroupDescription": "Inbound sales",
                    "RoutingStrategy": "LongestIdle",
                    "OutboundPhoneNumbers": {"PhoneNumber": numbers},
                },
            }
        )
    body = {
        "RequestId": "6A2C1E51-0E7B-4C8E-9A53-7D0E1BB0E8F2",
        "Success": True,
        "Code": "OK",
        "HttpStatusCode": 200,
        "Message": "",
        "SkillLevels": {"SkillLevel": levels},
    }
    return json.dumps(body).encode()


def api_form() -> bytes:
    """The softphone SDK's form body for the API call (what the browser POSTs)."""
    from urllib.parse import urlencode

    return urlencode({"request": json.dumps({"instanceId": INSTANCE_ID})}).encode()
