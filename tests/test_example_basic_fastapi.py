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
