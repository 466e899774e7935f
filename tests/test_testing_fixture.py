"""The public ``capture_telemetry`` fixture: captures every signal and isolates tests."""

from __future__ import annotations

from opentelemetry import trace

import atoms_otel
from atoms_otel.testing import CapturedTelemetry


def test_captures_spans_metrics_and_logs(capture_telemetry: CapturedTelemetry) -> None:
    """A span, a counter increment and a log line are all visible to the test."""
    with trace.get_tracer("t").start_as_current_span("unit-of-work"):
        atoms_otel.get_logger("app").info("did work", items=3)
    atoms_otel.record_error("ValueError", "unit-test")

    assert capture_telemetry.span("unit-of-work").name == "unit-of-work"
    assert capture_telemetry.metric_value("errors_total", error_type="ValueError", source="unit-test") == 1
    line = capture_telemetry.log_lines[-1]
    assert line["message"] == "did work" and line["items"] == 3
    assert capture_telemetry.log_records[-1].log_record.body == "did work"


def test_state_does_not_leak_from_the_previous_test(capture_telemetry: CapturedTelemetry) -> None:
    """Counters start from zero and nothing captured earlier is visible."""
    assert capture_telemetry.metric_value("errors_total", source="unit-test") == 0
    assert capture_telemetry.spans == []
    assert capture_telemetry.log_lines == []


def test_reconfigure_keeps_capturing(capture_telemetry: CapturedTelemetry) -> None:
    """Options can be changed mid-test; capture continues on the new pipeline."""
    telemetry = capture_telemetry.reconfigure(service_name="renamed")
    atoms_otel.get_logger("app").warning("after reconfigure")
    assert telemetry.settings.service_name == "renamed"
    assert capture_telemetry.log_lines[-1]["message"] == "after reconfigure"
    assert capture_telemetry.log_records[-1].resource.attributes["service.name"] == "renamed"
