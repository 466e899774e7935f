"""Isolation for tests that touch the process-wide health state (the default monitor, breakers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from atoms_otel.plugins.health import circuit_breaker, get_health_monitor


@contextmanager
def isolated_health_state() -> Iterator[None]:
    """An empty default monitor without cache or background refresh; everything restored after."""
    monitor = get_health_monitor()
    saved = (monitor.cache_ttl_s, monitor.refresh_interval_s)
    monitor.clear()
    monitor.cache_ttl_s, monitor.refresh_interval_s = 0.0, None
    circuit_breaker._breakers.clear()
    try:
        yield
    finally:
        monitor.clear()
        monitor.cache_ttl_s, monitor.refresh_interval_s = saved
        circuit_breaker._breakers.clear()
