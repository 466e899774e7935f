"""The direct path: an :class:`AtomLogger` line rendered and written without a ``LogRecord``.

A stdlib record costs more than the JSON line itself (the record's ~20 attributes, ``findCaller``
walking the stack, the handler chain). When every handler a line would reach is one configure()
installed — the JSON handler, and the OpenTelemetry bridge when logs are exported — with no
logger filter and the stdlib's own record factory, nothing else could see the record: the line is
rendered straight from the call and written under the handler's lock, and the bridge is handed the
same parts (the caller's location found as ``findCaller`` finds it, only when the bridge is there).
Both are what the handlers would have made of the record (``tests/otel/test_logs_direct.py``
compares both paths). As soon as anything else listens (pytest's ``caplog``, a user's handler), the
record is built and handed to the stdlib chain as before; the check runs on every call, so a
handler added later is honoured at once.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import FrameType
from typing import IO, Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanContext

from atoms_otel.base.context import extra_var
from atoms_otel.otel.logs.bridge import OTelLogHandler
from atoms_otel.otel.logs.format import StructuredFormatter

__all__ = ["JsonLineHandler", "LineTap", "OncePerMessage", "direct_targets", "write_direct"]


class OncePerMessage(logging.Filter):
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
        if len(self._seen) < 1000:  # beyond 1000 distinct messages, new ones pass every time
            self._seen.add(key)
        return True


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler configure() installs: stdlib records, and lines rendered by the direct path."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.once = OncePerMessage()
        self.addFilter(self.once)

    def write_line(self, line: str) -> None:
        """What ``emit`` does once the record is formatted: write, terminate, flush, under the lock."""
        with self.lock:  # type: ignore[union-attr]  # StreamHandler always creates it
            self.stream.write(line + self.terminator)
            self.flush()


class LineTap(logging.Handler, ABC):
    """A handler that also takes a direct-path line from its parts, so that listening does not
    force every line back onto the record path (the live view's log ring is one). Without filters
    it is counted as one of ours by :func:`direct_targets`; ``fields`` already holds the
    ``LogContext`` extras with the call's fields over them, as ``record_extras`` would give."""

    line_tap: Final = True
    """Checked instead of ``isinstance`` on every line (an ABC check costs ~100 ns each time)."""

    @abstractmethod
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
        """Keep one line (never raise: called on the caller's thread); ``span_context`` is the
        current span's, read once for every handler of the line."""


Target = JsonLineHandler | OTelLogHandler | LineTap


def _ours(handler: logging.Handler) -> bool:
    if type(handler) is OTelLogHandler:
        return not handler.filters
    if getattr(handler, "line_tap", False):
        return not handler.filters
    return (
        type(handler) is JsonLineHandler
        and type(handler.formatter) is StructuredFormatter
        and len(handler.filters) == 1
        and handler.filters[0] is handler.once
    )


def direct_targets(logger: logging.Logger, level: int) -> list[Target] | None:
    """Our handlers a line at ``level`` reaches, or ``None`` when the record must be built (the
    logger is disabled or filtered, a record factory is installed, or another handler listens).
    The caller guarantees the logger is a plain ``logging.Logger`` not named ``opentelemetry*``, so
    the JSON handler's :class:`OncePerMessage` filter lets the line through and the bridge takes it."""
    if logger.disabled or logger.filters or logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    found: list[Target] = []
    reached = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not _ours(handler):
                return None
            reached = True
            if level >= handler.level:
                found.append(handler)  # type: ignore[arg-type]  # _ours checked the type
        current = current.parent if current.propagate else None
    return found if reached else None  # no handler at all: the stdlib's last resort decides


# Frames findCaller skips: the logging module's own and importlib's bootstrap.
_LOGGING_FILE: Final = os.path.normcase(logging.addLevelName.__code__.co_filename)


def _internal(frame: FrameType) -> bool:
    filename = os.path.normcase(frame.f_code.co_filename)
    return filename == _LOGGING_FILE or ("importlib" in filename and "_bootstrap" in filename)


def caller(start: FrameType, steps: int) -> tuple[str, int, str]:
    """``(function, line, file)`` as ``Logger.findCaller`` finds them: ``steps`` frames back from
    ``start`` that are not the logging module's own."""
    frame = start
    while steps > 0 and frame.f_back is not None:
        frame = frame.f_back
        if not _internal(frame):
            steps -= 1
    return frame.f_code.co_name, frame.f_lineno, frame.f_code.co_filename


def write_direct(
    targets: list[Target],
    level: int,
    name: str,
    msg: object,
    args: tuple[object, ...],
    fields: Mapping[str, Any] | None,
    stacklevel: int,
) -> None:
    """Write the line each JSON handler's formatter would have written for this call's record, and
    hand the bridge what it would have taken from it. Called by ``AtomLogger._emit`` (``stacklevel``
    as the caller gave it: the frames are counted from there, as ``_log`` would)."""
    if not targets:
        return
    created = time.time()
    levelname = logging.getLevelName(level)
    span_context = trace_api.get_current_span().get_span_context()  # once, for every handler
    context_extra = extra_var.get()
    if context_extra:  # the LogContext extras first, the call's fields over them (as record_extras)
        fields = {**context_extra, **fields} if fields else dict(context_extra)
    for handler in targets:
        try:
            kind = type(handler)  # one of our three kinds: direct_targets checked
            if kind is JsonLineHandler:
                line = _line(handler, created, levelname, name, msg, args, fields, span_context)  # type: ignore[arg-type]
                handler.write_line(line)  # type: ignore[union-attr]
            elif kind is OTelLogHandler:
                where = caller(sys._getframe(1), stacklevel + 1)
                handler.emit_fields(name, level, created, _message(msg, args), fields, where)  # type: ignore[union-attr]
            else:
                handler.take(created, level, levelname, name, _message(msg, args), fields, span_context)  # type: ignore[union-attr]
        except RecursionError:  # as Handler.emit
            raise
        except Exception:
            handler.handleError(logging.LogRecord(name, level, "", 0, msg, args, None))


def _line(
    handler: JsonLineHandler,
    created: float,
    levelname: str,
    name: str,
    msg: object,
    args: tuple[object, ...],
    fields: Mapping[str, Any] | None,
    span_context: SpanContext,
) -> str:
    formatter: StructuredFormatter = handler.formatter  # type: ignore[assignment]
    try:
        template = not args and type(msg) is str
        message = _message(msg, args)
        entry = formatter.entry(
            created, levelname, name, message, fields, template=template, span_context=span_context
        )
        return formatter.render(entry)
    except Exception as exc:  # a value that cannot be rendered must not lose the line
        return formatter.fallback(created, levelname, name, msg, exc)


def _message(msg: object, args: tuple[object, ...]) -> str:
    """``LogRecord.getMessage()``, including the record's one-mapping-argument rule."""
    text = str(msg)
    if not args:
        return text
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        return text % args[0]
    return text % args
