"""Zero-code start: the real ``opentelemetry-instrument uvicorn app:app`` runs an unmodified FastAPI
app with atoms_otel's pipeline, one server span per request, against a real OTLP collector."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.collector import Collector
from tests.support.net import free_port, require_binary, stop_process, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
APP = """
import logging
from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("shop")

@app.get("/items/{item_id}")
def item(item_id: int):
    log.info("looking up item %s", item_id)
    return {"item_id": item_id}
"""


@contextmanager
def _instrumented(tmp_path: Path, collector: Collector, module: str = "app", **env: str) -> Iterator[str]:
    """``opentelemetry-instrument uvicorn app:app`` on a free port, exporting to the collector."""
    command = require_binary(
        str(Path(sys.executable).parent / "opentelemetry-instrument"), "opentelemetry-instrument"
    )
    if module == "app":
        (tmp_path / "app.py").write_text(APP)
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_"))}
    environment.update(
        PYTHONPATH=str(ROOT),
        OTEL_SERVICE_NAME="zero-code",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.http_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        **env,
    )
    process = subprocess.Popen(
        [command, sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.mark.real
def test_an_unmodified_app_gets_the_pipeline_and_one_server_span(
    tmp_path: Path, collector: Collector
) -> None:
    """Correlation id on the response, one SERVER span per request (the contrib FastAPI
    instrumentor is installed and skipped), the log line exported with the request's trace; no
    routes added by default."""
    with _instrumented(tmp_path, collector) as url:
        response = httpx.get(f"{url}/items/3", timeout=10)
        assert response.json() == {"item_id": 3} and response.headers["x-correlation-id"]
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 404
        log = collector.wait_for(lambda c: [r for r in c.logs() if r["body"] == "looking up item 3"])[0]
        spans = collector.wait_for(
            lambda c: [s for s in c.spans() if s["trace_id"] == log["trace_id"] and s["kind"] == 2]
        )
    assert [(s["name"], s["scope"]) for s in spans] == [("GET /items/{item_id}", "atoms_otel")]
    assert spans[0]["resource"]["service.name"] == "zero-code"
    assert spans[0]["resource"]["telemetry.distro.name"] == "atoms_otel"
    assert log["attributes"]["atoms.correlation_id"] == response.headers["x-correlation-id"]


@pytest.mark.real
def test_endpoints_are_added_when_asked(tmp_path: Path, collector: Collector) -> None:
    """ATOMS_OTEL_ENDPOINTS=true adds /metrics and the probes to the unmodified app."""
    with _instrumented(tmp_path, collector, ATOMS_OTEL_ENDPOINTS="true") as url:
        httpx.get(f"{url}/items/5", timeout=10)
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        ready = httpx.get(f"{url}/health/ready", timeout=10)
    assert metrics.status_code == 200 and ready.status_code == 200
    assert 'http_requests_total{method="GET",path="/items/{item_id}",status="200"} 1.0' in metrics.text


EXPLICIT_APP = """
import logging
from fastapi import FastAPI
import atoms_otel

app = FastAPI()
atoms_otel.configure(service_name="explicit", app=app)  # after the zero-code start: re-configures
log = logging.getLogger("shop")

@app.get("/items/{item_id}")
def item(item_id: int):
    log.info("explicit item %s", item_id)
    return {"item_id": item_id}
"""


@pytest.mark.real
def test_an_explicit_configure_after_the_zero_code_start_reconfigures_one_pipeline(
    tmp_path: Path, collector: Collector
) -> None:
    """The app's own configure(app=) under opentelemetry-instrument: its settings win, the request
    still gets one server span and its log line is exported once (one pipeline, not two)."""
    (tmp_path / "explicit.py").write_text(EXPLICIT_APP)
    with _instrumented(tmp_path, collector, module="explicit") as url:
        response = httpx.get(f"{url}/items/4", timeout=10)
        assert response.json() == {"item_id": 4}
        log = collector.wait_for(lambda c: [r for r in c.logs() if r["body"] == "explicit item 4"])[0]
        spans = collector.wait_for(
            lambda c: [s for s in c.spans() if s["trace_id"] == log["trace_id"] and s["kind"] == 2]
        )
        time.sleep(1.0)  # a second pipeline would export its copy within its 100 ms schedule
        bodies = [r["body"] for r in collector.logs()]
    assert [(s["name"], s["resource"]["service.name"]) for s in spans] == [
        ("GET /items/{item_id}", "explicit")
    ]
    assert bodies.count("explicit item 4") == 1
    assert log["resource"]["service.name"] == "explicit"
    assert log["attributes"]["atoms.correlation_id"] == response.headers["x-correlation-id"]
