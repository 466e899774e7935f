"""Exemplars from a request to its trace, in both metrics paths.

Scrape mode, live end to end: the example service under uvicorn with the environment
docker-compose.yml gives it exports its traces to a real collector (rotel); a real Prometheus
started with docker-compose.yml's flags (``--enable-feature=exemplar-storage``) scrapes its
``/metrics`` with the shipped ``atoms-service`` job (Prometheus asks for OpenMetrics first) under
traffic, and ``/api/v1/query_exemplars`` for the latency panel's query returns exemplars whose trace
ids are those of spans the collector received.

Push mode: the example service pushes OTLP to a real collector; the histogram points it pushes
carry exemplars whose trace ids are those of spans the same collector received. A real Prometheus
with the same flags and the push-mode scrape job (honor_labels) scrapes those exemplars in
OpenMetrics and returns them from ``/api/v1/query_exemplars``. Stand-in: the upstream Collector's
Prometheus exporter (``enable_open_metrics: true``) cannot run here; a small OpenMetrics endpoint
re-exposes the received exemplars in its place, labelled as it labels them (job = service.name,
instance = service.instance.id, exemplar labels trace_id and span_id). That leg is verified by
construction, and DEPLOYMENT_GUIDE.md says so.
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
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.support.collector import start_collector
from tests.support.net import stop_process
from tests.support.prometheus import Prometheus, start_prometheus
from tests.support.stack import (
    COMPOSE,
    PROMETHEUS_PUSH_YML,
    PROMETHEUS_YML,
    SERVICE_JOB,
    Query,
    compose_service_environment,
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


def _latency_exemplar_queries(job: str = SERVICE) -> list[str]:
    """The overview's latency-panel queries that ask Grafana for exemplars, for ``job``."""
    board = dashboards()["atoms-overview.json"]
    return [
        Query("overview", target["expr"]).rendered(job=job, rate_interval="1m")
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


# -- scrape mode: /metrics in OpenMetrics, scraped by a real Prometheus -----------------------------

COMPOSE_COLLECTOR = "http://otel-collector:4318"


@dataclass
class Scraped:
    prometheus: Prometheus
    span_trace_ids: set[str]
    metrics_body: str


def _scrape_mode_env(collector_endpoint: str) -> dict[str, str]:
    """What docker-compose.yml gives the service (traces and logs by OTLP, no metrics pushed), the
    Collector's compose address replaced by the real collector's; spans exported within 0.2 s."""
    env = environment_without_otlp()
    for key, value in compose_service_environment(COMPOSE).items():
        env[key] = value.replace(COMPOSE_COLLECTOR, collector_endpoint)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    return env


def _scrape_only_the_service(url: str) -> dict[str, Any]:
    """The shipped prometheus.yml with only its atoms-service job, pointed at the service, every 1 s."""
    config = load_yaml(PROMETHEUS_YML)
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config.pop("rule_files")
    config.pop("alerting")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == SERVICE_JOB)
    job["static_configs"] = [{"targets": [url.removeprefix("http://")]}]
    config["scrape_configs"] = [job]
    return config


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    workdir = tmp_path_factory.mktemp("scraped-exemplars")
    out = workdir / "received.jsonl"
    rotel = start_collector(workdir, sink=SINK, env={"ATOMS_EXEMPLAR_FILE": str(out)})
    service = prometheus = None
    try:
        env = _scrape_mode_env(rotel.http_endpoint)
        assert env["OTEL_METRICS_EXPORTER"] == "prometheus"  # no metrics pushed: one path
        service, url = start_stack_service(workdir, env)
        prometheus = start_prometheus(
            workdir, _scrape_only_the_service(url), extra_args=_compose_prometheus_flags()
        )
        prometheus.wait_until_scraped(SERVICE_JOB)
        query = _latency_exemplar_queries(SERVICE_JOB)[0]
        started = time.time()
        with httpx.Client(base_url=url, timeout=10) as client:

            def traffic_then_exemplars() -> list[Any]:
                for n in range(1, 6):
                    client.get(f"/items/{n}")
                client.get("/slow", params={"seconds": 0.2})
                data: list[Any] = prometheus.api(
                    "query_exemplars", query=query, start=str(started - 60), end=str(time.time() + 60)
                )
                return [e for series in data for e in series["exemplars"]]

            prometheus.wait_for(traffic_then_exemplars, timeout=30, what="exemplars scraped from /metrics")
            body = client.get("/metrics", headers={"Accept": "application/openmetrics-text"}).text
        time.sleep(0.6)  # the last spans' batch
        span_ids = {r["trace_id"] for r in _rows(out) if r["signal"] == "span"}
        yield Scraped(prometheus, span_ids, body)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if service is not None:
            stop_process(service, timeout=10)
        rotel.stop()


def test_scraped_exemplars_name_traces_the_collector_received(scraped: Scraped) -> None:
    """Scrape mode: query_exemplars for the latency panel's query (job atoms-service) returns
    exemplars of several requests, each trace id one the collector received from the service."""
    query = _latency_exemplar_queries(SERVICE_JOB)[0]
    data = scraped.prometheus.api(
        "query_exemplars", query=query, start=str(time.time() - 300), end=str(time.time() + 60)
    )
    exemplars = [e for series in data for e in series["exemplars"]]
    trace_ids = {e["labels"]["trace_id"] for e in exemplars}
    assert len(trace_ids) >= 2 and trace_ids <= scraped.span_trace_ids
    assert {series["seriesLabels"]["job"] for series in data} == {SERVICE_JOB}
    assert all(len(e["labels"]["span_id"]) == 16 and float(e["value"]) > 0 for e in exemplars)


def test_scraped_exemplars_cover_the_slow_request(scraped: Scraped) -> None:
    """The /slow request's exemplar is stored on a bucket series of its own route."""
    data = scraped.prometheus.api(
        "query_exemplars",
        query='http_request_duration_seconds_bucket{job="atoms-service",path="/slow"}',
        start=str(time.time() - 300),
        end=str(time.time() + 60),
    )
    values = [float(e["value"]) for series in data for e in series["exemplars"]]
    assert values and max(values) >= 0.2


def test_the_served_openmetrics_exemplars_are_received_spans(scraped: Scraped) -> None:
    """The OpenMetrics /metrics of the running service: bucket exemplars name received traces."""
    trace_ids = {
        sample.exemplar.labels["trace_id"]
        for family in text_string_to_metric_families(scraped.metrics_body)
        if family.name == "http_request_duration_seconds"
        for sample in family.samples
        if sample.exemplar is not None
    }
    assert trace_ids and trace_ids <= scraped.span_trace_ids
