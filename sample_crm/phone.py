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


# A mainland mobile with China's country code (+86 or 0086): stored without it (1xx xxxx xxxx).
_CHINA_MOBILE = re.compile(r"(?:\+|00)86(1[3-9][0-9]{9})")


def lookup_candidates(raw: str) -> tuple[str, ...]:
    """The stored forms ``raw`` may match, most specific first (with ``+`` then without, then
    a Chinese mobile without its country code)."""
    number = normalise_phone(raw)
    if number is None:
        return ()
    candidates = (number, number[1:]) if number.startswith("+") else (number,)
    mobile = _CHINA_MOBILE.fullmatch(number)
    return (*candidates, mobile.group(1)) if mobile else candidates


def tel_href(number: str) -> str:
    """A ``tel:`` URI for a stored number (already only digits and an optional ``+``)."""
    return "tel:" + (normalise_phone(number) or "")
