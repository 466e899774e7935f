"""HealthMonitor and CustomHealthCheck: results, timeouts, concurrency, caching, aggregation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context

import atoms_otel
from atoms_otel import (
    ComponentType,
    CustomHealthCheck,
    HealthMonitor,
    HealthStatus,
    check_health,
    register_health_check,
)
from atoms_otel.base.events import EventBus, HealthChanged
from atoms_otel.plugins.health import ComponentHealth, aggregate
from tests.support.health import isolated_health_state

# A shared 2-core machine may be slow, but five 1 s checks run one after another take 5 s.
CONCURRENT_BOUND_S = 3.0


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


def _monitor(*checks: CustomHealthCheck, cache_ttl_s: float = 0.0) -> HealthMonitor:
    monitor = HealthMonitor(cache_ttl_s=cache_ttl_s, refresh_interval_s=None)
    for check in checks:
        monitor.register(check)
    return monitor


def _check(name: str, func: Any, *, critical: bool = True, **options: Any) -> CustomHealthCheck:
    return CustomHealthCheck(name, ComponentType.CUSTOM, func, critical=critical, **options)


async def test_status_prints_as_its_value(capsys: pytest.CaptureFixture[str]) -> None:
    """print(health.status) shows the bare value, as in the seed's usage example."""
    register_health_check(_check("redis", lambda: True))
    health = await check_health()
    print(health.status)
    assert capsys.readouterr().out == "healthy\n"


async def test_sync_and_async_check_functions_both_run() -> None:
    """A plain function and a coroutine function are both accepted as check_func."""

    async def async_ok() -> bool:
        await asyncio.sleep(0)
        return True

    report = await _monitor(_check("sync", lambda: True), _check("async", async_ok)).check_health()
    assert {name: c.status for name, c in report.components.items()} == {
        "sync": HealthStatus.HEALTHY,
        "async": HealthStatus.HEALTHY,
    }


async def test_lambda_returning_a_coroutine_is_awaited() -> None:
    """check_func=lambda: client.ping() with an async ping is awaited, not judged as garbage."""

    async def ping() -> bool:
        return False

    report = await _monitor(_check("cache", lambda: ping())).check_health()
    assert report.components["cache"].status is HealthStatus.UNHEALTHY


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (True, HealthStatus.HEALTHY),
        (False, HealthStatus.UNHEALTHY),
        (None, HealthStatus.HEALTHY),
        (HealthStatus.DEGRADED, HealthStatus.DEGRADED),
        ("unhealthy", HealthStatus.UNHEALTHY),
        ({"healthy": False}, HealthStatus.UNHEALTHY),
    ],
)
async def test_return_value_decides_the_status(returned: Any, expected: HealthStatus) -> None:
    """bool, None (completed), a HealthStatus, its string value and {"healthy": ...} are understood."""
    report = await _monitor(_check("c", lambda: returned)).check_health()
    assert report.components["c"].status is expected


async def test_dict_result_keeps_status_message_and_details() -> None:
    """A dict result gives the status, the message and the remaining keys as details."""
    result = {"status": "degraded", "message": "replica lag", "lag_s": 12.5, "replicas": 2}
    component = (await _monitor(_check("db", lambda: result)).check_health()).components["db"]
    assert (component.status, component.message, dict(component.details)) == (
        HealthStatus.DEGRADED,
        "replica lag",
        {"lag_s": 12.5, "replicas": 2},
    )


async def test_raising_check_is_unhealthy_with_a_sanitized_message() -> None:
    """An exception becomes a one-line, bounded message without credentials — never a raise."""

    def connect() -> None:
        raise ConnectionError(
            "cannot reach postgres://admin:hunter2@db:5432/app\npassword=hunter2 " + "x" * 400
        )

    component = (await _monitor(_check("db", connect)).check_health()).components["db"]
    assert component.status is HealthStatus.UNHEALTHY
    assert component.message.startswith("ConnectionError: cannot reach postgres://[REDACTED]@db:5432/app")
    assert "hunter2" not in component.message
    assert "\n" not in component.message
    assert len(component.message) <= 200


@pytest.mark.parametrize(
    "garbage",
    [42, "PONG", object(), ["ok"], {"status": "splendid"}, 3.5],
    ids=["int", "str", "object", "list", "bad-status", "float"],
)
async def test_garbage_result_is_unknown_with_a_clear_message(garbage: Any) -> None:
    """A value we cannot read is reported as unknown with a message saying what to return."""
    component = (await _monitor(_check("weird", lambda: garbage)).check_health()).components["weird"]
    assert component.status is HealthStatus.UNKNOWN
    assert "unsupported value" in component.message or "unknown status" in component.message


async def test_garbage_details_are_made_json_safe_and_scrubbed() -> None:
    """Details with secrets, non-finite floats and odd objects are sanitized."""
    details = {"api_key": "abc123", "ratio": float("nan"), "client": object(), "nested": {"token": "t"}}
    component = (await _monitor(_check("x", lambda: details)).check_health()).components["x"]
    assert dict(component.details) == {
        "api_key": "[REDACTED]",
        "ratio": "nan",
        "client": "<object>",
        "nested": {"token": "[REDACTED]"},
    }


async def test_unknown_component_degrades_the_service() -> None:
    """An unreadable result does not take the service down but is not healthy either."""
    report = await _monitor(_check("weird", lambda: 42)).check_health()
    assert report.status is HealthStatus.DEGRADED


async def test_hanging_async_check_times_out() -> None:
    """A check slower than its timeout is unhealthy, and the run ends at the timeout."""

    async def hang() -> None:
        await asyncio.sleep(60)

    start = time.perf_counter()
    component = (await _monitor(_check("slow", hang, timeout_s=0.3)).check_health()).components["slow"]
    assert time.perf_counter() - start < 2.0
    assert (component.status, component.message) == (HealthStatus.UNHEALTHY, "timed out after 0.3 s")


async def test_check_that_ignores_cancellation_cannot_hang_the_caller() -> None:
    """Even a coroutine that swallows CancelledError does not hold up the report."""
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    start = time.perf_counter()
    report = await _monitor(_check("stubborn", stubborn, timeout_s=0.2)).check_health()
    release.set()
    assert time.perf_counter() - start < 2.0
    assert report.components["stubborn"].status is HealthStatus.UNHEALTHY


async def test_stuck_sync_check_is_not_started_again() -> None:
    """A sync check still blocked from the previous run is reported, not given a second thread."""
    release = threading.Event()
    calls: list[int] = []

    def blocked() -> bool:
        calls.append(1)
        release.wait(10)
        return True

    monitor = _monitor(_check("blocked", blocked, timeout_s=0.2))
    first = (await monitor.check_health()).components["blocked"]
    second = (await monitor.check_health()).components["blocked"]
    release.set()
    assert first.message == "timed out after 0.2 s"
    assert second.status is HealthStatus.UNHEALTHY
    assert "previous run still in progress" in second.message
    assert len(calls) == 1


async def test_an_async_check_ignoring_cancellation_leaves_no_pile_of_orphan_tasks() -> None:
    """500 runs of an async check that swallows its cancellation leave one task, not 500."""
    calls: list[int] = []
    stop = asyncio.Event()

    async def stubborn() -> bool:
        calls.append(1)
        while not stop.is_set():
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                continue  # ignores cancellation
        return True

    check = _check("stubborn", stubborn, timeout_s=0.01)
    results = [await check.run() for _ in range(500)]
    alive = [t for t in asyncio.all_tasks() if not t.done() and "_outcome" in repr(t.get_coro())]
    stop.set()
    assert len(calls) == 1 and len(alive) == 1
    assert results[0].message == "timed out after 0.01 s"
    assert all(r.status is HealthStatus.UNHEALTHY for r in results)
    assert all("previous run still in progress" in r.message for r in results[1:])
    await asyncio.sleep(0.6)  # it finished: the next run starts again
    assert (await check.run()).status is HealthStatus.HEALTHY and len(calls) == 2


async def test_five_one_second_checks_run_concurrently() -> None:
    """Five blocking 1 s checks complete in about one second, not five."""
    checks = [_check(f"dep{i}", lambda: time.sleep(1.0) or True) for i in range(5)]
    start = time.perf_counter()
    report = await _monitor(*checks).check_health()
    elapsed = time.perf_counter() - start
    assert report.status is HealthStatus.HEALTHY
    assert 1.0 <= elapsed < CONCURRENT_BOUND_S


async def test_sync_check_runs_off_the_event_loop() -> None:
    """While a blocking check sleeps, the event loop keeps running other work."""
    loop_thread = threading.get_ident()
    seen: list[int] = []
    ticks = 0

    def blocking() -> bool:
        seen.append(threading.get_ident())
        time.sleep(0.5)
        return True

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    await _monitor(_check("blocking", blocking)).check_health()
    task.cancel()
    assert seen[0] != loop_thread
    assert ticks >= 10


async def test_instrumentation_is_suppressed_while_a_check_runs() -> None:
    """Probes are not traced as user traffic: the suppression keys are set inside the check."""
    seen: dict[str, Any] = {}

    def probe() -> bool:
        seen["suppressed"] = otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)
        seen["http"] = otel_context.get_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY)
        return True

    await _monitor(_check("probe", probe)).check_health()
    assert seen == {"suppressed": True, "http": True}
    assert otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY) is None


def _component(status: HealthStatus, critical: bool) -> ComponentHealth:
    return ComponentHealth("c", status, ComponentType.CUSTOM, critical, 1.0)


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        ([], HealthStatus.HEALTHY),
        ([(HealthStatus.HEALTHY, True), (HealthStatus.HEALTHY, False)], HealthStatus.HEALTHY),
        ([(HealthStatus.UNHEALTHY, True), (HealthStatus.HEALTHY, False)], HealthStatus.UNHEALTHY),
        ([(HealthStatus.UNHEALTHY, False), (HealthStatus.HEALTHY, True)], HealthStatus.DEGRADED),
        ([(HealthStatus.DEGRADED, True)], HealthStatus.DEGRADED),
        ([(HealthStatus.DEGRADED, False), (HealthStatus.UNHEALTHY, True)], HealthStatus.UNHEALTHY),
    ],
    ids=["none", "all-healthy", "critical-unhealthy", "noncritical-unhealthy", "degraded", "mixed"],
)
def test_aggregation_rules(components: list[tuple[HealthStatus, bool]], expected: HealthStatus) -> None:
    """Critical unhealthy → unhealthy; other unhealthy or degraded → degraded; else healthy."""
    assert aggregate(_component(s, c) for s, c in components) is expected


async def test_results_are_cached_within_the_interval() -> None:
    """A second call inside cache_ttl_s reuses the report instead of probing again."""
    calls: list[int] = []
    monitor = _monitor(_check("db", lambda: calls.append(1) or True), cache_ttl_s=60)
    first = await monitor.check_health()
    second = await monitor.check_health()
    assert second is first
    assert len(calls) == 1


async def test_cache_expires_after_the_interval() -> None:
    """Once cache_ttl_s has passed the checks run again."""
    calls: list[int] = []
    monitor = _monitor(_check("db", lambda: calls.append(1) or True), cache_ttl_s=0.2)
    await monitor.check_health()
    await asyncio.sleep(0.3)
    await monitor.check_health()
    assert len(calls) == 2


async def test_concurrent_callers_share_one_run() -> None:
    """Callers arriving while a run is in flight wait for it rather than starting another."""
    calls: list[int] = []

    async def slow() -> bool:
        calls.append(1)
        await asyncio.sleep(0.2)
        return True

    monitor = _monitor(_check("db", slow))
    reports = await asyncio.gather(*(monitor.check_health() for _ in range(10)))
    assert len(calls) == 1
    assert all(r is reports[0] for r in reports)


async def test_registering_a_check_invalidates_the_cache() -> None:
    """A newly registered check shows up at once, cache or not."""
    monitor = _monitor(_check("a", lambda: True), cache_ttl_s=60)
    await monitor.check_health()
    monitor.register(_check("b", lambda: False, critical=False))
    assert set((await monitor.check_health()).components) == {"a", "b"}


async def test_registering_the_same_name_replaces_the_check() -> None:
    """Component names are unique: the later registration wins."""
    monitor = _monitor(_check("db", lambda: True), _check("db", lambda: False))
    report = await monitor.check_health()
    assert [(n, c.status) for n, c in report.components.items()] == [("db", HealthStatus.UNHEALTHY)]


def test_check_func_must_be_callable() -> None:
    """A non-callable check_func fails at construction, naming the check."""
    with pytest.raises(TypeError, match="'redis'"):
        CustomHealthCheck("redis", ComponentType.CACHE, "ping")  # type: ignore[arg-type]


def test_timeout_must_be_positive() -> None:
    """A zero, negative or non-finite timeout fails at construction."""
    with pytest.raises(ValueError, match="timeout_s"):
        _check("x", lambda: True, timeout_s=0)


def test_seed_usage_example_runs() -> None:
    """The seed's example, verbatim apart from the import path, works from synchronous code."""

    class Redis:
        def ping(self) -> bool:
            return True

    redis_client = Redis()
    atoms_otel.register_health_check(
        atoms_otel.CustomHealthCheck(
            name="redis",
            component_type=atoms_otel.ComponentType.CACHE,
            check_func=lambda: redis_client.ping(),
            critical=True,
        )
    )
    health = asyncio.run(atoms_otel.check_health())
    assert str(health.status) == "healthy"


@pytest.fixture
def transitions() -> list[HealthChanged]:
    return []


def _watched(monitor: HealthMonitor, seen: list[HealthChanged]) -> HealthMonitor:
    """The monitor, publishing its transitions on a bus whose subscriber collects them."""
    bus = EventBus()
    bus.subscribe(HealthChanged, seen.append)
    monitor.events = bus
    return monitor


async def test_first_healthy_result_is_not_a_transition(transitions: list[HealthChanged]) -> None:
    """Starting healthy is the baseline, not news (no alert on every deploy)."""
    await _watched(_monitor(_check("db", lambda: True)), transitions).check_health()
    assert transitions == []


async def test_first_unhealthy_result_is_a_transition_from_unknown(transitions: list[HealthChanged]) -> None:
    """Starting unhealthy is reported, from unknown."""
    await _watched(_monitor(_check("db", lambda: False)), transitions).check_health()
    assert [(t.component, t.previous, t.status) for t in transitions] == [
        ("db", HealthStatus.UNKNOWN, HealthStatus.UNHEALTHY)
    ]


async def test_each_status_change_is_a_transition(transitions: list[HealthChanged]) -> None:
    """healthy → unhealthy → healthy gives two transitions; repeats give none."""
    state = {"ok": True}
    monitor = _watched(_monitor(_check("db", lambda: state["ok"])), transitions)
    for ok in (True, False, False, True, True):
        state["ok"] = ok
        await monitor.check_health()
    assert [(t.previous, t.status) for t in transitions] == [
        ("healthy", "unhealthy"),
        ("unhealthy", "healthy"),
    ]
