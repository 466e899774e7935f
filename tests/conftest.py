"""Fixtures shared by the whole suite. In-process tests use ``capture_telemetry`` from
atoms_otel.testing (installed as a pytest plugin); these add the real components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atoms_otel.base import first_use
from atoms_otel.base import guard as _guard
from atoms_otel.plugins.webhooks import WebhookManager
from tests.support.collector import Collector, start_collector
from tests.support.receiver import Receiver


@pytest.fixture(autouse=True)
def _internal_errors_raise() -> Iterator[None]:
    """Our own bugs should fail tests, not be contained; tests of containment switch this off."""
    _guard.raise_internal_errors = True
    yield
    _guard.raise_internal_errors = False
    _guard.reset()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """A real OTLP collector (rotel) on free loopback ports, stopped by PID afterwards."""
    instance = start_collector(tmp_path)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver (threaded http.server) on a free loopback port."""
    instance = Receiver()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def webhooks() -> Iterator[WebhookManager]:
    """A fresh webhook manager (coalescing off unless a test turns it on), shut down afterwards."""
    manager = WebhookManager(coalesce_window_s=0, shutdown_timeout_s=2.0)
    try:
        yield manager
    finally:
        manager.shutdown(timeout=0.5)


# atoms_otel's own tests configure explicitly. The first-use auto-configuration (the spec's snippets
# never call configure()) is tested in fresh interpreters by tests/test_seed_snippets.py.
first_use.disarm()
