"""Where the CRM may send the browser after login: same-site relative paths only."""

from __future__ import annotations

from urllib.parse import urlsplit

from yarl import URL

DEFAULT_NEXT = "/"
_MAX_NEXT_LENGTH = 2048
# Sending the user back to these after login would loop or hit a POST-only route.
_NOT_AFTER_LOGIN = ("/login", "/logout")


def safe_next(value: str | None) -> str:
    """``value`` when it is a same-site relative path, otherwise ``/``.

    Rejects absolute URLs, scheme-relative ``//host``, and backslashes and control characters,
    which browsers may turn into ``//host`` (``/\\evil.example``).
    """
    if not value or len(value) > _MAX_NEXT_LENGTH:
        return DEFAULT_NEXT
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    if parts.path.rstrip("/") in _NOT_AFTER_LOGIN:
        return DEFAULT_NEXT
    return value


def login_url(next_path: str | None) -> str:
    """The login page URL that returns to ``next_path`` (when that is safe) afterwards."""
    target = safe_next(next_path)
    if target == DEFAULT_NEXT:
        return "/login"
    return str(URL.build(path="/login", query={"next": target}))
