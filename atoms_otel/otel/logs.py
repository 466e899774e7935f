"""Structured logging: ``get_logger``, JSON and console formatters, and the bridge to OpenTelemetry.

``configure()`` routes the standard library's logging — the root logger, uvicorn, gunicorn and any
third-party library — through one handler that writes one JSON object per line (or a readable
console line), and, when logs are exported, through :class:`OTelLogHandler` into the
OpenTelemetry LoggerProvider. Every line carries the request context and the current trace.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, Final, TypeAlias

from opentelemetry import trace as trace_api
from opentelemetry._logs import LoggerProvider, SeverityNumber

from atoms_otel.base import scrubbing
from atoms_otel.base.context import CONTEXT_ATTRIBUTES, extra_var
from atoms_otel.otel.processors import exporter_diagnostics

__all__ = [
    "AtomLogger",
    "ConsoleFormatter",
    "OTelLogHandler",
    "StructuredFormatter",
    "get_logger",
]

ExcInfo: TypeAlias = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED: Final = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
    "_atoms_extra",
    "atoms_otel_component",
}
_EXTRA: Final = "_atoms_extra"
_CORE_FIELDS: Final = frozenset(
    {
        "timestamp",
        "level",
        "logger",
        "message",
        "trace_id",
        "span_id",
        "exception",
        "stack",
        *(field for field, _, _ in CONTEXT_ATTRIBUTES),
    }
)
_CONTEXT_FIELDS: Final = tuple((field, var) for field, _, var in CONTEXT_ATTRIBUTES)


class _Timestamps:
    """RFC 3339 UTC timestamps with millisecond precision; the date-time part is cached per second."""

    def __init__(self) -> None:
        self._cache = (-1, "")  # one tuple, replaced atomically: safe across threads

    def __call__(self, created: float) -> str:
        second = int(created)
        cached_second, prefix = self._cache
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cache = (second, prefix)
        return f"{prefix}.{int((created - second) * 1000):03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def structured_exception(exc_info: Any) -> dict[str, Any]:
    """An exception as ``{"type", "message", "stacktrace"}``."""
    exc_type, exc, tb = exc_info
    return {
        "type": getattr(exc_type, "__qualname__", str(exc_type)),
        "message": str(exc),
        "stacktrace": "".join(traceback.format_exception(exc_type, exc, tb)).rstrip(),
    }


class StructuredFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    Field order: ``timestamp`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, then the
    context fields that are set (``correlation_id``, ``user_id``, ``session_id``,
    ``request_path``), ``trace_id`` and ``span_id`` inside a span, the extra fields (secret-looking
    keys redacted), and ``exception`` as ``{"type", "message", "stacktrace"}``. An extra field whose
    name collides with one of these is kept as ``extra_<name>``.
    """

    def __init__(self, *, static_fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})
        self._timestamp = _Timestamps()

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "timestamp": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field, var in _CONTEXT_FIELDS:
            value = var.get()
            if value is not None:
                entry[field] = value
        span_context = trace_api.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        extras = _record_extras(record)
        if extras or self._static:
            scrubber = scrubbing.active_scrubber()
            for key, value in (self._static | extras).items():
                if key in _CORE_FIELDS:
                    key = f"extra_{key}"
                entry[key] = scrubber.scrub_value(key, value) if scrubber else value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = structured_exception(record.exc_info)
        if record.stack_info:
            entry["stack"] = record.stack_info
        return entry

    def format(self, record: logging.LogRecord) -> str:
        try:
            return json.dumps(
                self.to_dict(record), default=_json_default, ensure_ascii=False, separators=(",", ":")
            )
        except Exception as exc:  # a value that cannot be rendered must not lose the line
            return json.dumps(
                {
                    "timestamp": self._timestamp(record.created),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": str(record.msg),
                    "format_error": f"{type(exc).__name__}: {exc}",
                }
            )


def _record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """Fields passed with ``extra=`` (stdlib) or ``extra_fields=`` (AtomLogger), and LogContext extras."""
    context_extra = extra_var.get()
    extras: dict[str, Any] = dict(context_extra) if context_extra else {}
    keys = record.__dict__.keys() - _RESERVED
    if keys:
        for key in keys:
            extras[key] = record.__dict__[key]
    atoms = record.__dict__.get(_EXTRA)
    if atoms:
        extras.update(atoms)
    return extras


class ConsoleFormatter(logging.Formatter):
    """A readable single line for development: ``12:00:01.234 INFO  logger  message  key=value``."""

    _COLORS: Final = {
        "DEBUG": "\x1b[2m",
        "INFO": "\x1b[32m",
        "WARNING": "\x1b[33m",
        "ERROR": "\x1b[31m",
        "CRITICAL": "\x1b[1;31m",
    }

    def __init__(self, *, colors: bool | None = None) -> None:
        super().__init__()
        self._colors = sys.stderr.isatty() if colors is None else colors
        self._json = StructuredFormatter()

    def format(self, record: logging.LogRecord) -> str:
        entry = self._json.to_dict(record)
        clock = entry.pop("timestamp")[11:23]
        level = entry.pop("level")
        logger = entry.pop("logger")
        message = entry.pop("message")
        exception = entry.pop("exception", None)
        stack = entry.pop("stack", None)
        entry.pop("span_id", None)
        trace_id = entry.pop("trace_id", None)
        if trace_id:
            entry["trace_id"] = trace_id[:8]
        fields = "  ".join(f"{k}={v}" for k, v in entry.items())
        shown_level = f"{level:<8}"
        if self._colors:
            shown_level = f"{self._COLORS.get(level, '')}{shown_level}\x1b[0m"
        line = f"{clock} {shown_level} {logger}  {message}" + (f"  {fields}" if fields else "")
        if exception:
            line += "\n" + exception["stacktrace"]
        if stack:
            line += "\n" + stack
        return line


# -------------------------------------------------------------------------------------------------
# The bridge from stdlib logging into the OpenTelemetry LoggerProvider.

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
            logger = self._loggers.get(record.name)
            if logger is None:
                if len(self._loggers) > 1000:
                    self._loggers.clear()
                logger = self._loggers[record.name] = self._provider.get_logger(record.name)
            attributes: dict[str, Any] = {
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
                "code.file.path": record.pathname,
            }
            for key, value in _record_extras(record).items():
                attributes[key] = value if isinstance(value, str | bool | int | float) else _otel_value(value)
            number, text = _severity(record.levelno)
            exception = record.exc_info[1] if record.exc_info else None
            logger.emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                severity_number=number,
                severity_text=text,
                body=record.getMessage(),
                attributes=attributes,
                exception=exception,
            )
        except Exception:
            self.handleError(record)

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


# -------------------------------------------------------------------------------------------------
# AtomLogger


class AtomLogger:
    """A stdlib logger with structured fields.

    >>> logger = get_logger(__name__)
    >>> logger.info("Processing request", extra_fields={"action": "create"})
    >>> logger.info("Processing request", action="create")          # the same
    >>> log = logger.bind(tenant="acme"); log.warning("quota low")  # fields on every line

    Every method takes ``extra_fields=`` and any other keyword as a field, plus the stdlib's
    ``exc_info``, ``stack_info`` and ``stacklevel``. Lines below the logger's level cost one check.
    """

    __slots__ = ("_bound", "_logger", "name")

    def __init__(self, name: str, bound: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._logger = logging.getLogger(name)
        self._bound = dict(bound) if bound else None

    @property
    def logger(self) -> logging.Logger:
        """The underlying :class:`logging.Logger`."""
        return self._logger

    def bind(self, **fields: Any) -> AtomLogger:
        """A logger that adds ``fields`` to every line."""
        return AtomLogger(self.name, {**(self._bound or {}), **fields})

    def is_enabled_for(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def _emit(
        self,
        level: int,
        msg: object,
        args: tuple[object, ...],
        extra_fields: Mapping[str, Any] | None,
        fields: dict[str, Any],
        exc_info: ExcInfo,
        stack_info: bool,
        stacklevel: int,
    ) -> None:
        merged: Mapping[str, Any] | None
        if self._bound is None and not fields:
            merged = extra_fields
        else:
            merged = {**(self._bound or {}), **(extra_fields or {}), **fields}
        self._logger._log(
            level,
            msg,
            args,
            exc_info=exc_info,
            extra={_EXTRA: merged} if merged else None,
            stack_info=stack_info,
            stacklevel=stacklevel + 2,
        )

    def debug(
        self,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._emit(logging.DEBUG, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    def info(
        self,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._emit(logging.INFO, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    def warning(
        self,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        if self._logger.isEnabledFor(logging.WARNING):
            self._emit(logging.WARNING, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    warn = warning

    def error(
        self,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    def exception(
        self,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = True,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        """Log at ERROR with the exception being handled."""
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    def critical(
        self,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        if self._logger.isEnabledFor(logging.CRITICAL):
            self._emit(logging.CRITICAL, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    def log(
        self,
        level: int | str,
        msg: object,
        *args: object,
        extra_fields: Mapping[str, Any] | None = None,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        """Log at a numeric level or a level name (``"INFO"``)."""
        number = level if isinstance(level, int) else logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {level!r}")
        if self._logger.isEnabledFor(number):
            self._emit(number, msg, args, extra_fields, fields, exc_info, stack_info, stacklevel)

    def __repr__(self) -> str:
        return f"AtomLogger({self.name!r})"


_loggers: dict[str, AtomLogger] = {}
_loggers_lock = threading.Lock()


def get_logger(name: str = "atoms_otel.app") -> AtomLogger:
    """The :class:`AtomLogger` called ``name`` (usually ``__name__``). Safe before configure()."""
    logger = _loggers.get(name)
    if logger is None:
        with _loggers_lock:
            logger = _loggers.setdefault(name, AtomLogger(name))
    return logger


# -------------------------------------------------------------------------------------------------
# Installing the handlers


class _OncePerMessage(logging.Filter):
    """Lets each distinct OpenTelemetry SDK/exporter message through once: export failures are
    reported by our exporter guards, and the SDK's retries would otherwise repeat every few seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("opentelemetry"):
            return True
        key = (record.name, str(record.msg))
        if key in self._seen:
            return False
        if len(self._seen) < 1000:
            self._seen.add(key)
        return True


_SERVER_LOGGERS: Final = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn",
    "gunicorn.error",
    "gunicorn.access",
    "hypercorn",
    "hypercorn.error",
    "hypercorn.access",
)


class LoggingInstallation:
    """The handlers configure() put on the root logger, and what it changed, so it can be undone."""

    def __init__(
        self, *, level: int, fmt: str, stream: IO[str] | None, otel_provider: LoggerProvider | None
    ) -> None:
        self.level = level
        self.stream_handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
        self.stream_handler.setFormatter(ConsoleFormatter() if fmt == "console" else StructuredFormatter())
        self.stream_handler.addFilter(_OncePerMessage())
        self.stream_handler.set_name("atoms_otel")
        self.otel_handler = OTelLogHandler(otel_provider) if otel_provider is not None else None
        self._removed: list[logging.Handler] = []
        self._previous_level = logging.NOTSET
        self._server_state: dict[str, tuple[list[logging.Handler], bool]] = {}
        self._exporter_propagate = True

    def install(self) -> None:
        root = logging.getLogger()
        self._previous_level = root.level
        for handler in list(root.handlers):
            # basicConfig-style console handlers would print every line twice.
            if type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (
                sys.stdout,
                sys.stderr,
            ):
                root.removeHandler(handler)
                self._removed.append(handler)
        root.addHandler(self.stream_handler)
        if self.otel_handler is not None:
            root.addHandler(self.otel_handler)
        root.setLevel(self.level)
        self.reroute_server_loggers()
        # The SDK exporters' retry chatter goes to our diagnostics, which our one report quotes.
        exporter_logger = logging.getLogger("opentelemetry.exporter")
        self._exporter_propagate = exporter_logger.propagate
        exporter_logger.addHandler(exporter_diagnostics)
        if self.level > logging.DEBUG:
            exporter_logger.propagate = False

    def reroute_server_loggers(self) -> None:
        """Send uvicorn/gunicorn/hypercorn logs through our handlers (they install their own at start)."""
        for name in _SERVER_LOGGERS:
            logger = logging.getLogger(name)
            if name not in self._server_state:
                self._server_state[name] = (list(logger.handlers), logger.propagate)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True

    def uninstall(self) -> None:
        exporter_logger = logging.getLogger("opentelemetry.exporter")
        exporter_logger.removeHandler(exporter_diagnostics)
        exporter_logger.propagate = self._exporter_propagate
        root = logging.getLogger()
        root.removeHandler(self.stream_handler)
        if self.otel_handler is not None:
            root.removeHandler(self.otel_handler)
        for handler in self._removed:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(self._previous_level)
        for name, (handlers, propagate) in self._server_state.items():
            logger = logging.getLogger(name)
            for handler in handlers:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
            logger.propagate = propagate
        self.stream_handler.flush()
