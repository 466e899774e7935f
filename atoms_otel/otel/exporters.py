"""Exporter wrappers: secrets out, failures contained, outages reported once.

:class:`GuardedSpanExporter`, :class:`GuardedLogExporter` and :class:`GuardedMetricExporter` wrap
every exporter atoms_otel builds. They scrub secrets (on the export thread, not the request path):
secret keys, and credentials recognised by format in log bodies, ``exception.message`` /
``exception.stacktrace`` and ``url.query`` / ``url.full``; they make every string UTF-8 encodable
(a lone surrogate becomes U+FFFD, so one bad string cannot fail a whole batch); they never let an
exception out, and report a failing destination once — then once more when it
recovers. :data:`exporter_diagnostics` keeps the SDK exporters' latest complaint per signal, so that
one report can quote it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link

from atoms_otel.base import guard as _guard
from atoms_otel.base.compat import exporter_preferences
from atoms_otel.base.scrubbing import Scrubber, encodable, mask_url

__all__ = [
    "ExporterDiagnostics",
    "GuardedLogExporter",
    "GuardedMetricExporter",
    "GuardedSpanExporter",
    "exporter_diagnostics",
    "scrubbed_span",
]

_logger = logging.getLogger("atoms_otel.export")


class ExporterDiagnostics(logging.Handler):
    """Keeps the OpenTelemetry exporters' latest complaint per signal.

    The SDK's exporters log every retry and every failed batch. configure() routes those records
    here instead (unless the log level is DEBUG), so a failing destination is reported once, by
    our guard, with the exporter's latest reason in the message.
    """

    # gRPC exporters say "Failed to export traces", HTTP ones log from "...trace_exporter".
    _KINDS = (("span", "traces"), ("trace", "traces"), ("log", "logs"), ("metric", "metrics"))
    _GENERIC = ("due to timeout, max retries or shutdown", "Shutdown in progress", "already shutdown")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._last: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            return
        if any(generic in text for generic in self._GENERIC):
            return  # keep the specific reason (e.g. "Connection refused") seen before
        lowered = text.lower() + " " + record.name
        for needle, signal in self._KINDS:
            if needle in lowered:
                self._last[signal] = text[:300]

    def last(self, signal: str) -> str:
        return self._last.get(signal, "")

    def forget(self, signal: str) -> None:
        """Drop ``signal``'s reason: its exporter recovered, or a new pipeline replaces it (a
        reason quoting the previous endpoint would mislead)."""
        self._last.pop(signal, None)


exporter_diagnostics = ExporterDiagnostics()


class _ReasonTap(logging.Filter):
    """Shows each record of an SDK exporter logger to the diagnostics before that logger's own
    filters run: the SDK's ``DuplicateFilter`` drops a "Failed to export %s" record that repeats
    the previous one's template, so the traces failure right after a logs failure never reached a
    handler, and its report said only "export failed". Lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        exporter_diagnostics.emit(record)
        return True


_REASON_TAP: Final = _ReasonTap()


def tap_exporter_loggers() -> None:
    """Put the reason tap first on every SDK exporter logger that filters its records."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (
            name.startswith("opentelemetry.exporter")
            and isinstance(logger, logging.Logger)
            and logger.filters
            and _REASON_TAP not in logger.filters
        ):
            logger.filters.insert(0, _REASON_TAP)


class _Health:
    """Reports a destination's failure once, and its recovery once."""

    def __init__(self, signal: str, destination: str) -> None:
        self.signal = signal
        self.destination = mask_url(destination)
        self.failing = False
        self.failures = 0
        self._lock = threading.Lock()
        exporter_diagnostics.forget(signal)
        tap_exporter_loggers()  # the exporter's module, hence its logger, is loaded by now

    def outcome(self, ok: bool, detail: str = "") -> None:
        with self._lock:
            was_failing, self.failing = self.failing, not ok
            if not ok:
                self.failures += 1
        if not ok:
            _guard.count(f"{self.signal} export")
        if not ok and not was_failing:
            _logger.warning(
                "OTLP %s export to %s is failing (%s); telemetry for it is dropped until it recovers, "
                "your application is unaffected",
                self.signal,
                self.destination,
                mask_url(detail or exporter_diagnostics.last(self.signal) or "export failed"),
            )
        elif ok and was_failing:
            exporter_diagnostics.forget(self.signal)
            _logger.info("OTLP %s export to %s recovered", self.signal, self.destination)


# Attributes whose text may carry a credential in free form: scrubbed by format, not only by key.
_TEXT_KEYS = frozenset({"exception.message", "exception.stacktrace", "url.query", "url.full"})
_MAX_CLEAN_DEPTH = 8


def _encodable_value(value: Any, depth: int = 0) -> Any:
    """``value`` with every string in it UTF-8 encodable; the same object when nothing changed."""
    if isinstance(value, str):
        return encodable(value)
    if depth > _MAX_CLEAN_DEPTH or isinstance(value, bool | int | float | bytes) or value is None:
        return value
    if isinstance(value, Mapping):
        items = {k: _encodable_value(v, depth + 1) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    if isinstance(value, list | tuple):
        cleaned = [_encodable_value(v, depth + 1) for v in value]
        changed = any(new is not old for new, old in zip(cleaned, value, strict=True))
        return (tuple(cleaned) if isinstance(value, tuple) else cleaned) if changed else value
    return value


_PLAIN: Final = frozenset({str, int, float, bool, bytes, type(None)})


def _clean(attributes: Mapping[str, Any], scrubber: Scrubber | None) -> Mapping[str, Any]:
    """Secret keys redacted, free-text credentials redacted, every string encodable.

    Runs on the export thread for every span and log record, holding the GIL the event loop
    needs: one pass when every value is plain and no key is secret (a server span's usual
    attributes), the general path otherwise."""
    is_secret = scrubber.is_secret_key if scrubber is not None else None
    copy: dict[str, Any] | None = None
    for key in attributes:  # cheaper than .items() on the SDK's BoundedAttributes
        value = attributes[key]
        kind = type(value)
        if kind not in _PLAIN or (is_secret is not None and (type(key) is not str or is_secret(key))):
            return _clean_general(attributes, scrubber)
        free_text = scrubber is not None and key in _TEXT_KEYS
        if kind is str and (free_text or not value.isascii()):
            new = encodable(scrubber.scrub_text(value) if free_text and scrubber is not None else value)
            if new is not value:
                if copy is None:
                    copy = dict(attributes)
                copy[key] = new
    return attributes if copy is None else copy


def _clean_general(attributes: Mapping[str, Any], scrubber: Scrubber | None) -> Mapping[str, Any]:
    result = scrubber.scrub_mapping(attributes) if scrubber is not None else attributes
    copy: dict[str, Any] | None = None
    for key, value in result.items():
        new = value
        if scrubber is not None and key in _TEXT_KEYS and isinstance(value, str):
            new = scrubber.scrub_text(value)
        new = _encodable_value(new)
        if new is not value:
            if copy is None:
                copy = dict(result)
            copy[key] = new
    return result if copy is None else copy


def scrubbed_span(span: ReadableSpan, scrubber: Scrubber | None) -> ReadableSpan:
    """``span`` as exporters send it: secrets redacted, every string encodable (the same object
    when nothing changed). The live view's trace explorer shows spans through this too."""
    attributes = span.attributes or {}
    new_attributes = _clean(attributes, scrubber)
    events = span.events
    new_events: Sequence[Event] = events
    if events and any(e.attributes and _clean(e.attributes, scrubber) is not e.attributes for e in events):
        new_events = [
            Event(encodable(e.name), _clean(e.attributes or {}, scrubber), e.timestamp) for e in events
        ]
    links = span.links
    new_links: Sequence[Link] = links
    if links and any(lk.attributes and _clean(lk.attributes, scrubber) is not lk.attributes for lk in links):
        new_links = [Link(lk.context, _clean(lk.attributes or {}, scrubber)) for lk in links]
    name = encodable(span.name)
    if new_attributes is attributes and new_events is events and new_links is links and name is span.name:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=new_attributes,
        events=new_events,
        links=new_links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class GuardedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, scrubber: Scrubber | None, destination: str) -> None:
        self.inner = inner
        self._scrubber = scrubber
        self._health = _Health("traces", destination)
        self._stopped = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            spans = [scrubbed_span(s, self._scrubber) for s in spans]
            result = self.inner.export(spans)
        except Exception as exc:
            self._health.outcome(False, f"{type(exc).__name__}")
            return SpanExportResult.FAILURE
        self._health.outcome(result == SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        if not self._stopped:
            self._stopped = True
            with _guard.guard("traces exporter shutdown"):
                self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            return self.inner.force_flush(timeout_millis)
        except Exception:
            return False


class GuardedLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, scrubber: Scrubber | None, destination: str) -> None:
        self.inner = inner
        self._scrubber = scrubber
        self._health = _Health("logs", destination)
        self._stopped = False

    def _scrub(self, record: Any) -> None:
        scrubber = self._scrubber
        log_record = record.log_record
        attributes = log_record.attributes
        if attributes:
            scrubbed = _clean(attributes, scrubber)
            if scrubbed is not attributes:
                for key, value in scrubbed.items():
                    if value is not attributes.get(key):
                        attributes[key] = value
        body = log_record.body
        if isinstance(body, str):
            log_record.body = encodable(scrubber.scrub_text(body) if scrubber is not None else body)
        elif isinstance(body, Mapping):
            log_record.body = dict(_clean(body, scrubber))
        elif body is not None:
            log_record.body = _encodable_value(body)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        try:
            for record in batch:
                self._scrub(record)
            result = self.inner.export(batch)
        except Exception as exc:
            self._health.outcome(False, f"{type(exc).__name__}")
            return LogRecordExportResult.FAILURE
        self._health.outcome(result == LogRecordExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        if not self._stopped:
            self._stopped = True
            with _guard.guard("logs exporter shutdown"):
                self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            return False


class GuardedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, destination: str) -> None:
        super().__init__(**exporter_preferences(inner))
        self.inner = inner
        self._health = _Health("metrics", destination)
        self._stopped = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            self._health.outcome(False, f"{type(exc).__name__}")
            return MetricExportResult.FAILURE
        self._health.outcome(result == MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return self.inner.force_flush(timeout_millis)
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if not self._stopped:
            self._stopped = True
            with _guard.guard("metrics exporter shutdown"):
                self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
