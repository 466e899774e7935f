"""Installing the handlers: what configure() changes in stdlib logging, and how it is undone."""

from __future__ import annotations

import logging
import sys
from typing import IO, Final

from opentelemetry._logs import LoggerProvider

from atoms_otel.otel.exporters import exporter_diagnostics
from atoms_otel.otel.logs.bridge import OTelLogHandler
from atoms_otel.otel.logs.direct import JsonLineHandler
from atoms_otel.otel.logs.format import ConsoleFormatter, StructuredFormatter

__all__ = ["LoggingInstallation"]


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
        self.stream_handler = JsonLineHandler(stream if stream is not None else sys.stdout)
        self.stream_handler.setFormatter(ConsoleFormatter() if fmt == "console" else StructuredFormatter())
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
