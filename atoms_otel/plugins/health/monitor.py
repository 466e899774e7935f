"""``HealthMonitor``: runs every registered check concurrently, aggregates, caches, and reports
status transitions. The module-level ``register_health_check`` / ``check_health`` use a default
monitor.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from atoms_otel.base import guard as _guard
from atoms_otel.plugins.health.model import ComponentHealth, HealthReport, HealthStatus, aggregate
from atoms_otel.plugins.health.checks import HealthCheck

__all__ = [
    "DEFAULT_CACHE_TTL_S",
    "HealthMonitor",
    "Transition",
    "TransitionListener",
    "add_transition_listener",
    "all_monitors",
    "check_health",
    "get_health_monitor",
    "register_health_check",
]

DEFAULT_CACHE_TTL_S: Final = 5.0
DEFAULT_REFRESH_INTERVAL_S: Final = 15.0


@dataclass(frozen=True)
class Transition:
    """A component's status changed between two runs of its check."""

    previous: HealthStatus
    current: ComponentHealth

    @property
    def component(self) -> str:
        return self.current.name

    @property
    def status(self) -> HealthStatus:
        return self.current.status


TransitionListener = Callable[[Transition], None]

_listeners: list[TransitionListener] = []
_listeners_lock = threading.Lock()
_monitors: weakref.WeakSet[HealthMonitor] = weakref.WeakSet()


def add_transition_listener(listener: TransitionListener) -> Callable[[], None]:
    """Call ``listener`` on every status transition of every monitor. Returns a remover."""
    global _listeners
    with _listeners_lock:
        _listeners = [*_listeners, listener]

    def remove() -> None:
        global _listeners
        with _listeners_lock:
            _listeners = [entry for entry in _listeners if entry is not listener]

    return remove


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
      after that every status change is reported to the transition listeners.
    """

    def __init__(
        self,
        *,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        refresh_interval_s: float | None = DEFAULT_REFRESH_INTERVAL_S,
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
        for transition in transitions:
            _notify(transition)
        return report

    def _transitions(self, components: dict[str, ComponentHealth]) -> list[Transition]:
        transitions = []
        for name, result in components.items():
            previous = self._last.get(name)
            if previous is None:
                if result.status is not HealthStatus.HEALTHY:
                    transitions.append(Transition(HealthStatus.UNKNOWN, result))
            elif previous.status is not result.status:
                transitions.append(Transition(previous.status, result))
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


def _notify(transition: Transition) -> None:
    for listener in _listeners:
        try:
            listener(transition)
        except Exception as exc:
            _guard.report_internal_error(
                f"health transition listener {getattr(listener, '__qualname__', listener)}", exc
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
