"""Per-request state shared by the atoms_otel layers, and the settings they read per request."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.util.http import ExcludeList, sanitize_method

from atoms_otel.base import guard as _guard
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.producers.http.capture import HeaderCapture, header_capture
from atoms_otel.producers.http.headers import CORRELATION_HEADER, ExcludedPaths
from atoms_otel.producers.http.routes import UNMATCHED, route_template
from atoms_otel.producers.http.series import SeriesTable

__all__ = ["STATE_KEY", "Config", "Message", "RequestState", "Scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

STATE_KEY: Final = "atoms_otel.request"
"""Where the state lives in the ASGI scope (the MCP integration reads it from there too)."""

_METHODS: dict[str, str] = {}
"""Raw request method -> ``http.request.method``, as ``opentelemetry-util-http``'s
``sanitize_method`` decides it (known methods, upper-cased; ``_OTHER`` otherwise, or every method
with ``OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS``). Remembered per distinct method,
at most ``_MAX_METHODS`` of them: beyond that (a client inventing methods), it is asked each time."""
_MAX_METHODS: Final = 64


def request_method(raw: str) -> str:
    """The semconv ``http.request.method`` of a request's raw method."""
    found = _METHODS.get(raw)
    if found is None:
        found = sanitize_method(raw)
        if len(_METHODS) < _MAX_METHODS:
            _METHODS[raw] = found
    return found


# Samplers that keep every span they are asked about (bar an unsampled remote parent): with them
# the request attributes are passed at span start, one attribute pass instead of two.
_KEEP_ALL: Final = frozenset({"always_on", "parentbased_always_on"})


class Config:
    """The settings the middleware reads per request, prepared once per configure()."""

    __slots__ = (
        "capture",
        "eager",
        "excluded",
        "gc_freeze",
        "otel_excluded",
        "series",
        "settings",
        "slow_ms",
    )

    def __init__(self, telemetry: Telemetry) -> None:
        settings = self.settings = telemetry.settings
        self.excluded = ExcludedPaths(settings.excluded_urls)
        patterns = settings.otel_excluded_urls
        self.otel_excluded: ExcludeList | None = ExcludeList(list(patterns)) if patterns else None
        self.slow_ms = settings.slow_request_ms
        self.eager = settings.trace_sampler in _KEEP_ALL
        self.capture: HeaderCapture | None = header_capture(settings)
        self.series = SeriesTable(telemetry)
        self.gc_freeze = settings.gc_freeze and telemetry.enabled

    def is_excluded(self, scope: Scope) -> bool:
        """No span for this request: ``ATOMS_OTEL_EXCLUDED_URLS`` (paths), or the OTel variables'
        regular expressions searched in the URL the OTel ASGI instrumentation matches them on."""
        path = scope["path"]
        if self.excluded(path):
            return True
        if self.otel_excluded is None:
            return False
        return self.otel_excluded.url_disabled(_instrumentation_url(scope))


def _instrumentation_url(scope: Scope) -> str:
    """``scheme://host/path`` as ``opentelemetry-instrumentation-asgi`` builds it to match its
    excluded URLs: the ``Host`` header, else the server's address (``:port`` unless 80)."""
    host = next((value for name, value in scope.get("headers") or () if name == b"host"), None)
    if host is not None:
        netloc = host.decode("latin-1")
    else:
        address, port = scope.get("server") or ("0.0.0.0", 80)
        netloc = address if str(port) == "80" else f"{address}:{port}"
    return f"{scope.get('scheme', 'http')}://{netloc}{scope['path']}"


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
        "response_headers",
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
        self.method: str = request_method(method)
        self.excluded = config.is_excluded(scope)
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
        self.response_headers: Any = None
        """The response headers, kept only when some are captured as span attributes."""

    def response_started(self, headers: Any) -> bool:
        """Read the response headers once; True when the app set ``X-Correlation-ID`` itself.

        An event stream (``text/event-stream``: SSE, MCP's GET stream) is open once its headers
        are out: events come when they happen, so that is its first byte."""
        answered = False
        for name, value in headers or ():
            lowered = name.lower()
            if lowered == b"content-type":
                if value.lower().startswith(b"text/event-stream"):
                    self.streaming = True
                    self.first_byte = time.perf_counter()
            elif lowered == CORRELATION_HEADER:
                answered = True
        return answered

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
