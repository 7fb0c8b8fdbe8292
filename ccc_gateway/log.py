"""Logging: text or JSON lines, one access line per request, and a redaction filter.

The gateway handles bearer tokens, OAuth codes, client secrets and phone numbers. Code is
written never to log them; the `RedactingFilter` is the second line of defence, scrubbing
anything that looks like one from every record before it is formatted.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

ACCESS_LOGGER = "ccc_gateway.access"
AUDIT_LOGGER = "ccc_gateway.audit"

# key=value / "key": "value" pairs whose value is a credential.
_SECRET_PAIR = re.compile(
    r"""(?ix)
    ((?<![\w-])["']?(?:access_token|refresh_token|id_token|client_secret|code_verifier|code|token|
    bearertoken|securitytoken|accesskeysecret|signature|password|authorization|cookie|
    set-cookie|session)["']?\s*[=:]\s*["']?)
    ([^"'&\s,;}]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
# Phone numbers: keep the first 3 and last 2 digits, enough to tell calls apart in a log.
_PHONE = re.compile(r"(?<![\w.])(\+?\d{3})(\d{4,10})(\d{2})(?![\w.])")
# What each pattern above needs at the least: a "=" or ":" after the name, the word "bearer",
# nine digits in a row. Most text (an access line's path, a request id, an address) has none
# of them, and one search for that is a quarter of the three substitutions' cost.
_MAYBE_SECRET = re.compile(r"[=:]|(?i:bearer)|\d{9}")


# Log texts repeat (an access line's "GET /customers.html 200", the same address): those
# found to hold nothing to redact are remembered, so the next copy costs a set lookup instead
# of the search above (~400 instructions per character). Only clean texts are kept, never
# one that held a secret; bounded in count and length.
_CLEAN_TEXTS: set[str] = set()
_CLEAN_TEXTS_MAX = 1024
_CLEAN_TEXT_MAX_CHARS = 256


def redact(text: str) -> str:
    if text in _CLEAN_TEXTS:
        return text
    if _MAYBE_SECRET.search(text) is None:
        if len(text) <= _CLEAN_TEXT_MAX_CHARS:
            if len(_CLEAN_TEXTS) >= _CLEAN_TEXTS_MAX:
                _CLEAN_TEXTS.clear()
            _CLEAN_TEXTS.add(text)
        return text
    # Bearer first: "Authorization: Bearer x" would otherwise lose only the word "Bearer".
    text = _BEARER.sub(lambda m: m.group(1) + "[redacted]", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + "[redacted]", text)
    return mask_phone_numbers(text)


def mask_phone_numbers(text: str) -> str:
    return _PHONE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and string extras) with secrets and phones masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        return True


class _SecondClock:
    """`strftime` of a record's second, computed once per second rather than once per line.

    With an access line per request, `time.strftime` was a tenth of the cost of a line.
    """

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self._fmt = fmt
        self._convert = convert
        self._second = -1
        self._text = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            # Two threads may both recompute here; each writes a correct pair, so no lock.
            self._text = time.strftime(self._fmt, self._convert(second))
            self._second = second
        return self._text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra={"fields": …}`."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _SecondClock("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{self._clock(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(_scrubbed(fields))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._clock = _SecondClock(self.default_time_format, self.converter)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        # logging's own default ("2026-01-31 12:00:00,123"), with the second's text cached.
        return f"{self._clock(record.created)},{int(record.msecs):03d}"

    def usesTime(self) -> bool:
        return True  # the format above shows asctime; no need to search it for every record

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The format string above, without %-formatting against the record's whole __dict__.
        return f"{record.asctime} {record.levelname} {record.name}: {record.message}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            # The same rule as _scrubbed's, inline: this runs for every access line.
            line += " " + " ".join(
                [
                    f"{k}={redact(v) if isinstance(v, str) and k not in VERBATIM_FIELDS else v}"
                    for k, v in fields.items()
                ]
            )
        return line


# Fields whose values cannot hold a credential or a phone number, printed without the
# redaction pass: a request id (the middleware keeps a client's only if it matches
# [A-Za-z0-9._-]{1,128}, else makes one) and the client's socket address. Masking digit runs
# in a request id would only break its correlation with the CRM's and the client's logs.
VERBATIM_FIELDS = frozenset({"request_id", "remote"})


def _scrubbed(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every string value redacted, but for VERBATIM_FIELDS'."""
    return {
        name: redact(value) if isinstance(value, str) and name not in VERBATIM_FIELDS else value
        for name, value in fields.items()
    }


def setup_logging(level: str = "INFO", fmt: str = "text", *, access_log: bool = True) -> None:
    """Configure the root logger once: one handler on stderr, redaction on every record."""
    # Neither formatter shows the source line, thread or process of a record, so logging need
    # not look them up for each one (the logging HOWTO's "Optimization"): walking the stack
    # for the caller was 40 % of making an access line's record.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's own access logger is replaced by ours (which carries the request id).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # An access line per request is the largest single cost of a proxied page after the
    # sockets themselves (bench/RESULTS.md); operators who log at the load balancer turn it off.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.WARNING)
