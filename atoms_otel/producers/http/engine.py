"""The request pipeline behind the four public middlewares, as one pure-ASGI layer.

A request passes four stages, outermost first:

1. **context** — correlation id (validated or generated), the caller's trace context and baggage,
   the log context; the correlation id is echoed on the response. Done once per request, by the
   first atoms_otel layer it meets.
2. **tracking** — the HTTP server span, ``http_requests_total``, ``http_request_duration_seconds``,
   ``active_connections``, and the ``Server-Timing`` / ``X-Response-Time`` headers.
3. **performance** — slow requests: a WARNING line, ``http_slow_requests_total`` and an event.
4. **errors** — an unhandled exception becomes a JSON 500 that carries the correlation id; it is
   recorded on the span, counted in ``errors_total``, logged once and published as an event.

Each public class enables some stages; ``configure(app=)`` installs :class:`TelemetryMiddleware`,
which runs all four in one layer (one ``send`` wrapper instead of four). When several atoms_otel
layers wrap the same request, per-request state in the scope makes each stage run exactly once.

Why our own lean span instead of FastAPI 0.165's native telemetry: measured on the benchmark
machine (bench/bench_http.py), FastAPI's native server span alone — without its operation spans
and metrics — adds ~75 µs per request, the whole overhead budget. So ``configure(app=)`` turns the
native telemetry off for the app it instruments, and this layer opens one span that follows the
HTTP semantic conventions. When FastAPI's native span (or another instrumentor's server span) is
already open — middleware added by hand without ``configure(app=)`` — the layer enriches that span
instead of opening a second one.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from atoms_otel.base import guard as _guard

from atoms_otel.otel import proxy as _proxy
from atoms_otel.base.semconv import exception_type
from atoms_otel._version import __version__
from atoms_otel.core.telemetry import Telemetry, get_telemetry
from atoms_otel.base.context import correlation_id_var, request_path_var
from atoms_otel.otel.metrics import get_metrics_registry
from atoms_otel.producers.http.headers import CORRELATION_HEADER, REQUEST_ID_HEADER, new_request_id, read_headers
from atoms_otel.producers.http.outcomes import (
    app_handles_errors,
    check_slow,
    report_unhandled,
    send_error_response,
)
from atoms_otel.producers.http.routes import UNMATCHED, install_route_tracker
from atoms_otel.producers.http.state import STATE_KEY, Config, Message, RequestState, Scope, config_for

__all__ = ["CONTEXT", "ERRORS", "PERFORMANCE", "TRACKING", "TelemetryMiddleware"]

CONTEXT: Final = 0
TRACKING: Final = 1
PERFORMANCE: Final = 2
ERRORS: Final = 4
_ALL: Final = TRACKING | PERFORMANCE | ERRORS

_tracer = _proxy.TRACER_PROVIDER.get_tracer("atoms_otel", __version__)
_registry = get_metrics_registry()


class TelemetryMiddleware:
    """All four stages in one pure-ASGI layer; what ``configure(app=app)`` installs.

    >>> app.add_middleware(TelemetryMiddleware)
    """

    features: ClassVar[int] = _ALL

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # websocket and lifespan pass straight through
            await self.app(scope, receive, send)
            return
        state: RequestState | None = scope.get(STATE_KEY)
        if state is None:
            telemetry = get_telemetry()
            config = config_for(telemetry)
            state = RequestState(scope, config)
            scope[STATE_KEY] = state
            await self._handle(scope, receive, send, state, self.features, True, telemetry, config)
            return
        features = self.features & ~state.claimed
        if not features:
            await self.app(scope, receive, send)
            return
        telemetry = get_telemetry()
        await self._handle(scope, receive, send, state, features, False, telemetry, config_for(telemetry))

    async def _handle(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        state: RequestState,
        features: int,
        owner: bool,
        telemetry: Telemetry | None,
        config: Config,
    ) -> None:
        state.claimed |= features
        tracking = features & TRACKING
        performance = features & PERFORMANCE
        app = scope.get("app")

        otel_token = cid_token = path_token = span_token = None
        installed_tracker = False
        if owner:
            try:
                incoming = read_headers(scope.get("headers") or ())
                state.correlation_id = incoming.correlation_id or new_request_id()
                state.echo_request_id = incoming.via_request_id
                cid_token = correlation_id_var.set(state.correlation_id)
                path_token = request_path_var.set(scope["path"])
                parent = incoming.parent_context() if incoming.carrier is not None else None
                if parent is not None:
                    otel_token = otel_context.attach(parent)
                installed_tracker = "fastapi.telemetry" not in scope
                state.tracker = install_route_tracker(scope)
                installed_tracker = installed_tracker and state.tracker is not None
            except Exception as exc:  # serve the request without (some of) its context
                _guard.report_internal_error("http middleware setup", exc)
                state.correlation_id = state.correlation_id or new_request_id()

        owns_span = False
        if tracking:
            if not state.excluded:
                try:
                    span, owns_span = _server_span(scope, state)
                    state.span = span
                    if owns_span:
                        span_token = otel_context.attach(trace.set_span_in_context(span))
                except Exception as exc:
                    _guard.report_internal_error("http server span", exc)
            _registry.active_connections.inc()

        started = False
        finished = False
        trailers = False

        def finish() -> None:
            nonlocal finished
            finished = True
            try:
                if tracking:
                    _finish_tracking(scope, state, owns_span)
                if performance:
                    check_slow(scope, state, config, telemetry)
            except Exception as exc:
                _guard.report_internal_error("http middleware finish", exc)

        async def tracked_send(message: Message) -> None:
            nonlocal started, trailers
            kind = message["type"]
            if kind == "http.response.start":
                started = True
                state.status_code = message["status"]
                trailers = message.get("trailers", False)
                if owner or tracking:
                    try:
                        message = _with_headers(message, state, owner, tracking)
                    except Exception as exc:  # the response goes out without our headers
                        _guard.report_internal_error("http response headers", exc)
                await send(message)
                return
            await send(message)
            if not finished and (
                (kind == "http.response.body" and not message.get("more_body", False) and not trailers)
                or (kind == "http.response.trailers" and not message.get("more_trailers", False))
                or kind == "http.response.pathsend"
            ):
                finish()

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            if state.error_type is None:
                state.error_type = exception_type(exc)
            _record_on_span(state, exc)
            if not features & ERRORS:
                raise
            sent_500 = False
            if not started and not app_handles_errors(app):
                sent_500 = await send_error_response(tracked_send, state)
            report_unhandled(exc, scope, state, telemetry)
            # The 500 went out and the exception is recorded and logged: re-raising would only
            # make the server log a second, uncorrelated traceback. An incomplete response, or
            # an app with its own 500 handler / debug page, still gets the exception.
            if not (sent_500 or finished):
                raise
        finally:
            if not finished:
                finish()
            if tracking:
                _registry.active_connections.dec()
            if span_token is not None:
                otel_context.detach(span_token)
            if owner:
                if otel_token is not None:
                    otel_context.detach(otel_token)
                if path_token is not None:
                    request_path_var.reset(path_token)
                if cid_token is not None:
                    correlation_id_var.reset(cid_token)
                if installed_tracker:
                    scope.pop("fastapi.telemetry", None)


def _server_span(scope: Scope, state: RequestState) -> tuple[trace.Span, bool]:
    """The request's server span, and whether we opened it (else we enrich someone else's)."""
    native = getattr(state.tracker, "span", None)
    if native is not None:  # FastAPI's native telemetry is on for this app
        native.set_attribute("correlation.id", state.correlation_id)
        return native, False
    current = trace.get_current_span()
    if current.is_recording() and getattr(current, "kind", None) is SpanKind.SERVER:
        current.set_attribute("correlation.id", state.correlation_id)
        return current, False
    method = state.method
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
    }
    if method == "_OTHER":
        attributes["http.request.method_original"] = scope.get("method", "")
    span = _tracer.start_span(
        "HTTP" if method == "_OTHER" else method, kind=SpanKind.SERVER, attributes=attributes
    )
    return span, True


def _with_headers(message: Message, state: RequestState, owner: bool, tracking: int) -> Message:
    headers = list(message.get("headers") or ())
    if owner and not any(name.lower() == CORRELATION_HEADER for name, _ in headers):
        value = state.correlation_id.encode("latin-1")
        headers.append((CORRELATION_HEADER, value))
        if state.echo_request_id:
            headers.append((REQUEST_ID_HEADER, value))
    if tracking:
        elapsed = b"%.3f" % ((time.perf_counter() - state.start) * 1000.0)
        headers.append((b"server-timing", b"app;dur=" + elapsed))
        headers.append((b"x-response-time", elapsed + b"ms"))
    return {**message, "headers": headers}


def _finish_tracking(scope: Scope, state: RequestState, owns_span: bool) -> None:
    duration = time.perf_counter() - state.start
    status = state.status_code if state.status_code is not None else 500
    route = state.template(scope)
    method = state.method
    # An observed counter: a dictionary update now, read when metrics are collected.
    _registry.http_requests_total.inc(1, {"method": method, "path": route, "status": str(status)})
    _registry.http_request_duration_seconds._instrument._real.record(
        duration, {"method": method, "path": route}
    )
    span = state.span
    if span is None or not owns_span or not span.is_recording():
        return
    attributes: dict[str, Any] = {"http.response.status_code": status}
    if route != UNMATCHED:
        attributes["http.route"] = route
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
    if status >= 500 or state.status_code is None:
        attributes["error.type"] = state.error_type or (
            str(status) if state.status_code is not None else "incomplete_response"
        )
        span.set_status(Status(StatusCode.ERROR))
    span.set_attributes(attributes)
    span.end()


def _record_on_span(state: RequestState, exc: BaseException) -> None:
    span = state.span
    if span is None or state.recorded is exc:
        return
    state.recorded = exc
    try:
        if span.is_recording():
            span.record_exception(exc)
            span.set_attribute("error.type", state.error_type or exception_type(exc))
            span.set_status(Status(StatusCode.ERROR, state.error_type))
    except Exception as internal:  # never replace the app's exception with ours
        _guard.report_internal_error("http exception recording", internal)
