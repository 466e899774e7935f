"""CircuitBreaker: closed → open → half-open → closed, as decorator and context manager, sync and async."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from atoms_otel import CircuitBreaker, CircuitOpenError, CircuitState, HealthStatus, check_health
from tests.support.health import isolated_health_state


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock | None = None, **options: object) -> CircuitBreaker:
    options.setdefault("failure_threshold", 3)
    options.setdefault("reset_timeout_s", 10.0)
    return CircuitBreaker("payments", clock=clock or Clock(), **options)  # type: ignore[arg-type]


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError), breaker:
            raise ConnectionError("down")


def test_opens_after_consecutive_failures() -> None:
    """failure_threshold consecutive failures open the circuit."""
    breaker = _breaker()
    _fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    _fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN


def test_success_resets_the_consecutive_failure_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = _breaker()
    _fail(breaker, 2)
    with breaker:
        pass
    _fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED


def test_open_circuit_rejects_calls_without_calling() -> None:
    """While open, the protected function is not called at all."""
    breaker = _breaker()
    calls: list[int] = []

    @breaker
    def charge() -> None:
        calls.append(1)
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            charge()
    with pytest.raises(CircuitOpenError, match="'payments' is open"):
        charge()
    assert len(calls) == 3


def test_half_open_after_reset_timeout_and_a_trial_success_closes() -> None:
    """After reset_timeout_s one trial call passes; its success closes the circuit."""
    clock = Clock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.now += 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED


def test_trial_failure_reopens_the_circuit() -> None:
    """A failed trial call in half-open opens the circuit again for a full reset timeout."""
    clock = Clock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.now += 10.0
    _fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    clock.now += 9.0
    assert breaker.state is CircuitState.OPEN


def test_half_open_admits_only_the_allowed_trial_calls() -> None:
    """Beyond half_open_max_calls concurrent trials, calls are still rejected."""
    clock = Clock()
    breaker = _breaker(clock, half_open_max_calls=1)
    _fail(breaker, 3)
    clock.now += 10.0
    with breaker, pytest.raises(CircuitOpenError), breaker:
        pass


def test_late_success_does_not_close_an_open_circuit() -> None:
    """A call that started before the circuit opened and succeeds afterwards proves nothing."""
    breaker = _breaker()
    slow_call = breaker.__enter__()
    _fail(breaker, 3)
    slow_call.__exit__(None, None, None)
    assert breaker.state is CircuitState.OPEN


def test_user_exception_propagates_unchanged() -> None:
    """The breaker never wraps or replaces the caller's exception."""
    breaker = _breaker()
    error = ValueError("bad input")

    @breaker
    def call() -> None:
        raise error

    with pytest.raises(ValueError, match="bad input") as caught:
        call()
    assert caught.value is error


def test_only_failure_exceptions_count() -> None:
    """Exceptions outside failure_exceptions (e.g. validation errors) do not open the circuit."""
    breaker = _breaker(failure_exceptions=(ConnectionError,))
    for _ in range(5):
        with pytest.raises(KeyError), breaker:
            raise KeyError("missing")
    assert breaker.state is CircuitState.CLOSED


async def test_async_decorator_counts_failures_and_rejects() -> None:
    """Coroutine functions are protected the same way."""
    breaker = _breaker()

    @breaker
    async def fetch() -> str:
        raise TimeoutError("slow upstream")

    for _ in range(3):
        with pytest.raises(TimeoutError):
            await fetch()
    with pytest.raises(CircuitOpenError):
        await fetch()


async def test_async_context_manager() -> None:
    """async with works and records the outcome."""
    breaker = _breaker(failure_threshold=1)
    with pytest.raises(ConnectionError):
        async with breaker:
            raise ConnectionError("down")
    assert breaker.state is CircuitState.OPEN


def test_decorator_keeps_name_docstring_and_signature() -> None:
    """functools.wraps semantics: introspection sees the original function."""
    breaker = _breaker()

    @breaker
    async def fetch_user(user_id: str, *, fresh: bool = False) -> dict[str, str]:
        """Load a user."""
        return {"id": user_id}

    assert fetch_user.__name__ == "fetch_user"
    assert fetch_user.__doc__ == "Load a user."
    assert (
        str(inspect.signature(fetch_user)) == "(user_id: 'str', *, fresh: 'bool' = False) -> 'dict[str, str]'"
    )
    assert inspect.iscoroutinefunction(fetch_user)


async def test_open_circuit_shows_as_degraded_in_health() -> None:
    """A non-critical breaker's open state degrades its health component."""
    breaker = _breaker()
    _fail(breaker, 3)
    component = (await check_health()).components["payments"]
    assert (component.status, component.message, component.details["state"]) == (
        HealthStatus.DEGRADED,
        "circuit open after ConnectionError",
        "open",
    )


async def test_open_critical_circuit_makes_the_service_unhealthy() -> None:
    """With critical=True an open circuit is an unhealthy critical component."""
    breaker = _breaker(critical=True)
    _fail(breaker, 3)
    assert (await check_health()).status is HealthStatus.UNHEALTHY


async def test_closed_circuit_is_healthy_in_health() -> None:
    """A closed breaker is a healthy component with its failure count."""
    _breaker()
    component = (await check_health()).components["payments"]
    assert (component.status, dict(component.details)) == (
        HealthStatus.HEALTHY,
        {"state": "closed", "failures": 0},
    )


def test_invalid_settings_fail_at_construction() -> None:
    """A zero threshold or timeout is rejected up front."""
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", failure_threshold=0, register_health=False)


# -- every outcome of a call (issue 11 item 13) ---------------------------------------------------


def _half_open(clock: Clock, **options: object) -> CircuitBreaker:
    breaker = _breaker(clock, **options)
    _fail(breaker, 3)
    clock.now += 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    return breaker


async def test_timeouts_from_wait_for_count_as_failures_and_open_the_circuit() -> None:
    """asyncio.wait_for cancelling a slow call 10 times opens the circuit; it never closes it."""
    breaker = _breaker()

    @breaker
    async def slow() -> None:
        await asyncio.sleep(10)

    for _ in range(2):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), timeout=0.01)
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 2
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow(), timeout=0.01)
    assert breaker.state is CircuitState.OPEN
    for _ in range(7):
        with pytest.raises(CircuitOpenError):
            await asyncio.wait_for(slow(), timeout=0.01)
    assert breaker.state is CircuitState.OPEN and breaker.failure_count == 3


async def test_a_cancelled_half_open_trial_reopens_the_circuit() -> None:
    """A trial cancelled in flight is a failure: the circuit opens again, it does not close."""
    clock = Clock()
    breaker = _half_open(clock)
    started = asyncio.Event()

    async def trial() -> None:
        async with breaker:
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(trial())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is CircuitState.OPEN and breaker.failure_count == 4


@pytest.mark.parametrize("interrupt", [SystemExit, KeyboardInterrupt])
def test_system_exit_and_keyboard_interrupt_propagate_without_a_verdict(
    interrupt: type[BaseException],
) -> None:
    """They propagate unchanged, keep the failure count, and free the half-open trial slot."""
    clock = Clock()
    breaker = _breaker(clock)
    _fail(breaker, 2)
    with pytest.raises(interrupt), breaker:
        raise interrupt()
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 2
    _fail(breaker, 1)
    clock.now += 10.0
    with pytest.raises(interrupt), breaker:
        raise interrupt()
    assert breaker.state is CircuitState.HALF_OPEN
    with breaker:  # the slot was freed: the next trial is admitted and closes the circuit
        pass
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 0


def test_a_hung_trial_times_out_and_reopens_instead_of_refusing_forever() -> None:
    """While a trial holds its slot others get retry_after > 0; past trial_timeout_s the circuit reopens."""
    clock = Clock()
    breaker = _half_open(clock, trial_timeout_s=5.0)
    hung = breaker.__enter__()  # a trial that never returns
    clock.now += 2.0
    with pytest.raises(CircuitOpenError) as refused:
        breaker.__enter__()
    assert refused.value.retry_after_s == pytest.approx(3.0)
    clock.now += 3.0
    with pytest.raises(CircuitOpenError) as reopened:
        breaker.__enter__()
    assert reopened.value.retry_after_s == pytest.approx(10.0)
    assert breaker.state is CircuitState.OPEN and "hung" in breaker.last_error
    clock.now += 10.0
    hung.__exit__(None, None, None)  # its late success belongs to an earlier trial: ignored
    assert breaker.state is CircuitState.HALF_OPEN
    with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED


def test_a_trial_success_and_a_trial_failure_each_decide_the_state() -> None:
    """Success closes (count 0), a counted failure reopens, an uncounted exception is a success."""
    clock = Clock()
    breaker = _half_open(clock, failure_exceptions=(ConnectionError,))
    with pytest.raises(ValueError, match="not a dependency"), breaker:
        raise ValueError("not a dependency failure")
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 0
    _fail(breaker, 3)
    clock.now += 10.0
    _fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN and breaker.failure_count == 4
