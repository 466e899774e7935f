"""Structured logging: the JSON line, context and trace fields, stdlib routing, the OTel bridge."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace

import atoms_otel
from atoms_otel import LogContext, get_logger
from atoms_otel.otel.logs import StructuredFormatter
from atoms_otel.testing import CapturedTelemetry
from tests.support.server import serve


def test_json_line_has_the_contract_fields_in_order(capture_telemetry: CapturedTelemetry) -> None:
    """timestamp, level, logger, message, context fields, then extra fields — one object per line."""
    with LogContext(user_id="user123", correlation_id="req-456", session_id="s-1", request_path="/x"):
        get_logger("svc").info("Processing request", extra_fields={"action": "create"})
    line = capture_telemetry.log_lines[-1]
    assert list(line) == [
        "timestamp",
        "level",
        "logger",
        "message",
        "correlation_id",
        "user_id",
        "session_id",
        "request_path",
        "action",
    ]
    assert line["level"] == "INFO" and line["logger"] == "svc" and line["action"] == "create"


def test_timestamp_is_rfc3339_utc_with_milliseconds(capture_telemetry: CapturedTelemetry) -> None:
    """The timestamp parses as UTC and carries milliseconds."""
    get_logger("svc").info("tick")
    stamp = capture_telemetry.log_lines[-1]["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_lines_inside_a_span_carry_its_trace_and_span_ids(capture_telemetry: CapturedTelemetry) -> None:
    """trace_id and span_id match the active span, in W3C hex form."""
    with trace.get_tracer("t").start_as_current_span("op") as span:
        get_logger("svc").info("inside")
    context = span.get_span_context()
    line = capture_telemetry.log_lines[-1]
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_lines_outside_a_span_have_no_trace_fields(capture_telemetry: CapturedTelemetry) -> None:
    """No span, no trace_id/span_id keys (rather than zeros)."""
    get_logger("svc").info("outside")
    assert "trace_id" not in capture_telemetry.log_lines[-1]


def test_exception_is_a_structured_field(capture_telemetry: CapturedTelemetry) -> None:
    """logger.exception writes type, message and the stack trace as fields."""
    try:
        raise ValueError("bad input")
    except ValueError:
        get_logger("svc").exception("failed")
    exception = capture_telemetry.log_lines[-1]["exception"]
    assert exception["type"] == "ValueError" and exception["message"] == "bad input"
    assert "Traceback" in exception["stacktrace"] and "raise ValueError" in exception["stacktrace"]


def test_secret_fields_are_redacted_in_log_lines(capture_telemetry: CapturedTelemetry) -> None:
    """Secret-looking extra fields never reach the output, nested ones included."""
    get_logger("svc").info(
        "login", extra_fields={"password": "hunter2", "profile": {"api_key": "k-1", "name": "ada"}}
    )
    raw = capture_telemetry.raw_log_lines[-1]
    assert "hunter2" not in raw and "k-1" not in raw
    line = json.loads(raw)
    assert line["password"] == "[REDACTED]" and line["profile"] == {"api_key": "[REDACTED]", "name": "ada"}


def test_extra_fields_that_collide_with_core_fields_are_kept_renamed(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """An extra field called ``message`` or ``level`` does not overwrite the real one, nor is it lost."""
    get_logger("svc").info("real message", extra_fields={"message": "fake", "level": "fake"})
    line = capture_telemetry.log_lines[-1]
    assert line["message"] == "real message" and line["level"] == "INFO"
    assert line["extra_message"] == "fake" and line["extra_level"] == "fake"


def test_values_that_are_not_json_are_rendered_as_text(capture_telemetry: CapturedTelemetry) -> None:
    """Decimals, datetimes, sets and bytes do not break the line."""
    when = datetime(2026, 1, 2, 3, 4, 5)
    get_logger("svc").info("odd values", amount=Decimal("1.50"), when=when, tags={"b", "a"}, raw=b"\xff\x00")
    line = capture_telemetry.log_lines[-1]
    assert line["amount"] == "1.50" and line["when"] == str(when) and line["tags"] == ["a", "b"]
    assert isinstance(line["raw"], str)


def test_multiline_messages_stay_on_one_line(capture_telemetry: CapturedTelemetry) -> None:
    """A newline inside a message is escaped: one record, one line."""
    get_logger("svc").info("first\nsecond")
    assert capture_telemetry.log_lines[-1]["message"] == "first\nsecond"
    assert capture_telemetry.raw_log_lines[-1].count("\n") == 0


def test_stdlib_and_third_party_loggers_are_formatted_too(capture_telemetry: CapturedTelemetry) -> None:
    """Plain ``logging`` calls, with ``extra=`` and %-args, produce the same JSON."""
    with LogContext(correlation_id="c-9"):
        logging.getLogger("somelib.client").warning("retry %d of %d", 1, 3, extra={"host": "db"})
    line = capture_telemetry.log_lines[-1]
    assert line["message"] == "retry 1 of 3" and line["host"] == "db" and line["correlation_id"] == "c-9"
    assert line["logger"] == "somelib.client" and line["level"] == "WARNING"


def test_log_context_extra_fields_appear_on_every_line(capture_telemetry: CapturedTelemetry) -> None:
    """Unknown LogContext keywords become fields of each line inside the block."""
    with LogContext(tenant="acme"):
        logging.getLogger("x").info("one")
        get_logger("y").info("two")
    assert [line.get("tenant") for line in capture_telemetry.log_lines[-2:]] == ["acme", "acme"]


def test_level_filtering_follows_the_setting(capture_telemetry: CapturedTelemetry) -> None:
    """At WARNING, info lines are dropped; at DEBUG, debug lines appear."""
    capture_telemetry.reconfigure(log_level="WARNING")
    get_logger("svc").info("hidden")
    get_logger("svc").warning("shown")
    assert [line["message"] for line in capture_telemetry.log_lines if line["logger"] == "svc"] == ["shown"]
    capture_telemetry.reconfigure(log_level="DEBUG")
    get_logger("svc").debug("now visible")
    assert capture_telemetry.log_lines[-1]["message"] == "now visible"


def test_atom_logger_reports_the_callers_location(capture_telemetry: CapturedTelemetry) -> None:
    """funcName and lineno in the OTel record point at the caller, not at atoms_otel."""
    get_logger("svc").info("where am I")
    record = capture_telemetry.log_records[-1].log_record
    assert record.attributes is not None
    assert record.attributes["code.function.name"] == "test_atom_logger_reports_the_callers_location"
    assert str(record.attributes["code.file.path"]).endswith("test_logs.py")


def test_bind_adds_fields_to_every_line(capture_telemetry: CapturedTelemetry) -> None:
    """A bound logger carries its fields; per-call fields win over bound ones."""
    log = get_logger("svc").bind(component="billing", attempt=1)
    log.info("charged", attempt=2)
    line = capture_telemetry.log_lines[-1]
    assert line["component"] == "billing" and line["attempt"] == 2


def test_every_level_method_works(capture_telemetry: CapturedTelemetry) -> None:
    """debug..critical, warn and log(level name) all emit at the right level."""
    capture_telemetry.reconfigure(log_level="DEBUG")
    log = get_logger("svc")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.warn("w2")
    log.error("e")
    log.critical("c")
    log.log("INFO", "by name")
    log.log(logging.ERROR, "by number")
    levels = [line["level"] for line in capture_telemetry.log_lines if line["logger"] == "svc"]
    assert levels == ["DEBUG", "INFO", "WARNING", "WARNING", "ERROR", "CRITICAL", "INFO", "ERROR"]


def test_otel_log_records_carry_context_trace_and_resource(capture_telemetry: CapturedTelemetry) -> None:
    """The bridged OTel record has the context as attributes, the span's trace context and service.name."""
    capture_telemetry.reconfigure(service_name="billing-svc")
    with (
        LogContext(user_id="u1", correlation_id="c1", session_id="s1"),
        trace.get_tracer("t").start_as_current_span("op") as span,
    ):
        get_logger("svc").warning("charged", amount=3, token="tok")
    readable = capture_telemetry.log_records[-1]
    record = readable.log_record
    assert record.body == "charged" and record.severity_text == "WARN"
    assert record.trace_id == span.get_span_context().trace_id
    attributes = dict(record.attributes or {})
    assert (
        attributes["user.id"] == "u1"
        and attributes["atoms.correlation_id"] == "c1"
        and attributes["session.id"] == "s1"
    )
    assert attributes["amount"] == 3 and attributes["token"] == "[REDACTED]"
    assert readable.resource.attributes["service.name"] == "billing-svc"


def test_otel_log_records_carry_the_exception(capture_telemetry: CapturedTelemetry) -> None:
    """An exception logged with exc_info becomes exception.* attributes."""
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger("svc").exception("lookup failed")
    attributes = dict(capture_telemetry.log_records[-1].log_record.attributes or {})
    assert attributes["exception.type"] == "KeyError"
    assert "missing" in str(attributes["exception.message"])


def test_console_format_is_readable(capture_telemetry: CapturedTelemetry) -> None:
    """ATOMS_OTEL_LOG_FORMAT=console writes one human line with the fields as key=value."""
    capture_telemetry.reconfigure(log_format="console")
    with LogContext(user_id="u1"):
        get_logger("svc").info("hello", items=2)
    line = capture_telemetry.raw_log_lines[-1]
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} INFO +svc  hello  user_id=u1  items=2$", line), line


def test_basic_config_handlers_are_replaced_not_duplicated() -> None:
    """A basicConfig console handler is taken out while configured (no double lines) and restored after."""
    root = logging.getLogger()
    previous = list(root.handlers)
    stream = io.StringIO()
    console = logging.StreamHandler(sys.stderr)
    root.addHandler(console)
    try:
        atoms_otel.configure(advanced=atoms_otel.AdvancedOptions(log_stream=stream))
        assert console not in root.handlers
        logging.getLogger("dup").warning("once")
        assert stream.getvalue().count('"message":"once"') == 1
        atoms_otel.shutdown()
        assert console in root.handlers
    finally:
        atoms_otel.shutdown()
        root.handlers[:] = previous


def test_server_loggers_are_routed_through_our_handler() -> None:
    """uvicorn's own handlers are removed and its records propagate to our JSON handler."""
    uvicorn_logger = logging.getLogger("uvicorn.error")
    own = logging.StreamHandler(io.StringIO())
    uvicorn_logger.addHandler(own)
    uvicorn_logger.propagate = False
    stream = io.StringIO()
    try:
        atoms_otel.configure(advanced=atoms_otel.AdvancedOptions(log_stream=stream))
        uvicorn_logger.info("Started server process")
        assert json.loads(stream.getvalue().splitlines()[-1])["logger"] == "uvicorn.error"
        assert own not in uvicorn_logger.handlers
    finally:
        atoms_otel.shutdown()
    assert own in uvicorn_logger.handlers and uvicorn_logger.propagate is False
    uvicorn_logger.removeHandler(own)
    uvicorn_logger.propagate = True


def test_get_logger_before_configure_records_after(capture_telemetry: CapturedTelemetry) -> None:
    """A logger created at import time (before configure) logs through the configured pipeline."""
    early = get_logger("created.early")
    capture_telemetry.reconfigure()
    early.info("from early logger")
    assert capture_telemetry.log_lines[-1]["logger"] == "created.early"
    assert capture_telemetry.log_records[-1].log_record.body == "from early logger"


def test_console_format_escapes_control_characters(capture_telemetry: CapturedTelemetry) -> None:
    """A newline or ANSI escape in the message or a field cannot forge a second console line."""
    capture_telemetry.reconfigure(log_format="console")
    forged = "ok\n12:00:00.000 CRITICAL svc  forged\x1b[2J"
    get_logger("svc").info(forged, note="a\r\nCRITICAL b\x1b[31m", **{"k\nx": 1})
    line = capture_telemetry.raw_log_lines[-1]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "ok\\n12:00:00.000 CRITICAL svc  forged\\x1b[2J" in line
    assert "note=a\\r\\nCRITICAL b\\x1b[31m" in line and "k\\nx=1" in line


def test_console_tracebacks_are_indented_so_no_line_passes_for_a_log_line(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Every line after the first of a console record is indented; ESC in the exception is escaped."""
    capture_telemetry.reconfigure(log_format="console")
    try:
        raise ValueError("bad\n12:00:00.000 CRITICAL forged\x1b[0m")
    except ValueError:
        get_logger("svc").exception("failed")
    lines = "".join(capture_telemetry.raw_log_lines).splitlines()
    first = next(i for i, line in enumerate(lines) if "failed" in line)
    assert all(line.startswith("    ") for line in lines[first + 1 :]), lines
    assert not any("\x1b" in line for line in lines)


def test_access_log_lines_do_not_carry_secret_query_parameters(capture_telemetry: CapturedTelemetry) -> None:
    """uvicorn's access line for /x?token=…&password=… shows [REDACTED]; other parameters stay."""
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, str]:
        return {}

    with serve(app, access_log=True) as base:
        httpx.get(f"{base}/x?token=tok-9f8e7d&page=2&password=hunter2", timeout=5)
    lines = [line for line in capture_telemetry.log_lines if line["logger"] == "uvicorn.access"]
    assert lines, capture_telemetry.raw_log_lines
    message = str(lines[-1]["message"])
    assert "tok-9f8e7d" not in message and "hunter2" not in message
    assert "/x?token=[REDACTED]&page=2&password=[REDACTED]" in message
    records = [r for r in capture_telemetry.log_records if "GET /x" in str(r.log_record.body)]
    assert records and "hunter2" not in str(records[-1].log_record.body)


@pytest.mark.parametrize(
    ("precision", "utc", "pattern"),
    [
        ("ms", True, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"),
        ("us", True, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"),
        ("s", True, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
        ("ms", False, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$"),
    ],
)
def test_structured_formatter_timestamp_options(precision: str, utc: bool, pattern: str) -> None:
    """timestamp_precision and utc shape the RFC 3339 timestamp; the instant is the record's."""
    formatter = StructuredFormatter(timestamp_precision=precision, utc=utc)
    record = logging.makeLogRecord({"msg": "tick", "created": 1764662400.123456})
    stamp = json.loads(formatter.format(record))["timestamp"]
    assert re.match(pattern, stamp), stamp
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(parsed.timestamp() - 1764662400.123456) < (1.0 if precision == "s" else 0.001)


def test_an_unknown_timestamp_precision_is_refused() -> None:
    """Only s, ms and us."""
    with pytest.raises(ValueError, match="precision"):
        StructuredFormatter(timestamp_precision="ns")
