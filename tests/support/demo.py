"""Run ``python -m atoms_otel demo`` as a subprocess, find its URL, stop it by PID."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


def demo_env(**extra: str) -> dict[str, str]:
    """The environment without OTLP or atoms_otel settings from the outside, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_"))}
    env.update(extra)
    return env


@dataclass
class DemoProcess:
    process: subprocess.Popen[bytes]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _unread: list[str] = field(default_factory=list)
    _partial: bytes = b""

    def _next_line(self, deadline: float) -> str | None:
        # Raw reads (no Python buffering), so select() sees every byte that is waiting.
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while not self._unread:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self._unread += [line.decode() for line in complete]
        line = self._unread.pop(0)
        self.lines.append(line)
        return line

    def read_until(self, pattern: str, timeout: float) -> re.Match[str]:
        """Read stdout lines until one matches ``pattern``."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while (line := self._next_line(deadline)) is not None:
            if match := regex.search(line):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s; got {self.lines!r}")

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 15.0) -> tuple[int, str]:
        """Send ``sig``; the exit code and the rest of stdout."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            tail, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        rest = [*self._unread, *(self._partial + tail).decode().splitlines()]
        self._unread, self._partial = [], b""
        self.lines += rest
        return self.process.returncode, "\n".join(rest)


@contextmanager
def running_demo(*args: str, env: dict[str, str] | None = None) -> Iterator[DemoProcess]:
    """Start the demo on a free port (plus ``args``); yield once it serves; stop it by PID after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "atoms_otel", "demo", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env or demo_env(),
    )
    demo = DemoProcess(process)
    try:
        demo.url = demo.read_until(_SERVING.pattern, timeout=30).group(1)
        yield demo
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def run_demo(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run the demo to completion (e.g. ``--check``)."""
    return subprocess.run(
        [sys.executable, "-m", "atoms_otel", "demo", *args],
        capture_output=True,
        text=True,
        env=env or demo_env(),
        timeout=timeout,
    )
