"""Debian's ``promtool`` (package ``prometheus``), for checking what we expose."""

from __future__ import annotations

import subprocess

from tests.support.net import require_binary


def promtool() -> str:
    return require_binary("promtool", "promtool (apt-get install prometheus)")


def check_metrics(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check metrics`` on a /metrics body (exit 0: no lint problems)."""
    return subprocess.run(
        [promtool(), "check", "metrics"],
        input=exposition.decode(),
        capture_output=True,
        text=True,
        timeout=30,
    )
