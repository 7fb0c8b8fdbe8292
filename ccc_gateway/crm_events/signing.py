"""The `X-CCC-Signature` header: HMAC-SHA256 over `<unix time>.<body>` (docs/crm/call-events.md).

Like Stripe's webhook signatures: the time is in the signed text, so a receiver that checks it
is recent cannot be fed an old event again, and the body is signed as sent (bytes), so no
JSON canonicalisation is needed on either side.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "X-CCC-Signature"
EVENT_ID_HEADER: Final = "X-CCC-Event-Id"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value: `t=<unix>,v1=<hex HMAC-SHA256 of "t." + body>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance` seconds of `now`.

    The receiver's side, for tests and the recipe; the gateway itself only signs.
    """
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
