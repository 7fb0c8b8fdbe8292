"""Where a person goes after signing in: only a path on this same origin.

Open redirects through a return-to parameter are a recurring CVE in auth proxies
(CVE-2020-5233 and friends): `//evil.example`, `/\\evil.example`, `https:evil.example`,
tabs and newlines that browsers strip, percent-encoded variants. Rather than list the bad
forms, accept one good form: an absolute path whose every character is printable ASCII
(besides %-escapes), which does not start with two slashes or a backslash after decoding.
Dot segments (`/./`, `/../`) are refused too: a browser collapses `/.//evil.example` to the
path `//evil.example`, and any later code that rebuilds a URL from that path goes off-site.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

DEFAULT_RETURN_TO = "/"
MAX_LENGTH = 2048
# Printable ASCII without space, backslash and the characters browsers treat specially.
_ALLOWED = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$")
# Control, format (bidi marks, zero-width joiners) and separator characters: invisible or
# stripped by browsers, so what the person sees is not where they go.
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def safe_return_to(value: str | None) -> str:
    """`value` when it is a same-origin relative path, otherwise `/`."""
    if not value or len(value) > MAX_LENGTH or not _ALLOWED.match(value):
        return DEFAULT_RETURN_TO
    decoded = value
    for _ in range(3):  # a few rounds of decoding catch double-encoded slashes
        decoded = unquote(decoded)
    return value if _harmless(decoded) else DEFAULT_RETURN_TO


def _harmless(decoded: str) -> bool:
    path = decoded.split("?", 1)[0].split("#", 1)[0]
    if path.startswith("//") or "\\" in path:
        return False
    if any(segment in (".", "..") for segment in path.split("/")):
        return False
    # An escaped plain space (`%20`) is ordinary in a search query and stays escaped anyway.
    return not any(c != " " and unicodedata.category(c) in _INVISIBLE for c in decoded)
