"""examples/tool_monitoring.py and examples/mcp_server.py run as documented, with no collector."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mcp
import pytest

from tests.support.net import free_port, stop_process, wait_for_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.real


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_"))}


def test_tool_monitoring_example_runs_and_reports_tool_metrics() -> None:
    """The script exits 0, logs JSON lines with redacted inputs, and prints the tool counters."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "tool_monitoring.py")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    created = [x for x in lines if x["message"] == "tool create_user completed"]
    assert created and all(x["inputs"]["password"] == "[REDACTED]" for x in created)
    assert 'tool_executions_total{status="error",tool="charge_card"} 1.0' in done.stdout
    assert 'tool_executions_total{status="success",tool="onboard_user"} 2.0' in done.stdout


@pytest.fixture(scope="module")
def mcp_example() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "mcp_server.py")],
        env={**clean_env(), "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def test_mcp_example_serves_tools_and_counts_them(mcp_example: str) -> None:
    """A real MCP client calls the example's tools; /metrics shows the calls and the MCP durations."""

    async def run() -> tuple[int, bool]:
        async with mcp.Client(f"{mcp_example}/mcp/") as client:
            added = await client.call_tool("add", {"a": 2, "b": 3})
            missing = await client.call_tool("read_document", {"name": "nope"})
            return added.structured_content["result"], missing.is_error

    assert asyncio.run(run()) == (5, True)
    text = httpx.get(f"{mcp_example}/metrics", timeout=10).text
    assert 'tool_executions_total{status="success",tool="add"} 1.0' in text
    assert 'tool_executions_total{status="error",tool="read_document"} 1.0' in text
    assert "mcp_server_operation_duration_seconds_bucket" in text
    assert 'http_requests_total{method="POST",path="/mcp/",status="200"}' in text
