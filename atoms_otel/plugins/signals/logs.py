"""The trace explorer's log lines: a bounded ring fed by a logging handler on the root logger.

:class:`ExplorerLogHandler` keeps, per record that reaches the root logger's handlers, one tuple
(:class:`LogLine`): time, level, logger, the formatted message, the current trace and span ids,
the request context, the record's extra fields (numbers and short strings as they are, anything
else as a bounded copy: :func:`bounded`; messages cut at 8192 characters) and, only for a record
with an exception, the exception as the JSON log line has it. It takes no lock of its own (a deque
append is atomic) and never raises. The ring keeps the last ``log_lines`` lines; the explorer files
the lines that carry a trace id under their trace. Scrubbing happens when a line is read, with the
same scrubber and the same functions as the JSON log line (:func:`scrubbed_fields`).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanContext

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import CONTEXT_ATTRIBUTES
from atoms_otel.base.scrubbing import Scrubber, encodable
from atoms_otel.otel.logs.direct import LineTap
from atoms_otel.otel.logs.format import record_extras, structured_exception

__all__ = ["ExplorerLogHandler", "LogLine", "LogRing", "bounded", "scrubbed_fields", "scrubbed_message"]

_CONTEXT_VARS = tuple(var for _, _, var in CONTEXT_ATTRIBUTES)
_CORRELATION, _USER, _SESSION, _PATH = _CONTEXT_VARS  # LogLine.context: these four, in order
_CONTEXT_NAMES = tuple(name for name, _, _ in CONTEXT_ATTRIBUTES)
_LINE_BASE = 500  # bytes per kept line beyond its strings (tuple, ints, refs): see the tests
MAX_MESSAGE_CHARS: Final = 8192
MAX_FIELD_CHARS: Final = 2048
_MAX_DEPTH: Final = 6
_MAX_ITEMS: Final = 100
_PLAIN: Final = (int, float, bool, type(None))
_PLAIN_TYPES: Final = frozenset(_PLAIN)


def bounded(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of a log field: numbers and short strings as they are, containers copied
    (at most 6 deep, 100 items each), strings cut, anything else as its (cut) text. The ring never
    keeps a reference to the application's own objects."""
    if isinstance(value, _PLAIN):
        return value if not isinstance(value, float) or math.isfinite(value) else str(value)
    if isinstance(value, str):
        return encodable(value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "…")
    if depth < _MAX_DEPTH and isinstance(value, Mapping):
        items = itertools.islice(value.items(), _MAX_ITEMS)
        return {str(k)[:256]: bounded(v, depth + 1) for k, v in items}
    if depth < _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
        return [bounded(v, depth + 1) for v in itertools.islice(value, _MAX_ITEMS)]
    try:
        text = str(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return bounded(text, depth)


def _bounded_fields(fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A line's fields as the ring keeps them: a new dict, long strings and non-plain values as
    :func:`bounded` copies."""
    if not fields:
        return None
    kept = dict(fields)
    for key, value in kept.items():
        kind = type(value)
        if (kind is str and len(value) > MAX_FIELD_CHARS) or (kind is not str and kind not in _PLAIN_TYPES):
            kept[key] = bounded(value)
    return kept


class LogLine(NamedTuple):
    """One log record as the explorer keeps it."""

    seq: int
    created: float
    levelno: int
    level: str
    logger: str
    message: str
    trace_id: int
    span_id: int
    context: tuple[Any, ...]
    """The request context (correlation_id, user_id, session_id, request_path), ``None`` if unset."""
    fields: dict[str, Any] | None
    exception: dict[str, Any] | None

    @property
    def correlation_id(self) -> str | None:
        value = self.context[0]
        return None if value is None else str(value)

    def context_fields(self) -> dict[str, Any]:
        pairs = zip(_CONTEXT_NAMES, self.context, strict=True)
        return {name: value for name, value in pairs if value is not None}

    def size(self) -> int:
        """Estimated bytes (the message and exception text; fields by their repr length)."""
        size = _LINE_BASE + len(self.message) + len(self.logger)
        if self.fields:
            size += sum(100 + len(k) + len(str(v)) for k, v in self.fields.items())
        if self.exception:
            size += sum(len(str(v)) for v in self.exception.values())
        return size


def scrubbed_message(line: LogLine, scrubber: Scrubber | None) -> str:
    """The message as the JSON log line has it."""
    return encodable(scrubber.scrub_text(line.message) if scrubber is not None else line.message)


def scrubbed_fields(line: LogLine, scrubber: Scrubber | None) -> dict[str, Any]:
    """The context and extra fields as the JSON log line has them: secret keys redacted."""
    fields = {**line.context_fields(), **(line.fields or {})}
    if scrubber is None:
        return fields
    return {key: scrubber.scrub_value(key, value) for key, value in fields.items()}


class LogRing:
    """The last ``maxlen`` log lines, oldest first, each with a sequence number."""

    def __init__(self, maxlen: int) -> None:
        self.lines: deque[LogLine] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def snapshot(self) -> list[LogLine]:
        return list(self.lines)  # one C-level copy: atomic under the GIL

    def since(self, seq: int) -> list[LogLine]:
        """Lines after sequence number ``seq``, oldest first."""
        lines = self.snapshot()
        start = len(lines)
        while start > 0 and lines[start - 1].seq > seq:
            start -= 1
        return lines[start:]

    def __iter__(self) -> Iterator[LogLine]:
        return iter(self.snapshot())


_new_line = tuple.__new__  # a LogLine without the named tuple's Python-level __new__


class ExplorerLogHandler(LineTap):
    """Appends each record — or each direct-path line, with no record built — to a :class:`LogRing`
    (see the module docs)."""

    def __init__(self, ring: LogRing) -> None:
        super().__init__(logging.NOTSET)
        self.ring = ring
        self._next_seq, self._append = ring.next_seq, ring.lines.append  # bound once: the line path
        self.set_name("atoms_otel.explorer")

    def handle(self, record: logging.LogRecord) -> bool:
        # Overridden instead of emit(): no filters, no handler lock (the append is atomic).
        try:
            exc_info = record.exc_info
            exception = structured_exception(exc_info) if exc_info and exc_info[0] is not None else None
            fields = _bounded_fields(record_extras(record))
            self._keep(record.created, record.levelno, record.levelname, record.name, record.getMessage(),
                       fields, exception)  # fmt: skip
        except Exception as exc:
            _guard.report_internal_error("explorer log handler", exc)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def take(
        self,
        created: float,
        level: int,
        levelname: str,
        name: str,
        message: str,
        fields: Mapping[str, Any] | None,
        span_context: SpanContext,
    ) -> None:
        try:
            self._keep(created, level, levelname, name, message, _bounded_fields(fields), None, span_context)
        except Exception as exc:
            _guard.report_internal_error("explorer log handler", exc)

    def _keep(
        self,
        created: float,
        level: int,
        levelname: str,
        name: str,
        message: str,
        fields: dict[str, Any] | None,
        exception: dict[str, Any] | None,
        context: SpanContext | None = None,
    ) -> None:
        """Append one line, with the current trace (``context`` if the caller read it) and request
        context."""
        if context is None:
            context = trace_api.get_current_span().get_span_context()
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + "…"
        context_values = (_CORRELATION.get(), _USER.get(), _SESSION.get(), _PATH.get())
        line = (self._next_seq(), created, level, levelname, name, message, context.trace_id,
                context.span_id, context_values, fields, exception)  # fmt: skip
        self._append(_new_line(LogLine, line))
