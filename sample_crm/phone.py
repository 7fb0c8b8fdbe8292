"""Phone number normalisation for lookups and tel: links.

Numbers arrive from screen pops and hand-typed URLs in many shapes (``+86 135-0123-4567``);
stored numbers are bare digit strings as the contract writes them (``135012345678``).
"""

from __future__ import annotations

import re

# Separators people and phone systems put into numbers; they carry no meaning for matching.
_SEPARATORS = re.compile(r"[\s\-.()/]")
_VALID = re.compile(r"\+?[0-9]{1,20}")


def normalise_phone(raw: str) -> str | None:
    """Digits of ``raw`` with an optional leading ``+``; None when it is not a phone number."""
    compact = _SEPARATORS.sub("", raw)
    if not _VALID.fullmatch(compact):
        return None
    return compact


def lookup_candidates(raw: str) -> tuple[str, ...]:
    """The stored forms ``raw`` may match, most specific first (with ``+`` then without)."""
    number = normalise_phone(raw)
    if number is None:
        return ()
    if number.startswith("+"):
        return (number, number[1:])
    return (number,)


def tel_href(number: str) -> str:
    """A ``tel:`` URI for a stored number (already only digits and an optional ``+``)."""
    return "tel:" + (normalise_phone(number) or "")
