"""Free text on its way out: lone surrogates, credentials by format, user-info in the endpoint URL."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import trace

import atoms_otel
from atoms_otel import AdvancedOptions, get_logger
from atoms_otel.base import guard as _guard
from atoms_otel.testing import CapturedTelemetry
from tests.support.collector import Collector
from tests.support.net import free_port

pytestmark = pytest.mark.real

SURROGATE_SCRIPT = textwrap.dedent(
    """
    import sys
    from opentelemetry import trace
    import atoms_otel
    from atoms_otel import get_logger

    atoms_otel.configure(service_name="odd", otlp_endpoint=sys.argv[1])
    log = get_logger("odd")
    with trace.get_tracer("odd").start_as_current_span("odd-span") as span:
        span.set_attribute("user.text", "bad \\ud800 text")
        for i in range(40):
            log.info("neighbour %d", i)
        log.info("user said \\ud800 here", extra_fields={"note": "x\\udfffy"})
        for i in range(40, 80):
            log.info("neighbour %d", i)
    atoms_otel.shutdown()
    """
)


def test_a_lone_surrogate_loses_neither_its_batch_nor_its_line(tmp_path: Path, collector: Collector) -> None:
    """A "\\ud800" in a log message, an extra and a span attribute: all 81 records and the span arrive."""
    script = tmp_path / "odd.py"
    script.write_text(SURROGATE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), collector.http_endpoint],
        capture_output=True,
        timeout=60,
        # This checkout first on the path (not another installed copy); a strict UTF-8 stdout.
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "PYTHONIOENCODING": "utf-8",
        },
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines() if line.startswith("{")]
    odd = [line for line in lines if line["message"].startswith("user said")]
    assert odd and odd[0]["message"] == "user said \ufffd here" and odd[0]["note"] == "x\ufffdy"
    assert sum(line["message"].startswith("neighbour") for line in lines) == 80
    logs = collector.wait_for(lambda c: len(c.logs()) >= 81 and c.logs())
    bodies = {r["body"] for r in logs}
    assert "user said \ufffd here" in bodies and {f"neighbour {i}" for i in range(80)} <= bodies
    span = collector.wait_for(lambda c: [s for s in c.spans() if s["name"] == "odd-span"])[0]
    assert span["attributes"]["user.text"] == "bad \ufffd text"


STRIPE = "sk_live_51HabcdefGHIJKLmnop"


def test_credentials_in_free_text_never_reach_stdout_or_the_collector(collector: Collector) -> None:
    """Keys in exception text and password= in messages: redacted on stdout, OTLP logs and span events."""
    stream = io.StringIO()
    atoms_otel.configure(
        service_name="leaky",
        otlp_endpoint=collector.http_endpoint,
        advanced=AdvancedOptions(log_stream=stream),
    )
    log = get_logger("leaky")
    with trace.get_tracer("leaky").start_as_current_span("charge") as span:
        log.warning("login failed password=hunter2 for bob")
        try:
            raise ValueError(f"payment rejected for key {STRIPE}")
        except ValueError as exc:
            span.record_exception(exc)
            log.exception("charge failed with Bearer abc.def-ghi")
    atoms_otel.shutdown()
    spans = collector.wait_for(lambda c: [s for s in c.spans() if s["name"] == "charge"])
    collector.wait_for(lambda c: len(c.logs()) >= 2)
    received = collector.sink_file.read_text(encoding="utf-8")
    printed = stream.getvalue()
    for secret in ("hunter2", STRIPE, "abc.def-ghi"):
        assert secret not in printed, printed
        assert secret not in received
    assert "payment rejected for key [REDACTED]" in printed
    assert "password=[REDACTED]" in received and "[REDACTED]" in json.dumps(spans[0])


def test_user_info_in_the_endpoint_is_masked_in_the_export_failing_warning() -> None:
    """The 'export failing' WARNING names the destination without user:password@."""
    _guard.raise_internal_errors = False
    stream = io.StringIO()
    port = free_port()  # nothing listens here
    atoms_otel.configure(
        otlp_endpoint=f"http://bob:s3cret-pw@127.0.0.1:{port}",
        advanced=AdvancedOptions(log_stream=stream, synchronous_export=True, shutdown_timeout_s=2),
    )
    with trace.get_tracer("t").start_as_current_span("lost"):
        pass
    telemetry_repr = repr(atoms_otel.get_telemetry())
    atoms_otel.shutdown()
    assert "OTLP traces export to http://[REDACTED]@127.0.0.1" in stream.getvalue()
    assert "s3cret-pw" not in stream.getvalue()
    assert "s3cret-pw" not in telemetry_repr and "[REDACTED]@" in telemetry_repr


def test_url_query_and_exception_text_on_spans_are_scrubbed_by_format(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """url.query from a client instrumentation and a recorded exception lose their credentials on export."""
    with trace.get_tracer("client").start_as_current_span("GET upstream") as span:
        span.set_attribute("url.query", "token=tok-abc123&page=2")
        span.set_attribute("url.full", "https://bob:pw-77@api.example.com/x?password=hunter2")
        span.record_exception(ValueError("upstream said Bearer abc.def-ghi"))
    exported = capture_telemetry.span("GET upstream")
    assert exported.attributes is not None
    assert exported.attributes["url.query"] == "token=[REDACTED]&page=2"
    assert exported.attributes["url.full"] == "https://[REDACTED]@api.example.com/x?password=[REDACTED]"
    event = exported.events[0].attributes or {}
    assert "abc.def-ghi" not in str(event["exception.message"]) + str(event["exception.stacktrace"])
