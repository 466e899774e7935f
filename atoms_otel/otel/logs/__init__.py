"""Structured logging: ``get_logger``, JSON and console formatters, and the bridge to OpenTelemetry.

``configure()`` routes the standard library's logging — the root logger, uvicorn, gunicorn and any
third-party library — through one handler that writes one JSON object per line (or a readable
console line), and, when logs are exported, through :class:`OTelLogHandler` into the
OpenTelemetry LoggerProvider. Every line carries the request context and the current trace.
"""

from atoms_otel.otel.logs.bridge import OTelLogHandler
from atoms_otel.otel.logs.format import ConsoleFormatter, StructuredFormatter, structured_exception
from atoms_otel.otel.logs.install import LoggingInstallation
from atoms_otel.otel.logs.logger import AtomLogger, get_logger

__all__ = [
    "AtomLogger",
    "ConsoleFormatter",
    "LoggingInstallation",
    "OTelLogHandler",
    "StructuredFormatter",
    "get_logger",
    "structured_exception",
]
