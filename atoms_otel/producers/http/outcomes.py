"""What the middleware does with a finished request: slow-request reports and unhandled errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from atoms_otel.base import guard as _guard
from atoms_otel.base.events import SlowRequest, UnhandledError
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.producers.http.state import Config, RequestState, Scope

__all__ = ["app_handles_errors", "check_slow", "report_unhandled", "send_error_response"]

_ERROR_BODY_PREFIX: Final = b'{"detail":"Internal Server Error","correlation_id":"'
_logger = get_logger("atoms_otel.http")


def app_handles_errors(app: Any) -> bool:
    """The app renders its own 500s (a handler for 500/Exception, or the debug traceback page)."""
    if getattr(app, "debug", False):
        return True
    handlers = getattr(app, "exception_handlers", None)
    return isinstance(handlers, Mapping) and (500 in handlers or Exception in handlers)


async def send_error_response(send: Any, state: RequestState) -> bool:
    """Send the JSON 500; never the exception text. False if the client is already gone."""
    body = _ERROR_BODY_PREFIX + state.correlation_id.encode("latin-1") + b'"}'
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the client is gone or the server refused: nothing was delivered
        return False
    return True


def report_unhandled(telemetry: Telemetry, exc: BaseException, scope: Scope, state: RequestState) -> None:
    """Count, log once at ERROR and publish :class:`UnhandledError`."""
    try:
        error_type = state.error_type or exception_type(exc)
        route = state.template(scope)
        telemetry.metrics.errors_total.labels(error_type, "http").inc()
        _logger.error(
            "unhandled exception in %s %s",
            scope.get("method", ""),
            route,
            exc_info=exc,
            extra_fields={
                "error_type": error_type,
                "method": state.method,
                "route": route,
                "status_code": 500,
            },
        )
        event = UnhandledError(
            message=f"{error_type}: {exc}"[:500],
            error_type=error_type,
            method=state.method,
            route=route,
            correlation_id=state.correlation_id,
            trace_id=state.trace_id(),
        )
        telemetry.events.publish(event)
    except Exception as internal:
        _guard.report_internal_error("http error reporting", internal)


def check_slow(telemetry: Telemetry, scope: Scope, state: RequestState, config: Config) -> None:
    """Above ``slow_request_ms``: one WARNING line, ``http_slow_requests_total`` and :class:`SlowRequest`.

    A streaming response (an event stream, or a body sent in several chunks) is judged by its time
    to the first byte, not by how long the stream stayed open."""
    duration_ms = state.slow_rule_seconds() * 1000.0
    if duration_ms <= config.slow_ms:
        return
    route = state.template(scope)
    slow_requests = telemetry.metrics.counter(
        "http.slow_requests",
        "HTTP requests slower than ATOMS_OTEL_SLOW_REQUEST_MS, by method and route template",
        labels=("method", "path"),
    )
    slow_requests.labels(state.method, route).inc()
    rounded = round(duration_ms, 3)
    if _logger.is_enabled_for(logging.WARNING):
        _logger.warning(
            "slow request: %s %s took %.1f ms (threshold %g ms)",
            state.method,
            route,
            duration_ms,
            config.slow_ms,
            extra_fields={
                "route": route,
                "method": state.method,
                "duration_ms": rounded,
                "threshold_ms": config.slow_ms,
                "status_code": state.status_code,
            },
        )
    event = SlowRequest(
        message=f"slow request: {state.method} {route} took {rounded} ms",
        method=state.method,
        route=route,
        duration_ms=rounded,
        threshold_ms=config.slow_ms,
        correlation_id=state.correlation_id,
        trace_id=state.trace_id(),
    )
    telemetry.events.publish(event)
