"""``CircuitBreaker``: stop calling a failing dependency for a while, then try again carefully.

States: **closed** (calls pass; consecutive failures are counted) → after ``failure_threshold``
consecutive failures, **open** (calls are rejected at once with :class:`CircuitOpenError`) → after
``reset_timeout_s``, **half-open** (up to ``half_open_max_calls`` trial calls pass; a success closes
the circuit, a failure opens it again).

What counts as a failure: an exception in ``failure_exceptions``, and a call *cancelled* while in
flight (``asyncio.wait_for``'s timeout cancels it: the dependency did not answer in time). What
gives no verdict: ``SystemExit``, ``KeyboardInterrupt`` and ``GeneratorExit`` propagate unchanged,
leave the state and the failure count alone, and free a half-open trial slot. A trial that holds
its slot longer than ``trial_timeout_s`` (default ``reset_timeout_s``) counts as failed: the next
call opens the circuit again, so a hung trial cannot keep the circuit refusing every call.

The state shows in health (a component named after the breaker: closed → healthy, half-open →
degraded, open → degraded, or unhealthy when ``critical=True``) and as the metric
``circuit_breaker_state{breaker,state}`` (1 for the current state, 0 for the others).
"""

from __future__ import annotations

import asyncio
import contextvars
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
        trial_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1:
            raise ValueError("failure_threshold and half_open_max_calls must be >= 1")
        if reset_timeout_s <= 0 or (trial_timeout_s is not None and trial_timeout_s <= 0):
            raise ValueError("reset_timeout_s and trial_timeout_s must be > 0")
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
        self.trial_timeout_s = reset_timeout_s if trial_timeout_s is None else trial_timeout_s
        self._trial_started = 0.0
        self._generation = 0  # counts half-open periods: a trial's verdict counts only in its own
        # The tickets of the calls this task/thread has open as a context manager (innermost last).
        self._tickets: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
            f"circuit_breaker_{name}", default=()
        )
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
        if state is CircuitState.HALF_OPEN and previous is not state:
            self._generation += 1
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

    def _before(self) -> int:
        """Admit a call or raise :class:`CircuitOpenError`. Returns the call's ticket: the
        half-open period it is a trial of, or 0 for an ordinary call."""
        with self._lock:
            state = self._current_state()
            now = self._clock()
            if state is CircuitState.OPEN:
                raise CircuitOpenError(self.name, max(self.reset_timeout_s - (now - self._opened_at), 0.0))
            if state is not CircuitState.HALF_OPEN:
                return 0
            if self._trials >= self.half_open_max_calls:
                held = now - self._trial_started
                if held < self.trial_timeout_s:
                    raise CircuitOpenError(self.name, self.trial_timeout_s - held)
                self.last_error = f"trial hung over {self.trial_timeout_s:g} s"
                self._failures += 1
                self._move(CircuitState.OPEN)  # the hung trial failed; its late verdict is ignored
                raise CircuitOpenError(self.name, self.reset_timeout_s)
            if self._trials == 0:
                self._trial_started = now
            self._trials += 1
            return self._generation

    def _after(self, exc: BaseException | None, ticket: int) -> None:
        with self._lock:
            trial = ticket != 0 and ticket == self._generation and self._state is CircuitState.HALF_OPEN
            if ticket != 0 and not trial:
                return  # a trial of an earlier half-open period, already judged (hung)
            if exc is not None and not isinstance(exc, Exception | asyncio.CancelledError):
                if trial:  # SystemExit & co.: no verdict on the dependency; free the slot
                    self._trials = max(self._trials - 1, 0)
                return
            failed = isinstance(exc, asyncio.CancelledError) or (
                exc is not None and isinstance(exc, self.failure_exceptions)
            )
            if not failed:
                # A late success from before the circuit opened proves nothing; a trial's does.
                if trial:
                    self._move(CircuitState.CLOSED)
                elif self._state is CircuitState.CLOSED:
                    self._failures = 0
                return
            self.last_error = type(exc).__name__
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._move(CircuitState.OPEN)

    def _enter(self) -> None:
        ticket = self._before()
        self._tickets.set((*self._tickets.get(), ticket))

    def _exit(self, exc: BaseException | None) -> None:
        tickets = self._tickets.get()
        self._tickets.set(tickets[:-1])
        self._after(exc, tickets[-1] if tickets else 0)

    def __enter__(self) -> CircuitBreaker:
        self._enter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(exc)

    async def __aenter__(self) -> CircuitBreaker:
        self._enter()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(exc)

    @overload
    def __call__(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, func: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``func`` (sync or async): every call goes through the breaker."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                ticket = self._before()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self._after(exc, ticket)
                    raise
                self._after(None, ticket)
                return result

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            ticket = self._before()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._after(exc, ticket)
                raise
            self._after(None, ticket)
            return result

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
