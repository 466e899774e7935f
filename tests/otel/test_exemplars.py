"""Exemplars on /metrics: the OpenMetrics output's histogram buckets name the trace of a recent
sampled request; the 0.0.4 text does not change."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import context, trace
from opentelemetry.sdk.metrics import Exemplar
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from atoms_otel import MetricsOptions
from atoms_otel.otel.metrics import Histogram
from atoms_otel.otel.metrics.exemplars import (
    EXEMPLAR_LABELS_MAX_CHARS,
    LatestExemplarReservoir,
    exemplar_labels,
)
from atoms_otel.testing import CapturedTelemetry

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}
DURATION = "http_request_duration_seconds"


def _app(capture: CapturedTelemetry, **options: Any) -> TestClient:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(0.06)
        return {"slow": True}

    capture.reconfigure(app=app, **options)
    return TestClient(app)


def _bucket_exemplars(body: str, family: str) -> list[tuple[dict[str, str], Any]]:
    """(bucket labels, exemplar) of every bucket sample of ``family`` that carries one."""
    found = []
    for metric in text_string_to_metric_families(body):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.name == family + "_bucket" and sample.exemplar is not None:
                found.append((sample.labels, sample.exemplar))
    return found


def _bounds_of(body: str, family: str, labels: dict[str, str]) -> list[float]:
    """The ``le`` bounds of the series of ``family`` with the labels of ``labels`` (le aside)."""
    series = {k: v for k, v in labels.items() if k != "le"}
    return sorted(
        float(s.labels["le"])
        for m in text_string_to_metric_families(body)
        if m.name == family
        for s in m.samples
        if s.name == family + "_bucket" and {k: v for k, v in s.labels.items() if k != "le"} == series
    )


def test_buckets_carry_exemplars_of_the_requests_spans(capture_telemetry: CapturedTelemetry) -> None:
    """Each exemplar names a finished request span (trace and span id), sits in the bucket its value
    falls in, has a timestamp of the request and a label set within 128 characters."""
    client = _app(capture_telemetry)
    started = time.time()
    for n in range(5):
        assert client.get(f"/items/{n}").status_code == 200
    assert client.get("/slow").status_code == 200
    body = client.get("/metrics", headers=OPENMETRICS).text
    spans = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")): s
        for s in capture_telemetry.spans
        if s.kind == trace.SpanKind.SERVER
    }
    found = _bucket_exemplars(body, DURATION)
    assert {labels["path"] for labels, _ in found} == {"/items/{item_id}", "/slow"}
    for labels, exemplar in found:
        assert set(exemplar.labels) == {"trace_id", "span_id"}
        span = spans[(exemplar.labels["trace_id"], exemplar.labels["span_id"])]
        assert span.attributes is not None and span.attributes["http.route"] == labels["path"]
        bounds = _bounds_of(body, DURATION, labels)
        upper = float(labels["le"])
        lower = max((b for b in bounds if b < upper), default=-math.inf)
        assert lower < exemplar.value <= upper
        assert started - 1 <= float(exemplar.timestamp) <= time.time() + 1
        assert sum(len(k) + len(v) for k, v in exemplar.labels.items()) <= EXEMPLAR_LABELS_MAX_CHARS
    slow = [e for labels, e in found if labels["path"] == "/slow"]
    assert len(slow) == 1 and slow[0].value >= 0.06


def test_the_text_format_carries_no_exemplars(capture_telemetry: CapturedTelemetry) -> None:
    """Without the OpenMetrics Accept header /metrics is text 0.0.4, which has no exemplar syntax."""
    client = _app(capture_telemetry)
    client.get("/items/1")
    text = client.get("/metrics").text
    assert f"{DURATION}_bucket{{" in text and "trace_id" not in text and " # {" not in text


def test_exemplars_outlive_other_collections(capture_telemetry: CapturedTelemetry) -> None:
    """The live view's snapshots (every 5 s) and earlier scrapes do not take the exemplars away:
    each bucket keeps its latest sampled measurement until a newer one replaces it."""
    client = _app(capture_telemetry)
    client.get("/items/1")
    telemetry = capture_telemetry.telemetry
    assert telemetry is not None
    telemetry.metrics_snapshot()
    first = _bucket_exemplars(client.get("/metrics", headers=OPENMETRICS).text, DURATION)
    telemetry.metrics_snapshot()
    again = _bucket_exemplars(client.get("/metrics", headers=OPENMETRICS).text, DURATION)
    item = [e for labels, e in first if labels["path"] == "/items/{item_id}"]
    assert len(item) == 1 and item == [e for labels, e in again if labels["path"] == "/items/{item_id}"]


def test_a_newer_measurement_replaces_the_exemplar_of_its_bucket(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Two observations in one bucket: the later one is the exemplar; another bucket keeps its own."""
    telemetry = capture_telemetry.reconfigure()
    durations = Histogram("job_duration_seconds", "Job durations", labels=("job",), buckets=(0.1, 1.0))
    tracer = trace.get_tracer("test")
    ids = []
    for value in (0.05, 0.07, 0.5):
        with tracer.start_as_current_span("job") as span:
            durations.labels("sync").observe(value)
            ids.append(format(span.get_span_context().trace_id, "032x"))
    found = _bucket_exemplars(telemetry.metrics_text(openmetrics=True).decode(), "job_duration_seconds")
    assert {(labels["le"], e.labels["trace_id"], e.value) for labels, e in found} == {
        ("0.1", ids[1], 0.07),
        ("1.0", ids[2], 0.5),
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_TRACES_SAMPLER", "always_off"), ("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")],
)
def test_no_exemplars_without_sampled_traces_or_when_turned_off(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """Unsampled requests make no exemplars (trace-based filter); ``always_off`` makes none at all."""
    monkeypatch.setenv(variable, value)
    client = _app(capture_telemetry)
    client.get("/items/1")
    body = client.get("/metrics", headers=OPENMETRICS).text
    assert f"{DURATION}_bucket{{" in body and _bucket_exemplars(body, DURATION) == []


def test_configured_buckets_keep_exemplars_and_series_once(capture_telemetry: CapturedTelemetry) -> None:
    """With the HTTP buckets chosen (their own view), the histogram has exemplars and one series."""
    client = _app(capture_telemetry, metrics=MetricsOptions(http_duration_buckets=(0.5, 2.0)))
    client.get("/items/1")
    body = client.get("/metrics", headers=OPENMETRICS).text
    found = _bucket_exemplars(body, DURATION)
    assert [labels["le"] for labels, _ in found] == ["0.5"]
    assert body.count(f'{DURATION}_count{{method="GET",path="/items/{{item_id}}"}}') == 1


def test_exemplar_labels_fit_the_openmetrics_limit() -> None:
    """trace_id and span_id first, then filtered attributes (names made valid) while all fit in 128."""
    exemplar = Exemplar(
        {"tenant.id": "t-42", "long": "x" * 100, "zeta": 7},
        0.2,
        time.time_ns(),
        span_id=0xABC,
        trace_id=0x1234,
    )
    labels = exemplar_labels(exemplar)
    assert labels == {
        "trace_id": "00000000000000000000000000001234",
        "span_id": "0000000000000abc",
        "tenant_id": "t-42",
        "zeta": "7",
    }
    assert sum(len(k) + len(v) for k, v in labels.items()) <= EXEMPLAR_LABELS_MAX_CHARS
    assert exemplar_labels(Exemplar(None, 1.0, 0)) == {}


def test_reservoir_keeps_one_exemplar_per_bucket_across_collections() -> None:
    """The reservoir's collect() does not reset it; values equal to a bound go to that bound's bucket."""
    reservoir = LatestExemplarReservoir((1.0, 5.0))
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("a"):
        reservoir.offer(1.0, 10, {"k": "v"}, context.get_current())
        reservoir.offer(7.0, 11, {"k": "v", "extra": "e"}, context.get_current())
    first = reservoir.collect({"k": "v"})
    assert [(e.value, e.time_unix_nano, e.filtered_attributes) for e in first] == [
        (1.0, 10, None),
        (7.0, 11, {"extra": "e"}),
    ]
    assert reservoir.collect({"k": "v"}) == first
