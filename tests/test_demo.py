"""``python -m atoms_otel demo``: --check, clean stops, options and limits, and its parts."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse

from atoms_otel import HealthStatus
from atoms_otel.demo.check import check_endpoints
from atoms_otel.demo.service import FlappingDependency
from atoms_otel.demo.traffic import MAX_IN_FLIGHT, TrafficDriver
from tests.support.demo import demo_env, run_demo, running_demo
from tests.support.server import serve

pytestmark = pytest.mark.real

ENDPOINTS = (
    "GET /health/live",
    "GET /health/ready",
    "GET /health",
    "GET /metrics",
    "GET /api/observability/dashboard",
    "GET /observability",
    "traffic",
)


# -- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "env"),
    [([], {}), (["--token", "demo-token-91c2"], {}), ([], {"ATOMS_OTEL_API_TOKEN": "demo-token-91c2"})],
    ids=["open", "token-option", "token-from-environment"],
)
def test_check_passes_on_a_working_install(extra: list[str], env: dict[str, str]) -> None:
    """--check drives traffic for a few seconds, finds every endpoint behaving and exits 0."""
    result = run_demo(
        "--check", "--port", "0", "--duration", "3", "--rate", "20", *extra, env=demo_env(**env)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("ok ")] == [
        e.split()[-1] for e in ENDPOINTS
    ]
    assert "check passed" in result.stdout
    assert ("?token=YOUR_TOKEN" in result.stdout) is bool(extra or env)


def test_check_fails_and_names_what_misbehaves() -> None:
    """With telemetry switched off there are no metrics: exit 1, naming /metrics and the dashboard."""
    result = run_demo("--check", "--port", "0", "--duration", "2", env=demo_env(OTEL_SDK_DISABLED="true"))
    assert result.returncode == 1
    assert "FAIL  GET /metrics: no http_requests_total" in result.stdout
    assert "FAIL  GET /api/observability/dashboard: no requests counted" in result.stdout
    assert "check failed: GET /metrics, GET /api/observability/dashboard" in result.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_stops_the_demo_cleanly(sig: signal.Signals) -> None:
    """Ctrl-C (or SIGTERM) stops traffic and server, prints a summary and exits 0."""
    with running_demo("--rate", "20") as demo:
        demo.read_until(r"sending 20 requests/s until Ctrl-C", timeout=10)
        time.sleep(1.5)
        started = time.monotonic()
        code, rest = demo.stop(sig)
    assert code == 0
    assert time.monotonic() - started < 10
    assert f"stopped by {sig.name}" in rest
    assert "requests sent (200:" in rest


def test_banner_says_where_to_look() -> None:
    """The live view, /metrics, /health and the API are printed with the real port."""
    with running_demo() as demo:
        lines = [
            demo.read_until(rf"{path}\s*$", timeout=5).group(0) for path in ("/observability", "/metrics")
        ]
        health = demo.read_until(r"health\s+(\S+)", timeout=5).group(1)
        assert httpx.get(health, timeout=10).status_code == 200
        demo.stop()
    assert [line.rsplit("/", 1)[-1] for line in lines] == ["observability", "metrics"]


def test_duration_stops_the_demo_by_itself() -> None:
    """--duration 1.5 ends the run without a signal, exit 0."""
    result = run_demo("--port", "0", "--duration", "1.5")
    assert result.returncode == 0
    assert "stopped after" in result.stdout and "stopped by" not in result.stdout


def test_port_in_use_is_a_clear_error() -> None:
    """A taken port: exit 2 naming it, and how to get a free one."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo("--port", str(port), "--duration", "1")
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stdout
    assert "--port 0" in result.stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--rate", "51", "at most 50 requests per second"),
        ("--rate", "0", "at most 50 requests per second"),
        ("--port", "70000", "between 0 and 65535"),
        ("--duration", "-1", "positive number of seconds"),
    ],
)
def test_out_of_range_options_are_rejected(option: str, value: str, message: str) -> None:
    """The rate is capped; port and duration are validated; argparse exits 2 with the reason."""
    result = run_demo(option, value, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_console_script_runs_the_demo() -> None:
    """The installed `atoms-otel demo` command is the same CLI, with its options documented."""
    script = Path(sys.executable).parent / "atoms-otel"
    result = subprocess.run([str(script), "demo", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert all(option in result.stdout for option in ("--port", "--duration", "--rate", "--check", "--token"))


# -- its parts ----------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_dependency_flaps_through_every_status() -> None:
    """Healthy, then degraded (slow), then down, then healthy again, on its period."""
    clock = _Clock()
    payments = FlappingDependency(period_s=100, clock=clock)
    seen = []
    for t in (0, 59, 61, 74, 76, 99, 101):
        clock.now = t
        seen.append(payments.status())
    H, D, U = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY
    assert seen == [H, H, D, D, U, U, H]
    clock.now = 80
    assert payments.probe() == {"status": U, "message": "connection refused by payments.internal:443"}
    with pytest.raises(ConnectionError, match="connection refused"):
        asyncio.run(payments.charge(100))


def test_traffic_never_has_more_than_its_limit_in_flight() -> None:
    """Against a slow service a high rate skips requests instead of piling them up."""
    app = FastAPI()
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def slow(path: str) -> PlainTextResponse:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.5)
        with lock:
            state["now"] -= 1
        return PlainTextResponse("ok")

    async def drive(base: str) -> TrafficDriver:
        stop = asyncio.Event()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            driver = TrafficDriver(client, 50)
            asyncio.get_running_loop().call_later(1.5, stop.set)
            await driver.run(stop)
        return driver

    with serve(app) as base:
        driver = asyncio.run(drive(base))
    assert state["max"] <= MAX_IN_FLIGHT
    assert driver.stats.skipped > 0
    assert driver.stats.transport_errors == 0


@pytest.mark.parametrize("rate", [0.0, 51.0])
def test_traffic_rate_is_capped(rate: float) -> None:
    """The driver refuses rates outside (0, 50] requests/s."""
    with pytest.raises(ValueError, match="at most 50"):
        TrafficDriver(httpx.AsyncClient(), rate)


def test_check_names_each_misbehaving_endpoint() -> None:
    """Against a service that answers wrongly, every endpoint's problem is named."""
    broken = FastAPI()

    @broken.get("/health/live")
    async def live() -> PlainTextResponse:
        return PlainTextResponse("up")

    @broken.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    async def check(base: str) -> list[str]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            return [str(f) for f in await check_endpoints(client)]

    with serve(broken) as base:
        findings = asyncio.run(check(base))
    assert findings[0].startswith("FAIL  GET /health/live: status 200, not JSON")
    assert findings[1] == "ok    GET /health/ready"
    assert [f.split(":")[0] for f in findings[2:]] == [
        "FAIL  GET /health",
        "FAIL  GET /metrics",
        "FAIL  GET /api/observability/dashboard",
        "FAIL  GET /observability",
    ]
    assert all("status 404" in f for f in findings[2:])
