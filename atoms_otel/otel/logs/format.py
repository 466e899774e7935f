"""Log lines: one JSON object per line (:class:`StructuredFormatter`) or a readable console line.

Every line carries the request context (``LogContext``), the current trace and span ids, the extra
fields of the call, and a structured exception; secret-looking keys are redacted, and credentials
recognised by their format are redacted from the message, the exception and the stack (including
``?token=…`` in an access-log line). Every line is UTF-8 encodable (a lone surrogate becomes
U+FFFD); the console format escapes control characters, so a value cannot forge a line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanContext

try:  # optional: the same line, ~4x faster to encode; without it the stdlib json module writes it
    import orjson
except ImportError:  # pragma: no cover - tests/otel/test_logs_direct.py runs this in a subprocess
    orjson = None  # type: ignore[assignment]

from atoms_otel.base import scrubbing
from atoms_otel.base.context import CONTEXT_ATTRIBUTES, extra_var

__all__ = [
    "EXTRA_KEY",
    "ConsoleFormatter",
    "StructuredFormatter",
    "Timestamps",
    "record_extras",
    "structured_exception",
]

_RESERVED: Final = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
    "_atoms_extra",
    "atoms_otel_component",
}
EXTRA_KEY: Final = "_atoms_extra"
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


_DIGITS: Final = {"s": 0, "ms": 3, "us": 6}


class Timestamps:
    """RFC 3339 timestamps — UTC (``Z``) or local time with its offset — with second, millisecond
    or microsecond precision; the date-time part is cached per second."""

    def __init__(self, *, precision: str = "ms", utc: bool = True) -> None:
        if precision not in _DIGITS:
            raise ValueError(f"timestamp precision must be one of {', '.join(_DIGITS)}, got {precision!r}")
        self._digits = _DIGITS[precision]
        self._utc = utc
        self._cache: tuple[int, str, str] = (-1, "", "")  # one tuple, replaced atomically

    def __call__(self, created: float) -> str:
        second = int(created)
        cached_second, prefix, suffix = self._cache
        if second != cached_second:
            moment = time.gmtime(second) if self._utc else time.localtime(second)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", moment)
            suffix = "Z" if self._utc else _offset(moment)
            self._cache = (second, prefix, suffix)
        if not self._digits:
            return prefix + suffix
        fraction = int((created - second) * 10**self._digits)
        return f"{prefix}.{fraction:0{self._digits}d}{suffix}"


def _offset(moment: time.struct_time) -> str:
    minutes = (moment.tm_gmtoff or 0) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


_ENCODER: Final = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(",", ":"))
ORJSON: Final = orjson is not None
"""Whether lines are encoded by ``orjson`` when their values allow it (``pip install orjson``)."""
# Top-level value types orjson writes exactly as the json module does. Floats only in the range
# where both print the same digits without an exponent (json: 1e-05, 1e+16; orjson: 0.00001, 1e16);
# anything else (nested values, enums, subclasses, other floats) goes to the json module.
_ORJSON_SAFE: Final = frozenset({str, int, bool, type(None)})


def encode_stdlib(entry: Mapping[str, Any]) -> str:
    """One log line's JSON text by the json module (its encoder built once, not per call)."""
    return _ENCODER.encode(entry)


def encode(entry: Mapping[str, Any]) -> str:
    """One log line's JSON text: by ``orjson`` when installed and every value is of a type it
    writes identically (``tests/otel/test_logs_direct.py`` compares), else by :func:`encode_stdlib`."""
    if orjson is None:
        return _ENCODER.encode(entry)
    for value in entry.values():
        kind = type(value)
        if kind not in _ORJSON_SAFE and not (kind is float and (value == 0 or 1e-4 <= abs(value) < 1e16)):
            return _ENCODER.encode(entry)
    try:
        return orjson.dumps(entry).decode()
    except (TypeError, ValueError):  # a lone surrogate, an int beyond 64 bits, a key that is not str
        return _ENCODER.encode(entry)


def structured_exception(exc_info: Any) -> dict[str, Any]:
    """An exception as ``{"type", "message", "stacktrace"}``, credentials in its text redacted."""
    exc_type, exc, tb = exc_info
    message = str(exc)
    stacktrace = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip()
    scrubber = scrubbing.active_scrubber()
    if scrubber is not None:
        message, stacktrace = scrubber.scrub_text(message), scrubber.scrub_text(stacktrace)
    return {
        "type": getattr(exc_type, "__qualname__", str(exc_type)),
        "message": message,
        "stacktrace": stacktrace,
    }


def _scrubbed_text(text: str) -> str:
    scrubber = scrubbing.active_scrubber()
    return scrubber.scrub_text(text) if scrubber is not None else text


# Scrubbed literal messages (no %-args), per scrubber: a code base has a bounded set of them. At the
# limit nothing more is cached (each further message is scrubbed every time, as without the cache).
_TEMPLATE_LIMIT: Final = 2048
_TEMPLATE_MAX_CHARS: Final = 300
_templates: tuple[scrubbing.Scrubber | None, dict[str, str]] = (None, {})


def _scrub_template(scrubber: scrubbing.Scrubber, message: str) -> str:
    global _templates
    owner, table = _templates  # one tuple, replaced whole: a table only ever holds its owner's results
    if owner is not scrubber:
        table = {}
        _templates = (scrubber, table)
    found = table.get(message)
    if found is None:
        found = scrubber.scrub_text(message)
        if len(table) < _TEMPLATE_LIMIT and len(message) <= _TEMPLATE_MAX_CHARS:
            table[message] = found
    return found


class StructuredFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    Field order: ``timestamp`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, then the
    context fields that are set (``correlation_id``, ``user_id``, ``session_id``,
    ``request_path``), ``trace_id`` and ``span_id`` inside a span, the extra fields (secret-looking
    keys redacted), and ``exception`` as ``{"type", "message", "stacktrace"}``. An extra field whose
    name collides with one of these is kept as ``extra_<name>``.

    Timestamp options: ``timestamp_precision`` ``"ms"`` (default), ``"us"`` or ``"s"``; ``utc=False``
    writes local time with its offset (``2026-12-02T08:15:30.123+01:00``) instead of ``Z``.
    """

    def __init__(
        self,
        *,
        static_fields: Mapping[str, Any] | None = None,
        timestamp_precision: str = "ms",
        utc: bool = True,
    ) -> None:
        super().__init__()
        self._static = dict(static_fields or {})
        self._timestamp = Timestamps(precision=timestamp_precision, utc=utc)

    def entry(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        extras: Mapping[str, Any] | None,
        *,
        template: bool = False,
        span_context: SpanContext | None = None,
    ) -> dict[str, Any]:
        """The line as one dict, without ``exception``/``stack``. ``template``: ``message`` is a
        literal from the code (no %-args), so its scrubbed form may be cached; ``span_context``:
        the current span's, when the caller has read it already."""
        scrubber = scrubbing.active_scrubber()
        if scrubber is not None:
            message = _scrub_template(scrubber, message) if template else scrubber.scrub_text(message)
        entry: dict[str, Any] = {
            "timestamp": self._timestamp(created),
            "level": level,
            "logger": name,
            "message": message,
        }
        for field, var in _CONTEXT_FIELDS:
            value = var.get()
            if value is not None:
                entry[field] = value
        if span_context is None:
            span_context = trace_api.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        if extras or self._static:
            fields = {**self._static, **extras} if self._static and extras else (extras or self._static)
            for key, value in fields.items():
                if key in _CORE_FIELDS:
                    key = f"extra_{key}"
                entry[key] = scrubber.scrub_value(key, value) if scrubber else value
        return entry

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        entry = self.entry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            record_extras(record),
            template=not record.args and type(record.msg) is str,
        )
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = structured_exception(record.exc_info)
        if record.stack_info:
            entry["stack"] = _scrubbed_text(record.stack_info)
        return entry

    def render(self, entry: dict[str, Any]) -> str:
        """``entry`` as one JSON line (raises if a value cannot be rendered: see :meth:`fallback`)."""
        return scrubbing.encodable(encode(entry))  # a lone surrogate must not fail at write time

    def fallback(self, created: float, level: str, name: str, msg: object, exc: Exception) -> str:
        """The line when the record could not be rendered: the line is kept, the error named."""
        return json.dumps(
            {
                "timestamp": self._timestamp(created),
                "level": level,
                "logger": name,
                "message": _scrubbed_text(str(msg)),
                "format_error": f"{type(exc).__name__}: {exc}",
            }
        )

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self.render(self.to_dict(record))
        except Exception as exc:  # a value that cannot be rendered must not lose the line
            return self.fallback(record.created, record.levelname, record.name, record.msg, exc)


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """Fields passed with ``extra=`` (stdlib) or ``extra_fields=`` (AtomLogger), and LogContext extras."""
    context_extra = extra_var.get()
    extras: dict[str, Any] = dict(context_extra) if context_extra else {}
    keys = record.__dict__.keys() - _RESERVED
    if keys:
        for key in keys:
            extras[key] = record.__dict__[key]
    atoms = record.__dict__.get(EXTRA_KEY)
    if atoms:
        extras.update(atoms)
    return extras


# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators, shown escaped.
_ESCAPES: Final = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}
# In a traceback newlines stay (indented, so no line of it can pass for a log line); the rest escaped.
_BLOCK_ESCAPES: Final = {**_ESCAPES, ord("\n"): "\n    "}


def _escaped(value: Any) -> str:
    return str(value).translate(_ESCAPES)


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
        fields = "  ".join(f"{_escaped(k)}={_escaped(v)}" for k, v in entry.items())
        shown_level = f"{level:<8}"
        if self._colors:
            shown_level = f"{self._COLORS.get(level, '')}{shown_level}\x1b[0m"
        line = f"{clock} {shown_level} {_escaped(logger)}  {_escaped(message)}" + (
            f"  {fields}" if fields else ""
        )
        if exception:
            line += "\n    " + exception["stacktrace"].translate(_BLOCK_ESCAPES)
        if stack:
            line += "\n    " + stack.translate(_BLOCK_ESCAPES)
        return scrubbing.encodable(line)
