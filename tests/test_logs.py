"""Logs are safe to keep: numbers masked whatever wrote them, no token from a callback URL."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from gateway.logs import JsonFormatter, RedactingFilter
from gateway.phones import mask_numbers

MASKING = [
    ("from +6281234565678 via AT", "from +62 812-****-5678 via AT"),
    ("to 6281234565678", "to 62 812-****-5678"),
    ("national 081234565678.", "national 08 123-****-5678."),
    ("dashed +62-812-3456-5678", "+62 812-****-5678"),
    ("args ('+6281234565678',)", "args ('+62 812-****-5678',)"),
    # left alone: too short to be a subscriber number, or not a number at all
    ("call 129 or 110 or 112", "call 129 or 110 or 112"),
    ("date 2026-11-28 17:45:14", "date 2026-11-28 17:45:14"),
    ("report 42 took 12.5ms", "report 42 took 12.5ms"),
    ("ref K7Q2MX ATUid_7c898d72", "ref K7Q2MX ATUid_7c898d72"),
]


@pytest.mark.parametrize("text, expected", MASKING, ids=[t for t, _ in MASKING])
def test_mask_numbers(text, expected):
    assert expected in mask_numbers(text)
    if expected != text:
        assert "3456" not in mask_numbers(text)


def test_the_sink_shows_help_lines_whole_and_masks_everyone_else(tmp_path):
    """The local sink is where a tester reads what residents get: the public numbers of config/
    as they are sent, a person's number masked even inside a text."""
    from gateway.channels.sink import SinkProvider
    from gateway.content import load_content
    from gateway.phones import digit_forms
    from gateway.settings import ROOT

    shown = io.StringIO()
    public = digit_forms(load_content(ROOT / "config").directory.public_phones())
    SinkProvider(tmp_path / "sink.log", stream=shown, public=public).send(
        "+6281234565678", "WA SAPA 08111-129-129, TKI 0800-1000. Pelapor: 081234565678, +6281234565678")
    line = json.loads((tmp_path / "sink.log").read_text())
    for text in (shown.getvalue(), line["body"]):
        assert "WA SAPA 08111-129-129, TKI 0800-1000." in text and "3456" not in text


@pytest.fixture
def records():
    """A handler with the gateway's filter, as logs.configure installs it on the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)


def test_filter_masks_arguments_and_tracebacks(records):
    log = logging.getLogger("tests.redaction")
    log.info("sending to %s", "+6281234565678")
    try:
        raise ValueError("bad recipient +6281234565678")
    except ValueError:
        log.exception("send failed for %s", "+6281234565678")
    out = records.getvalue()
    assert "1234565678" not in out
    assert out.count("+62 812-****-5678") == 4 and "ValueError" in out  # two messages, source line, error


def test_request_log_has_no_query_string(client, caplog, monkeypatch):
    """The webhook token travels in the URL; the request log names the path only."""
    caplog.set_level(logging.DEBUG, logger="gateway.http")  # a routine hop is logged at DEBUG
    client.post("/at/ussd?token=s3cret-token", data={"sessionId": "ATUid_1", "serviceCode": "*1#",
                                                      "phoneNumber": "+6281234565678", "text": ""})
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.http"]
    assert lines and lines[0].startswith("POST /at/ussd 200")
    assert not any("s3cret" in line or "1234565678" in line for line in lines)


def test_json_lines_carry_the_request_id_and_stay_redacted(client, records):
    """Production logs: one JSON object a line, the request's id on every line it caused."""
    records_handler = logging.getLogger("tests.redaction").handlers[-1]
    records_handler.setFormatter(JsonFormatter())
    http = logging.getLogger("gateway.http")
    http.addHandler(records_handler)
    http.setLevel(logging.DEBUG)  # a routine hop is logged at DEBUG
    try:
        answer = client.post("/at/ussd", data={"sessionId": "ATUid_log1", "phoneNumber": "+6281234565678",
                                               "serviceCode": "*123#", "text": ""},
                             headers={"X-Request-Id": "lb-7f3a"})
        fresh = client.get("/healthz", headers={"X-Request-Id": "not a token; drop table"})
    finally:
        http.removeHandler(records_handler)
        http.setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in records.getvalue().splitlines()]
    assert answer.headers["X-Request-Id"] == "lb-7f3a"
    assert lines[0]["request_id"] == "lb-7f3a" and lines[0]["message"].startswith("POST /at/ussd 200")
    assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["X-Request-Id"])  # a harmful id is replaced
    assert lines[1]["request_id"] == fresh.headers["X-Request-Id"]
    assert {"time", "level", "logger", "request_id", "message"} == set(lines[0])
    assert "1234565678" not in records.getvalue()


def test_production_logs_are_json_unless_told_otherwise():
    from gateway.settings import Settings

    assert Settings(env="production").json_logs and not Settings().json_logs
    assert Settings(env="production", log_format="text").json_logs is False
    assert "LOG_FORMAT must be json or text" in " ".join(Settings(log_format="xml").problems())


@pytest.mark.parametrize("blueprint, status, elapsed_ms, level", [
    ("at", 200, 0.4, logging.DEBUG),        # a USSD hop: counted in /metrics, not a line each
    ("sms8x8", 200, 3.0, logging.DEBUG),
    ("at", 400, 0.4, logging.INFO),         # a malformed callback: somebody should look
    ("at", 403, 0.2, logging.INFO),         # a wrong token
    ("at", 503, 2.0, logging.INFO),         # the database down: the aggregator will retry
    ("at", 200, 1500.0, logging.WARNING),   # slow enough to worry about the aggregator's limit
    ("console", 200, 5.0, logging.INFO),    # staff actions are always a line
    ("health", 200, 1.0, logging.INFO),
    (None, 404, 0.1, logging.INFO),
])
def test_request_log_level(blueprint, status, elapsed_ms, level):
    from gateway import request_log_level

    assert request_log_level(blueprint, status, elapsed_ms) == level


def test_a_refused_callback_is_logged_at_info(client, caplog):
    caplog.set_level(logging.INFO, logger="gateway.http")
    client.post("/at/ussd", data={"phoneNumber": "+6281234565678", "text": ""})  # no sessionId
    client.post("/at/ussd", data={"sessionId": "ATUid_3", "phoneNumber": "+6281234565678", "text": ""})
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.http"]
    assert len(lines) == 1 and lines[0].startswith("POST /at/ussd 400")


def test_log_level_debug_brings_back_a_line_per_callback_and_keeps_libraries_quiet():
    from gateway import logs
    from gateway.settings import Settings

    assert Settings.from_env({"LOG_LEVEL": "DEBUG"}).log_level_number == logging.DEBUG
    assert Settings.from_env({}).log_level_number == logging.INFO
    assert "LOG_LEVEL must be one of" in " ".join(Settings(log_level="loud").problems())
    touched = [logging.getLogger(name) for name in ("", *logs.APP_LOGGERS)]
    before = [logger.level for logger in touched]
    try:
        logs.set_level(logging.DEBUG)
        assert logging.getLogger("gateway.http").isEnabledFor(logging.DEBUG)  # each routine callback
        assert logging.getLogger("workers.jobs").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)
        logs.set_level(logging.WARNING)
        assert not logging.getLogger("gateway.cases.reports").isEnabledFor(logging.INFO)
        assert not logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.INFO)  # RQ: its logging_level
    finally:
        for logger, level in zip(touched, before, strict=True):
            logger.setLevel(level)
