"""Processors: the request context onto every span and OTel log record.

:class:`ContextSpanProcessor` and :class:`ContextLogRecordProcessor` copy the request context
(correlation id, user, session, request path, extra ``LogContext`` fields) onto every span and OTel
log record, whoever created it — our middleware, FastAPI, the MCP SDK or user code. They never
block and never raise.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv.attributes.url_attributes import URL_PATH
from opentelemetry.trace import SpanKind

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import CONTEXT_ATTRIBUTES, extra_var
from atoms_otel.base.semconv import attribute_value

__all__ = ["ContextLogRecordProcessor", "ContextSpanProcessor"]

_CONTEXT_PAIRS = tuple((attr, var) for _, attr, var in CONTEXT_ATTRIBUTES)
# ``url.path`` describes the request a SERVER span serves; on a CLIENT span it would contradict the
# outgoing request's own ``url.*``, and on an internal span it means nothing. Logs still carry it.
_SPAN_PAIRS = tuple((attr, var) for attr, var in _CONTEXT_PAIRS if attr != URL_PATH)
_SERVER_SPAN_PAIRS = _CONTEXT_PAIRS


class ContextSpanProcessor(SpanProcessor):
    """Copies the current ``LogContext`` values onto each span as it starts (``url.path`` onto
    SERVER spans only)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            for attr, var in _SERVER_SPAN_PAIRS if span.kind is SpanKind.SERVER else _SPAN_PAIRS:
                value = var.get()
                if value is not None:
                    span.set_attribute(attr, value)
            extra = extra_var.get()
            if extra:
                for key, value in extra.items():
                    span.set_attribute(key, attribute_value(value))
        except Exception as exc:
            _guard.report_internal_error("span context processor", exc)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class ContextLogRecordProcessor(LogRecordProcessor):
    """Copies the current ``LogContext`` values onto each OTel log record (without overwriting)."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        try:
            attributes = log_record.log_record.attributes
            if attributes is None:
                return
            for attr, var in _CONTEXT_PAIRS:
                value = var.get()
                if value is not None and attr not in attributes:
                    attributes[attr] = value  # type: ignore[index]
            extra = extra_var.get()
            if extra:
                for key, value in extra.items():
                    if key not in attributes:
                        attributes[key] = attribute_value(value)  # type: ignore[index]
        except Exception as exc:
            _guard.report_internal_error("log context processor", exc)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
