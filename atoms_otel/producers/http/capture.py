"""Request and response headers captured as span attributes, as the OTel instrumentations do.

``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`` / ``..._SERVER_RESPONSE`` name the
headers (comma-separated regular expressions, matched case-insensitively against the whole name)
recorded as ``http.request.header.<name>`` / ``http.response.header.<name>``: lists of strings,
one per occurrence. Values of headers matching ``..._SANITIZE_FIELDS`` are ``[REDACTED]``.
Matching, sanitising and naming are ``opentelemetry-util-http``'s, the code the contrib
instrumentations run, so a configuration behaves the same under both. Nothing is done per request
when neither list is set, nor for a span the sampler dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.util.http import (
    get_custom_header_attributes,
    normalise_request_header_name,
    normalise_response_header_name,
)

from atoms_otel.base.settings import Settings

__all__ = ["HeaderCapture", "header_capture"]

RawHeaders = Iterable[tuple[bytes, bytes]]


def _decoded(raw: RawHeaders) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


class HeaderCapture:
    """The header patterns of one configuration."""

    __slots__ = ("request", "response", "sanitize")

    def __init__(self, request: list[str], response: list[str], sanitize: list[str]) -> None:
        self.request = request
        self.response = response
        self.sanitize = sanitize

    def request_attributes(self, raw: RawHeaders) -> dict[str, Any]:
        if not self.request:
            return {}
        found = get_custom_header_attributes(
            _decoded(raw), self.request, self.sanitize, normalise_request_header_name
        )
        return {name: tuple(values) for name, values in found.items()}

    def response_attributes(self, raw: RawHeaders | None) -> dict[str, Any]:
        if not self.response or not raw:
            return {}
        found = get_custom_header_attributes(
            _decoded(raw), self.response, self.sanitize, normalise_response_header_name
        )
        return {name: tuple(values) for name, values in found.items()}


def header_capture(settings: Settings) -> HeaderCapture | None:
    """The capture of these settings, or None when no header is to be captured."""
    request, response = settings.capture_request_headers, settings.capture_response_headers
    if not request and not response:
        return None
    return HeaderCapture(list(request), list(response), list(settings.capture_sanitize_fields))
