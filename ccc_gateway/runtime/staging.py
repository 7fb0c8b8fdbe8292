"""The gateway against the emulator, for staging: the config snippet and `emulator call`.

`ccc-gateway emulator` prints what to paste into a gateway configuration so that a gateway in
front of a real CRM signs in to and calls the emulator instead of Alibaba (docs/crm/README.md,
"Staging against the emulator"). `ccc-gateway emulator call` rings an agent's softphone, as
the form on the emulator's home page does, through the emulator's test route.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from ccc_gateway.emulator.settings import (
    CCC2_VERSION,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_INSTANCE_ID_V2,
    SDK_FILES,
)
from ccc_gateway.runtime.tls import client_context


def config_snippet(url: str, ca_file: Path) -> str:
    """The aliyun, ccc and softphone keys that point a gateway at the emulator at `url`.

    CCC 2.0, the gateway's default generation: the emulator's 2.0 instance and its stand-in of
    the 3.x SDK, whose calls travel over the emulator's own websocket (hence csp_sources).
    """
    base = url.rstrip("/")
    script, style = SDK_FILES["v3"]
    return f"""\
# Paste into the gateway's configuration to use this emulator instead of Alibaba Cloud.
# Register the gateway's redirect_uri with `ccc-gateway emulator --redirect-uri URL`.
aliyun:
  client_id: "{DEMO_CLIENT_ID}"
  client_secret: "{DEMO_CLIENT_SECRET}"
  authorize_url: {base}/oauth2/v1/auth
  token_url: {base}/v1/token
  revoke_url: {base}/v1/revoke
  userinfo_url: {base}/v1/userinfo
  jwks_url: {base}/v1/keys
  issuer: {base}
  ca_file: {ca_file}
ccc:
  instance_id: {DEMO_INSTANCE_ID_V2}    # classic: ccc-demo-instance with version "2017-07-05"
  version: "{CCC2_VERSION}"
  endpoint: {base}/
softphone:
  sdk: v3                       # classic: v1, with the emulator's workbenchSdk.js
  sdk_scripts: ["{base}/_emulator/sdk/{script}"]
  sdk_styles: ["{base}/_emulator/sdk/{style}"]
  csp_sources: {{connect-src: ["wss://{base.split("://", 1)[1]}"]}}
"""


class CallFailed(Exception):
    """The emulator did not ring the agent; the message says why."""


def ring(url: str, agent: str, caller: str, ca_file: Path | None, timeout: float = 10.0) -> str:
    """Push an incoming call from `caller` to `agent`'s softphone; the new call's id."""
    body = json.dumps({"agent": agent, "caller": caller}).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the operator's own emulator URL
        url.rstrip("/") + "/_emulator/calls",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    context: ssl.SSLContext | None = client_context(ca_file) if ca_file is not None else None
    try:
        opened = urllib.request.urlopen(request, timeout=timeout, context=context)  # noqa: S310
        with opened as answer:
            return str(json.loads(answer.read()).get("id", "?"))
    except urllib.error.HTTPError as error:
        reason = _error_text(error)
        if error.code == 409:
            raise CallFailed(f"{agent} has no softphone connected: open it first") from None
        raise CallFailed(f"the emulator refused the call ({error.code}): {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise CallFailed(f"cannot reach the emulator at {url}: {error}") from None


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("error", ""))
    except (ValueError, AttributeError):
        return ""
