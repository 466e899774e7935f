"""Every series reaches Prometheus once: one metrics path per deployment mode.

Scrape mode (docker-compose.yml): the example service runs with the environment compose gives it
(traces and logs to a real OTLP collector, no metrics pushed) and a real Prometheus scrapes it with
the shipped prometheus.yml. Push mode (docker-compose.push.yml on top): the service pushes metrics
too, and prometheus.push.yml does not scrape it. The Collector's Prometheus exporter cannot run here
(rotel has none), so the push-mode Prometheus side is checked by construction.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector import Collector, start_collector
from tests.support.net import stop_process
from tests.support.prometheus import Prometheus, start_prometheus
from tests.support.stack import (
    COMPOSE,
    COMPOSE_PUSH,
    PROMETHEUS_PUSH_YML,
    PROMETHEUS_YML,
    RULES,
    SERVICE_JOB,
    compose_service_environment,
    environment_without_otlp,
    load_yaml,
    start_stack_service,
)

pytestmark = pytest.mark.real

COMPOSE_COLLECTOR = "http://otel-collector:4318"


def _service_env(collector: Collector, *compose_files: Path) -> dict[str, str]:
    """The process environment with what compose sets for the service, the Collector's compose
    address replaced by the real collector's."""
    env = environment_without_otlp()
    for key, value in compose_service_environment(*compose_files).items():
        env[key] = value.replace(COMPOSE_COLLECTOR, collector.http_endpoint)
    env.update({"OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_BSP_SCHEDULE_DELAY": "200"})
    return env


def _traffic(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(10):
            client.get(f"/items/{n % 4 + 1}")
            client.get("/items/99")
            client.post("/tools/search", json={"q": "1"})
            client.get("/health")
            time.sleep(0.05)


@dataclass
class ScrapeMode:
    prometheus: Prometheus
    collector: Collector


@pytest.fixture(scope="module")
def scrape_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapeMode]:
    workdir = tmp_path_factory.mktemp("scrape-mode")
    collector = start_collector(workdir)
    service = prometheus = None
    try:
        service, url = start_stack_service(workdir, _service_env(collector, COMPOSE))
        config = load_yaml(PROMETHEUS_YML)
        every_second = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        config["global"].update(every_second)
        config["rule_files"] = [str(RULES)]
        config.pop("alerting")  # no Alertmanager in this test (test_alertmanager.py has one)
        # The jobs whose targets cannot run here (Collector exporter, Alertmanager) are left out.
        job = next(j for j in config["scrape_configs"] if j["job_name"] == SERVICE_JOB)
        job["static_configs"] = [{"targets": [url.removeprefix("http://")]}]
        config["scrape_configs"] = [job]
        prometheus = start_prometheus(workdir, config)
        prometheus.wait_until_scraped(SERVICE_JOB)
        _traffic(url)
        time.sleep(2.5)  # two more scrapes after the last request
        yield ScrapeMode(prometheus, collector)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if service is not None:
            stop_process(service, timeout=10)
        collector.stop()


def test_no_http_request_series_is_duplicated(scrape_mode: ScrapeMode) -> None:
    """The issue's check: count by (__name__, path, method, status) (http_requests_total) > 1 is empty."""
    prometheus = scrape_mode.prometheus
    assert prometheus.query("sum(http_requests_total)")  # there is data to duplicate
    assert prometheus.query("count by (__name__, path, method, status) (http_requests_total) > 1") == []


def test_no_series_of_any_metric_exists_twice_across_jobs(scrape_mode: ScrapeMode) -> None:
    """Stripped of job and instance, every stored series of every metric is unique."""
    series = scrape_mode.prometheus.api("series", **{"match[]": '{__name__=~".+"}'})
    keys = Counter(
        tuple(sorted((k, v) for k, v in s.items() if k not in ("job", "instance"))) for s in series
    )
    assert len(keys) > 50
    assert [key for key, count in keys.items() if count > 1] == []


def test_the_scraped_service_pushes_traces_and_logs_but_no_metrics(scrape_mode: ScrapeMode) -> None:
    """With compose's environment the real collector receives spans and logs and not one metric:
    the scrape is the service's only metrics path."""
    collector = scrape_mode.collector
    collector.wait_for(lambda c: c.spans() and c.logs(), timeout=15)
    time.sleep(1.5)  # three push intervals, had metrics been pushed
    assert collector.metrics() == []


def test_push_mode_pushes_metrics_to_the_collector(tmp_path: Path, collector: Collector) -> None:
    """With docker-compose.push.yml's environment on top, the same service pushes its metrics."""
    service, url = start_stack_service(tmp_path, _service_env(collector, COMPOSE, COMPOSE_PUSH))
    try:
        _traffic(url)
        names = collector.wait_for(
            lambda c: (found := {row["name"] for row in c.metrics()}) >= {"http.requests"} and found,
            timeout=15,
        )
        assert {"http.requests", "http.request.duration"} <= names
    finally:
        stop_process(service, timeout=10)


def _jobs(path: Path) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in load_yaml(path)["scrape_configs"]}


def test_push_mode_prometheus_does_not_scrape_the_service() -> None:
    """prometheus.push.yml is prometheus.yml without the service's scrape job: nothing else differs."""
    scrape, push = load_yaml(PROMETHEUS_YML), load_yaml(PROMETHEUS_PUSH_YML)
    assert SERVICE_JOB in _jobs(PROMETHEUS_YML) and SERVICE_JOB not in _jobs(PROMETHEUS_PUSH_YML)
    scrape["scrape_configs"] = [j for j in scrape["scrape_configs"] if j["job_name"] != SERVICE_JOB]
    assert scrape == push


def test_compose_picks_one_path_per_mode() -> None:
    """Both modes set one OTLP endpoint (the Collector) and no per-signal ones; scrape mode keeps
    metrics on /metrics (OTEL_METRICS_EXPORTER=prometheus), push mode sends them by OTLP and mounts
    prometheus.push.yml where Prometheus reads its config."""
    scrape_env = compose_service_environment(COMPOSE)
    assert scrape_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == COMPOSE_COLLECTOR
    assert scrape_env["OTEL_METRICS_EXPORTER"] == "prometheus"
    push_env = compose_service_environment(COMPOSE, COMPOSE_PUSH)
    assert push_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == COMPOSE_COLLECTOR
    assert push_env["OTEL_METRICS_EXPORTER"] == "otlp"
    for env in (scrape_env, push_env):
        assert [k for k in env if k.startswith("OTEL_EXPORTER_OTLP_") and k.endswith("ENDPOINT")] == [
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        ]
    volumes = load_yaml(COMPOSE_PUSH)["services"]["prometheus"]["volumes"]
    assert volumes == ["./collector-config/prometheus.push.yml:/etc/prometheus/prometheus.yml:ro"]
