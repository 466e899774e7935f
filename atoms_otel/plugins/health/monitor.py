"""``HealthMonitor``: runs every registered check concurrently, aggregates, caches, and reports
status transitions. The module-level ``register_health_check`` / ``check_health`` use a default
monitor.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Final

from atoms_otel.base import guard as _guard
from atoms_otel.base.events import EventBus, HealthChanged
from atoms_otel.plugins.health.checks import HealthCheck
from atoms_otel.plugins.health.model import ComponentHealth, HealthReport, HealthStatus, aggregate

__all__ = [
    "DEFAULT_CACHE_TTL_S",
    "HealthMonitor",
    "all_monitors",
    "check_health",
    "get_health_monitor",
    "register_health_check",
]

DEFAULT_CACHE_TTL_S: Final = 5.0
DEFAULT_REFRESH_INTERVAL_S: Final = 15.0


_monitors: weakref.WeakSet[HealthMonitor] = weakref.WeakSet()


def all_monitors() -> list[HealthMonitor]:
    """Every live monitor (the ``health_check_status`` gauge reports all of them)."""
    return list(_monitors)


class HealthMonitor:
    """Runs registered health checks and aggregates them into a :class:`HealthReport`.

    >>> monitor = HealthMonitor(cache_ttl_s=5)
    >>> monitor.register(CustomHealthCheck("redis", ComponentType.CACHE, redis.ping))
    >>> report = await monitor.check_health()

    - Checks run concurrently; each is bounded by its own timeout, so a run takes about as long as
      the slowest check (at most the largest timeout).
    - A report younger than ``cache_ttl_s`` is served from cache (``0`` turns caching off), and
      callers arriving while a run is in flight share it: probes cannot hammer dependencies.
    - A component's first result is a transition from ``unknown`` only if it is not healthy;
      after that every status change is published as a :class:`HealthChanged` event on
      ``events`` (the health plugin attaches ``telemetry.events`` to the monitor it is given).
    """

    def __init__(
        self,
        *,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        refresh_interval_s: float | None = DEFAULT_REFRESH_INTERVAL_S,
        events: EventBus | None = None,
    ) -> None:
        if cache_ttl_s < 0:
            raise ValueError("cache_ttl_s must be >= 0")
        if refresh_interval_s is not None and refresh_interval_s <= 0:
            raise ValueError("refresh_interval_s must be > 0 (or None to turn background checks off)")
        self.cache_ttl_s = cache_ttl_s
        self.refresh_interval_s = refresh_interval_s
        """How often the app's lifespan re-runs the checks in the background (``None``: never)."""
        self._checks: dict[str, HealthCheck] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._report: HealthReport | None = None
        self._report_at = 0.0
        self._report_version = -1
        self._inflight: tuple[asyncio.AbstractEventLoop, asyncio.Task[HealthReport]] | None = None
        self._last: dict[str, ComponentHealth] = {}
        self.events = events
        """Where status transitions are published (``None``: nowhere)."""
        _monitors.add(self)

    # -- registration --------------------------------------------------------------------------

    def register(self, check: HealthCheck) -> HealthCheck:
        """Add ``check`` (replacing a check with the same name). Returns it."""
        if not isinstance(check, HealthCheck):
            raise TypeError(f"expected a HealthCheck, got {type(check).__name__}")
        with self._lock:
            self._checks[check.name] = check
            self._version += 1
        return check

    def unregister(self, name: str) -> bool:
        with self._lock:
            removed = self._checks.pop(name, None) is not None
            self._last.pop(name, None)
            self._version += 1
        return removed

    def clear(self) -> None:
        """Forget every check and every result."""
        with self._lock:
            self._checks.clear()
            self._last.clear()
            self._report = None
            self._version += 1

    @property
    def checks(self) -> list[HealthCheck]:
        with self._lock:
            return list(self._checks.values())

    # -- running -------------------------------------------------------------------------------

    @property
    def last_report(self) -> HealthReport | None:
        return self._report

    def last_results(self) -> dict[str, ComponentHealth]:
        """The latest result of each component (what the ``health_check_status`` gauge shows)."""
        with self._lock:
            return dict(self._last)

    async def check_health(self, *, use_cache: bool = True) -> HealthReport:
        """Run every check (or return the cached report) and aggregate. Never raises."""
        with self._lock:
            report, fresh = self._report, self._report_version == self._version
            age = time.monotonic() - self._report_at
        if use_cache and report is not None and fresh and age < self.cache_ttl_s:
            return report
        loop = asyncio.get_running_loop()
        with self._lock:
            inflight = self._inflight
            if inflight is None or inflight[0] is not loop or inflight[1].done():
                inflight = self._inflight = (loop, loop.create_task(self._run_all()))
        # Shielded: a caller that goes away (client disconnect) does not cancel the shared run.
        return await asyncio.shield(inflight[1])

    async def _run_all(self) -> HealthReport:
        with self._lock:
            checks, version = list(self._checks.values()), self._version
        start = time.perf_counter()
        results = await asyncio.gather(*(check.run() for check in checks))
        components = {result.name: result for result in results}
        report = HealthReport(
            status=aggregate(results),
            components=components,
            duration_ms=(time.perf_counter() - start) * 1000.0,
        )
        with self._lock:
            transitions = self._transitions(components)
            self._report, self._report_at, self._report_version = report, time.monotonic(), version
        events = self.events
        if events is not None:
            for transition in transitions:
                events.publish(transition)
        return report

    def _transitions(self, components: dict[str, ComponentHealth]) -> list[HealthChanged]:
        transitions = []
        for name, result in components.items():
            previous = self._last.get(name)
            if previous is None:
                if result.status is not HealthStatus.HEALTHY:
                    transitions.append(_changed(HealthStatus.UNKNOWN, result))
            elif previous.status is not result.status:
                transitions.append(_changed(previous.status, result))
            self._last[name] = result
        return transitions

    async def run_periodically(self, interval_s: float | None = None) -> None:
        """Re-run the checks every ``interval_s`` (default ``refresh_interval_s``) until cancelled,
        so ``health_check_status`` and transition alerts stay current without probe traffic."""
        while True:
            interval = interval_s or self.refresh_interval_s
            if interval is None:  # turned off while running
                return
            try:
                await self.check_health()
            except Exception as exc:
                _guard.report_internal_error("health background refresh", exc)
            await asyncio.sleep(interval)


def _changed(previous: HealthStatus, current: ComponentHealth) -> HealthChanged:
    message = f"health of {current.name} changed from {previous.value} to {current.status.value}"
    return HealthChanged(
        message=message + (f": {current.message}" if current.message else ""),
        component=current.name,
        component_type=current.component_type.value,
        previous=previous.value,
        status=current.status.value,
        critical=current.critical,
        detail=current.message,
    )


_default = HealthMonitor()


def get_health_monitor() -> HealthMonitor:
    """The default monitor behind :func:`register_health_check`, :func:`check_health` and ``/health``."""
    return _default


def register_health_check(check: HealthCheck) -> HealthCheck:
    """Register ``check`` with the default monitor (replacing one with the same name)."""
    return _default.register(check)


async def check_health() -> HealthReport:
    """Run the default monitor's checks: ``health = await check_health(); print(health.status)``."""
    return await _default.check_health()
