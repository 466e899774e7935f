"""Debian's Alertmanager (package ``prometheus-alertmanager``) and ``amtool``: check the shipped
config and run a real Alertmanager on loopback, clustering off, stopped by PID."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.net import free_port, require_binary, stop_process, wait_until_ready


def amtool() -> str:
    return require_binary("amtool", "amtool (apt-get install prometheus-alertmanager)")


def run_amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``amtool ARGS`` and return the finished process (check ``returncode`` yourself)."""
    return subprocess.run([amtool(), *args], capture_output=True, text=True, timeout=60, check=False)


@dataclass
class Alertmanager:
    """A running Alertmanager; read and post alerts through its v2 API."""

    url: str
    address: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def alerts(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/api/v2/alerts", timeout=10).json())

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, timeout=15)


def start_alertmanager(workdir: Path, config: dict[str, Any], *, timeout: float = 20.0) -> Alertmanager:
    """Start Alertmanager on a free loopback port with ``config`` (an alertmanager.yml as a dict),
    its storage under ``workdir`` and the cluster listener off (it would bind 0.0.0.0:9094)."""
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager (apt-get install)")
    port = free_port()
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log_file = workdir / "alertmanager.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log_file, "wb"),  # noqa: SIM115 - closed with the process
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, port, process, timeout=timeout, what="Alertmanager")
    return Alertmanager(url=url, address=f"127.0.0.1:{port}", process=process, log_file=log_file)
