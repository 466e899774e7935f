"""Debian's Prometheus and ``promtool`` (package ``prometheus``): lint what we expose, check the shipped
rules, and run a real Prometheus server on loopback that scrapes a service."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.net import free_port, require_binary, stop_process, wait_until_ready


def promtool() -> str:
    return require_binary("promtool", "promtool (apt-get install prometheus)")


def prometheus_binary() -> str:
    return require_binary("prometheus", "prometheus (apt-get install prometheus)")


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool ARGS`` and return the finished process (check ``returncode`` yourself)."""
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def check_metrics(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check metrics`` on a /metrics body (exit 0: no lint problems)."""
    return run_promtool("check", "metrics", stdin=exposition.decode())


class QueryError(AssertionError):
    """Prometheus answered a query with an error (bad PromQL, unknown function, ...)."""


@dataclass
class Prometheus:
    """A running Prometheus server; query it through its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    config_file: Path
    log_file: Path

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result (a vector's samples, or ``[scalar]``); raises on a bad query."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def wait_for(self, predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                raise AssertionError(f"Prometheus: {what} not true after {timeout}s\n{log}")
            time.sleep(0.25)

    def wait_until_scraped(self, job: str, *, timeout: float = 30.0) -> None:
        """Wait until every target of ``job`` has been scraped successfully (``up == 1``)."""
        self.wait_for(
            lambda: any(s["value"][1] == "1" for s in self.query(f'up{{job="{job}"}}')),
            timeout=timeout,
            what=f'up{{job="{job}"}} == 1',
        )

    def stop(self) -> None:
        stop_process(self.process, timeout=15)


def start_prometheus(
    workdir: Path, config: dict[str, Any], *, timeout: float = 20.0, extra_args: tuple[str, ...] = ()
) -> Prometheus:
    """Start Prometheus on a free loopback port with ``config`` (a prometheus.yml as a dict) and a
    TSDB under ``workdir``; ``extra_args`` are further flags (feature flags, resend delay). Stop it
    with :meth:`Prometheus.stop`."""
    binary = prometheus_binary()
    port = free_port()
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log_file = workdir / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log_file, "wb"),  # noqa: SIM115 - closed with the process
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, port, process, timeout=timeout, what="Prometheus")
    return Prometheus(url=url, process=process, config_file=config_file, log_file=log_file)
