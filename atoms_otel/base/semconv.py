"""Semantic-convention helpers shared by every producer of spans, metrics and log records."""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["attribute_value", "exception_type"]

_PRIMITIVES: Final = (str, bool, int, float)


def exception_type(exc: BaseException) -> str:
    """``error.type`` per the semantic conventions: the class name, module-qualified unless builtin.

    Also the ``error_type`` label of ``errors_total``, so a metric and a span agree.
    """
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def attribute_value(value: Any) -> Any:
    """Coerce a context or extra-field value into a valid OpenTelemetry attribute value."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    try:
        return json.dumps(value, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)
