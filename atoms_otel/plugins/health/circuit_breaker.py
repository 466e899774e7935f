"""``CircuitBreaker``: stop calling a failing dependency for a while, then try again carefully.

States: **closed** (calls pass; consecutive failures are counted) → after ``failure_threshold``
consecutive failures, **open** (calls are rejected at once with :class:`CircuitOpenError`) → after
``reset_timeout_s``, **half-open** (up to ``half_open_max_calls`` trial calls pass; a success closes
the circuit, a failure opens it again).

The state shows in health (a component named after the breaker: closed → healthy, half-open →
degraded, open → degraded, or unhealthy when ``critical=True``) and as the metric
``circuit_breaker_state{breaker,state}`` (1 for the current state, 0 for the others).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from enum import StrEnum
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from atoms_otel.otel.logs import get_logger
from atoms_otel.plugins.health.checks import CheckOutcome, HealthCheck
from atoms_otel.plugins.health.model import ComponentHealth, ComponentType, HealthStatus
from atoms_otel.plugins.health.monitor import register_health_check

__all__ = ["CircuitBreaker", "CircuitBreakerHealthCheck", "CircuitOpenError", "CircuitState", "all_breakers"]

P = ParamSpec("P")
R = TypeVar("R")

_logger = get_logger("atoms_otel.health")
_breakers: weakref.WeakValueDictionary[str, CircuitBreaker] = weakref.WeakValueDictionary()


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(RuntimeError):
    """Raised instead of calling through an open circuit."""

    def __init__(self, breaker: str, retry_after_s: float) -> None:
        super().__init__(f"circuit {breaker!r} is open; retry in {retry_after_s:.1f} s")
        self.breaker = breaker
        self.retry_after_s = retry_after_s


def all_breakers() -> list[CircuitBreaker]:
    """Every live breaker (the ``circuit_breaker_state`` gauge reports all of them)."""
    return list(_breakers.values())


class CircuitBreaker:
    """Protect calls to a dependency. As a decorator (sync or async functions) or a context manager
    (``with`` / ``async with``)::

        supabase_breaker = CircuitBreaker("supabase", failure_threshold=5, reset_timeout_s=30)

        @supabase_breaker
        async def fetch_user(user_id: str) -> dict: ...

        async with supabase_breaker:
            await client.rpc("refresh")

    Only exceptions in ``failure_exceptions`` (default: any ``Exception``) count as failures; the
    exception itself always propagates unchanged. ``register_health`` (default true) adds the
    breaker's state to the default health monitor as component ``name``.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        failure_exceptions: tuple[type[BaseException], ...] = (Exception,),
        critical: bool = False,
        register_health: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1:
            raise ValueError("failure_threshold and half_open_max_calls must be >= 1")
        if reset_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self.failure_exceptions = failure_exceptions
        self.critical = critical
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0
        self.last_error = ""
        _breakers[name] = self
        if register_health:
            register_health_check(CircuitBreakerHealthCheck(self))

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._current_state()

    @property
    def failure_count(self) -> int:
        return self._failures

    def _current_state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def _move(self, state: CircuitState) -> None:
        previous, self._state = self._state, state
        if state is CircuitState.OPEN:
            self._opened_at = self._clock()
        if state is not CircuitState.HALF_OPEN:
            self._trials = 0
        if state is CircuitState.CLOSED:
            self._failures = 0
        if previous is not state:
            level = _logger.warning if state is CircuitState.OPEN else _logger.info
            level(
                "circuit breaker %s: %s -> %s",
                self.name,
                previous.value,
                state.value,
                extra_fields={"breaker": self.name, "previous": previous.value, "state": state.value},
            )

    def reset(self) -> None:
        """Close the circuit and forget failures."""
        with self._lock:
            self._move(CircuitState.CLOSED)

    # -- the call protocol ---------------------------------------------------------------------

    def _before(self) -> None:
        with self._lock:
            state = self._current_state()
            if state is CircuitState.OPEN:
                remaining = self.reset_timeout_s - (self._clock() - self._opened_at)
                raise CircuitOpenError(self.name, max(remaining, 0.0))
            if state is CircuitState.HALF_OPEN:
                if self._trials >= self.half_open_max_calls:
                    raise CircuitOpenError(self.name, 0.0)
                self._trials += 1

    def _after(self, exc: BaseException | None) -> None:
        failed = exc is not None and isinstance(exc, self.failure_exceptions)
        with self._lock:
            if not failed:
                # A late success from before the circuit opened proves nothing; a trial's does.
                if self._state is CircuitState.HALF_OPEN:
                    self._move(CircuitState.CLOSED)
                elif self._state is CircuitState.CLOSED:
                    self._failures = 0
                return
            self.last_error = type(exc).__name__
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._move(CircuitState.OPEN)

    def __enter__(self) -> CircuitBreaker:
        self._before()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._after(exc)

    async def __aenter__(self) -> CircuitBreaker:
        self._before()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._after(exc)

    @overload
    def __call__(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, func: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``func`` (sync or async): every call goes through the breaker."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"


class CircuitBreakerHealthCheck(HealthCheck):
    """Reports a breaker's state as a health component (no I/O: it reads the state)."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        super().__init__(
            breaker.name, ComponentType.CIRCUIT_BREAKER, critical=breaker.critical, timeout_s=1.0
        )
        self.breaker = breaker

    async def check(self) -> CheckOutcome:
        state = self.breaker.state
        details = {"state": state.value, "failures": self.breaker.failure_count}
        if state is CircuitState.CLOSED:
            return {"status": HealthStatus.HEALTHY, **details}
        status = HealthStatus.UNHEALTHY if self.breaker.critical and state is CircuitState.OPEN else None
        last = f" after {self.breaker.last_error}" if self.breaker.last_error else ""
        return ComponentHealth(
            name=self.name,
            status=status or HealthStatus.DEGRADED,
            component_type=self.component_type,
            critical=self.critical,
            response_time_ms=0.0,
            message=f"circuit {state.value.replace('_', '-')}{last}",
            details=details,
        )
