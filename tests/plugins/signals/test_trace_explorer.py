"""The trace explorer with a real SDK tracer provider and stdlib logging: grouping, log lines per
trace, scrubbing as exported, its bounds on the request path, and when it is off."""

from __future__ import annotations

import gc
import io
import logging
import weakref
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import atoms_otel
from atoms_otel import LogContext, get_logger
from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.otel.logs.direct import JsonLineHandler, LineTap, direct_targets
from atoms_otel.plugins.signals.explorer import TraceExplorer
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin
from atoms_otel.plugins.signals.traces import ExplorerLimits
from atoms_otel.testing import CapturedTelemetry


@pytest.fixture
def explorer() -> Iterator[TraceExplorer]:
    instance = TraceExplorer(slow_ms=1000, scrubber=Scrubber, limits=ExplorerLimits(log_lines=50))
    instance.start()
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield instance
    finally:
        instance.shutdown()


def _tracer(explorer: TraceExplorer) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(explorer)
    return provider.get_tracer("test")


def test_log_lines_are_filed_under_their_trace_in_order(explorer: TraceExplorer) -> None:
    """Lines inside a trace belong to it, in order; lines elsewhere do not."""
    tracer, log = _tracer(explorer), logging.getLogger("explorer.test")
    log.info("before any trace")
    with tracer.start_as_current_span("request") as root:
        log.info("first")
        with tracer.start_as_current_span("tool"):
            log.warning("inside the tool", extra={"items": 3})
        log.info("last")
    with tracer.start_as_current_span("another"):
        log.info("another trace")
    found = explorer.trace(root.get_span_context().trace_id)
    assert found is not None
    view, spans, lines = found
    assert [s.name for s in spans] == ["tool", "request"] and view.name == "request" and view.complete
    assert spans[0].parent_id == spans[1].span_id
    assert [line.message for line in lines] == ["first", "inside the tool", "last"]
    assert lines[1].fields == {"items": 3} and lines[1].span_id == spans[0].span_id
    assert [t.name for t in explorer.traces()] == ["another", "request"]


def test_the_log_ring_keeps_the_last_lines(explorer: TraceExplorer) -> None:
    """The process-wide ring holds at most ``log_lines`` lines, the newest."""
    log = logging.getLogger("explorer.ring")
    for i in range(120):
        log.info("line %d", i)
    messages = [line.message for line in explorer.log_lines() if line.logger == "explorer.ring"]
    assert len(explorer.log_lines()) == 50 and messages[-1] == "line 119" and messages[0] == "line 70"


def test_log_fields_are_copies_not_the_applications_objects(explorer: TraceExplorer) -> None:
    """A field holding an object is kept as bounded text: the object itself can be collected."""

    class Big:
        def __str__(self) -> str:
            return "B" * 10_000

    big = Big()
    alive = weakref.ref(big)
    log = logging.getLogger("explorer.fields")
    log.propagate = False  # only our handler: pytest's own capture keeps every record
    log.addHandler(explorer.log_handler)
    try:
        log.info("with an object", extra={"big": big, "nested": {"a": [1, 2]}})
    finally:
        log.removeHandler(explorer.log_handler)
        log.propagate = True
    del big
    gc.collect()
    line = explorer.log_lines()[-1]
    assert alive() is None
    assert line.fields is not None and line.fields["nested"] == {"a": [1, 2]}
    assert line.fields["big"] == "B" * 2048 + "…"


def test_on_end_only_appends_to_a_bounded_ring() -> None:
    """Ended spans go to a ring of ``recent_spans``; nothing is grouped until a pass."""
    explorer = TraceExplorer(slow_ms=1000, scrubber=Scrubber, limits=ExplorerLimits(recent_spans=10))
    tracer = _tracer(explorer)  # not started: no thread, so nothing happens until a read
    for i in range(25):
        with tracer.start_as_current_span(f"span {i}"):
            pass
    assert [s.name for s in explorer.store.ring] == [f"span {i}" for i in range(15, 25)]
    assert sorted(t.name for t in explorer.traces()) == sorted(f"span {i}" for i in range(15, 25))


def test_spans_are_scrubbed_exactly_as_exported(capture_telemetry: CapturedTelemetry) -> None:
    """Secret attributes and credentials in an exception show as the exporter sent them."""
    telemetry = capture_telemetry.telemetry
    assert telemetry is not None
    explorer = telemetry.plugin(LiveSignalsPlugin).explorer  # type: ignore[union-attr]
    assert explorer is not None
    with trace.get_tracer("user").start_as_current_span("login") as span:
        span.set_attribute("password", "hunter2")
        span.set_attribute("url.full", "https://api.example/x?token=abc123secret")
        span.record_exception(ValueError("auth failed for Bearer abcdef0123456789"))
    exported = capture_telemetry.span("login")
    found = explorer.trace(span.get_span_context().trace_id)
    assert found is not None
    kept = found[1][0]
    assert kept.attributes == dict(exported.attributes or {})
    assert kept.attributes["password"] == "[REDACTED]" and "abc123secret" not in kept.attributes["url.full"]
    assert kept.events[0][2] == dict(exported.events[0].attributes or {})
    assert "abcdef0123456789" not in kept.events[0][2]["exception.message"]


def test_the_explorer_runs_by_default_and_stops_at_shutdown(capture_telemetry: CapturedTelemetry) -> None:
    """configure() starts it (thread and root handler); shutdown() removes both."""
    telemetry = capture_telemetry.telemetry
    assert telemetry is not None
    plugin = telemetry.plugin(LiveSignalsPlugin)
    assert plugin is not None and plugin.explorer is not None
    explorer = plugin.explorer
    thread = explorer._thread
    assert thread is not None and thread.is_alive()
    assert explorer.log_handler in logging.getLogger().handlers
    telemetry.shutdown()
    assert explorer.log_handler not in logging.getLogger().handlers
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("env", "options"),
    [({"ATOMS_OTEL_EXPLORER": "false"}, {}), ({}, {"serverless": True})],
    ids=["setting-off", "serverless"],
)
def test_the_explorer_is_off_by_setting_and_in_serverless_mode(
    capture_telemetry: CapturedTelemetry,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    options: dict[str, bool],
) -> None:
    """ATOMS_OTEL_EXPLORER=false, or serverless mode: no explorer, no handler, no thread."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    telemetry = capture_telemetry.reconfigure(**options)
    plugin = telemetry.plugin(LiveSignalsPlugin)
    assert plugin is not None and plugin.explorer is None
    assert not [h for h in logging.getLogger().handlers if h.get_name() == "atoms_otel.explorer"]


def test_the_explorer_takes_direct_path_lines_without_forcing_the_record_path() -> None:
    """The explorer's handler is a LineTap: with it listening, an AtomLogger line is still written
    without a LogRecord, and the ring gets the same line (message, fields, context, trace)."""
    stream = io.StringIO()
    telemetry = atoms_otel.configure(
        service_name="tap", advanced=atoms_otel.AdvancedOptions(log_stream=stream)
    )
    root = logging.getLogger()
    others = [h for h in root.handlers if not isinstance(h, JsonLineHandler | LineTap)]
    for handler in others:  # pytest's capture handlers: someone else's, which rightly force records
        root.removeHandler(handler)
    try:
        plugin = telemetry.plugin(LiveSignalsPlugin)
        assert plugin is not None and plugin.explorer is not None
        targets = direct_targets(logging.getLogger("tap.test"), logging.INFO)
        assert targets is not None and plugin.explorer.log_handler in targets
        with atoms_otel.span("tapped") as span, LogContext(correlation_id="corr-tap"):
            get_logger("tap.test").info(
                "through the tap %s", "ok", extra_fields={"items": 3, "obj": object()}
            )
        line = next(line for line in plugin.explorer.log_lines() if line.logger == "tap.test")
        assert line.message == "through the tap ok" and line.level == "INFO"
        assert line.fields is not None and line.fields["items"] == 3 and isinstance(line.fields["obj"], str)
        assert line.correlation_id == "corr-tap"
        assert line.trace_id == span.get_span_context().trace_id
        assert '"message":"through the tap ok"' in stream.getvalue().replace(": ", ":")
    finally:
        for handler in others:
            root.addHandler(handler)
        atoms_otel.shutdown()
