"""What a person reads, in Simplified Chinese and English (README "Languages").

One catalog per language (`en.py`, `zh_CN.py`), the same keys in both (tests/test_i18n.py).
The server pages look their sentences up here; the widget and the softphone page get the
catalog of the scripts (keys starting `ui.`) inlined by the code that serves them.

The rule, once: `ui.language` zh-CN or en is used as configured; `auto` follows the browser.
JSON error bodies are not translated: programs read their English `message` and `errorCode`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ccc_gateway.i18n import en, zh_CN

ENGLISH = "en"
CHINESE = "zh-CN"
CATALOGS: Mapping[str, Mapping[str, str]] = {ENGLISH: en.MESSAGES, CHINESE: zh_CN.MESSAGES}


def pick_language(accept_language: str | None, configured: str) -> str:
    """The language to show: `configured` unless `auto`, then the browser's preference.

    The browser's most preferred tag (by q-value) that is Chinese (`zh*`) or English wins;
    a browser preferring neither gets English.
    """
    if configured in CATALOGS:
        return configured
    for tag in _ranked_tags(accept_language or ""):
        if tag.startswith("zh"):
            return CHINESE
        if tag.startswith("en"):
            return ENGLISH
    return ENGLISH


def _ranked_tags(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:32]):  # a header of thousands: the first few
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.lower()))
    return [tag for _, _, tag in sorted(ranked)]


def text(language: str, key: str, **values: str) -> str:
    """The sentence `key` in `language`, `{name}` placeholders filled from `values`."""
    template = CATALOGS.get(language, en.MESSAGES)[key]
    return template.format(**values) if values else template


def script_catalog(language: str) -> dict[str, str]:
    """The strings of the widget and the softphone page (keys `ui.*`), for inlining."""
    return {k: v for k, v in CATALOGS[language].items() if k.startswith("ui.")}


__all__ = ["CATALOGS", "CHINESE", "ENGLISH", "pick_language", "script_catalog", "text"]
