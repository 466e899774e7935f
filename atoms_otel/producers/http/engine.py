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

from typing import Any, ClassVar, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import ContextTokens, correlation_id_var, request_path_var, reset_context
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.producers.http.headers import new_request_id, read_headers
from atoms_otel.producers.http.heap import freeze_once
from atoms_otel.producers.http.identity import enter_identity, stamp_identity
from atoms_otel.producers.http.outcomes import (
    app_handles_errors,
    check_slow,
    report_unhandled,
    send_error_response,
)
from atoms_otel.producers.http.routes import TRACKER_KEY, install_route_tracker
from atoms_otel.producers.http.span import finish_tracking, record_on_span, server_span, with_headers
from atoms_otel.producers.http.state import STATE_KEY, Config, Message, RequestState, Scope

__all__ = ["CONTEXT", "ERRORS", "PERFORMANCE", "TRACKING", "TelemetryMiddleware"]

CONTEXT: Final = 0
TRACKING: Final = 1
PERFORMANCE: Final = 2
ERRORS: Final = 4
_ALL: Final = TRACKING | PERFORMANCE | ERRORS


class TelemetryMiddleware:
    """All four stages in one pure-ASGI layer; what ``configure(app=app)`` installs.

    >>> app.add_middleware(TelemetryMiddleware, telemetry=telemetry)
    """

    features: ClassVar[int] = _ALL

    def __init__(self, app: Any, *, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self._config: Config | None = None

    def config(self) -> Config:
        """The settings read per request, prepared once per configure() of the handle."""
        settings = self.telemetry.settings
        config = self._config
        if config is None or config.settings is not settings:
            config = self._config = Config(self.telemetry)
        return config

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # websocket and lifespan pass straight through
            await self.app(scope, receive, send)
            return
        state: RequestState | None = scope.get(STATE_KEY)
        if state is None:
            config = self.config()
            state = RequestState(scope, config)
            scope[STATE_KEY] = state
            await _Pass(self, scope, send, state, self.features, True, config).run(receive)
            return
        features = self.features & ~state.claimed
        if not features:
            await self.app(scope, receive, send)
            return
        await _Pass(self, scope, send, state, features, False, self.config()).run(receive)


class _Pass:
    """One atoms_otel layer's handling of one request: the stages it claimed, and their undo."""

    __slots__ = (
        "config",
        "features",
        "finished",
        "identity",
        "layer",
        "otel_token",
        "owner",
        "owns_span",
        "scope",
        "span_token",
        "started",
        "state",
        "tokens",
        "tracked",
        "tracking",
        "trailers",
        "upstream",
    )

    def __init__(
        self,
        layer: TelemetryMiddleware,
        scope: Scope,
        send: Any,
        state: RequestState,
        features: int,
        owner: bool,
        config: Config,
    ) -> None:
        self.layer = layer
        self.scope = scope
        self.upstream = send
        self.state = state
        self.features = features
        self.owner = owner
        self.config = config
        self.tracking = features & TRACKING
        self.started = self.finished = self.trailers = self.owns_span = self.tracked = False
        self.otel_token: object | None = None
        self.span_token: object | None = None
        self.tokens: tuple[Any, Any] | None = None
        self.identity: ContextTokens | None = None

    async def run(self, receive: Any) -> None:
        self.state.claimed |= self.features
        if self.owner:
            self._enter_context()
        if self.tracking:
            self._open_span()
        try:
            await self.layer.app(self.scope, receive, self.send)
        except Exception as exc:
            if not await self._failed(exc):
                raise
        finally:
            self._exit()

    def _enter_context(self) -> None:
        state, scope = self.state, self.scope
        try:
            incoming = read_headers(scope.get("headers") or ())
            state.correlation_id = incoming.correlation_id or new_request_id()
            state.echo_request_id = incoming.via_request_id
            state.host, state.user_agent = incoming.host, incoming.user_agent
            self.tokens = (correlation_id_var.set(state.correlation_id), request_path_var.set(scope["path"]))
            # Continue the caller's trace, unless a server span is already current (FastAPI's
            # native telemetry, or another instrumentor, outside us did that already): attaching
            # the caller's context again would make the handler a sibling of that span.
            if incoming.carrier is not None and not trace.get_current_span().get_span_context().is_valid:
                parent: Context | None = incoming.parent_context()
                if parent is not None:
                    self.otel_token = otel_context.attach(parent)
            hook = self.layer.telemetry.request_context
            if hook is not None:
                self.identity = enter_identity(hook, scope)
            fresh = TRACKER_KEY not in scope
            state.tracker = install_route_tracker(scope)
            self.tracked = fresh and state.tracker is not None
        except Exception as exc:  # serve the request without (some of) its context
            _guard.report_internal_error("http middleware setup", exc)
            state.correlation_id = state.correlation_id or new_request_id()

    def _open_span(self) -> None:
        state = self.state
        if not state.excluded:
            try:
                span, self.owns_span = server_span(self.layer.telemetry, self.scope, state, self.config)
                state.span = span
                if self.owns_span:
                    self.span_token = otel_context.attach(trace.set_span_in_context(span))
            except Exception as exc:
                _guard.report_internal_error("http server span", exc)
        self.layer.telemetry.metrics.active_connections.inc()
        semconv = self.config.series.semconv
        if semconv is not None:
            semconv.active(state.method, self.scope.get("scheme", "http"), 1)

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            hook = self.layer.telemetry.request_context
            if self.owner and hook is not None and self.identity is None:
                stamp_identity(hook, self.scope, self.state.span)
            state = self.state
            state.status_code = message["status"]
            self.trailers = message.get("trailers", False)
            answered = state.response_started(message.get("headers"))
            if self.config.capture is not None:
                state.response_headers = message.get("headers")
            if self.owner or self.tracking:
                try:
                    message = with_headers(message, state, self.owner, self.tracking, answered)
                except Exception as exc:  # the response goes out without our headers
                    _guard.report_internal_error("http response headers", exc)
            await self.upstream(message)
            return
        if kind == "http.response.body" and self.state.first_byte is None:
            self.state.body_sent(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.body" and message.get("more_body", False):
            self.state.streaming = True
        await self.upstream(message)
        if not self.finished and (
            (kind == "http.response.body" and not message.get("more_body", False) and not self.trailers)
            or (kind == "http.response.trailers" and not message.get("more_trailers", False))
            or kind == "http.response.pathsend"
        ):
            self.finish()

    def finish(self) -> None:
        self.finished = True
        telemetry = self.layer.telemetry
        try:
            if self.tracking:
                finish_tracking(telemetry, self.scope, self.state, self.owns_span, self.config)
            if self.features & PERFORMANCE:
                check_slow(telemetry, self.scope, self.state, self.config)
        except Exception as exc:
            _guard.report_internal_error("http middleware finish", exc)

    async def _failed(self, exc: Exception) -> bool:
        """Record an exception from the app; True when it is answered and must not propagate."""
        state = self.state
        if state.error_type is None:
            state.error_type = exception_type(exc)
        record_on_span(state, exc)
        if not self.features & ERRORS:
            return False
        sent_500 = False
        if not self.started and not app_handles_errors(self.scope.get("app")):
            sent_500 = await send_error_response(self.send, state)
        report_unhandled(self.layer.telemetry, exc, self.scope, state)
        # The 500 went out and the exception is recorded and logged: re-raising would only make
        # the server log a second, uncorrelated traceback. An incomplete response, or an app with
        # its own 500 handler / debug page, still gets the exception.
        return sent_500 or self.finished

    def _exit(self) -> None:
        if not self.finished:
            self.finish()
        if self.tracking:
            self.layer.telemetry.metrics.active_connections.dec()
            semconv = self.config.series.semconv
            if semconv is not None:
                semconv.active(self.state.method, self.scope.get("scheme", "http"), -1)
        if self.span_token is not None:
            otel_context.detach(self.span_token)  # type: ignore[arg-type]
        if self.owner:
            if self.otel_token is not None:
                otel_context.detach(self.otel_token)  # type: ignore[arg-type]
            if self.identity is not None:
                reset_context(self.identity)
            if self.tokens is not None:
                correlation_id_var.reset(self.tokens[0])
                request_path_var.reset(self.tokens[1])
            if self.tracked:
                self.scope.pop(TRACKER_KEY, None)
            if self.config.gc_freeze:
                self.config.gc_freeze = False  # asked once per configuration, done once per process
                freeze_once()
