"""The direct path: an :class:`AtomLogger` line rendered and written without a ``LogRecord``.

A stdlib record costs more than the JSON line itself (the record's ~20 attributes, ``findCaller``
walking the stack, the handler chain). When every handler a line would reach is the JSON handler
configure() installed — no logger filter, no third-party handler, no OpenTelemetry bridge, the
stdlib's own record factory — nothing else could see the record, so the line is rendered straight
from the call and written under the handler's lock. The line is the one the handler's formatter
would have written for the record (``tests/otel/test_logs_direct.py`` compares both paths). As soon
as anything else listens (pytest's ``caplog``, a user's handler, log export), the record is built
and handed to the stdlib chain as before; the check runs on every call, so a handler added later
is honoured at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import IO, Any

from atoms_otel.base.context import extra_var
from atoms_otel.otel.logs.format import StructuredFormatter

__all__ = ["JsonLineHandler", "OncePerMessage", "direct_targets", "write_direct"]


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


def direct_targets(logger: logging.Logger, level: int) -> list[JsonLineHandler] | None:
    """The JSON handlers a line at ``level`` reaches, or ``None`` when the record must be built
    (the logger is disabled or filtered, a record factory is installed, or another handler listens).
    The caller guarantees the logger is a plain ``logging.Logger`` not named ``opentelemetry*``, so
    the handler's :class:`OncePerMessage` filter lets the line through."""
    if logger.disabled or logger.filters or logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    found: list[JsonLineHandler] = []
    reached = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                type(handler) is not JsonLineHandler
                or type(handler.formatter) is not StructuredFormatter
                or len(handler.filters) != 1
                or handler.filters[0] is not handler.once
            ):
                return None
            reached = True
            if level >= handler.level:
                found.append(handler)
        current = current.parent if current.propagate else None
    return found if reached else None  # no handler at all: the stdlib's last resort decides


def write_direct(
    targets: list[JsonLineHandler],
    level: int,
    name: str,
    msg: object,
    args: tuple[object, ...],
    fields: Mapping[str, Any] | None,
) -> None:
    """Render and write the line each target's formatter would have written for this call's record."""
    if not targets:
        return
    created = time.time()
    levelname = logging.getLevelName(level)
    context_extra = extra_var.get()
    if context_extra:  # the LogContext extras first, the call's fields over them (as record_extras)
        fields = {**context_extra, **fields} if fields else dict(context_extra)
    for handler in targets:
        formatter: StructuredFormatter = handler.formatter  # type: ignore[assignment]
        try:
            entry = formatter.entry(
                created, levelname, name, _message(msg, args), fields, template=not args and type(msg) is str
            )
            line = formatter.render(entry)
        except Exception as exc:  # a value that cannot be rendered must not lose the line
            line = formatter.fallback(created, levelname, name, msg, exc)
        try:
            handler.write_line(line)
        except RecursionError:  # as StreamHandler.emit
            raise
        except Exception:
            handler.handleError(logging.LogRecord(name, level, "", 0, msg, args, None))


def _message(msg: object, args: tuple[object, ...]) -> str:
    """``LogRecord.getMessage()``, including the record's one-mapping-argument rule."""
    text = str(msg)
    if not args:
        return text
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        return text % args[0]
    return text % args
