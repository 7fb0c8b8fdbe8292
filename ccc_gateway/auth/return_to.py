"""Where a person goes after signing in: only a path on this same origin.

Open redirects through a return-to parameter are a recurring CVE in auth proxies
(CVE-2020-5233 and friends): `//evil.example`, `/\\evil.example`, `https:evil.example`,
tabs and newlines that browsers strip, percent-encoded variants. Rather than list the bad
forms, accept one good form: an absolute path whose every character is printable ASCII
(besides %-escapes), which does not start with two slashes or a backslash after decoding.
Dot segments (`/./`, `/../`, also encoded) are refused too: a browser collapses
`/.//evil.example` to the path `//evil.example`, and any later code that rebuilds a URL from
that path goes off-site. The path is the part before the first `?` or `#` as sent, as a
browser reads it, and is judged after decoding.
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
_END_OF_PATH = re.compile(r"[?#]")


def safe_return_to(value: str | None) -> str:
    """`value` when it is a same-origin relative path, otherwise `/`."""
    if not value or len(value) > MAX_LENGTH or not _ALLOWED.match(value):
        return DEFAULT_RETURN_TO
    # The path is what a browser takes for it: up to the first real `?` or `#`. Split after
    # decoding, `/%3F/../..//evil.example` would hide its dot segments in a "query", while a
    # browser resolves them and lands on the path `//evil.example`.
    path = _END_OF_PATH.split(value, maxsplit=1)[0]
    return value if _harmless(_decoded(path), _decoded(value)) else DEFAULT_RETURN_TO


def _decoded(text: str) -> str:
    for _ in range(3):  # a few rounds of decoding catch double-encoded slashes
        text = unquote(text)
    return text


def _harmless(path: str, decoded: str) -> bool:
    if path.startswith("//") or "\\" in path:
        return False
    if any(segment in (".", "..") for segment in path.split("/")):
        return False
    # An escaped plain space (`%20`) is ordinary in a search query and stays escaped anyway.
    return not any(c != " " and unicodedata.category(c) in _INVISIBLE for c in decoded)
