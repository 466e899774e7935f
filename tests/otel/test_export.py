"""OTLP export against a real collector (rotel): what arrives, secrets, and a collector that is down."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from opentelemetry import trace

import atoms_otel
from atoms_otel import AdvancedOptions, LogContext, MetricsOptions, get_logger
from atoms_otel.base import guard as _guard
from tests.support.collector import Collector
from tests.support.net import free_port

pytestmark = pytest.mark.real

SCRIPT = textwrap.dedent(
    """
    import sys
    from opentelemetry import trace
    import atoms_otel
    from atoms_otel import Counter, LogContext, get_logger

    orders = Counter("orders_total", "Orders placed", labels=("region",))   # before configure()
    log = get_logger("shop.checkout")
    atoms_otel.configure(service_name="shop", service_version="2.0.0", environment="test",
                         otlp_endpoint=sys.argv[1], otlp_protocol=sys.argv[2])
    with LogContext(user_id="user123", correlation_id="req-456", session_id="sess-1"):
        with trace.get_tracer("shop").start_as_current_span("checkout") as span:
            span.set_attribute("db.password", "hunter2-span")
            log.info("Processing request", extra_fields={"action": "create", "api_key": "sk-live-123"})
        orders.inc(labels={"region": "eu"})
        atoms_otel.record_http_request("POST", "/api/orders", 201, 0.25)
    atoms_otel.shutdown()
    """
)
SECRETS = ("hunter2-span", "sk-live-123")


def _run_script(tmp_path: Path, endpoint: str, protocol: str) -> list[dict[str, object]]:
    script = tmp_path / "service.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), endpoint, protocol], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _assert_collector_received_everything(collector: Collector) -> None:
    spans = collector.wait_for(lambda c: [s for s in c.spans() if s["name"] == "checkout"])
    logs = collector.wait_for(lambda c: [r for r in c.logs() if r["body"] == "Processing request"])
    metrics = collector.wait_for(
        lambda c: {m["name"] for m in c.metrics()} >= {"orders_total", "http.requests"} and c.metrics()
    )
    span, log = spans[0], logs[0]
    assert span["resource"]["service.name"] == "shop" and span["resource"]["service.version"] == "2.0.0"
    assert span["attributes"]["user.id"] == "user123"
    assert span["attributes"]["atoms.correlation_id"] == "req-456"
    assert log["resource"]["service.name"] == "shop"
    assert log["attributes"]["user.id"] == "user123" and log["attributes"]["session.id"] == "sess-1"
    assert log["attributes"]["action"] == "create"
    assert log["trace_id"] == span["trace_id"]
    orders = [m for m in metrics if m["name"] == "orders_total"]
    assert orders[-1]["points"][0] == {"attributes": {"region": "eu"}, "value": 1}
    requests = [m for m in metrics if m["name"] == "http.requests"][-1]
    assert requests["points"][0]["attributes"] == {"method": "POST", "path": "/api/orders", "status": "201"}
    received = collector.sink_file.read_text()
    for secret in SECRETS:
        assert secret not in received
    assert "[REDACTED]" in received


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_service_script_exports_logs_metrics_and_spans(
    tmp_path: Path, collector: Collector, protocol: str
) -> None:
    """The script's JSON lines are right, and the collector receives its logs, metrics and spans."""
    endpoint = collector.http_endpoint if protocol == "http/protobuf" else collector.grpc_endpoint
    lines = _run_script(tmp_path, endpoint, protocol)
    line = next(line for line in lines if line["message"] == "Processing request")
    assert line["user_id"] == "user123" and line["correlation_id"] == "req-456"
    assert line["api_key"] == "[REDACTED]" and len(str(line["trace_id"])) == 32
    _assert_collector_received_everything(collector)


def _count(stream: io.StringIO, text: str) -> int:
    return sum(text in line for line in stream.getvalue().splitlines())


def test_a_collector_that_is_down_never_reaches_the_app(tmp_path: Path) -> None:
    """Connection refused: no exception, no slowdown, one log line per signal, bounded shutdown."""
    _guard.raise_internal_errors = False
    stream = io.StringIO()
    port = free_port()  # nothing listens here
    atoms_otel.configure(
        otlp_endpoint=f"http://127.0.0.1:{port}",
        metrics=MetricsOptions(export_interval_ms=200),
        advanced=AdvancedOptions(log_stream=stream, shutdown_timeout_s=3),
    )
    log = get_logger("app")
    started = time.perf_counter()
    for i in range(200):
        with trace.get_tracer("t").start_as_current_span(f"work-{i}"):
            log.info("working", i=i)
    atoms_otel.record_error("E", "s")
    assert time.perf_counter() - started < 2.0  # export happens off the request path
    atoms_otel.force_flush(timeout_s=3)
    time.sleep(1.0)  # several metric export rounds fail
    started = time.perf_counter()
    atoms_otel.shutdown()
    assert time.perf_counter() - started < 6.0
    for signal in ("traces", "metrics", "logs"):
        assert _count(stream, f"OTLP {signal} export to") == 1, stream.getvalue()[-3000:]
    assert _count(stream, "Connection refused") >= 1  # the one report says why
    assert _count(stream, "Traceback") == 0


def test_a_collector_that_accepts_but_never_answers_does_not_hold_shutdown() -> None:
    """A hung collector is bounded by the export timeout and the shutdown deadline."""
    _guard.raise_internal_errors = False
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(100)  # accepts connections into the backlog, never reads
    try:
        atoms_otel.configure(
            otlp_endpoint=f"http://127.0.0.1:{hung.getsockname()[1]}",
            advanced=AdvancedOptions(log_stream=io.StringIO(), shutdown_timeout_s=2),
        )
        with trace.get_tracer("t").start_as_current_span("stuck"):
            get_logger("app").info("before shutdown")
        started = time.perf_counter()
        atoms_otel.shutdown()
        assert time.perf_counter() - started < 4.0
    finally:
        hung.close()


def test_export_failure_and_recovery_are_each_reported_once(tmp_path: Path) -> None:
    """When the collector comes back, one 'recovered' line follows the one 'failing' line."""
    _guard.raise_internal_errors = False
    atoms_otel.shutdown()  # an earlier test's pipeline, retired by configure(), must not report here
    stream = io.StringIO()
    collector_dir = tmp_path / "late"
    collector_dir.mkdir()
    port = free_port()
    atoms_otel.configure(
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_protocol="http/protobuf",
        advanced=AdvancedOptions(log_stream=stream, synchronous_export=True, shutdown_timeout_s=3),
    )
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span("lost"):
        pass
    ours = f"OTLP traces export to http://127.0.0.1:{port}/"
    assert _count(stream, ours) == 1
    from tests.support import collector as collector_module

    late = collector_module.start_collector(collector_dir, http_port=port)
    try:
        with tracer.start_as_current_span("delivered"):
            pass
        with tracer.start_as_current_span("delivered-again"):
            pass
        late.wait_for(lambda c: {s["name"] for s in c.spans()} >= {"delivered", "delivered-again"})
        assert _count(stream, ours) == 2
        assert _count(stream, "traces export to") == _count(stream, "traces export to http") == 2
        assert (
            _count(stream, "recovered") >= 1
            and _count(stream, f"traces export to http://127.0.0.1:{port}/v1/traces recovered") == 1
        )
    finally:
        atoms_otel.shutdown()
        late.stop()


def test_log_context_reaches_the_collector_from_in_process_code(collector: Collector) -> None:
    """In-process configure(): a log line's context and nested secrets arrive correctly."""
    atoms_otel.configure(
        service_name="inproc",
        otlp_endpoint=collector.http_endpoint,
        advanced=AdvancedOptions(log_stream=io.StringIO()),
    )
    with LogContext(correlation_id="c-77", tenant="acme"):
        get_logger("inproc").warning("nested", extra_fields={"profile": {"password": "pw-1", "name": "ada"}})
    atoms_otel.shutdown()
    record = collector.wait_for(lambda c: [r for r in c.logs() if r["body"] == "nested"])[0]
    assert record["attributes"]["atoms.correlation_id"] == "c-77" and record["attributes"]["tenant"] == "acme"
    assert record["attributes"]["profile"] == {"password": "[REDACTED]", "name": "ada"}
    assert "pw-1" not in collector.sink_file.read_text()
