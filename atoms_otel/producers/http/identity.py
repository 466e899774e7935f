"""``configure(request_context=...)``: the application names a request's user and session.

The hook gets the ASGI scope and returns ``{"user_id": ..., "session_id": ..., **extra}`` (or
``None``). It runs before the handler, so every log line and span of the request carries what it
returns. When it returns nothing then — typically because the app's own authentication runs inside
the middleware and has not run yet — it is asked once more when the response starts, and what it
returns then is set on the server span. Identity never comes from a raw client header unless the
hook reads one. A failing hook is contained and counted; the request goes on without identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import trace

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import ContextTokens, set_context
from atoms_otel.base.semconv import attribute_value
from atoms_otel.core.telemetry import RequestContext
from atoms_otel.producers.http.state import Scope

__all__ = ["enter_identity", "stamp_identity"]

_FIELDS: Final = {"user_id": "user.id", "session_id": "session.id"}  # context field -> span attribute
_MAX_TEXT: Final = 256


def _ask(hook: RequestContext, scope: Scope) -> dict[str, Any]:
    try:
        found = hook(scope)
    except Exception as exc:
        _guard.report_internal_error("request_context hook", exc)
        return {}
    if not isinstance(found, Mapping):
        return {}
    return {str(k): _bounded(v) for k, v in found.items() if v is not None}


def _bounded(value: Any) -> Any:
    return value[:_MAX_TEXT] if isinstance(value, str) else value


def enter_identity(hook: RequestContext, scope: Scope) -> ContextTokens | None:
    """Set what the hook returns as the request's context; the tokens to reset, or None."""
    found = _ask(hook, scope)
    if not found:
        return None
    values = {field: str(found.pop(field)) for field in _FIELDS if field in found}
    return set_context(values, found)


def stamp_identity(hook: RequestContext, scope: Scope, span: trace.Span | None) -> None:
    """At response start, when nothing was known before the handler: stamp the server span."""
    if span is None or not span.is_recording():
        return
    for field, value in _ask(hook, scope).items():
        attribute = _FIELDS.get(field, field)
        span.set_attribute(attribute, attribute_value(value))
