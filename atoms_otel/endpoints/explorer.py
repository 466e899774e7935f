"""The trace explorer's API, on the observability API router (same bearer token):

- ``GET /api/observability/traces?q=&status=&route=&min_ms=&limit=``: recent traces, newest first.
  ``q`` matches a trace id, a correlation id, or text in the name, route or tool names;
  ``status`` is a class (``2xx`` … ``5xx``) or ``error``; ``min_ms`` keeps the slower ones.
- ``GET /api/observability/traces/{trace_id}``: the spans (parent ids, times, attributes, events)
  and the log lines of one trace; a JSON 404 when it is not (or no longer) kept.
- ``GET /api/observability/logs?q=&level=&logger=&trace_id=&limit=``: the process's recent log
  lines, newest first; ``level`` is a minimum, ``logger`` a name prefix, ``q`` text in the message.

Every parameter is bounded (a 422 names the one out of bounds). Spans are shown as exporters send
them (scrubbed when kept); log messages and fields are scrubbed when read, as the JSON log line is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.endpoints.explorer_models import (
    ExplorerStatsModel,
    LogLineModel,
    LogsResponse,
    SpanEventModel,
    SpanModel,
    TraceDetailResponse,
    TracesResponse,
    TraceSummaryModel,
)
from atoms_otel.endpoints.models import ErrorResponse
from atoms_otel.plugins.signals.explorer import TraceExplorer
from atoms_otel.plugins.signals.logs import LogLine, bounded, scrubbed_fields, scrubbed_message
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin
from atoms_otel.plugins.signals.store import TraceView
from atoms_otel.plugins.signals.traces import SpanRecord

__all__ = ["add_explorer_routes"]

TRACE_ID_PATTERN: Final = r"^[0-9a-fA-F]{32}$"
MAX_TRACES: Final = 500
MAX_LOGS: Final = 1000
MAX_QUERY_CHARS: Final = 200
MAX_MIN_MS: Final = 3_600_000.0

_TraceText = Annotated[
    str | None, Query(max_length=MAX_QUERY_CHARS, description="A trace id, a correlation id, or text")
]
_StatusClass = Annotated[
    Literal["1xx", "2xx", "3xx", "4xx", "5xx", "error"] | None,
    Query(description="A status class, or 'error' for traces with an error"),
]
_Route = Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, description="The exact route template")]
_LogText = Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, description="Text in the message")]
_Level = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None, Query(description="The minimum level")
]
_LoggerPrefix = Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, description="A logger name prefix")]
_TraceIdFilter = Annotated[str | None, Query(pattern=TRACE_ID_PATTERN, description="Lines of this trace")]


def _hex(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def _when(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def _status_class(code: int | None) -> str | None:
    return f"{code // 100}xx" if code is not None and 100 <= code <= 599 else None


class ExplorerViews:
    """Response models from the explorer's records, for one handle's settings."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def explorer(self) -> TraceExplorer | None:
        plugin = self.telemetry.plugin(LiveSignalsPlugin)
        return plugin.explorer if plugin is not None else None

    def trace_url(self, trace_id: str) -> str | None:
        template = self.telemetry.settings.trace_url_template if self.telemetry.configured else None
        return template.replace("{trace_id}", trace_id) if template else None

    def summary(self, trace: TraceView) -> TraceSummaryModel:
        trace_id = _hex(trace.trace_id, 32)
        status = trace.status_code
        return TraceSummaryModel(
            trace_id=trace_id,
            name=trace.name,
            method=trace.method,
            route=trace.route,
            status_code=status,
            status_class=_status_class(status),
            error=trace.error,
            error_type=trace.error_type,
            slow=trace.slow,
            duration_ms=round(trace.duration_ms, 3),
            start_time=_when(trace.start_ns),
            correlation_id=trace.correlation_id,
            tools=trace.tools,
            span_count=trace.span_count,
            dropped_spans=trace.dropped_spans,
            log_count=trace.log_count,
            complete=trace.complete,
            trace_url=self.trace_url(trace_id),
        )

    def stats(self, explorer: TraceExplorer) -> ExplorerStatsModel:
        stats, limits = explorer.stats(), explorer.limits
        return ExplorerStatsModel(
            traces=stats.traces,
            kept_traces=stats.kept_traces,
            spans=stats.spans,
            log_lines=stats.log_lines,
            estimated_bytes=stats.estimated_bytes,
            max_bytes=limits.max_bytes,
            max_kept_traces=limits.max_traces,
            recent_traces=limits.recent_traces,
            recent_spans=limits.recent_spans,
            keep_seconds=limits.keep_s,
            slow_ms=explorer.store.slow_ms,
            spans_per_trace=limits.spans_per_trace,
            max_log_lines=limits.log_lines,
        )

    def log_line(self, line: LogLine, scrubber: Scrubber | None) -> LogLineModel:
        return LogLineModel(
            timestamp=datetime.fromtimestamp(line.created, UTC),
            level=line.level,
            logger=line.logger,
            message=scrubbed_message(line, scrubber),
            trace_id=_hex(line.trace_id, 32) if line.trace_id else None,
            span_id=_hex(line.span_id, 16) if line.span_id else None,
            correlation_id=line.correlation_id,
            fields=bounded(scrubbed_fields(line, scrubber)),
            exception=bounded(line.exception) if line.exception else None,
        )

    @staticmethod
    def span(record: SpanRecord, origin_ns: int) -> SpanModel:
        return SpanModel(
            span_id=_hex(record.span_id, 16),
            parent_span_id=_hex(record.parent_id, 16) if record.parent_id else None,
            remote_parent=record.remote_parent,
            name=record.name,
            kind=record.kind,
            scope=record.scope,
            start_time=_when(record.start_ns),
            offset_ms=round((record.start_ns - origin_ns) / 1e6, 3),
            duration_ms=round(record.duration_ms, 3),
            status=record.status,  # type: ignore[arg-type]
            status_message=record.status_message,
            attributes=record.attributes,
            events=[
                SpanEventModel(
                    name=name,
                    timestamp=_when(ts),
                    offset_ms=round((ts - origin_ns) / 1e6, 3),
                    attributes=attributes,
                )
                for name, ts, attributes in record.events
            ],
        )


def _matches(trace: TraceView, q: str) -> bool:
    needle = q.lower()
    if len(needle) == 32 and needle == _hex(trace.trace_id, 32):
        return True
    texts = (trace.correlation_id, trace.name, trace.route, *trace.tools)
    return any(text is not None and needle in text.lower() for text in texts)


def _status_matches(trace: TraceView, status: str) -> bool:
    if status == "error":
        return trace.error
    return _status_class(trace.status_code) == status


class ExplorerEndpoints(ExplorerViews):
    """The handlers (every one runs its work off the event loop)."""

    async def traces(
        self,
        q: _TraceText = None,
        status: _StatusClass = None,
        route: _Route = None,
        min_ms: Annotated[float | None, Query(ge=0, le=MAX_MIN_MS, description="Slower than this")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_TRACES, description="Most traces returned")] = 100,
    ) -> TracesResponse:
        """Recent traces (newest first), filtered."""

        def build() -> TracesResponse:
            explorer = self.explorer()
            if explorer is None:
                return TracesResponse(enabled=False, matching=0, traces=[], stats=None)
            found = [
                trace
                for trace in explorer.traces()
                if (not q or _matches(trace, q.strip()))
                and (status is None or _status_matches(trace, status))
                and (route is None or trace.route == route)
                and (min_ms is None or trace.duration_ms >= min_ms)
            ]
            shown = [self.summary(trace) for trace in found[:limit]]
            return TracesResponse(enabled=True, matching=len(found), traces=shown, stats=self.stats(explorer))

        return await run_in_threadpool(build)

    async def trace(
        self, trace_id: Annotated[str, Path(pattern=TRACE_ID_PATTERN, description="32 hex digits")]
    ) -> Any:
        """One trace: its spans and log lines; a JSON 404 when it is not kept."""

        def build() -> TraceDetailResponse | None:
            explorer = self.explorer()
            found = explorer.trace(int(trace_id, 16)) if explorer is not None else None
            if explorer is None or found is None:
                return None
            trace, spans, lines = found
            origin = trace.start_ns
            scrubber = explorer.scrubber()
            return TraceDetailResponse(
                trace=self.summary(trace),
                spans=[self.span(s, origin) for s in sorted(spans, key=lambda s: (s.start_ns, -s.end_ns))],
                logs=[self.log_line(line, scrubber) for line in sorted(lines, key=lambda line: line.seq)],
            )

        detail = await run_in_threadpool(build)
        if detail is None:
            return JSONResponse({"detail": f"trace {trace_id.lower()} is not kept"}, status_code=404)
        return detail

    async def logs(
        self,
        q: _LogText = None,
        level: _Level = None,
        logger: _LoggerPrefix = None,
        trace_id: _TraceIdFilter = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LOGS, description="Most lines returned")] = 200,
    ) -> LogsResponse:
        """The process's recent log lines (newest first), filtered."""

        def build() -> LogsResponse:
            explorer = self.explorer()
            if explorer is None:
                return LogsResponse(enabled=False, matching=0, logs=[])
            minimum = logging.getLevelName(level) if level else 0
            wanted_trace = int(trace_id, 16) if trace_id else None
            scrubber = explorer.scrubber()
            needle = q.lower() if q else None
            found = [
                line
                for line in reversed(explorer.log_lines())
                if line.levelno >= minimum
                and (logger is None or line.logger.startswith(logger))
                and (wanted_trace is None or line.trace_id == wanted_trace)
                and (needle is None or needle in scrubbed_message(line, scrubber).lower())
            ]
            shown = [self.log_line(line, scrubber) for line in found[:limit]]
            return LogsResponse(enabled=True, matching=len(found), logs=shown)

        return await run_in_threadpool(build)


def add_explorer_routes(api: APIRouter, telemetry: Telemetry) -> None:
    """Add the explorer's routes to the observability API router ``api``."""
    endpoints = ExplorerEndpoints(telemetry)
    api.add_api_route(
        "/traces",
        endpoints.traces,
        methods=["GET"],
        response_model=TracesResponse,
        summary="Recent traces kept in memory",
    )
    api.add_api_route(
        "/traces/{trace_id}",
        endpoints.trace,
        methods=["GET"],
        response_model=TraceDetailResponse,
        summary="One trace: spans and log lines",
        responses={404: {"model": ErrorResponse, "description": "Not (or no longer) kept"}},
    )
    api.add_api_route(
        "/logs",
        endpoints.logs,
        methods=["GET"],
        response_model=LogsResponse,
        summary="Recent log lines of the process",
    )
