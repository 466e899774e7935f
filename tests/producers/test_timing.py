"""PerformanceMetric: one duration as a log line and a histogram observation."""

from __future__ import annotations

import logging
import time

import pytest

from atoms_otel import PerformanceMetric, get_logger
from atoms_otel.testing import CapturedTelemetry


def test_context_manager_records_duration_and_status(capture_telemetry: CapturedTelemetry) -> None:
    """A block's duration lands in operation_duration_seconds with status success."""
    with PerformanceMetric("load_profile", level=logging.INFO, user="u1") as measured:
        time.sleep(0.02)
    assert measured.duration_ms is not None and measured.duration_ms >= 20
    assert (
        capture_telemetry.metric_value(
            "operation_duration_seconds", operation="load_profile", status="success"
        )
        == 1
    )
    line = capture_telemetry.log_lines[-1]
    assert line["operation"] == "load_profile" and line["user"] == "u1" and line["status"] == "success"
    assert line["duration_ms"] >= 20 and line["level"] == "INFO"


def test_a_failing_block_is_recorded_as_error_and_reraised(capture_telemetry: CapturedTelemetry) -> None:
    """The exception propagates unchanged; the measurement says error and names the type."""
    with pytest.raises(TimeoutError, match="upstream"), PerformanceMetric("fetch", level=logging.INFO):
        raise TimeoutError("upstream")
    assert capture_telemetry.metric_value("operation.duration", operation="fetch", status="error") == 1
    assert capture_telemetry.log_lines[-1]["error_type"] == "TimeoutError"


def test_over_threshold_is_a_warning(capture_telemetry: CapturedTelemetry) -> None:
    """A duration above threshold_ms logs at WARNING with the threshold, even if the level is DEBUG."""
    PerformanceMetric("import_batch", threshold_ms=100).record(250.0)
    line = capture_telemetry.log_lines[-1]
    assert line["level"] == "WARNING" and line["threshold_ms"] == 100 and "(slow)" in line["message"]


def test_routine_timings_below_the_log_level_still_count(capture_telemetry: CapturedTelemetry) -> None:
    """At the default DEBUG level nothing is logged at INFO, but the histogram still records."""
    PerformanceMetric("cheap", logger=get_logger("perf")).record(1.5)
    assert not [line for line in capture_telemetry.log_lines if line.get("operation") == "cheap"]
    assert capture_telemetry.histogram_sum("operation_duration_seconds", operation="cheap") == pytest.approx(
        0.0015
    )


async def test_works_as_an_async_context_manager(capture_telemetry: CapturedTelemetry) -> None:
    """``async with`` measures the awaited block."""
    async with PerformanceMetric("async_op", level=logging.INFO):
        pass
    assert capture_telemetry.metric_value("operation_duration_seconds", operation="async_op") == 1
