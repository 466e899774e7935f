"""Several uvicorn workers pushing OTLP to a real collector: each is its own instance, and the
collector's series add up to exactly the traffic — the answer DEPLOYMENT_GUIDE.md gives for
multi-worker deployments, where a scraped per-process /metrics would under-count."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector import Collector
from tests.support.net import free_port, stop_process, wait_for_port
from tests.support.stack import ROOT, stack_service_command

pytestmark = pytest.mark.real

WORKERS = 2
CALLS = 30


def _run_workers(workdir: Path, endpoint: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        stack_service_command(port, "--workers", str(WORKERS)),
        cwd=ROOT,
        env=env,
        stdout=open(workdir / "workers.log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, timeout=60, process=process)
    return process, f"http://127.0.0.1:{port}"


def _instances(rows: list[dict[str, Any]]) -> set[str]:
    return {str(row["resource"]["service.instance.id"]) for row in rows}


def _tool_calls_by_instance(collector: Collector) -> dict[str, float]:
    """The latest cumulative tool_executions_total{tool="search"} each instance pushed."""
    latest: dict[str, float] = {}
    for row in collector.metrics():
        if row["name"] != "tool.executions":
            continue
        for point in row["points"]:
            if point["attributes"].get("tool") == "search":
                instance = str(row["resource"]["service.instance.id"])
                latest[instance] = max(latest.get(instance, 0.0), float(point["value"]))
    return latest


@pytest.fixture
def workers(tmp_path: Path, collector: Collector) -> Any:
    process, url = _run_workers(tmp_path, collector.http_endpoint)
    try:
        yield url
    finally:
        stop_process(process, timeout=20)


def test_each_worker_reports_its_own_service_instance_id(workers: str, collector: Collector) -> None:
    """Every worker process pushes under a distinct service.instance.id (its startup logs show it)."""

    def startup_instances(c: Collector) -> set[str]:
        return _instances([r for r in c.logs() if r["body"] == "Application startup complete."])

    assert collector.wait_for(lambda c: len(startup_instances(c)) == WORKERS, timeout=30)


def test_the_collectors_series_add_up_to_every_call_across_workers(
    workers: str, collector: Collector
) -> None:
    """Summed over instances, the pushed counters equal the calls made, whichever worker served them."""
    for _ in range(CALLS):
        # A new connection per call, so the kernel spreads calls over the workers.
        assert httpx.post(f"{workers}/tools/search", json={"q": "1"}, timeout=10).status_code == 200
    collector.wait_for(lambda c: sum(_tool_calls_by_instance(c).values()) == CALLS, timeout=15)
