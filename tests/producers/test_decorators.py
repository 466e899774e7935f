"""observe_tool, log_operation, measure_performance and track_database_operation."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from atoms_otel import (
    REDACTED,
    get_logger,
    log_operation,
    measure_performance,
    observe_tool,
    track_database_operation,
)
from atoms_otel.base import guard as _guard
from atoms_otel.testing import CapturedTelemetry


class ToolFailed(Exception):
    pass


# Decorated at import time, before any configure(): must record once configure() has run.
@observe_tool("early_tool")
def early_tool(x: int) -> int:
    return x * 2


def tool_spans(capture: CapturedTelemetry) -> list[Any]:
    return [s for s in capture.spans if s.name.startswith("execute_tool ")]


# -- observe_tool -------------------------------------------------------------------------------


def test_observe_tool_opens_an_execute_tool_span(capture_telemetry: CapturedTelemetry) -> None:
    """The span is "execute_tool {name}" with the gen_ai attributes, child of the caller's span."""

    @observe_tool("create_user")
    def create_user(username: str) -> str:
        return username

    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        create_user("ada")
    span = capture_telemetry.span("execute_tool create_user")
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["gen_ai.tool.name"] == "create_user"
    assert span.parent is not None and span.parent.span_id == caller.get_span_context().span_id


def test_observe_tool_counts_successes_and_errors(capture_telemetry: CapturedTelemetry) -> None:
    """tool_executions_total{tool,status} and the duration histogram, per outcome."""

    @observe_tool("flaky")
    async def flaky(fail: bool) -> str:
        if fail:
            raise ToolFailed("no")
        return "ok"

    async def run() -> None:
        await flaky(False)
        await flaky(False)
        with pytest.raises(ToolFailed):
            await flaky(True)

    asyncio.run(run())
    assert capture_telemetry.metric_value("tool_executions_total", tool="flaky", status="success") == 2
    assert capture_telemetry.metric_value("tool_executions_total", tool="flaky", status="error") == 1
    assert capture_telemetry.metric_value("tool_execution_duration_seconds", tool="flaky") == 3


def test_observe_tool_reraises_the_same_exception(capture_telemetry: CapturedTelemetry) -> None:
    """The caller gets the very exception object the tool raised; the span records it."""
    raised = ToolFailed("boom")

    @observe_tool("explode")
    def explode() -> None:
        raise raised

    with pytest.raises(ToolFailed) as caught:
        explode()
    assert caught.value is raised
    span = capture_telemetry.span("execute_tool explode")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == f"{__name__}.ToolFailed"
    assert [e.name for e in span.events] == ["exception"]


def test_a_failed_tool_span_has_a_scrubbed_status_description(capture_telemetry: CapturedTelemetry) -> None:
    """The ERROR status says `<error.type>: <message>`, credentials redacted (export does not
    scrub the status); the exception event is scrubbed on export."""
    secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"

    @observe_tool("charge")
    def charge() -> None:
        raise ToolFailed(f"card refused, api_key={secret}")

    with pytest.raises(ToolFailed):
        charge()
    span = capture_telemetry.span("execute_tool charge")
    assert span.status.description.startswith(f"{__name__}.ToolFailed: card refused, api_key=")
    assert secret not in span.status.description
    [event] = span.events
    assert secret not in str(dict(event.attributes or {}))


def test_observe_tool_failure_is_counted_and_logged_once(capture_telemetry: CapturedTelemetry) -> None:
    """errors_total{source="tool"} and one ERROR line with the structured exception."""

    @observe_tool("explode")
    def explode() -> None:
        raise ToolFailed("boom")

    with pytest.raises(ToolFailed):
        explode()
    error_type = f"{__name__}.ToolFailed"
    assert capture_telemetry.metric_value("errors_total", error_type=error_type, source="tool") == 1
    [line] = [x for x in capture_telemetry.log_lines if x["level"] == "ERROR"]
    assert (line["tool"], line["status"], line["error_type"]) == ("explode", "error", error_type)
    assert line["exception"]["type"] == "ToolFailed"


def sync_fn(a: int, b: int = 2) -> int:
    """Sync doc."""
    return a + b


async def async_fn(a: int, b: int = 2) -> int:
    """Async doc."""
    return a + b


def gen_fn(a: int, b: int = 2) -> Iterator[int]:
    """Generator doc."""
    yield a
    yield b


async def agen_fn(a: int, b: int = 2) -> AsyncIterator[int]:
    """Async generator doc."""
    yield a
    yield b


KINDS = [
    (sync_fn, inspect.isfunction),
    (async_fn, inspect.iscoroutinefunction),
    (gen_fn, inspect.isgeneratorfunction),
    (agen_fn, inspect.isasyncgenfunction),
]
DECORATORS: list[Callable[[], Callable[[Any], Any]]] = [
    lambda: observe_tool("t"),
    lambda: log_operation("op"),
    lambda: measure_performance("perf"),
    lambda: track_database_operation("select", "users"),
]


@pytest.mark.parametrize(
    "decorator", DECORATORS, ids=["observe_tool", "log_operation", "measure", "database"]
)
@pytest.mark.parametrize(("fn", "kind"), KINDS, ids=["sync", "async", "generator", "async-generator"])
def test_decorators_keep_name_doc_signature_and_kind(
    decorator: Callable[[], Callable[[Any], Any]], fn: Callable[..., Any], kind: Callable[[Any], bool]
) -> None:
    """functools.wraps metadata, the signature and the function's kind survive decoration."""
    wrapped = decorator()(fn)
    assert (wrapped.__name__, wrapped.__doc__) == (fn.__name__, fn.__doc__)
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert kind(wrapped)


def test_generator_tool_span_covers_the_iteration(capture_telemetry: CapturedTelemetry) -> None:
    """A generator's span lasts until it is exhausted; between items the caller's context is back."""
    seen_between: list[bool] = []

    @observe_tool("pages")
    def pages() -> Iterator[int]:
        yield from range(3)

    outer = trace.get_current_span()
    results = []
    for page in pages():
        results.append(page)
        seen_between.append(trace.get_current_span() is outer)
        time.sleep(0.01)
    span = capture_telemetry.span("execute_tool pages")
    assert results == [0, 1, 2] and seen_between == [True, True, True]
    assert span.end_time is not None and (span.end_time - span.start_time) >= 30_000_000
    assert capture_telemetry.metric_value("tool_executions_total", tool="pages", status="success") == 1


def test_async_generator_tool_records_errors_raised_mid_stream(capture_telemetry: CapturedTelemetry) -> None:
    """An async generator that fails after some items counts as an error and re-raises."""

    @observe_tool("stream")
    async def stream() -> AsyncIterator[int]:
        yield 1
        raise ToolFailed("mid-stream")

    async def consume() -> list[int]:
        items = []
        async for item in stream():
            items.append(item)
        return items

    with pytest.raises(ToolFailed):
        asyncio.run(consume())
    assert capture_telemetry.metric_value("tool_executions_total", tool="stream", status="error") == 1


def test_a_generator_closed_early_counts_as_success(capture_telemetry: CapturedTelemetry) -> None:
    """Breaking out of a generator tool is a normal end: status success, span ended."""

    @observe_tool("endless")
    def endless() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    for n in endless():
        if n == 2:
            break
    assert capture_telemetry.metric_value("tool_executions_total", tool="endless", status="success") == 1
    assert capture_telemetry.span("execute_tool endless").end_time is not None


def test_generator_send_and_return_value_pass_through(capture_telemetry: CapturedTelemetry) -> None:
    """send() reaches the wrapped generator and its return value reaches the caller."""

    @observe_tool("echo")
    def echo() -> Any:
        received = yield "ready"
        return f"got {received}"

    generator = echo()
    assert next(generator) == "ready"
    with pytest.raises(StopIteration) as stop:
        generator.send("hello")
    assert stop.value.value == "got hello"


def test_inputs_and_outputs_are_not_logged_by_default(capture_telemetry: CapturedTelemetry) -> None:
    """Without log_inputs/log_outputs nothing about the arguments is logged or put on the span."""

    @observe_tool("login")
    def login(username: str, password: str) -> str:
        return "token-abc"

    login("ada", "hunter2")
    assert capture_telemetry.log_lines == []
    span = capture_telemetry.span("execute_tool login")
    assert "gen_ai.tool.call.arguments" not in (span.attributes or {})


def test_logged_inputs_and_outputs_are_scrubbed(capture_telemetry: CapturedTelemetry) -> None:
    """log_inputs/log_outputs log the bound arguments and the result with secrets redacted."""

    @observe_tool("login", log_inputs=True, log_outputs=True)
    def login(username: str, password: str, options: dict[str, Any]) -> dict[str, str]:
        return {"user": username, "access_token": "tok-secret"}

    login("ada", "hunter2", {"api_key": "sk-live", "remember": True})
    [line] = capture_telemetry.log_lines
    assert line["message"] == "tool login completed"
    assert line["inputs"] == {
        "username": "ada",
        "password": REDACTED,
        "options": {"api_key": REDACTED, "remember": True},
    }
    assert line["output"] == {"user": "ada", "access_token": REDACTED}
    arguments = capture_telemetry.span("execute_tool login").attributes["gen_ai.tool.call.arguments"]
    assert "hunter2" not in arguments and "sk-live" not in arguments and "ada" in arguments


def test_logged_inputs_are_bounded_in_size(capture_telemetry: CapturedTelemetry) -> None:
    """Huge arguments are cut: strings at 1 KiB, collections at 50 items."""

    @observe_tool("ingest", log_inputs=True)
    def ingest(document: str, rows: list[int]) -> int:
        return len(rows)

    ingest("x" * 100_000, list(range(10_000)))
    [line] = capture_telemetry.log_lines
    assert len(line["inputs"]["document"]) == 1025 and len(line["inputs"]["rows"]) == 50


def test_track_performance_false_counts_without_timing(capture_telemetry: CapturedTelemetry) -> None:
    """track_performance=False records the execution count but no duration observation."""

    @observe_tool("cheap", track_performance=False)
    def cheap() -> None:
        return None

    cheap()
    assert capture_telemetry.metric_value("tool_executions_total", tool="cheap") == 1
    assert capture_telemetry.metric_value("tool_execution_duration_seconds", tool="cheap") == 0


def test_tools_decorated_before_configure_record_after_it(capture_telemetry: CapturedTelemetry) -> None:
    """A module-level tool decorated at import time records into the configured pipeline."""
    assert early_tool(21) == 42
    assert capture_telemetry.metric_value("tool_executions_total", tool="early_tool", status="success") == 1
    assert capture_telemetry.span("execute_tool early_tool").name == "execute_tool early_tool"


def test_counting_is_exact_under_concurrency(capture_telemetry: CapturedTelemetry) -> None:
    """Hundreds of concurrent async calls plus calls from many threads are all counted."""

    @observe_tool("concurrent_async")
    async def concurrent_async(n: int) -> int:
        await asyncio.sleep(0)
        return n

    @observe_tool("concurrent_sync")
    def concurrent_sync(n: int) -> int:
        return n

    async def run_all() -> list[int]:
        return await asyncio.gather(*(concurrent_async(n) for n in range(500)))

    assert len(asyncio.run(run_all())) == 500
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert sum(pool.map(concurrent_sync, range(800))) == sum(range(800))
    assert capture_telemetry.metric_value("tool_executions_total", tool="concurrent_async") == 500
    assert capture_telemetry.metric_value("tool_executions_total", tool="concurrent_sync") == 800
    assert len(tool_spans(capture_telemetry)) == 1300


def test_a_failing_probe_never_breaks_the_tool(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If recording fails the tool's result still arrives and the failure is counted."""
    from atoms_otel.producers.instrument.tools import ToolCallRecorder

    class Broken:  # the tool's bound metric children: every use raises
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("telemetry bug")

    _guard.raise_internal_errors = False
    monkeypatch.setattr(ToolCallRecorder, "bound", lambda self, tool: Broken())

    @observe_tool("sturdy")
    def sturdy() -> str:
        return "result"

    assert sturdy() == "result"
    assert _guard.internal_error_counts()["observe_tool"] == 1


# -- log_operation ----------------------------------------------------------------------------


def test_log_operation_logs_start_and_end_with_duration(capture_telemetry: CapturedTelemetry) -> None:
    """Two lines at the chosen level; lines inside the operation carry operation=<name>."""

    @log_operation("import_users", log_level="WARNING")
    def import_users() -> int:
        get_logger("tests.inner").warning("working")
        return 3

    import_users()
    lines = capture_telemetry.log_lines
    assert [x["message"] for x in lines] == [
        "operation import_users started",
        "working",
        "operation import_users completed",
    ]
    assert all(x["level"] == "WARNING" for x in lines)
    assert lines[1]["operation"] == "import_users" and lines[2]["duration_ms"] >= 0


def test_log_operation_failure_logs_an_error_and_reraises(capture_telemetry: CapturedTelemetry) -> None:
    """A failing operation logs one ERROR line with the exception; the exception propagates."""

    @log_operation("sync_accounts")
    async def sync_accounts() -> None:
        raise ToolFailed("remote down")

    with pytest.raises(ToolFailed):
        asyncio.run(sync_accounts())
    [line] = [x for x in capture_telemetry.log_lines if x["level"] == "ERROR"]
    assert line["message"] == f"operation sync_accounts failed: {__name__}.ToolFailed"
    assert line["exception"]["message"] == "remote down"


def test_log_operation_outputs_are_scrubbed(capture_telemetry: CapturedTelemetry) -> None:
    """log_inputs/log_outputs go through the scrubber."""

    @log_operation("issue_token", log_inputs=True, log_outputs=True)
    def issue_token(user: str, secret: str) -> dict[str, str]:
        return {"token": "t-123", "user": user}

    issue_token("ada", "s3cr3t")
    started, completed = capture_telemetry.log_lines
    assert started["inputs"] == {"user": "ada", "secret": REDACTED}
    assert completed["output"] == {"token": REDACTED, "user": "ada"}


def test_log_operation_rejects_an_unknown_level() -> None:
    """A misspelt level fails at decoration time with the accepted values."""
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING"):
        log_operation("x", log_level="LOUD")


# -- measure_performance ------------------------------------------------------------------------


def test_measure_performance_warns_over_the_warning_threshold(capture_telemetry: CapturedTelemetry) -> None:
    """Slower than threshold_warning_ms: one WARNING line with duration and threshold."""

    @measure_performance("heavy_task", threshold_warning_ms=10)
    async def heavy_task() -> None:
        await asyncio.sleep(0.03)

    asyncio.run(heavy_task())
    [line] = capture_telemetry.log_lines
    assert (line["level"], line["operation"], line["threshold_ms"]) == ("WARNING", "heavy_task", 10)
    assert line["duration_ms"] >= 10


def test_measure_performance_logs_an_error_over_the_critical_threshold(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Slower than threshold_critical_ms: ERROR, and the critical threshold is reported."""

    @measure_performance("very_heavy", threshold_warning_ms=1, threshold_critical_ms=5)
    def very_heavy() -> None:
        time.sleep(0.02)

    very_heavy()
    [line] = capture_telemetry.log_lines
    assert (line["level"], line["threshold_ms"]) == ("ERROR", 5)


def test_measure_performance_is_quiet_under_the_thresholds(capture_telemetry: CapturedTelemetry) -> None:
    """Fast calls only record the duration metric (the DEBUG line is below the default level)."""

    @measure_performance("quick", threshold_warning_ms=1000)
    def quick() -> int:
        return 1

    quick()
    quick()
    assert capture_telemetry.log_lines == []
    assert (
        capture_telemetry.metric_value("operation_duration_seconds", operation="quick", status="success") == 2
    )


def test_measure_performance_times_failures(capture_telemetry: CapturedTelemetry) -> None:
    """A raising call is timed with status="error" and re-raised."""

    @measure_performance("fragile")
    def fragile() -> None:
        raise ToolFailed("x")

    with pytest.raises(ToolFailed):
        fragile()
    assert (
        capture_telemetry.metric_value("operation_duration_seconds", operation="fragile", status="error") == 1
    )


def test_measure_performance_rejects_negative_thresholds() -> None:
    """Thresholds must be numbers >= 0."""
    with pytest.raises(ValueError, match="threshold_warning_ms"):
        measure_performance("x", threshold_warning_ms=-1)


# -- track_database_operation --------------------------------------------------------------------


def test_database_operation_opens_a_client_span(capture_telemetry: CapturedTelemetry) -> None:
    """A CLIENT span "{operation} {table}" with the database semantic-convention attributes."""

    @track_database_operation("select", "users", system="postgresql")
    async def get_user(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    asyncio.run(get_user("u1"))
    span = capture_telemetry.span("select users")
    assert span.kind is SpanKind.CLIENT
    assert {k: span.attributes[k] for k in ("db.system.name", "db.operation.name", "db.collection.name")} == {
        "db.system.name": "postgresql",
        "db.operation.name": "select",
        "db.collection.name": "users",
    }


def test_database_operations_are_counted_and_timed(capture_telemetry: CapturedTelemetry) -> None:
    """database_queries_total{operation,table,status} and database_query_duration_seconds."""

    @track_database_operation("insert", "orders")
    def insert_order(fail: bool) -> None:
        if fail:
            raise ToolFailed("constraint")

    insert_order(False)
    with pytest.raises(ToolFailed):
        insert_order(True)
    labels = {"operation": "insert", "table": "orders"}
    assert capture_telemetry.metric_value("database_queries_total", **labels, status="success") == 1
    assert capture_telemetry.metric_value("database_queries_total", **labels, status="error") == 1
    assert capture_telemetry.metric_value("database_query_duration_seconds", **labels) == 2
    assert capture_telemetry.metric_value("errors_total", source="database") == 1
    assert capture_telemetry.spans[-1].status.status_code is StatusCode.ERROR


def test_database_operation_without_a_table(capture_telemetry: CapturedTelemetry) -> None:
    """The seed's @track_database_operation("select") works: the span is named by operation."""

    @track_database_operation("select")
    def query() -> int:
        return 1

    assert query() == 1
    assert capture_telemetry.span("select").attributes["db.system.name"] == "other_sql"


def test_decorated_methods_work_from_many_threads(capture_telemetry: CapturedTelemetry) -> None:
    """Decorators on methods see self like any argument, from concurrent threads."""

    class Repository:
        def __init__(self) -> None:
            self.calls = 0
            self.lock = threading.Lock()

        @track_database_operation("update", "accounts")
        def touch(self) -> None:
            with self.lock:
                self.calls += 1

    repository = Repository()
    threads = [threading.Thread(target=repository.touch) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert repository.calls == 200
    assert (
        capture_telemetry.metric_value("database_queries_total", operation="update", table="accounts") == 200
    )


def test_bare_decorators_name_the_tool_or_operation_after_the_function(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """@observe_tool, @log_operation and @measure_performance without arguments use fn.__name__."""

    @observe_tool
    def lookup_order(order_id: int) -> int:
        return order_id

    @log_operation
    async def sync_inventory() -> str:
        return "done"

    @measure_performance
    def render_report() -> str:
        return "report"

    assert lookup_order(7) == 7 and asyncio.run(sync_inventory()) == "done" and render_report() == "report"
    assert lookup_order.__name__ == "lookup_order"
    assert capture_telemetry.metric_value("tool_executions_total", tool="lookup_order", status="success") == 1
    assert capture_telemetry.span("execute_tool lookup_order") is not None
    assert any(line.get("operation") == "sync_inventory" for line in capture_telemetry.log_lines)
    assert capture_telemetry.metric_value("operation_duration_seconds", operation="render_report") == 1
