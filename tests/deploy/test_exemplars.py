"""Exemplars from a request to its trace, as far as the path runs here.

Live: the example service pushes OTLP to a real collector (rotel); the histogram points it pushes
carry exemplars whose trace ids are those of spans the same collector received. A real Prometheus
started with the flags docker-compose.yml gives it (``--enable-feature=exemplar-storage``) and the
push-mode scrape job (honor_labels) scrapes those exemplars in OpenMetrics and returns them from
``/api/v1/query_exemplars`` for the query the latency panel runs.

Stand-in: the upstream Collector's Prometheus exporter (``enable_open_metrics: true``) cannot run
here; a small OpenMetrics endpoint re-exposes the received exemplars in its place, labelled as it
labels them (job = service.name, instance = service.instance.id, exemplar labels trace_id and
span_id). That leg is verified by construction, and DEPLOYMENT_GUIDE.md says so.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest

from tests.support.collector import start_collector
from tests.support.net import stop_process
from tests.support.prometheus import Prometheus, start_prometheus
from tests.support.stack import (
    COMPOSE,
    PROMETHEUS_PUSH_YML,
    Query,
    dashboards,
    environment_without_otlp,
    load_yaml,
    panels,
    start_stack_service,
)

pytestmark = pytest.mark.real

SINK = Path(__file__).with_name("exemplar_sink.py").resolve()
SERVICE = "atoms-mcp"


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _openmetrics_endpoint(exemplars: list[dict[str, Any]], instance: str) -> ThreadingHTTPServer:
    """The received exemplars in OpenMetrics, labelled as the Collector's Prometheus exporter does."""
    registry = CollectorRegistry()
    histogram = Histogram(
        "http_request_duration_seconds",
        "HTTP request duration in seconds",
        ["job", "instance", "method", "path"],
        registry=registry,
    )
    for row in exemplars:
        child = histogram.labels(SERVICE, instance, row["attributes"]["method"], row["attributes"]["path"])
        for exemplar in row["exemplars"]:
            labels = {"trace_id": exemplar["trace_id"], "span_id": exemplar["span_id"]}
            child.observe(exemplar["value"], exemplar=labels)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("content-type", CONTENT_TYPE_LATEST)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _compose_prometheus_flags() -> tuple[str, ...]:
    """The feature flags docker-compose.yml starts Prometheus with."""
    command = load_yaml(COMPOSE)["services"]["prometheus"]["command"]
    return tuple(arg for arg in command if arg.startswith("--enable-feature="))


@dataclass
class Exemplars:
    prometheus: Prometheus
    received: list[dict[str, Any]]
    span_trace_ids: set[str]


@pytest.fixture(scope="module")
def exemplars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exemplars]:
    workdir = tmp_path_factory.mktemp("exemplars")
    out = workdir / "received.jsonl"
    rotel = start_collector(workdir, sink=SINK, env={"ATOMS_EXEMPLAR_FILE": str(out)})
    endpoint = rotel.http_endpoint
    service = prometheus = server = None
    try:
        env = {
            **environment_without_otlp(),
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        service, url = start_stack_service(workdir, env)
        with httpx.Client(base_url=url, timeout=10) as client:
            for n in range(1, 9):
                client.get(f"/items/{n}")
            client.get("/slow", params={"seconds": 0.3})
        deadline = time.monotonic() + 15
        while not any(r.get("metric") == "http.request.duration" for r in _rows(out)):
            assert time.monotonic() < deadline, "no http.request.duration exemplars reached the collector"
            time.sleep(0.2)
        time.sleep(1.0)  # the spans' batch, and one more metrics push
        rows = _rows(out)
        received = [r for r in rows if r.get("metric") == "http.request.duration"]
        span_ids = {r["trace_id"] for r in rows if r["signal"] == "span"}
        server = _openmetrics_endpoint(received, instance="worker-1")
        config = load_yaml(PROMETHEUS_PUSH_YML)
        config["global"].update(
            {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        )
        config.pop("rule_files")
        config.pop("alerting")
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "otel-collector")
        job["static_configs"] = [{"targets": [f"127.0.0.1:{server.server_address[1]}"]}]
        config["scrape_configs"] = [job]
        prometheus = start_prometheus(workdir, config, extra_args=_compose_prometheus_flags())
        prometheus.wait_for(
            lambda: prometheus.query(f'http_request_duration_seconds_count{{job="{SERVICE}"}}'),
            timeout=20,
            what="the exemplar endpoint scraped",
        )
        yield Exemplars(prometheus, received, span_ids)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        if service is not None:
            stop_process(service, timeout=10)
        rotel.stop()


def _latency_exemplar_queries() -> list[str]:
    """The overview's latency-panel queries that ask Grafana for exemplars, for job atoms-mcp."""
    board = dashboards()["atoms-overview.json"]
    return [
        Query("overview", target["expr"]).rendered(job=SERVICE, rate_interval="1m")
        for panel in panels(board)
        for target in panel["targets"]
        if target.get("exemplar") and "http_request_duration_seconds_bucket" in target["expr"]
    ]


def test_the_pushed_histograms_carry_exemplars_of_received_spans(exemplars: Exemplars) -> None:
    """Every exemplar on the pushed http.request.duration points names a trace the collector got."""
    trace_ids = {e["trace_id"] for row in exemplars.received for e in row["exemplars"]}
    assert trace_ids and trace_ids <= exemplars.span_trace_ids


def test_prometheus_with_the_compose_flags_returns_exemplars_for_the_latency_panel(
    exemplars: Exemplars,
) -> None:
    """query_exemplars for the latency panel's query returns exemplars whose trace_id is a span's."""
    assert _compose_prometheus_flags() == ("--enable-feature=exemplar-storage",)
    queries = _latency_exemplar_queries()
    assert queries
    now = time.time()

    def found() -> set[str]:
        data = exemplars.prometheus.api(
            "query_exemplars", query=queries[0], start=str(now - 300), end=str(time.time() + 60)
        )
        return {e["labels"]["trace_id"] for series in data for e in series["exemplars"]}

    returned = exemplars.prometheus.wait_for(found, timeout=15, what="exemplars stored")
    assert returned <= exemplars.span_trace_ids
