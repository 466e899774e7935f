"""What the middleware does with a finished request: slow-request reports and unhandled errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from atoms_otel.base import guard as _guard
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import get_metrics_registry
from atoms_otel.producers.http.state import Config, RequestState, Scope
from atoms_otel.plugins import Event

__all__ = ["app_handles_errors", "check_slow", "report_unhandled", "send_error_response"]

_ERROR_BODY_PREFIX: Final = b'{"detail":"Internal Server Error","correlation_id":"'
_logger = get_logger("atoms_otel.http")
_registry = get_metrics_registry()
_slow_requests = _registry.counter(
    "http.slow_requests",
    "HTTP requests slower than ATOMS_OTEL_SLOW_REQUEST_MS, by method and route template",
    labels=("method", "path"),
)


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


def report_unhandled(
    exc: BaseException, scope: Scope, state: RequestState, telemetry: Telemetry | None
) -> None:
    try:
        error_type = state.error_type or exception_type(exc)
        route = state.template(scope)
        _registry.errors_total._instrument._real.add(1, {"error_type": error_type, "source": "http"})
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
        if telemetry is not None:
            telemetry.events.publish(
                Event(
                    kind="error.unhandled",
                    message=f"{error_type}: {exc}"[:500],
                    severity="error",
                    data={
                        "error_type": error_type,
                        "method": state.method,
                        "route": route,
                        "status_code": 500,
                    },
                    correlation_id=state.correlation_id,
                    trace_id=state.trace_id(),
                )
            )
    except Exception as internal:
        _guard.report_internal_error("http error reporting", internal)


def check_slow(scope: Scope, state: RequestState, config: Config, telemetry: Telemetry | None) -> None:
    duration_ms = (time.perf_counter() - state.start) * 1000.0
    if duration_ms <= config.slow_ms:
        return
    route = state.template(scope)
    _slow_requests.inc(labels={"method": state.method, "path": route})
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
    if telemetry is not None:
        telemetry.events.publish(
            Event(
                kind="performance.slow_request",
                message=f"slow request: {state.method} {route} took {rounded} ms",
                severity="warning",
                data={
                    "route": route,
                    "method": state.method,
                    "duration_ms": rounded,
                    "threshold_ms": config.slow_ms,
                },
                correlation_id=state.correlation_id,
                trace_id=state.trace_id(),
            )
        )
