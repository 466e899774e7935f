"""Per-request state shared by the atoms_otel layers, and the settings they read per request."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any, Final

from opentelemetry import trace

from atoms_otel.base import guard as _guard
from atoms_otel.base.settings import Settings
from atoms_otel.producers.http.headers import ExcludedPaths
from atoms_otel.producers.http.routes import UNMATCHED, route_template

__all__ = ["STATE_KEY", "Config", "Message", "RequestState", "Scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

STATE_KEY: Final = "atoms_otel.request"
"""Where the state lives in the ASGI scope (the MCP integration reads it from there too)."""

_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)


class Config:
    """The settings the middleware reads per request, prepared once per configure()."""

    __slots__ = ("excluded", "settings", "slow_ms")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.excluded = ExcludedPaths(settings.excluded_urls)
        self.slow_ms = settings.slow_request_ms


class RequestState:
    """Per-request state shared by the atoms_otel layers that see the request."""

    __slots__ = (
        "claimed",
        "correlation_id",
        "echo_request_id",
        "error_type",
        "excluded",
        "first_byte",
        "host",
        "method",
        "recorded",
        "root_path",
        "route",
        "span",
        "start",
        "status_code",
        "streaming",
        "tracker",
        "user_agent",
    )

    def __init__(self, scope: Scope, config: Config) -> None:
        self.start = time.perf_counter()
        method = scope.get("method", "GET")
        self.method: str = method if method in _KNOWN_METHODS else "_OTHER"
        self.excluded = config.excluded(scope["path"])
        self.root_path: str = scope.get("root_path", "")
        self.claimed = 0
        self.correlation_id = ""
        self.echo_request_id = False
        self.error_type: str | None = None
        self.recorded: BaseException | None = None
        self.route: str | None = None
        self.span: trace.Span | None = None
        self.status_code: int | None = None
        self.tracker: Any = None
        self.host: bytes | None = None
        """``Host`` and ``User-Agent`` as read by the owner layer's one pass over the headers."""
        self.user_agent: bytes | None = None
        self.first_byte: float | None = None
        self.streaming = False

    def response_started(self, headers: Any) -> None:
        """An event stream (``text/event-stream``: SSE, MCP's GET stream) is open once its headers
        are out: events come when they happen, so that is its first byte."""
        for name, value in headers or ():
            if name.lower() == b"content-type" and value.lower().startswith(b"text/event-stream"):
                self.streaming = True
                self.first_byte = time.perf_counter()
                return

    def body_sent(self, body: bytes, more_body: bool) -> None:
        """A body chunk went out; a response sent in several chunks is a stream."""
        if more_body:
            self.streaming = True
        if self.first_byte is None and (body or not more_body):
            self.first_byte = time.perf_counter()

    def slow_rule_seconds(self) -> float:
        """What the slow-request rule judges: a stream's time to its first byte, else the whole request."""
        end = self.first_byte if self.streaming and self.first_byte is not None else time.perf_counter()
        return end - self.start

    def template(self, scope: Scope) -> str:
        route = self.route
        if route is None:
            try:
                route = route_template(scope, self.tracker, self.root_path)
            except Exception as exc:
                _guard.report_internal_error("route template", exc)
                route = UNMATCHED
            self.route = route
        return route

    def trace_id(self) -> str | None:
        context = (self.span or trace.get_current_span()).get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None
