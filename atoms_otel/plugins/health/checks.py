"""Health checks: the :class:`HealthCheck` base and :class:`CustomHealthCheck`.

Every check runs under the same rules, enforced by :meth:`HealthCheck.run`:

- it has a timeout (``timeout_s``, default 5 s); a check that overruns is reported unhealthy and
  the caller stops waiting for it — a hanging dependency cannot hang ``/health``;
- whatever it raises or returns becomes a :class:`ComponentHealth` with a short, sanitized
  message — never an exception to the caller;
- synchronous checks run on their own daemon thread, off the event loop; a sync check that is
  still stuck from a previous run is not started again (reported unhealthy instead), so stuck
  checks cannot pile up threads; likewise an async check that ignored its cancellation and is
  still running is not started again, so it cannot pile up orphan tasks;
- our own instrumentation is suppressed while it runs, so probes do not show up as user traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from opentelemetry import context as otel_context

from atoms_otel.base import guard as _guard
from atoms_otel.base.compat import SUPPRESS_INSTRUMENTATION_KEYS
from atoms_otel.plugins.health.model import (
    ComponentHealth,
    ComponentType,
    HealthStatus,
    describe_exception,
    sanitize_details,
    sanitize_message,
)

__all__ = ["DEFAULT_TIMEOUT_S", "CheckFunc", "CheckOutcome", "CustomHealthCheck", "HealthCheck", "interpret"]

DEFAULT_TIMEOUT_S: Final = 5.0

CheckOutcome = HealthStatus | bool | Mapping[str, Any] | ComponentHealth | None
"""What a check may return: a status, a bool, a dict (``status``/``healthy``, ``message``, and
details), or nothing (the check completed, so the component is healthy)."""

CheckFunc = Callable[[], Any]

_SUPPRESS_KEYS: Final = SUPPRESS_INSTRUMENTATION_KEYS


def suppressed_context() -> otel_context.Context:
    """The current OTel context with instrumentation suppressed (for our own probes' I/O)."""
    ctx = otel_context.get_current()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    return ctx


def _status_from(value: Any) -> HealthStatus | None:
    if isinstance(value, HealthStatus):
        return value
    if isinstance(value, bool):
        return HealthStatus.HEALTHY if value else HealthStatus.UNHEALTHY
    if isinstance(value, str):
        try:
            return HealthStatus(value.strip().lower())
        except ValueError:
            return None
    return None


def _unsupported(value: Any) -> tuple[HealthStatus, str, dict[str, Any]]:
    return (
        HealthStatus.UNKNOWN,
        sanitize_message(
            f"check returned an unsupported value of type {type(value).__name__}; "
            "return a bool, a HealthStatus or a dict"
        ),
        {},
    )


def interpret(value: Any) -> tuple[HealthStatus, str, dict[str, Any]]:
    """Turn what a check returned into ``(status, message, details)``. Never raises."""
    if value is None:
        return HealthStatus.HEALTHY, "", {}
    if isinstance(value, ComponentHealth):
        return value.status, sanitize_message(value.message), sanitize_details(value.details)
    status = _status_from(value)
    if status is not None:
        return status, "", {}
    if isinstance(value, Mapping):
        try:
            raw = dict(value)
            details = {k: v for k, v in raw.items() if k not in ("status", "healthy", "message")}
            message = sanitize_message(raw.get("message", ""))
            if "status" in raw:
                status = _status_from(raw["status"])
                if status is None:
                    return (
                        HealthStatus.UNKNOWN,
                        sanitize_message(f"check returned an unknown status {raw['status']!r}"),
                        sanitize_details(details),
                    )
            elif "healthy" in raw:
                status = _status_from(bool(raw["healthy"]))
            return status or HealthStatus.HEALTHY, message, sanitize_details(details)
        except Exception as exc:  # a Mapping whose items() raise is garbage too
            return HealthStatus.UNKNOWN, describe_exception(exc), {}
    return _unsupported(value)


class HealthCheck:
    """Base class of every health check. Subclass it and implement :meth:`check`::

        class QueueCheck(HealthCheck):
            def __init__(self) -> None:
                super().__init__("queue", ComponentType.QUEUE, critical=False, timeout_s=2)

            async def check(self) -> CheckOutcome:
                depth = await queue.depth()
                return {"status": "degraded" if depth > 1000 else "healthy", "depth": depth}

    ``critical`` components make the service unhealthy (and not ready) when they fail; others only
    degrade it. ``slow_ms``: a healthy result that took longer than this is reported degraded.
    """

    def __init__(
        self,
        name: str,
        component_type: ComponentType | str = ComponentType.CUSTOM,
        *,
        critical: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        slow_ms: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValueError("a health check needs a name of 1 to 100 characters")
        if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"health check {name!r}: timeout_s must be a positive number of seconds")
        self.name = name.strip()
        self.component_type = ComponentType(component_type)
        self.critical = bool(critical)
        self.timeout_s = float(timeout_s)
        self.slow_ms = slow_ms
        self._orphan: tuple[asyncio.Future[Any], float] | None = None  # a timed-out run still going

    async def check(self) -> CheckOutcome:
        """Probe the component. Raise, or return a :data:`CheckOutcome`."""
        raise NotImplementedError

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message (API keys); removed by the sanitizer."""
        return ()

    async def run(self) -> ComponentHealth:
        """Run :meth:`check` within its timeout and turn any outcome into a result. Never raises."""
        start = time.perf_counter()
        token = otel_context.attach(suppressed_context())
        try:
            status, message, details = await self._bounded()
        except Exception as exc:  # our own bug; contained, the component shows as unknown
            _guard.report_internal_error(f"health check {self.name}", exc)
            status, message, details = HealthStatus.UNKNOWN, "health check machinery failed", {}
        finally:
            otel_context.detach(token)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if status is HealthStatus.HEALTHY and self.slow_ms is not None and elapsed_ms > self.slow_ms:
            status = HealthStatus.DEGRADED
            message = message or f"slow: {elapsed_ms:.0f} ms (degraded above {self.slow_ms:g} ms)"
        return ComponentHealth(
            name=self.name,
            status=status,
            component_type=self.component_type,
            critical=self.critical,
            response_time_ms=elapsed_ms,
            message=message,
            details=details,
        )

    def _still_running(self) -> str | None:
        """Why not to start again: a previous run timed out, was cancelled and is still going."""
        orphan = getattr(self, "_orphan", None)
        if orphan is None:
            return None
        task, since = orphan
        if task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._orphan = None  # finished, or left behind on a loop that is gone
            return None
        return f"previous run still in progress after {time.monotonic() - since:.1f} s; not started again"

    async def _bounded(self) -> tuple[HealthStatus, str, dict[str, Any]]:
        running = self._still_running()
        if running is not None:
            return HealthStatus.UNHEALTHY, running, {}
        started = time.monotonic()
        task = asyncio.ensure_future(self._outcome())
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        if not done:
            # Don't wait for the cancellation to finish: a check that ignores it must not hang us.
            task.cancel()
            task.add_done_callback(_consume)
            self._orphan = (task, started)
            return HealthStatus.UNHEALTHY, f"timed out after {self.timeout_s:g} s", {}
        exc = task.exception()
        if isinstance(exc, _StillRunning):
            return HealthStatus.UNHEALTHY, str(exc), {}
        if exc is not None:
            return HealthStatus.UNHEALTHY, describe_exception(exc, secrets=self.secrets()), {}
        return task.result()

    async def _outcome(self) -> tuple[HealthStatus, str, dict[str, Any]]:
        value: Any = await self.check()
        if inspect.isawaitable(value):  # e.g. check_func=lambda: client.ping() with an async ping
            value = await value
        status, message, details = interpret(value)
        return status, sanitize_message(message, secrets=self.secrets()), details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, critical={self.critical})"


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieve it, so asyncio does not log "exception was never retrieved"


class CustomHealthCheck(HealthCheck):
    """A check from any callable, sync or async::

        register_health_check(CustomHealthCheck(
            name="redis", component_type=ComponentType.CACHE,
            check_func=lambda: redis_client.ping(), critical=True,
        ))

    ``check_func`` may return a bool, a :class:`HealthStatus`, a dict with details (and optionally
    ``status``/``healthy`` and ``message``), or nothing; raising marks the component unhealthy.
    A synchronous ``check_func`` runs on a daemon thread, so a blocking client never stalls the
    event loop.
    """

    def __init__(
        self,
        name: str,
        component_type: ComponentType | str,
        check_func: CheckFunc,
        critical: bool = True,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        slow_ms: float | None = None,
    ) -> None:
        if not callable(check_func):
            raise TypeError(f"health check {name!r}: check_func must be callable")
        super().__init__(name, component_type, critical=critical, timeout_s=timeout_s, slow_ms=slow_ms)
        self.check_func = check_func
        self._is_async = inspect.iscoroutinefunction(check_func) or inspect.iscoroutinefunction(
            getattr(check_func, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._busy_since: float | None = None  # set while a sync run occupies its thread

    async def check(self) -> CheckOutcome:
        if self._is_async:
            result: Awaitable[Any] = self.check_func()
            return await result  # type: ignore[no-any-return]
        return await self._in_thread()  # type: ignore[no-any-return]

    async def _in_thread(self) -> Any:
        busy_since = self._busy_since
        if busy_since is not None:
            stuck_s = time.monotonic() - busy_since
            raise _StillRunning(f"previous run still in progress after {stuck_s:.1f} s; not started again")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        ctx = contextvars.copy_context()
        func = self.check_func

        def deliver(setter: Callable[[Any], None], value: Any) -> None:
            if not future.done():
                setter(value)

        def target() -> None:
            try:
                result = ctx.run(func)
            except Exception as exc:
                outcome: tuple[Callable[[Any], None], Any] = (future.set_exception, exc)
            except BaseException as exc:  # SystemExit & co. must not escape into the event loop
                failure = RuntimeError(f"check raised {type(exc).__name__}")
                outcome = (future.set_exception, failure)
            else:
                outcome = (future.set_result, result)
            self._busy_since = None  # before delivering: the next run may start right after
            # RuntimeError: the loop closed while we ran, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, *outcome)

        thread = threading.Thread(target=target, name=f"atoms-otel-health-{self.name}", daemon=True)
        self._busy_since = time.monotonic()
        thread.start()
        return await future


class _StillRunning(RuntimeError):
    """A sync check's previous run is still stuck on its thread."""

    def __str__(self) -> str:  # shown as the message, without the class name
        return str(self.args[0])
