"""Pure-ASGI middleware for FastAPI and Starlette apps: correlation, spans, metrics, slow requests
and error responses. ``configure(app=app)`` installs all of it; each class also works alone::

    app.add_middleware(RequestTrackingMiddleware)
    app.add_middleware(ErrorTrackingMiddleware)

Every class takes the ``Telemetry`` handle (``telemetry=``; the classes exported by
:mod:`atoms_otel` default it to the handle ``atoms_otel.configure()`` fills) and reads its settings
(excluded URLs, slow-request threshold) through it at request time, with the defaults before
configure(). Whichever atoms_otel layer sees a request first sets up its context (correlation id,
trace context, log context, the ``X-Correlation-ID`` response header); each stage then runs once,
however the layers are stacked.
WebSocket and lifespan traffic passes straight through; streaming responses are not buffered.
See docs/fastapi.md for everything that is recorded.
"""

from __future__ import annotations

from typing import ClassVar

from atoms_otel.producers.http.engine import CONTEXT, ERRORS, PERFORMANCE, TRACKING, TelemetryMiddleware
from atoms_otel.producers.http.routes import UNMATCHED

__all__ = [
    "UNMATCHED",
    "ContextPropagationMiddleware",
    "ErrorTrackingMiddleware",
    "PerformanceTrackingMiddleware",
    "RequestTrackingMiddleware",
    "TelemetryMiddleware",
]


class ContextPropagationMiddleware(TelemetryMiddleware):
    """Correlation id and trace context for every request, and nothing else.

    Reads ``X-Correlation-ID`` (or ``X-Request-ID``), accepting at most 128 letters, digits, ``-``,
    ``_``, ``.`` or ``:``, and otherwise generates one; puts it in the log context and echoes it on
    the response. A W3C ``traceparent`` continues the caller's trace; ``baggage`` is available to
    the handlers (``opentelemetry.baggage``) and propagates onward.
    """

    features: ClassVar[int] = CONTEXT


class RequestTrackingMiddleware(TelemetryMiddleware):
    """The HTTP server span, ``http_requests_total{method,path,status}``,
    ``http_request_duration_seconds{method,path}``, ``active_connections``, and the
    ``Server-Timing`` / ``X-Response-Time`` response headers (plus the request context)."""

    features: ClassVar[int] = TRACKING


class PerformanceTrackingMiddleware(TelemetryMiddleware):
    """Requests slower than ``ATOMS_OTEL_SLOW_REQUEST_MS``: one WARNING line ("slow request ..."),
    ``http_slow_requests_total{method,path}`` and a ``performance.slow_request`` event."""

    features: ClassVar[int] = PERFORMANCE


class ErrorTrackingMiddleware(TelemetryMiddleware):
    """An unhandled exception becomes a JSON 500 carrying the correlation id (never the exception
    text); it is recorded on the span, counted in ``errors_total{error_type,source="http"}``,
    logged once at ERROR with the structured exception, and published as ``error.unhandled``.

    If the app renders its own 500s (a handler for ``500``/``Exception``, or ``debug=True``), the
    exception is recorded and then re-raised so that handler answers.
    """

    features: ClassVar[int] = ERRORS
