"""A real OTLP collector for tests: rotel's ``rotel-agent`` binary on loopback, writing what it
receives to a JSON-lines file through tests/support/otlp_sink.py."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.net import free_port, require_binary, stop_process, wait_for_port

SINK = Path(__file__).with_name("otlp_sink.py").resolve()


def rotel_binary() -> str | None:
    try:
        import rotel
    except ImportError:
        return None
    path = Path(rotel.__file__).parent / "rotel-agent"
    return str(path) if path.exists() else None


@dataclass
class Collector:
    http_endpoint: str
    grpc_endpoint: str
    sink_file: Path
    process: subprocess.Popen[bytes]
    log_file: Path

    def rows(self, signal_name: str | None = None) -> list[dict[str, Any]]:
        if not self.sink_file.exists():
            return []
        rows = []
        for line in self.sink_file.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if signal_name is None or row.get("signal") == signal_name:
                rows.append(row)
        return rows

    def spans(self) -> list[dict[str, Any]]:
        return self.rows("span")

    def logs(self) -> list[dict[str, Any]]:
        return self.rows("log")

    def metrics(self) -> list[dict[str, Any]]:
        return self.rows("metric")

    def wait_for(self, predicate: Callable[[Collector], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"collector did not receive the expected data within {timeout}s; got "
                    f"{len(self.spans())} spans, {len(self.logs())} logs, {len(self.metrics())} metrics"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.process, timeout=5)


def start_collector(
    workdir: Path,
    *,
    http_port: int | None = None,
    sink: Path = SINK,
    env: Mapping[str, str] | None = None,
) -> Collector:
    """rotel on free loopback ports, every signal handed to the Python ``sink`` processor (by default
    the one writing ``received.jsonl``); ``env`` adds variables for the sink."""
    binary = require_binary(rotel_binary(), "rotel-agent (pip install rotel==0.0.1a15)")
    http_port, grpc_port = http_port or free_port(), free_port()
    sink_file = workdir / "received.jsonl"
    log_file = workdir / "rotel.log"
    environment = {**os.environ, "ATOMS_SINK_FILE": str(sink_file), **(env or {})}
    process = subprocess.Popen(
        [
            binary,
            "start",
            "--otlp-http-endpoint",
            f"127.0.0.1:{http_port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{grpc_port}",
            "--exporter",
            "blackhole",
            "--otlp-with-trace-processor",
            str(sink),
            "--otlp-with-logs-processor",
            str(sink),
            "--otlp-with-metrics-processor",
            str(sink),
            "--pid-file",
            str(workdir / "rotel.pid"),
            "--log-file",
            str(log_file),
        ],
        env=environment,
        stdout=open(workdir / "rotel.stdout", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(http_port, timeout=10, process=process)
        wait_for_port(grpc_port, timeout=10, process=process)
    except Exception:
        process.kill()
        raise
    return Collector(
        http_endpoint=f"http://127.0.0.1:{http_port}",
        grpc_endpoint=f"http://127.0.0.1:{grpc_port}",
        sink_file=sink_file,
        process=process,
        log_file=log_file,
    )
