"""The trace explorer's records: its limits, a span as shown, and what spans cost in memory.

A finished span is kept as the SDK's own object until someone looks at it; then it is scrubbed as
exporters scrub it and copied into a small :class:`SpanRecord` that replaces it (about a sixth of
the memory). :func:`raw_size` and :func:`estimate_size` estimate what each form holds, from
constants measured with ``tracemalloc`` (the tests check the estimates stay above what is held).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["TRACE_BASE", "ExplorerLimits", "SpanRecord", "estimate_size", "raw_size"]

TRUNCATED: Final = "…"

# Bytes beyond the strings, measured with tracemalloc on CPython 3.11 (see the tests): a SpanRecord
# with its slots, ints and empty attribute dict; an event's tuples and dict; one dict entry. Keys
# are counted as if each were a string of its own (most are shared constants: an overestimate).
_SPAN_BASE: Final = 500
_EVENT_BASE: Final = 200
_ITEM_BASE: Final = 24
# An ended SDK span with no attributes (its locks, bounded attribute map, context, status...); one
# more attribute; one event with its attribute map.
_RAW_BASE: Final = 2900
_RAW_ITEM: Final = 120
_RAW_EVENT: Final = 700
TRACE_BASE: Final = 600
"""A trace's own bytes: its record, lists, and its entries in the store's tables."""


@dataclass(frozen=True)
class ExplorerLimits:
    """The explorer's bounds (see the module docs). Every one is fixed for the store's life."""

    recent_traces: int = 500
    """The newest complete traces listed, whatever they are (as far as the span ring reaches)."""
    recent_spans: int = 5000
    """The ring of the latest finished spans, as the SDK made them, that the recent traces come from."""
    keep_s: float = 900.0
    """How long a trace with an error, or a slow one, is kept besides the recent ones."""
    spans_per_trace: int = 200
    events_per_span: int = 32
    max_value_chars: int = 4096
    max_traces: int = 2000
    """Error and slow traces kept at most (besides the ring)."""
    max_bytes: int = 32 * 1024 * 1024
    """Estimated bytes of the error and slow traces kept at most."""
    log_lines: int = 5000
    """Log lines in the process-wide ring."""
    logs_per_trace: int = 200


class SpanRecord:
    """One finished span, as shown: ids, times (ns since the epoch), names, attributes, events."""

    __slots__ = (
        "attributes",
        "end_ns",
        "events",
        "kind",
        "name",
        "parent_id",
        "remote_parent",
        "scope",
        "size",
        "span_id",
        "start_ns",
        "status",
        "status_message",
        "trace_id",
    )

    def __init__(self, span: ReadableSpan, limits: ExplorerLimits) -> None:
        context = span.context
        parent = span.parent
        self.trace_id: int = context.trace_id if context is not None else 0
        self.span_id: int = context.span_id if context is not None else 0
        self.parent_id: int = parent.span_id if parent is not None else 0
        self.remote_parent: bool = bool(parent is not None and parent.is_remote)
        self.name: str = _cut(span.name, limits.max_value_chars)
        self.kind: str = span.kind.name
        self.start_ns: int = span.start_time or 0
        self.end_ns: int = span.end_time or self.start_ns
        self.status: str = span.status.status_code.name
        self.status_message: str | None = span.status.description
        self.attributes: dict[str, Any] = _values(span.attributes, limits.max_value_chars)
        self.events: tuple[tuple[str, int, dict[str, Any]], ...] = tuple(
            (_cut(e.name, limits.max_value_chars), e.timestamp, _values(e.attributes, limits.max_value_chars))
            for e in span.events[: limits.events_per_span]
        )
        scope = span.instrumentation_scope
        self.scope: str = scope.name if scope is not None else ""
        self.size: int = estimate_size(self)

    @property
    def is_root(self) -> bool:
        """The local root: no parent, or a parent in another process."""
        return not self.parent_id or self.remote_parent

    @property
    def duration_ms(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e6


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATED


def _value(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, tuple | list):
        return [_value(v, limit) for v in value[:64]]
    return value


def _values(attributes: Mapping[str, Any] | None, limit: int) -> dict[str, Any]:
    if not attributes:
        return {}
    return {_cut(str(k), 256): _value(v, limit) for k, v in attributes.items()}


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return 49 + len(value) * (1 if value.isascii() else 4)
    if isinstance(value, list):
        return 60 + 8 * len(value) + sum(_value_size(v) for v in value)
    return 32


def _mapping_size(values: Mapping[str, Any]) -> int:
    return sum(_ITEM_BASE + _value_size(k) + _value_size(v) for k, v in values.items())


def estimate_size(record: SpanRecord) -> int:
    """Bytes a record holds, estimated from its strings (an upper bound on CPython 3.11+)."""
    size = _SPAN_BASE + _value_size(record.name) + _mapping_size(record.attributes)
    if record.status_message:
        size += _value_size(record.status_message)
    for name, _, attributes in record.events:
        size += _EVENT_BASE + _value_size(name) + _mapping_size(attributes)
    return size


def _raw_value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) * (1 if value.isascii() else 4)
    if isinstance(value, tuple | list):
        return 8 * len(value) + sum(_raw_value_size(v) for v in value)
    return 0


def raw_size(span: ReadableSpan) -> int:
    """Bytes an ended SDK span holds, estimated from its attribute and event strings."""
    size = _RAW_BASE + len(span.name)
    attributes = span.attributes
    if attributes:
        size += _RAW_ITEM * len(attributes) + sum(_raw_value_size(v) for v in attributes.values())
    for event in span.events:
        size += _RAW_EVENT
        if event.attributes:
            size += _RAW_ITEM * len(event.attributes)
            size += sum(_raw_value_size(v) for v in event.attributes.values())
    return size
