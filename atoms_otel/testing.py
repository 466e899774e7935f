"""Test your own telemetry: a pytest fixture that captures spans, metrics and logs in memory.

Installed as a pytest plugin with the package (the entry point is the tiny ``atoms_otel_pytest``
module, which imports this one only when a test asks for the fixture). In a test::

    def test_order_is_counted(capture_telemetry):
        place_order()
        assert capture_telemetry.metric_value("orders_total", region="eu") == 1
        assert [s.name for s in capture_telemetry.spans] == ["place_order"]
        assert capture_telemetry.log_lines[-1]["message"] == "order placed"

The fixture calls ``configure()`` with in-memory exporters and synchronous export, and after the
test shuts everything down and clears the request context, so tests do not leak into each other.
Pass options with ``capture_telemetry.reconfigure(service_name=..., app=app, ...)``. Outside pytest
(or in a fixture of your own) ``with captured() as capture:`` does the same.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from atoms_otel._default import configure, shutdown
from atoms_otel.base import guard as _guard
from atoms_otel.base.context import clear_context
from atoms_otel.core.options import AdvancedOptions
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel import metrics

__all__ = ["CapturedTelemetry", "capture_telemetry", "captured"]


class _LineBuffer(io.TextIOBase):
    """A text stream that keeps each written line."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
            self._lines.extend(complete)
        return len(text)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
            self._partial = ""


class _SpansKept(InMemorySpanExporter):
    """Survives a pipeline shutdown, so one capture spans several configure() calls."""

    def shutdown(self) -> None:
        pass


class _LogsKept(InMemoryLogRecordExporter):
    def shutdown(self) -> None:
        pass


class CapturedTelemetry:
    """What the code under test emitted, captured in memory."""

    def __init__(self) -> None:
        self.telemetry: Telemetry | None = None
        self._spans = _SpansKept()
        self._logs = _LogsKept()  # type: ignore[no-untyped-call]
        self._reader: InMemoryMetricReader | None = None
        self._stream = _LineBuffer()

    def reconfigure(self, **options: Any) -> Telemetry:
        """Call configure() again with ``options``, keeping the in-memory capture."""
        self._reader = InMemoryMetricReader()
        user_advanced = options.pop("advanced", None) or AdvancedOptions()
        advanced = AdvancedOptions(
            span_exporters=(self._spans, *user_advanced.span_exporters),
            span_processors=user_advanced.span_processors,
            metric_readers=(self._reader, *user_advanced.metric_readers),
            log_exporters=(self._logs, *user_advanced.log_exporters),
            log_processors=user_advanced.log_processors,
            log_stream=self._stream,  # type: ignore[arg-type]
            shutdown_timeout_s=user_advanced.shutdown_timeout_s,
            synchronous_export=True,
        )
        options.setdefault("service_name", "test-service")
        self.telemetry = configure(advanced=advanced, **options)
        return self.telemetry

    # -- spans ---------------------------------------------------------------------------------

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self._spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (fails the test if there are none or several)."""
        found = [s for s in self.spans if s.name == name]
        assert len(found) == 1, (
            f"expected one span {name!r}, found {len(found)}: {[s.name for s in self.spans]}"
        )
        return found[0]

    # -- logs ----------------------------------------------------------------------------------

    @property
    def log_lines(self) -> list[dict[str, Any]]:
        """Each JSON log line written, parsed (lines that are not JSON are skipped)."""
        parsed = []
        for line in self._stream.lines():
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue
        return parsed

    @property
    def raw_log_lines(self) -> list[str]:
        return self._stream.lines()

    @property
    def log_records(self) -> list[ReadableLogRecord]:
        """OpenTelemetry log records, as an OTLP exporter would receive them."""
        return list(self._logs.get_finished_logs())

    # -- metrics -------------------------------------------------------------------------------

    def metrics(self) -> dict[str, Metric]:
        """Every metric collected now, by OpenTelemetry name."""
        assert self._reader is not None, "capture not configured"
        data = self._reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def metric_value(self, name: str, **labels: Any) -> float:
        """The value of a counter/gauge series — or a histogram's count — whose labels include
        ``labels`` (summed over matching series). 0 when nothing matched. ``name`` may be the
        OpenTelemetry or the Prometheus name."""
        total = 0.0
        for metric in self._matching(name):
            for point in metric.data.data_points:
                attributes = dict(point.attributes or {})
                if all(str(attributes.get(k)) == str(v) for k, v in labels.items()):
                    if isinstance(point, NumberDataPoint):
                        total += point.value
                    elif isinstance(point, HistogramDataPoint):
                        total += point.count
        return total

    def histogram_sum(self, name: str, **labels: Any) -> float:
        total = 0.0
        for metric in self._matching(name):
            for point in metric.data.data_points:
                attributes = dict(point.attributes or {})
                if isinstance(point, HistogramDataPoint) and all(
                    str(attributes.get(k)) == str(v) for k, v in labels.items()
                ):
                    total += point.sum
        return total

    def _matching(self, name: str) -> list[Metric]:
        found = self.metrics()
        if name in found:
            return [found[name]]
        metric = metrics.get_metrics_registry().get(name)
        if metric is not None and metric.name in found:
            return [found[metric.name]]
        return [
            m
            for m in found.values()
            if metrics.prometheus_name(m.name, m.unit or "") == name
            or metrics.prometheus_name(m.name, m.unit or "", "counter") == name
        ]

    def prometheus_text(self) -> str:
        """What ``GET /metrics`` would serve now."""
        assert self.telemetry is not None
        return self.telemetry.metrics_text().decode()

    def clear(self) -> None:
        """Forget what was captured so far (metrics are cumulative and are not cleared)."""
        self._spans.clear()
        self._logs.clear()
        self._stream.clear()


@contextmanager
def captured() -> Iterator[CapturedTelemetry]:
    """configure() with in-memory capture for the block; everything is reset afterwards."""
    capture = CapturedTelemetry()
    clear_context()
    metrics.reset_all()
    capture.reconfigure()
    try:
        yield capture
    finally:
        shutdown()
        clear_context()
        metrics.reset_all()
        _guard.reset()


@pytest.fixture
def capture_telemetry() -> Iterator[CapturedTelemetry]:
    """configure() with in-memory capture for one test; everything is reset afterwards."""
    with captured() as capture:
        yield capture
