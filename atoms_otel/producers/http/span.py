"""The request's server span and the per-request metrics, headers and exception record."""

from __future__ import annotations

import time
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.semconv.attributes.client_attributes import CLIENT_ADDRESS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_VERSION
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_QUERY, URL_SCHEME
from opentelemetry.semconv.attributes.user_agent_attributes import USER_AGENT_ORIGINAL
from opentelemetry.trace import SpanKind, Status, StatusCode

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import CORRELATION_ID_ATTRIBUTE
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.producers.http.headers import CORRELATION_HEADER, REQUEST_ID_HEADER
from atoms_otel.producers.http.routes import UNMATCHED
from atoms_otel.producers.http.state import Config, Message, RequestState, Scope

__all__ = ["finish_tracking", "record_on_span", "request_attributes", "server_span", "with_headers"]

_MAX_QUERY: Final = 2048
_MAX_USER_AGENT: Final = 512
_MAX_HOST: Final = 255
_ERROR: Final = Status(StatusCode.ERROR)


def server_span(
    telemetry: Telemetry, scope: Scope, state: RequestState, config: Config
) -> tuple[trace.Span, bool]:
    """The request's server span, and whether we opened it (else we enrich someone else's)."""
    native = getattr(state.tracker, "span", None)
    if native is not None:  # FastAPI's native telemetry is on for this app
        native.set_attribute(CORRELATION_ID_ATTRIBUTE, state.correlation_id)
        return native, False
    current = trace.get_current_span()
    if current.is_recording() and getattr(current, "kind", None) is SpanKind.SERVER:
        current.set_attribute(CORRELATION_ID_ATTRIBUTE, state.correlation_id)
        return current, False
    method = state.method
    attributes: dict[str, Any] = {HTTP_REQUEST_METHOD: method, URL_SCHEME: scope.get("scheme", "http")}
    original = scope.get("method", "")
    if method != original:  # _OTHER, or a known method sent in lower case
        attributes[HTTP_REQUEST_METHOD_ORIGINAL] = original
    name = "HTTP" if method == "_OTHER" else method
    # Positional arguments: through the swappable proxy tracer they cost half as much as keywords.
    if config.eager:  # the sampler keeps it: every attribute in the one pass at span start
        request_attributes(scope, state, config, attributes)
        return telemetry.tracer.start_span(name, None, SpanKind.SERVER, attributes), True
    span = telemetry.tracer.start_span(name, None, SpanKind.SERVER, attributes)
    if span.is_recording():  # a span the sampler dropped gets no more work
        span.set_attributes(request_attributes(scope, state, config, {}))
    return span, True


def request_attributes(
    scope: Scope, state: RequestState, config: Config, attributes: dict[str, Any]
) -> dict[str, Any]:
    """Add the HTTP server span's recommended attributes (semantic conventions) from the ASGI scope
    and the headers the owner layer read; client-controlled values are bounded (``url.query`` is
    also scrubbed on export). ``url.path`` comes with the request context (ContextSpanProcessor)."""
    if version := scope.get("http_version"):
        attributes[NETWORK_PROTOCOL_VERSION] = version
    if query := scope.get("query_string"):
        attributes[URL_QUERY] = query[:_MAX_QUERY].decode("latin-1")
    client = scope.get("client")
    if client:
        attributes[CLIENT_ADDRESS] = client[0]
    if state.user_agent is not None:
        attributes[USER_AGENT_ORIGINAL] = state.user_agent[:_MAX_USER_AGENT].decode("latin-1")
    host = state.host
    if host is not None:
        text = host[:_MAX_HOST].decode("latin-1")
        address, separator, port = text.rpartition(":")
        if separator and port.isdigit() and (not address.startswith("[") or address.endswith("]")):
            attributes[SERVER_ADDRESS], attributes[SERVER_PORT] = address.strip("[]"), int(port)
        else:
            attributes[SERVER_ADDRESS] = text.strip("[]")
    elif server := scope.get("server"):
        attributes[SERVER_ADDRESS], attributes[SERVER_PORT] = server[0], server[1]
    if config.capture is not None:
        attributes.update(config.capture.request_attributes(scope.get("headers") or ()))
    return attributes


def with_headers(
    message: Message, state: RequestState, owner: bool, tracking: int, answered: bool
) -> Message:
    """The response start with our headers; ``answered``: the app set ``X-Correlation-ID``."""
    headers = list(message.get("headers") or ())
    if owner and not answered:
        value = state.correlation_id.encode("latin-1")
        headers.append((CORRELATION_HEADER, value))
        if state.echo_request_id:
            headers.append((REQUEST_ID_HEADER, value))
    if tracking:
        elapsed = b"%.3f" % ((time.perf_counter() - state.start) * 1000.0)
        headers.append((b"server-timing", b"app;dur=" + elapsed))
        headers.append((b"x-response-time", elapsed + b"ms"))
    return {**message, "headers": headers}


def finish_tracking(
    telemetry: Telemetry, scope: Scope, state: RequestState, owns_span: bool, config: Config
) -> None:
    duration = time.perf_counter() - state.start
    status = state.status_code if state.status_code is not None else 500
    route = state.template(scope)
    method = state.method
    error_type = None
    if status >= 500 or state.status_code is None:
        error_type = state.error_type or (
            str(status) if state.status_code is not None else "incomplete_response"
        )
    table = config.series
    series = table.get(
        (method, route, status, error_type, scope.get("scheme", "http"), scope.get("http_version", ""))
    )
    series.requests.inc()  # an observed counter: a dictionary update now, read at collection
    series.duration.observe(duration)
    if series.semconv is not None:
        series.semconv.record(duration)
    span = state.span
    if span is None or not owns_span or not span.is_recording():
        return
    attributes: dict[str, Any] = {HTTP_RESPONSE_STATUS_CODE: status}
    if state.streaming and state.first_byte is not None:
        attributes["atoms_otel.http.time_to_first_byte_ms"] = round((state.first_byte - state.start) * 1e3, 3)
    if route != UNMATCHED:
        attributes[HTTP_ROUTE] = route
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
    if error_type is not None:
        attributes[ERROR_TYPE] = error_type
        span.set_status(_ERROR)
    if config.capture is not None:
        attributes.update(config.capture.response_attributes(state.response_headers))
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
            span.set_attribute(ERROR_TYPE, state.error_type or exception_type(exc))
            span.set_status(Status(StatusCode.ERROR, state.error_type))
    except Exception as internal:  # never replace the app's exception with ours
        _guard.report_internal_error("http exception recording", internal)
