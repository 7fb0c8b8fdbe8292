"""Logging: redaction of credentials and phone numbers, JSON lines, the access-log switch."""

from __future__ import annotations

import json
import logging
import sys
import time

import pytest

from ccc_gateway.ops.log import (
    ACCESS_LOGGER,
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    mask_phone_numbers,
    redact,
    setup_logging,
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("access_token=abc.def-123", "abc.def-123"),
        ('{"refresh_token": "1vpn8NKWBK2lLvhf"}', "1vpn8NKWBK2lLvhf"),
        ("client_secret=E1QGQUDMSq/WTt83=", "E1QGQUDMSq"),
        ("GET /aliyun/auth/callback?code=NTZ4wOaGVacs&state=x", "NTZ4wOaGVacs"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
        ("BearerToken=opaque-token-value", "opaque-token-value"),
        ("SecurityToken=CAIS-long-token", "CAIS-long-token"),
        ("Cookie: __Host-ccc-session=gAAAAAB", "gAAAAAB"),
    ],
)
def test_credentials_are_redacted(text, secret):
    """Anything that looks like a credential is replaced before formatting."""
    assert secret not in redact(text)
    assert "[redacted]" in redact(text)


def test_result_codes_and_error_codes_stay_readable():
    """Fields that merely end in "code" (errorCode, pop_code) are not mistaken for OAuth codes."""
    text = 'pop_code=OK errorCode="NotAuthenticated" status_code=401'
    assert redact(text) == text


def test_phone_numbers_are_masked():
    """Phone numbers keep their first three and last two digits."""
    assert mask_phone_numbers("calling 135012345678 now") == "calling 135*******78 now"
    assert mask_phone_numbers("+8613501234567") == "+861********67"
    assert mask_phone_numbers("port 8443") == "port 8443"


def test_filter_and_json_formatter_never_show_secrets():
    """A record with a secret in its arguments is redacted and rendered as one JSON object."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("s3cr3t-value",), None)
    record.fields = {"phone": "135012345679", "n": 3}
    assert RedactingFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert "s3cr3t-value" not in json.dumps(entry)
    assert entry["phone"] == "135*******79" and entry["n"] == 3


def test_access_log_switch(monkeypatch):
    """`log.access_log: false` silences the access logger; true lets it through."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    level = root.level
    try:
        setup_logging("INFO", "text", access_log=False)
        assert not logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
        setup_logging("INFO", "text", access_log=True)
        assert logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
    finally:
        root.setLevel(level)


def test_text_lines_keep_logging_layout_and_scrub_fields():
    """`time LEVEL logger: message k=v …`; string fields redacted except the request id."""
    record = logging.LogRecord("x.y", logging.INFO, __file__, 1, "GET %s %d", ("/a", 200), None)
    record.fields = {"request_id": "17000000001234", "phone": "13501234567", "ms": 1.5}
    line = TextFormatter().format(record)
    stamp, rest = line[:23], line[24:]
    assert logging.Formatter().formatTime(record) == stamp
    assert rest == "INFO x.y: GET /a 200 request_id=17000000001234 phone=135******67 ms=1.5"


def test_text_lines_carry_tracebacks():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.fields = {"n": 1}
    line = TextFormatter().format(record)
    assert line.splitlines()[0].endswith("ERROR x: failed")
    assert "ValueError: boom" in line and line.endswith(" n=1")


def test_redaction_of_a_repeated_text_is_the_same_every_time():
    """Redaction keeps no memory: texts with a secret are redacted on every call."""
    for _ in range(3):
        assert redact("GET /customers.html 200") == "GET /customers.html 200"
        assert "s3cr3t" not in redact("GET /reset;token=s3cr3t 200")


@pytest.fixture
def configured(monkeypatch):
    """setup_logging's handler writing to a StringIO; the root logger restored afterwards."""
    import io

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(time, "time", lambda: 1764400000.0987)
    level = root.level

    def setup(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)  # in the test's own phase: pytest sets it
        setup_logging("INFO", fmt)
        return stream

    yield setup
    root.setLevel(level)


ACCESS_FIELDS = {"request_id": "17000000001234", "duration_ms": 12.3, "bytes": 20480}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "text",
            "2025-11-29 07:06:40,098 INFO ccc_gateway.access: GET /a 200"
            " request_id=17000000001234 duration_ms=12.3 bytes=20480 remote=10.0.0.1\n",
        ),
        (
            "json",
            '{"time": "2025-11-29T07:06:40.098Z", "level": "INFO", "logger":'
            ' "ccc_gateway.access", "message": "GET /a 200", "request_id": "17000000001234",'
            ' "duration_ms": 12.3, "bytes": 20480, "remote": "10.0.0.1"}\n',
        ),
    ],
)
def test_the_access_line_bytes(configured, fmt, expected):
    """The one log path writes the access line as it always has (pinned, both formats)."""
    stream = configured(fmt)
    fields = {**ACCESS_FIELDS, "remote": "10.0.0.1"}
    logging.getLogger(ACCESS_LOGGER).info("GET /a 200", extra={"fields": fields})
    assert stream.getvalue() == expected


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fields_and_message_are_redacted_but_the_request_id(configured, fmt):
    stream = configured(fmt)
    fields = {"request_id": "999900001111", "phone": "13501234567", "note": "token=abc"}
    logging.getLogger(ACCESS_LOGGER).info("GET /reset;token=s3cr3t 200", extra={"fields": fields})
    text = stream.getvalue()
    assert "s3cr3t" not in text and "abc" not in text and "13501234567" not in text
    assert "999900001111" in text  # a request id is VERBATIM_FIELDS: kept for correlation
