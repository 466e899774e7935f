"""``get_logger`` and :class:`AtomLogger`: a stdlib logger with structured fields."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeAlias

from atoms_otel.base import first_use
from atoms_otel.otel.logs.direct import direct_targets, write_direct
from atoms_otel.otel.logs.format import EXTRA_KEY

__all__ = ["AtomLogger", "ExcInfo", "get_logger"]

ExcInfo: TypeAlias = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)


class AtomLogger:
    """A stdlib logger with structured fields.

    >>> logger = get_logger(__name__)
    >>> logger.info("Processing request", extra_fields={"action": "create"})
    >>> logger.info("Processing request", action="create")          # the same
    >>> log = logger.bind(tenant="acme"); log.warning("quota low")  # fields on every line

    Every method takes ``extra_fields=`` and any other keyword as a field, plus the stdlib's
    ``exc_info``, ``stack_info`` and ``stacklevel``. Lines below the logger's level cost one check.
    """

    __slots__ = ("_bound", "_direct", "_logger", "name")

    def __init__(self, name: str, bound: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._logger = logging.getLogger(name)
        self._bound = dict(bound) if bound else None
        # The direct path (otel/logs/direct.py) only for a plain Logger whose lines the SDK filter passes.
        self._direct = type(self._logger) is logging.Logger and not name.startswith("opentelemetry")

    @property
    def logger(self) -> logging.Logger:
        """The underlying :class:`logging.Logger`."""
        return self._logger

    def bind(self, **fields: Any) -> AtomLogger:
        """A logger that adds ``fields`` to every line."""
        return AtomLogger(self.name, {**(self._bound or {}), **fields})

    def is_enabled_for(self, level: int) -> bool:
        if first_use.pending:
            first_use.run()
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
        if self._direct and not exc_info and not stack_info:
            targets = direct_targets(self._logger, level)
            if targets is not None:
                write_direct(targets, level, self.name, msg, args, merged, stacklevel)
                return
        self._logger._log(
            level,
            msg,
            args,
            exc_info=exc_info,
            extra={EXTRA_KEY: merged} if merged else None,
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
        if first_use.pending:
            first_use.run()
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
        if first_use.pending:
            first_use.run()
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
        if first_use.pending:
            first_use.run()
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
        if first_use.pending:
            first_use.run()
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
        if first_use.pending:
            first_use.run()
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
        if first_use.pending:
            first_use.run()
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
        if first_use.pending:
            first_use.run()
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
