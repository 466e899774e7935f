"""A real SIGTERM after real traffic: every span, log record and metric point reaches a real collector."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.support.collector import Collector
from tests.support.net import free_port, missing, stop_process, wait_for_port

pytestmark = pytest.mark.real

REQUESTS = 200
ROOT = Path(__file__).resolve().parents[2]

APP = textwrap.dedent(
    """
    import os
    from fastapi import FastAPI
    from opentelemetry import trace
    import atoms_otel
    from atoms_otel import Counter, get_logger

    app = FastAPI()
    work = Counter("sigterm_work_total", "Work done", labels=("kind",))
    log = get_logger("svc")
    atoms_otel.configure(app=app, service_name="sigterm", otlp_endpoint=os.environ["TEST_OTLP"],
                         otlp_protocol="http/protobuf")

    @app.get("/work/{i}")
    def do_work(i: int) -> dict[str, int]:
        with trace.get_tracer("svc").start_as_current_span("work"):
            log.info("worked", i=i)
        work.inc(labels={"kind": "request"})
        return {"i": i}

    if __name__ == "__main__":
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port=int(os.environ["TEST_PORT"]), log_config=None)
    """
)

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from opentelemetry import trace
    import atoms_otel
    from atoms_otel import Counter, get_logger

    work = Counter("sigterm_work_total", "Work done", labels=("kind",))
    log = get_logger("svc")
    atoms_otel.configure(service_name="sigterm", otlp_endpoint=os.environ["TEST_OTLP"],
                         otlp_protocol="http/protobuf")
    for i in range(int(sys.argv[1])):
        with trace.get_tracer("svc").start_as_current_span("work"):
            log.info("worked", i=i)
        work.inc(labels={"kind": "request"})
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _env(collector: Collector, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEST_OTLP": collector.http_endpoint,
        "TEST_PORT": str(port),
    }


def _received(collector: Collector) -> tuple[int, int, float]:
    """Spans named ``work``, ``worked`` log records, and the counter summed over processes."""
    spans = len({s["span_id"] for s in collector.spans() if s["name"] == "work"})
    logs = sum(1 for r in collector.logs() if r["body"] == "worked")
    latest: dict[str, float] = {}
    for metric in collector.metrics():
        if metric["name"] == "sigterm_work_total":
            instance = str(metric["resource"].get("service.instance.id"))
            value = sum(float(p["value"]) for p in metric["points"])
            latest[instance] = max(latest.get(instance, 0.0), value)  # cumulative: the latest is the max
    return spans, logs, sum(latest.values())


def _traffic_then_sigterm(process: subprocess.Popen[bytes], port: int, collector: Collector) -> int:
    try:
        wait_for_port(port, timeout=20, process=process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            for i in range(REQUESTS):
                assert client.get(f"/work/{i}").status_code == 200
                assert time.monotonic() < deadline
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=20)
    finally:
        stop_process(process)


def _assert_everything_arrived(collector: Collector, sent: int) -> None:
    try:
        collector.wait_for(lambda c: _received(c) == (sent, sent, float(sent)), timeout=5)
    except AssertionError:
        spans, logs, points = _received(collector)
        pytest.fail(
            f"after SIGTERM received {spans}/{sent} spans, {logs}/{sent} logs, counter {points}/{sent}"
        )


def test_python_app_py_running_uvicorn_flushes_on_sigterm(tmp_path: Path, collector: Collector) -> None:
    """``python app.py`` (uvicorn.run): SIGTERM after 200 requests loses no span, log or metric point."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=tmp_path, env=_env(collector, port))
    assert _traffic_then_sigterm(process, port, collector) == -signal.SIGTERM
    _assert_everything_arrived(collector, REQUESTS)


def test_uvicorn_cli_flushes_on_sigterm(tmp_path: Path, collector: Collector) -> None:
    """The ``uvicorn app:app`` CLI: the lifespan shutdown exports everything before the process dies."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(collector, port))
    assert _traffic_then_sigterm(process, port, collector) == -signal.SIGTERM
    _assert_everything_arrived(collector, REQUESTS)


def test_gunicorn_with_uvicorn_workers_flushes_on_sigterm(tmp_path: Path, collector: Collector) -> None:
    """gunicorn with two uvicorn workers: SIGTERM to the master loses nothing from either worker."""
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        missing("gunicorn (pip install -e '.[dev]')")
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "app:app", "-k", "uvicorn.workers.UvicornWorker",
        "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(collector, port))
    assert _traffic_then_sigterm(process, port, collector) == 0  # gunicorn's master exits cleanly
    _assert_everything_arrived(collector, REQUESTS)


def test_plain_script_flushes_on_sigterm_and_still_dies_by_the_signal(
    tmp_path: Path, collector: Collector
) -> None:
    """A script without a server: SIGTERM exports what it recorded, then the process exits by SIGTERM."""
    (tmp_path / "script.py").write_text(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, "script.py", "20"], cwd=tmp_path, env=_env(collector, 0), stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(21)]  # 20 JSON log lines, then "ready"
        assert lines[-1] == b"ready"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == -signal.SIGTERM
    finally:
        stop_process(process)
    _assert_everything_arrived(collector, 20)
