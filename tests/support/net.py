"""Ports, binaries and readiness checks shared by the real-component fixtures."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from typing import NoReturn

import httpx
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def missing(what: str) -> NoReturn:
    """Under CI a missing real component fails the test; locally it skips with the reason."""
    message = f"{what} is not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: real components are required)")
    pytest.skip(message)


def require_binary(path_or_name: str | None, what: str) -> str:
    if path_or_name and os.path.isabs(path_or_name) and os.path.exists(path_or_name):
        return path_or_name
    found = shutil.which(path_or_name) if path_or_name else None
    if not found:
        missing(what)
    return found


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Stop a server we started, by its PID: SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_until_ready(
    url: str, port: int, process: subprocess.Popen[bytes], *, timeout: float, what: str
) -> None:
    """Wait for the port, then for ``GET {url}/-/ready`` to answer 200 (Prometheus, Alertmanager);
    kill the process and re-raise if it does not come up in time."""
    try:
        wait_for_port(port, timeout=timeout, process=process)
        deadline = time.monotonic() + timeout
        while httpx.get(f"{url}/-/ready", timeout=2).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not become ready")
            time.sleep(0.1)
    except Exception:
        process.kill()
        process.wait(timeout=5)
        raise
