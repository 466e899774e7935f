"""The shipped dashboards and rules against a real Prometheus scraping the example service.

The example service (examples/stack_service.py) runs under uvicorn in a subprocess; Prometheus runs
with the shipped prometheus.yml (scrape and rule evaluation every second, the service as its only
target) and the shipped alert rules; traffic of every kind flows while it scrapes. Then the seed's
queries, every dashboard query and every rule run through Prometheus's HTTP API.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import mcp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.net import free_port, stop_process, wait_for_port
from tests.support.prometheus import Prometheus, check_metrics, start_prometheus
from tests.support.stack import (
    PROMETHEUS_YML,
    ROOT,
    RULES,
    SEED_QUERIES,
    SERVICE_JOB,
    Query,
    dashboard_queries,
    load_yaml,
    metric_names,
    rule_queries,
    stack_service_command,
)

pytestmark = pytest.mark.real

# Queries a user looks at first: they must return numbers, not just succeed.
_HTTP = f'job=~"{SERVICE_JOB}",instance=~".*",path=~".*"'  # the overview's filters, All selected
CORE_QUERIES = {
    "request rate": f"sum(rate(http_requests_total{{{_HTTP}}}[5m]))",
    "p95 latency": (
        f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{_HTTP}}}[5m])))"
    ),
    "error ratio": (
        f'(sum(rate(http_requests_total{{{_HTTP},status=~"5.."}}[5m])) or vector(0))'
        f" / sum(rate(http_requests_total{{{_HTTP}}}[5m]))"
    ),
    "tool rate": f'sum(rate(tool_executions_total{{job=~"{SERVICE_JOB}",instance=~".*",tool=~".*"}}[5m]))',
    "health status": f'min by (component) (health_check_status{{job=~"{SERVICE_JOB}",instance=~".*"}})',
}
TRAFFIC_ROUNDS = 12
# Read by rules but not exposed by a healthy service: the Collector's own metrics (port 8888) and
# atoms_otel's internal-error counter, which has a series only after a contained failure.
NOT_FROM_THE_SERVICE = {
    "otelcol_exporter_send_failed_spans_total",
    "otelcol_exporter_send_failed_metric_points_total",
    "otelcol_exporter_send_failed_log_records_total",
    "otelcol_exporter_queue_size",
    "otelcol_exporter_queue_capacity",
    "atoms_otel_internal_errors_total",
}


@dataclass
class Stack:
    prometheus: Prometheus
    service_url: str
    exposition: bytes
    statuses: dict[int, int]
    mcp_errors: list[bool]


class _RejectingReceiver(BaseHTTPRequestHandler):
    """A webhook receiver that refuses every alert (400): deliveries end as ``rejected``."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received += 1
        self.send_response(400)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RejectingReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/atoms"
    finally:
        server.shutdown()
        server.server_close()


def _start_service(workdir: Path, webhook_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "ATOMS_OTEL_WEBHOOK_URL": webhook_url,
        "ATOMS_OTEL_SLOW_REQUEST_MS": "200",
        "ATOMS_OTEL_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        env.pop(var, None)
    log = open(workdir / "service.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        stack_service_command(port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30, process=process)
    except Exception:
        process.kill()
        process.wait(timeout=5)
        raise RuntimeError((workdir / "service.log").read_text(errors="replace")) from None
    return process, f"http://127.0.0.1:{port}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, timeout=10)


def _prometheus_config(service_url: str) -> dict[str, Any]:
    """The shipped prometheus.yml, scraping and evaluating every second, with the service as target."""
    config = load_yaml(PROMETHEUS_YML)
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(RULES)]
    config.pop("alerting")  # no Alertmanager here (test_alertmanager.py runs one)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == SERVICE_JOB)
    job["static_configs"] = [{"targets": [service_url.removeprefix("http://")]}]
    config["scrape_configs"] = [job]
    return config


def _drive_traffic(client: httpx.Client) -> dict[int, int]:
    """Successes, cache hits and misses, 404s, 422s (failed tools), 500s, 503s (failed database
    queries) and slow requests."""
    statuses: dict[int, int] = {}
    for round_ in range(TRAFFIC_ROUNDS):
        responses = [
            *(client.get(f"/items/{n}") for n in (1, 2, round_ + 3, 1, 99, 0)),
            client.post("/tools/search", json={"q": "1"}),
            client.post("/tools/summarize", json={"text": "a long text to summarize"}),
            client.post("/tools/search", json={"fail": True}),
            # uvicorn closes the connection after an unhandled exception: a fresh one for it
            httpx.get(f"{str(client.base_url).rstrip('/')}/boom", timeout=10),
            client.get("/slow", params={"seconds": 0.25}),
            client.get("/health"),
        ]
        for response in responses:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        time.sleep(0.1)
    return statuses


async def _call_mcp_tools(service_url: str, rounds: int) -> list[bool]:
    """MCP tool calls through the SDK's real client: ``add`` succeeds, ``lookup_item(999)`` fails.
    Returns each call's isError."""
    outcomes = []
    async with mcp.Client(f"{service_url}/mcp/") as client:
        for _ in range(rounds):
            outcomes.append((await client.call_tool("add", {"a": 1, "b": 2})).is_error)
            outcomes.append((await client.call_tool("lookup_item", {"item_id": 999})).is_error)
    return outcomes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook_receiver: str) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    service, url = _start_service(workdir, webhook_receiver)
    prometheus = None
    try:
        prometheus = start_prometheus(workdir, _prometheus_config(url))
        prometheus.wait_until_scraped(SERVICE_JOB)
        with httpx.Client(base_url=url, timeout=10) as client:
            statuses = _drive_traffic(client)
            mcp_errors = asyncio.run(_call_mcp_tools(url, rounds=3))
            exposition = client.get("/metrics").content
        time.sleep(2.5)  # two more scrapes and rule evaluations after the last request
        yield Stack(prometheus, url, exposition, statuses, mcp_errors)
    finally:
        if prometheus is not None:
            prometheus.stop()
        _stop(service)


def _has_data(samples: list[dict[str, Any]]) -> bool:
    return any(s["value"][1] not in ("NaN", "0") for s in samples)


def test_prometheus_scrapes_the_example_service(stack: Stack) -> None:
    """The shipped scrape job reaches the service: up == 1 and its target_info is stored."""
    assert stack.prometheus.query(f'up{{job="{SERVICE_JOB}"}}')[0]["value"][1] == "1"
    info = stack.prometheus.query(f'target_info{{job="{SERVICE_JOB}"}}')
    assert info[0]["metric"]["service_name"] == "atoms-mcp"


def test_the_traffic_had_every_status_class(stack: Stack) -> None:
    """The driven traffic really produced 2xx, 404, 422, 500 and 503 responses."""
    assert {200, 404, 422, 500, 503} <= set(stack.statuses)


def test_the_mcp_tool_calls_succeeded_and_failed_as_driven(stack: Stack) -> None:
    """The real MCP client's calls reached the mounted server: add succeeded, lookup_item failed."""
    assert stack.mcp_errors == [False, True] * 3


@pytest.mark.parametrize("name", sorted(SEED_QUERIES))
def test_the_seed_queries_return_data(stack: Stack, name: str) -> None:
    """Each of the seed's PromQL queries, unchanged, returns at least one non-zero sample."""
    stack.prometheus.wait_for(
        lambda: _has_data(stack.prometheus.query(SEED_QUERIES[name])), timeout=10, what=name
    )


@pytest.mark.parametrize("name", sorted(CORE_QUERIES))
def test_the_core_dashboard_queries_return_data(stack: Stack, name: str) -> None:
    """Request rate, p95 latency, error ratio, tool rate and health status return numbers."""
    stack.prometheus.wait_for(
        lambda: _has_data(stack.prometheus.query(CORE_QUERIES[name])), timeout=10, what=name
    )


def test_every_core_query_is_a_dashboard_query() -> None:
    """The core queries checked above are the ones the dashboards really ship."""
    shipped = {q.rendered() for q in dashboard_queries()}
    assert set(CORE_QUERIES.values()) <= shipped


def test_every_dashboard_and_rule_expression_succeeds(stack: Stack) -> None:
    """Prometheus evaluates every dashboard query and every rule expression without an error."""
    queries: list[Query] = dashboard_queries() + rule_queries()
    for query in queries:
        stack.prometheus.query(query.rendered())


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """After traffic of every kind, no dashboard panel is empty."""
    empty = [q.where for q in dashboard_queries() if not stack.prometheus.query(q.rendered())]
    assert empty == []


def test_every_rule_is_evaluated_without_error(stack: Stack) -> None:
    """Prometheus loaded every shipped rule, evaluated each, and reports each healthy."""
    groups = stack.prometheus.api("rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {r.where.split(" / ")[1] for r in rule_queries()}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        assert rule["lastEvaluation"] > "2000", name


def test_5xx_traffic_puts_high_error_rate_and_tool_failure_alerts_in_pending(stack: Stack) -> None:
    """With 2 requests in 12 answered 5xx and 1 tool call in 3 failing, both alerts start (pending)."""

    def active() -> set[str]:
        return {a["labels"]["alertname"] for a in stack.prometheus.api("alerts")["alerts"]}

    stack.prometheus.wait_for(
        lambda: {"HighErrorRate", "HighToolFailureRate"} <= active(), timeout=15, what="alerts pending"
    )
    assert "SlowRequests" not in active()


def test_rejected_webhook_alerts_fire_webhook_delivery_failures(stack: Stack) -> None:
    """The service's error alerts are refused by the receiver: WebhookDeliveryFailures fires."""

    def firing() -> list[dict[str, Any]]:
        alerts = stack.prometheus.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "WebhookDeliveryFailures"]

    alerts = stack.prometheus.wait_for(firing, timeout=15, what="WebhookDeliveryFailures")
    assert alerts[0]["labels"]["outcome"] == "rejected" and alerts[0]["state"] == "firing"
    assert _RejectingReceiver.received > 0


def test_every_metric_the_dashboards_and_rules_read_is_exposed(stack: Stack) -> None:
    """Each metric name in a dashboard or rule is one the service's /metrics really has."""
    exposed = {
        sample.name
        for family in text_string_to_metric_families(stack.exposition.decode())
        for sample in family.samples
    }
    used = {name for q in dashboard_queries() + rule_queries() for name in metric_names(q.expr)}
    assert used - {"up"} - NOT_FROM_THE_SERVICE - exposed == set()


def test_promtool_accepts_the_services_metrics(stack: Stack) -> None:
    """promtool check metrics finds no problem in the service's /metrics after real traffic."""
    result = check_metrics(stack.exposition)
    assert result.returncode == 0, result.stdout + result.stderr
