"""The bridge from stdlib logging into the OpenTelemetry LoggerProvider."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry._logs import LoggerProvider, SeverityNumber

from atoms_otel.otel.logs.format import record_extras

__all__ = ["OTelLogHandler"]

_SEVERITY: Final = {
    logging.DEBUG: (SeverityNumber.DEBUG, "DEBUG"),
    logging.INFO: (SeverityNumber.INFO, "INFO"),
    logging.WARNING: (SeverityNumber.WARN, "WARN"),
    logging.ERROR: (SeverityNumber.ERROR, "ERROR"),
    logging.CRITICAL: (SeverityNumber.FATAL, "FATAL"),
}


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    found = _SEVERITY.get(levelno)
    if found is not None:
        return found
    for level in sorted(_SEVERITY, reverse=True):
        if levelno >= level:
            return _SEVERITY[level][0], logging.getLevelName(levelno)
    return SeverityNumber.TRACE, logging.getLevelName(levelno)


class OTelLogHandler(logging.Handler):
    """Emits stdlib log records as OpenTelemetry log records.

    The logger name becomes the instrumentation scope; extra fields become attributes (nested values
    allowed); an exception is passed as ``exception`` so the SDK adds ``exception.*`` attributes;
    the trace context is the current one. Context fields are added by ``ContextLogRecordProcessor``.
    Records from ``opentelemetry.*`` are not bridged, so an exporter's complaint cannot feed itself.
    """

    def __init__(self, provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._provider = provider
        self._loggers: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("opentelemetry"):
            return
        try:
            self.emit_fields(
                record.name,
                record.levelno,
                record.created,
                record.getMessage(),
                record_extras(record),
                (record.funcName, record.lineno, record.pathname),
                record.exc_info[1] if record.exc_info else None,
            )
        except Exception:
            self.handleError(record)

    def emit_fields(
        self,
        name: str,
        levelno: int,
        created: float,
        body: str,
        extras: Mapping[str, Any] | None,
        caller: tuple[str, int, str],
        exception: BaseException | None = None,
    ) -> None:
        """One OTel log record from a line's parts: what :meth:`emit` does with a ``LogRecord``,
        and what the direct path (``direct.py``) does without one. ``caller``: function, line, file."""
        logger = self._loggers.get(name)
        if logger is None:
            if len(self._loggers) > 1000:
                self._loggers.clear()
            logger = self._loggers[name] = self._provider.get_logger(name)
        attributes: dict[str, Any] = {
            "code.function.name": caller[0],
            "code.line.number": caller[1],
            "code.file.path": caller[2],
        }
        for key, value in (extras or {}).items():
            attributes[key] = value if isinstance(value, str | bool | int | float) else _otel_value(value)
        number, text = _severity(levelno)
        logger.emit(
            timestamp=int(created * 1e9),
            observed_timestamp=time.time_ns(),
            severity_number=number,
            severity_text=text,
            body=body,
            attributes=attributes,
            exception=exception,
        )

    def flush(self) -> None:
        pass


def _otel_value(value: Any) -> Any:
    """Log attributes may be nested maps and lists of primitives; anything else becomes text."""
    if value is None or isinstance(value, str | bool | int | float | bytes):
        return value
    if isinstance(value, Mapping):
        return {str(k): _otel_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_otel_value(v) for v in value]
    return str(value)
