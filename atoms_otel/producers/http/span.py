"""The request's server span and the per-request metrics, headers and exception record."""

from __future__ import annotations

import time
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from atoms_otel.base import guard as _guard
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.producers.http.headers import CORRELATION_HEADER, REQUEST_ID_HEADER
from atoms_otel.producers.http.routes import UNMATCHED
from atoms_otel.producers.http.state import Message, RequestState, Scope

__all__ = ["finish_tracking", "record_on_span", "request_attributes", "server_span", "with_headers"]

_MAX_QUERY: Final = 2048
_MAX_USER_AGENT: Final = 512
_MAX_HOST: Final = 255


def server_span(telemetry: Telemetry, scope: Scope, state: RequestState) -> tuple[trace.Span, bool]:
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
    span = telemetry.tracer.start_span(
        "HTTP" if method == "_OTHER" else method, kind=SpanKind.SERVER, attributes=attributes
    )
    if span.is_recording():  # a span the sampler dropped gets no more work
        span.set_attributes(request_attributes(scope, state))
    return span, True


def request_attributes(scope: Scope, state: RequestState) -> dict[str, Any]:
    """The HTTP server span's recommended attributes (semantic conventions) from the ASGI scope and
    the headers the owner layer read; client-controlled values are bounded (``url.query`` is also
    scrubbed on export)."""
    attributes: dict[str, Any] = {}
    if version := scope.get("http_version"):
        attributes["network.protocol.version"] = version
    if query := scope.get("query_string"):
        attributes["url.query"] = query[:_MAX_QUERY].decode("latin-1")
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    if state.user_agent is not None:
        attributes["user_agent.original"] = state.user_agent[:_MAX_USER_AGENT].decode("latin-1")
    host = state.host
    if host is not None:
        text = host[:_MAX_HOST].decode("latin-1")
        address, separator, port = text.rpartition(":")
        if separator and port.isdigit() and (not address.startswith("[") or address.endswith("]")):
            attributes["server.address"], attributes["server.port"] = address.strip("[]"), int(port)
        else:
            attributes["server.address"] = text.strip("[]")
    elif server := scope.get("server"):
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    return attributes


def with_headers(message: Message, state: RequestState, owner: bool, tracking: int) -> Message:
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


def finish_tracking(telemetry: Telemetry, scope: Scope, state: RequestState, owns_span: bool) -> None:
    duration = time.perf_counter() - state.start
    status = state.status_code if state.status_code is not None else 500
    route = state.template(scope)
    method = state.method
    metrics = telemetry.metrics
    # An observed counter: a dictionary update now, read when metrics are collected.
    metrics.http_requests_total.inc(1, {"method": method, "path": route, "status": str(status)})
    metrics.http_request_duration_seconds.labels(method, route).observe(duration)
    span = state.span
    if span is None or not owns_span or not span.is_recording():
        return
    attributes: dict[str, Any] = {"http.response.status_code": status}
    if state.streaming and state.first_byte is not None:
        attributes["atoms_otel.http.time_to_first_byte_ms"] = round((state.first_byte - state.start) * 1e3, 3)
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


def record_on_span(state: RequestState, exc: BaseException) -> None:
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
