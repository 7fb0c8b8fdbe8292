"""Where a person goes after signing in: only a path on this same origin.

Open redirects through a return-to parameter are a recurring CVE in auth proxies
(CVE-2020-5233 and friends): `//evil.example`, `/\\evil.example`, `https:evil.example`,
tabs and newlines that browsers strip, percent-encoded variants. Rather than list the bad
forms, accept one good form: an absolute path whose every character is printable ASCII
(besides %-escapes), which does not start with two slashes or a backslash after decoding.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

DEFAULT_RETURN_TO = "/"
MAX_LENGTH = 2048
# Printable ASCII without space, backslash and the characters browsers treat specially.
_ALLOWED = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$")


def safe_return_to(value: str | None) -> str:
    """`value` when it is a same-origin relative path, otherwise `/`."""
    if not value or len(value) > MAX_LENGTH or not _ALLOWED.match(value):
        return DEFAULT_RETURN_TO
    decoded = value
    for _ in range(3):  # a few rounds of decoding catch double-encoded slashes
        decoded = unquote(decoded)
    path = decoded.split("?", 1)[0]
    if (
        path.startswith(("//", "/\\"))
        or "\\" in path
        or any(c < " " or c == "\x7f" for c in decoded)
    ):
        return DEFAULT_RETURN_TO
    return value
