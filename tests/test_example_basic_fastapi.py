"""examples/basic_fastapi.py runs as documented, with no collector, and serves every endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port, stop_process, wait_for_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "basic_fastapi.py"


def _start(wiring: str | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_", "SUPABASE_"))}
    env["PORT"] = str(port)
    if wiring is not None:
        env["ATOMS_OTEL_EXAMPLE_WIRING"] = wiring
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port, timeout=30, process=process)
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def example_url() -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_", "SUPABASE_"))}
    env["PORT"] = str(port)
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, timeout=30, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.mark.real
@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/api/observability/dashboard",
        "/api/observability/metrics/snapshot",
        "/api/observability/metrics/health_check_status",
        "/items/3",
    ],
)
def test_example_serves_endpoint(example_url: str, path: str) -> None:
    """Each documented endpoint answers 200 from the example app."""
    httpx.get(f"{example_url}/health")  # so health_check_status has series
    response = httpx.get(f"{example_url}{path}", timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.real
def test_example_registers_its_health_checks(example_url: str) -> None:
    """The example's custom checks, performance monitor and circuit breaker are in /health."""
    components = httpx.get(f"{example_url}/health", timeout=10).json()["components"]
    assert {"cache", "jobs", "performance", "inventory"} <= set(components)


@pytest.mark.real
def test_example_tools_are_observed(example_url: str) -> None:
    """The decorated tools answer and are counted: one success, one error."""
    found = httpx.post(f"{example_url}/tools/search", params={"query": "otel"}, timeout=10).json()
    assert found["results"][0] == "otel result 0"
    assert httpx.get(f"{example_url}/tools/fail", timeout=10).json() == {"status": "failed, and recorded"}
    text = httpx.get(f"{example_url}/metrics", timeout=10).text
    assert 'tool_executions_total{status="success",tool="search"}' in text
    assert 'tool_executions_total{status="error",tool="fail"}' in text


@pytest.mark.real
def test_example_with_the_specs_manual_wiring_serves_the_same_endpoints() -> None:
    """ATOMS_OTEL_EXAMPLE_WIRING=manual: middleware and router by hand, no configure(): requests are
    counted on /metrics and /health/ready answers 200."""
    url, process = _start("manual")
    try:
        assert httpx.get(f"{url}/items/4", timeout=10).status_code == 200
        assert httpx.get(f"{url}/health/ready", timeout=10).status_code == 200
        text = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'http_requests_total{method="GET",path="/items/{item_id}",status="200"} 1.0' in text
    finally:
        stop_process(process)
