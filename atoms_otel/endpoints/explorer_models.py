"""Response models of the trace explorer's API (``/api/observability/traces``, ``/logs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ExplorerStatsModel",
    "LogLineModel",
    "LogsResponse",
    "SpanEventModel",
    "SpanModel",
    "TraceDetailResponse",
    "TraceSummaryModel",
    "TracesResponse",
]

SpanStatus = Literal["UNSET", "OK", "ERROR"]
_EXAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class ExplorerStatsModel(BaseModel):
    """What the explorer holds now, and its limits."""

    traces: int = Field(description="Complete traces that can be listed now.")
    kept_traces: int = Field(description="Error and slow traces kept besides the recent ones.")
    spans: int = Field(description="Spans held: the span ring's and the kept traces'.")
    log_lines: int = Field(description="Lines in the process-wide ring.")
    estimated_bytes: int = Field(description="Estimated memory held by the span ring and the kept traces.")
    max_bytes: int = Field(description="The limit on the kept traces' estimated memory.")
    max_kept_traces: int
    recent_traces: int = Field(description="Newest complete traces listed whatever they are.")
    recent_spans: int = Field(description="Size of the ring of the latest finished spans.")
    keep_seconds: float = Field(description="How long errors and slow traces are kept besides those.")
    slow_ms: float = Field(description="A trace at least this long is slow (slow_request_ms).")
    spans_per_trace: int
    max_log_lines: int


class TraceSummaryModel(BaseModel):
    """One trace in the list: its root span's request or tool call."""

    trace_id: str = Field(
        description="32 lowercase hex digits.", examples=["4bf92f3577b34da6a3ce929d0e0e4736"]
    )
    name: str = Field(description="The root span's name, e.g. 'POST /tools/{name}'.")
    method: str | None
    route: str | None
    status_code: int | None
    status_class: str | None = Field(description="'2xx' … '5xx' for HTTP requests.", examples=["5xx"])
    error: bool = Field(description="A span with status ERROR, or a 5xx response.")
    error_type: str | None
    slow: bool
    duration_ms: float
    start_time: datetime
    correlation_id: str | None
    tools: list[str] = Field(description="gen_ai.tool.name of its spans.")
    span_count: int
    dropped_spans: int = Field(description="Spans past the per-trace limit, counted but not kept.")
    log_count: int
    complete: bool = Field(description="False while (or if) its root span has not ended.")
    trace_url: str | None = Field(description="ATOMS_OTEL_TRACE_URL_TEMPLATE with this trace id.")


class TracesResponse(BaseModel):
    enabled: bool = Field(description="False when the explorer is off (setting or serverless mode).")
    matching: int = Field(description="Traces that match the filters (before the limit).")
    traces: list[TraceSummaryModel] = Field(description="Newest first.")
    stats: ExplorerStatsModel | None


class SpanEventModel(BaseModel):
    name: str
    timestamp: datetime
    offset_ms: float = Field(description="Since the trace started.")
    attributes: dict[str, Any]


class SpanModel(BaseModel):
    """One span, scrubbed as exported spans are."""

    span_id: str = Field(description="16 lowercase hex digits.")
    parent_span_id: str | None = Field(description="None for a root span.")
    remote_parent: bool = Field(description="The parent span is in another process.")
    name: str
    kind: str
    scope: str = Field(description="The instrumentation scope that made it.")
    start_time: datetime
    offset_ms: float = Field(description="Start, since the trace started.")
    duration_ms: float
    status: SpanStatus
    status_message: str | None
    attributes: dict[str, Any]
    events: list[SpanEventModel]


class LogLineModel(BaseModel):
    """A log line as the JSON log line has it: message and fields scrubbed."""

    timestamp: datetime
    level: str
    logger: str
    message: str
    trace_id: str | None
    span_id: str | None
    correlation_id: str | None
    fields: dict[str, Any]
    exception: dict[str, Any] | None


class TraceDetailResponse(BaseModel):
    trace: TraceSummaryModel
    spans: list[SpanModel] = Field(description="In start order.")
    logs: list[LogLineModel] = Field(description="Emitted inside the trace, in order.")


class LogsResponse(BaseModel):
    enabled: bool
    matching: int
    logs: list[LogLineModel] = Field(description="Newest first.")
