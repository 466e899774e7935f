"""Request-scoped context: correlation id, user, session, request path and extra fields.

Each value lives in a :class:`contextvars.ContextVar`, so it is isolated per asyncio task and per
thread, and copied into tasks spawned from inside a request. The span and log-record processors,
and the JSON formatter, read these on every span and log line.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Final

__all__ = [
    "CONTEXT_ATTRIBUTES",
    "CORRELATION_ID_ATTRIBUTE",
    "ContextTokens",
    "LogContext",
    "McpToolCall",
    "clear_context",
    "current_context",
    "get_correlation_id",
    "get_request_path",
    "get_session_id",
    "get_user_id",
    "mcp_tool_call_var",
    "new_correlation_id",
    "reset_context",
    "set_context",
    "set_correlation_id",
    "set_request_path",
    "set_session_id",
    "set_user_id",
]

correlation_id_var: ContextVar[str | None] = ContextVar("atoms_otel_correlation_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("atoms_otel_user_id", default=None)
session_id_var: ContextVar[str | None] = ContextVar("atoms_otel_session_id", default=None)
request_path_var: ContextVar[str | None] = ContextVar("atoms_otel_request_path", default=None)
extra_var: ContextVar[dict[str, Any] | None] = ContextVar("atoms_otel_extra", default=None)


class McpToolCall:
    """An MCP ``tools/call`` the MCP middleware is serving and counting. An ``@observe_tool`` of
    the same name running inside it claims it and records only its span: one call, one count."""

    __slots__ = ("claimed", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.claimed = False


mcp_tool_call_var: ContextVar[McpToolCall | None] = ContextVar("atoms_otel_mcp_tool_call", default=None)

CORRELATION_ID_ATTRIBUTE: Final = "atoms.correlation_id"
"""The correlation id's attribute name on spans and OTel log records. No semantic convention names
a per-request correlation id, so it lives in the ``atoms.`` namespace (it was ``correlation.id`` in 0.1)."""

# The log field name of each value, and the attribute name used on spans and OTel log records
# (the OpenTelemetry semantic-convention name where one exists, else ``atoms.*``).
CONTEXT_ATTRIBUTES: Final = (
    ("correlation_id", CORRELATION_ID_ATTRIBUTE, correlation_id_var),
    ("user_id", "user.id", user_id_var),
    ("session_id", "session.id", session_id_var),
    ("request_path", "url.path", request_path_var),
)
_VARS: Final = {field: var for field, _, var in CONTEXT_ATTRIBUTES}


def new_correlation_id() -> str:
    """A fresh correlation id (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def get_correlation_id() -> str | None:
    return correlation_id_var.get()


def set_correlation_id(value: str | None) -> Token[str | None]:
    return correlation_id_var.set(value)


def get_user_id() -> str | None:
    return user_id_var.get()


def set_user_id(value: str | None) -> Token[str | None]:
    return user_id_var.set(value)


def get_session_id() -> str | None:
    return session_id_var.get()


def set_session_id(value: str | None) -> Token[str | None]:
    return session_id_var.set(value)


def get_request_path() -> str | None:
    return request_path_var.get()


def set_request_path(value: str | None) -> Token[str | None]:
    return request_path_var.set(value)


def current_context() -> dict[str, Any]:
    """The values set in this context: the four known fields, then extra fields."""
    result: dict[str, Any] = {}
    for field, _, var in CONTEXT_ATTRIBUTES:
        value = var.get()
        if value is not None:
            result[field] = value
    extra = extra_var.get()
    if extra:
        result.update(extra)
    return result


ContextTokens = list[tuple[ContextVar[Any], Token[Any]]]
"""What :func:`set_context` changed, for :func:`reset_context`."""


def set_context(values: Mapping[str, Any], extra: dict[str, Any] | None) -> ContextTokens:
    """Set the context as ``LogContext`` does: each known field of ``values`` (``correlation_id``,
    ``user_id``, ``session_id``, ``request_path``) that is not None, and ``extra`` merged over the
    outer extra fields (``extra`` itself when there are none: the values set are never mutated).
    Returns the tokens :func:`reset_context` restores."""
    tokens: ContextTokens = []
    for field, value in values.items():
        if value is not None:
            var = _VARS[field]
            tokens.append((var, var.set(value)))
    if extra:
        outer = extra_var.get()
        tokens.append((extra_var, extra_var.set({**outer, **extra} if outer else extra)))
    return tokens


def reset_context(tokens: ContextTokens) -> None:
    """Restore what :func:`set_context` changed, newest first."""
    for var, token in reversed(tokens):
        try:
            var.reset(token)
        except ValueError:
            # Reset in another context than it was set in (e.g. a generator resumed elsewhere):
            # setting back the previous value is the closest correct outcome.
            var.set(token.old_value if token.old_value is not Token.MISSING else None)


def clear_context() -> None:
    """Unset every context value in the current context (tests and worker loops use this)."""
    for _, _, var in CONTEXT_ATTRIBUTES:
        var.set(None)
    extra_var.set(None)


class LogContext:
    """Set context for the logs and spans emitted inside a block; restore it on exit.

    Works as a sync and an async context manager, nests (inner values win, outer values come
    back on exit), and is isolated per task and thread. Unknown keyword arguments become extra
    fields on every log line and span inside the block::

        with LogContext(user_id="user123", correlation_id="req-456", tenant="acme"):
            logger.info("Processing request", extra_fields={"action": "create"})

    A ``LogContext`` object can be entered again after it has exited, but not while it is active.
    """

    __slots__ = ("_extra", "_tokens", "_values")

    def __init__(
        self,
        *,
        correlation_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        request_path: str | None = None,
        **extra: Any,
    ) -> None:
        self._values = {
            "correlation_id": correlation_id,
            "user_id": user_id,
            "session_id": session_id,
            "request_path": request_path,
        }
        self._extra = extra
        self._tokens: ContextTokens | None = None

    def __enter__(self) -> LogContext:
        if self._tokens is not None:
            raise RuntimeError("this LogContext is already active; create a new one to nest")
        self._tokens = set_context(self._values, self._extra)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tokens, self._tokens = self._tokens or [], None
        reset_context(tokens)

    async def __aenter__(self) -> LogContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._values.items() if v is not None} | self._extra
        return f"LogContext({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
