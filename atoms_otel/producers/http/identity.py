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
from contextvars import ContextVar, Token
from typing import Any, Final

from opentelemetry import trace

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import extra_var, session_id_var, user_id_var
from atoms_otel.base.semconv import attribute_value
from atoms_otel.core.telemetry import RequestContext
from atoms_otel.producers.http.state import Scope

__all__ = ["Tokens", "enter_identity", "exit_identity", "stamp_identity"]

Tokens = list[tuple[ContextVar[Any], Token[Any]]]

_FIELDS: Final = {"user_id": (user_id_var, "user.id"), "session_id": (session_id_var, "session.id")}
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


def enter_identity(hook: RequestContext, scope: Scope) -> Tokens | None:
    """Set what the hook returns as the request's context; the tokens to reset, or None."""
    found = _ask(hook, scope)
    if not found:
        return None
    tokens: Tokens = []
    for field, (var, _) in _FIELDS.items():
        if field in found:
            tokens.append((var, var.set(str(found.pop(field)))))
    if found:
        tokens.append((extra_var, extra_var.set({**(extra_var.get() or {}), **found})))
    return tokens


def exit_identity(tokens: Tokens) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


def stamp_identity(hook: RequestContext, scope: Scope, span: trace.Span | None) -> None:
    """At response start, when nothing was known before the handler: stamp the server span."""
    if span is None or not span.is_recording():
        return
    for field, value in _ask(hook, scope).items():
        attribute = _FIELDS[field][1] if field in _FIELDS else field
        span.set_attribute(attribute, attribute_value(value))
