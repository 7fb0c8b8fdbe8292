"""Logging: text or JSON lines, one access line per request, and a redaction filter.

The gateway handles bearer tokens, OAuth codes, client secrets and phone numbers. Code is
written never to log them; the `RedactingFilter` is the second line of defence, scrubbing
anything that looks like one from every record before it is formatted, whichever logger made
it (aiohttp's parser errors quote the raw request line that failed, a Cookie header included)
and its traceback too.

Every record is one line: `LineHandler.write_line`, the one place lines are written, escapes
control characters (`one_line`), so a `%0a` in a path cannot start a forged line.
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
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(_scrubbed(fields))
        if record.exc_text:  # set, redacted, by RedactingFilter
            entry["exception"] = redact(record.exc_text)
        elif record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)

    def entry(self, created: float, level: str, name: str, message: str) -> dict[str, Any]:
        # int(LogRecord.msecs), computed as LogRecord computes it.
        msecs = int((created - int(created)) * 1000)
        return {
            "time": f"{self._clock(created)}.{msecs:03d}Z",
            "level": level,
            "logger": name,
            "message": message,
        }

    def line(self, created: float, level: str, name: str, message: str, fields: Fields) -> str:
        """What `format` makes of a record without exception, made without a record."""
        entry = self.entry(created, level, name, message)
        entry.update(_scrubbed(fields))
        return json.dumps(entry, ensure_ascii=False, default=str)


_COMMA_MILLIS = [f",{ms:03d}" for ms in range(1000)]  # a table: format(ms, "03d") is dearer


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._clock = _SecondClock(self.default_time_format, self.converter)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        # logging's own default ("2026-01-31 12:00:00,123"), with the second's text cached;
        # the milliseconds are int(LogRecord.msecs), computed as LogRecord computes it.
        return self._clock(created) + _COMMA_MILLIS[int((created - int(created)) * 1000)]

    def usesTime(self) -> bool:
        return True  # the format above shows asctime; no need to search it for every record

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The format string above, without %-formatting against the record's whole __dict__.
        return f"{record.asctime} {record.levelname} {record.name}: {record.message}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += fields_text(fields)
        return line

    def line(self, created: float, level: str, name: str, message: str, fields: Fields) -> str:
        """What `format` makes of a record without exception, made without a record."""
        text = f"{self.stamp(created)} {level} {name}: {message}"
        return text + fields_text(fields) if fields else text


def fields_text(fields: Fields) -> str:
    """ " k=v k=v…" as a text line shows `fields` after its message, string values redacted
    as _scrubbed does (every audit line's fields pass here)."""
    return " " + " ".join(
        [
            f"{k}={redact(v) if isinstance(v, str) and k not in VERBATIM_FIELDS else v}"
            for k, v in fields.items()
        ]
    )


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


class LineHandler(logging.StreamHandler[TextIO]):
    """The gateway's one handler: formatted, redacted lines on a stream, one write() each.

    It also takes lines made without a LogRecord (`log_fields`), which is only right while
    it is the sole destination of a logger's records and configured as setup_logging made it.
    """

    def __init__(self, stream: TextIO, formatter: TextFormatter | JsonFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.addFilter(RedactingFilter())
        self.line_formatter = formatter
        self._own_filters = list(self.filters)
        assert self.lock is not None  # made by Handler.__init__: the lock handle() holds
        self._lock = self.lock

    def sole_destination_of(self, logger: logging.Logger, level: int) -> bool:
        """Records of `logger` at `level` would reach this handler only, and as configured."""
        if (
            logger.filters
            or logger.disabled
            or level < self.level
            or self.formatter is not self.line_formatter
            or self.filters != self._own_filters
        ):
            return False
        reached = False
        node: logging.Logger | None = logger
        while node is not None:  # the walk of Logger.callHandlers
            if node.handlers:
                if reached or len(node.handlers) != 1 or node.handlers[0] is not self:
                    return False
                reached = True
            node = node.parent if node.propagate else None
        return reached

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


_handler: LineHandler | None = None  # the one setup_logging installed


def log_fields(logger: logging.Logger, message: str, fields: Fields) -> None:
    """`logger.info(message, extra={"fields": fields})`, for a logger enabled for INFO.

    When the handler setup_logging installed is the only one the record would reach (the
    usual case; not under pytest's caplog, say), the line is made without the LogRecord,
    the logger walk and the filter: byte for byte what they would have written, redaction
    included, for a fifth of the cost (an access line per request).
    """
    handler = _handler
    if handler is None or not handler.sole_destination_of(logger, logging.INFO):
        logger.info(message, extra={"fields": fields})
        return
    # RedactingFilter's work on the message; the formatter redacts the fields.
    line = handler.line_formatter.line(time.time(), "INFO", logger.name, redact(message), fields)
    handler.write_line(line)


def redact_masked(text: str | None) -> str:
    """How a line shows a field value that was phone-masked first: `fields_text`'s text of
    `mask_phone_numbers(text)` ("None" for None).

    A text known clean (redact's set) has no nine digits in a row, so masking leaves it as
    it is: the usual request id of an answer seen before costs a set lookup.
    """
    if text is None:
        return "None"
    if text in _CLEAN_TEXTS:
        return text
    return redact(mask_phone_numbers(text))


def log_text_line(logger: logging.Logger, text: str) -> bool:
    """Write an INFO line of `logger` whose message and fields are `text` (made redacted,
    as `TextFormatter.line` makes them), when the text handler setup_logging installed is
    its only destination; False, with nothing written, when the line must be logged with
    `log_fields` instead (JSON lines, caplog, another handler).

    For lines whose message and leading fields repeat: their text is made once, not redacted
    and joined again for every line.
    """
    handler = _handler
    if (
        handler is None
        or type(handler.line_formatter) is not TextFormatter
        or not handler.sole_destination_of(logger, logging.INFO)
    ):
        return False
    handler.write_line(f"{handler.line_formatter.stamp(time.time())} INFO {logger.name}: {text}")
    return True


def log_access(
    logger: logging.Logger,
    message: str,
    request_id: str,
    duration_ms: float,
    size: int,
    remote: str | None,
) -> None:
    """`log_fields` of the access line, written once per request: the same bytes.

    Its fields are never redacted (the request id and the address are VERBATIM_FIELDS, the
    others numbers), so a text line is made in one f-string, without `fields_text`'s
    per-field checks and join, nor a dict built only to be iterated: a third of the line's cost.
    """
    handler = _handler
    if handler is None or not handler.sole_destination_of(logger, logging.INFO):
        logger.info(
            message, extra={"fields": _access_fields(request_id, duration_ms, size, remote)}
        )
        return
    formatter = handler.line_formatter
    created = time.time()
    message = redact(message)  # RedactingFilter's work on the message
    if type(formatter) is TextFormatter:
        line = (
            f"{formatter.stamp(created)} INFO {logger.name}: {message} request_id={request_id}"
            f" duration_ms={duration_ms} bytes={size} remote={remote}"
        )
    else:
        fields = _access_fields(request_id, duration_ms, size, remote)
        line = formatter.line(created, "INFO", logger.name, message, fields)
    handler.write_line(line)


def _access_fields(request_id: str, duration_ms: float, size: int, remote: str | None) -> Fields:
    return {"request_id": request_id, "duration_ms": duration_ms, "bytes": size, "remote": remote}


def setup_logging(level: str = "INFO", fmt: str = "text", *, access_log: bool = True) -> None:
    """Configure the root logger once: one handler on stderr, redaction on every record."""
    # Neither formatter shows the source line, thread or process of a record, so logging need
    # not look them up for each one (the logging HOWTO's "Optimization"): walking the stack
    # for the caller was 40 % of making an access line's record.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _handler
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler = LineHandler(sys.stderr, formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    _handler = handler
    root.setLevel(level)
    # aiohttp's own access logger is replaced by ours (which carries the request id).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # An access line per request is the largest single cost of a proxied page after the
    # sockets themselves (bench/RESULTS.md); operators who log at the load balancer turn it off.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.WARNING)
