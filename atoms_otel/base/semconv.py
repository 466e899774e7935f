"""Small helpers shared by the integrations for OpenTelemetry semantic-convention values."""

from __future__ import annotations

__all__ = ["exception_type"]


def exception_type(exc: BaseException) -> str:
    """``error.type`` per the semantic conventions: the class name, module-qualified unless builtin.

    Also the ``error_type`` label of ``errors_total``, so a metric and a span agree.
    """
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
