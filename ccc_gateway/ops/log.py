"""Logging: text or JSON lines, one access line per request, and a redaction filter.

The gateway handles bearer tokens, OAuth codes, client secrets and phone numbers. Code is
written never to log them; the `RedactingFilter` is the second line of defence, scrubbing
anything that looks like one from every record before it is formatted, whichever logger made
it (aiohttp's parser errors quote the raw request line that failed, a Cookie header included)
and its traceback too.

There is one way to log: a `logging` record (`logger.info(message, extra={"fields": …})`),
through `LineHandler`, its `RedactingFilter` and one formatter per format. `redact` is the one
redaction function (credentials, the gateway's cookie values, phone numbers). Every record is
one line: `LineHandler.write_line`, the one place lines are written, escapes control
characters (`one_line`), so a `%0a` in a path cannot start a forged line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

Fields = dict[str, Any]  # a record's `extra={"fields": …}`: printed as k=v or JSON members

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
# The gateway's own cookies, wherever they stand in a Cookie header (the pair above catches
# only the first value after "Cookie:"): the name stays, the value goes.
_GATEWAY_COOKIE = re.compile(r"(?i)(__Host-ccc-[A-Za-z0-9_.-]*=)[^;\s\"'\\,&]+")
# Phone numbers: keep the first 3 and last 2 digits, enough to tell calls apart in a log.
_PHONE = re.compile(r"(?<![\w.])(\+?\d{3})(\d{4,10})(\d{2})(?![\w.])")
# What each pattern above needs at the least: a "=" or ":" after the name, the word "bearer",
# nine digits in a row. Most text (an access line's path, an address) has none of them, and
# then one search replaces the substitutions (figures in bench/RESULTS.md).
_MAYBE_SECRET = re.compile(r"[=:]|(?i:bearer)|\d{9}")


def redact(text: str) -> str:
    """`text` with credentials, the gateway's cookie values and phone numbers masked."""
    if _MAYBE_SECRET.search(text) is None:
        return text
    # Bearer first: "Authorization: Bearer x" would otherwise lose only the word "Bearer".
    text = _BEARER.sub(lambda m: m.group(1) + "[redacted]", text)
    text = _GATEWAY_COOKIE.sub(lambda m: m.group(1) + "[redacted]", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + "[redacted]", text)
    return mask_phone_numbers(text)


def mask_phone_numbers(text: str) -> str:
    return _PHONE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


# Characters that end or disturb a line: C0 controls, DEL, C1 controls (NEL among them) and
# the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def one_line(text: str) -> str:
    """`text` with every control character escaped (`\\n`, `\\r`, `\\t`, else `\\uXXXX`).

    The escapes are JSON's own, so a JSON line stays valid JSON. Most lines are printable
    (one C-speed check); the search runs only on the others.
    """
    if text.isprintable():
        return text
    return _CONTROL.sub(_escape, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, traceback and stack with secrets and phones masked."""

    _formatter = logging.Formatter()  # how both formatters write a traceback

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set: the redacted traceback, then.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _SecondClock:
    """`strftime` of a record's second, computed once per second rather than once per line
    (an access line per request; bench/RESULTS.md)."""

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
        created = record.created
        entry: dict[str, Any] = {
            # int(LogRecord.msecs), computed as LogRecord computes it.
            "time": f"{self._clock(created)}.{int((created - int(created)) * 1000):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(scrubbed(fields))
        if record.exc_text:  # set, redacted, by RedactingFilter
            entry["exception"] = redact(record.exc_text)
        elif record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


_COMMA_MILLIS = [f",{ms:03d}" for ms in range(1000)]  # ",000" … ",999", made once


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._clock = _SecondClock(self.default_time_format, self.converter)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        # logging's own default ("2026-01-31 12:00:00,123"), with the second's text kept;
        # the milliseconds are int(LogRecord.msecs), computed as LogRecord computes it.
        created = record.created
        return self._clock(created) + _COMMA_MILLIS[int((created - int(created)) * 1000)]

    def usesTime(self) -> bool:
        return True  # the format above shows asctime; no need to search it for every record

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The format string above, without %-formatting against the record's whole __dict__.
        return f"{record.asctime} {record.levelname} {record.name}: {record.message}"

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            line = super().format(record)
        else:
            # What Formatter.format does for a record with no traceback and no stack, without
            # its generic steps (an access line per request; bench/RESULTS.md).
            record.message = record.getMessage()
            record.asctime = self.formatTime(record)
            line = self.formatMessage(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += fields_text(fields)
        return line


def fields_text(fields: Fields) -> str:
    """ " k=v k=v…" as a text line shows `fields` after its message, redacted by `scrubbed`."""
    return " " + " ".join([f"{k}={v}" for k, v in scrubbed(fields).items()])


# Fields whose values cannot hold a credential or a phone number, printed without the
# redaction pass: a request id (the middleware keeps a client's only if it matches
# [A-Za-z0-9._-]{1,128}, else makes one) and the client's socket address. Masking digit runs
# in a request id would only break its correlation with the CRM's and the client's logs.
VERBATIM_FIELDS = frozenset({"request_id", "remote"})


class Scrubbed(dict[str, Any]):
    """Fields that went through `scrubbed`: a formatter prints them as they are, rather than
    redacting every value a second time (the audit line scrubs its fields before its record
    exists)."""


def scrubbed(fields: Fields) -> Scrubbed:
    """`fields` with every string value redacted, but for VERBATIM_FIELDS'.

    The formatters apply it; a caller whose record other handlers may see too (the audit
    line, under a test's caplog or an operator's extra handler) applies it first as well.
    Fields already scrubbed are returned as they are.
    """
    if isinstance(fields, Scrubbed):
        return fields
    out = Scrubbed(fields)
    texts = [v for k, v in fields.items() if isinstance(v, str) and k not in VERBATIM_FIELDS]
    # What `redact` finds in one value it finds in them all joined: when the joined text has
    # nothing that may be a secret, no value has, and one search replaces one per value
    # (the audit line's four; bench/RESULTS.md, session 6, later).
    if not texts or _MAYBE_SECRET.search("\n".join(texts)) is None:
        return out
    for name, value in fields.items():
        if isinstance(value, str) and name not in VERBATIM_FIELDS:
            out[name] = redact(value)
    return out


class LineHandler(logging.StreamHandler[TextIO]):
    """The gateway's one handler: formatted, redacted lines on a stream, one write() each."""

    def __init__(self, stream: TextIO, formatter: TextFormatter | JsonFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.addFilter(RedactingFilter())
        assert self.lock is not None  # made by Handler.__init__: the lock handle() holds
        self._lock = self.lock

    def emit(self, record: logging.LogRecord) -> None:
        """StreamHandler.emit, through write_line: every line is written in one place."""
        try:
            line = self.format(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)

    def write_line(self, line: str) -> None:
        """Write one line, its control characters escaped: a record never spans two lines, so
        text from a request (a path with `%0a`, a header quoted in an error) cannot pass for a
        line of its own. A traceback becomes one line too, its line breaks written `\\n`."""
        line = one_line(line)
        with self._lock:
            try:
                self.stream.write(line + self.terminator)
                self.stream.flush()
            except RecursionError:
                raise
            except Exception:
                # handleError's report, without a record to name.
                if logging.raiseExceptions and sys.stderr:
                    sys.stderr.write("--- Logging error ---\n")
                    traceback.print_exc(file=sys.stderr)


def setup_logging(level: str = "INFO", fmt: str = "text", *, access_log: bool = True) -> None:
    """Configure the root logger once: one handler on stderr, redaction on every record."""
    # Neither formatter shows the source line, thread or process of a record, so logging need
    # not look them up for each one (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler = LineHandler(sys.stderr, formatter)
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
