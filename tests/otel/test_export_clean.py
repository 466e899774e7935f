"""What the guarded span exporter sends: the same span when nothing needs cleaning, else a cleaned copy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from atoms_otel import REDACTED, Scrubber
from atoms_otel.otel.exporters import scrubbed_span


def _span(attributes: Mapping[str, Any]) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("GET /items/{item_id}", attributes=attributes):
        pass
    provider.shutdown()
    return exporter.get_finished_spans()[0]


SERVER_ATTRIBUTES = {
    "http.request.method": "GET",
    "url.scheme": "http",
    "server.port": 8000,
    "http.response.status_code": 200,
    "correlation.id": "5f0c6d0e4b1a4c0e9a3f1d2b3c4d5e6f",
    "url.query": "page=2",
}


def test_a_span_with_nothing_to_clean_is_sent_as_it_is() -> None:
    """Plain values, no secret key, encodable text: the very same span object goes out."""
    span = _span(SERVER_ATTRIBUTES)
    assert scrubbed_span(span, Scrubber()) is span
    assert scrubbed_span(span, None) is span


def test_a_secret_key_among_plain_values_is_redacted() -> None:
    """Only strings and numbers, one of them under a secret key: that value is redacted."""
    span = _span({**SERVER_ATTRIBUTES, "http.request.header.authorization": "Bearer abc.def"})
    cleaned = scrubbed_span(span, Scrubber())
    assert dict(cleaned.attributes or {}) == {
        **SERVER_ATTRIBUTES,
        "http.request.header.authorization": REDACTED,
    }


def test_a_credential_in_url_query_among_plain_values_is_redacted() -> None:
    """Only strings and numbers, no secret key: the token in url.query is found by its format."""
    span = _span({**SERVER_ATTRIBUTES, "url.query": "token=tok-abc123&page=2"})
    cleaned = scrubbed_span(span, Scrubber())
    assert dict(cleaned.attributes or {}) == {**SERVER_ATTRIBUTES, "url.query": "token=[REDACTED]&page=2"}


def test_secret_keys_text_credentials_and_lone_surrogates_are_cleaned_together() -> None:
    """A secret key, a credential in url.query and a lone surrogate in a string and in a tuple."""
    span = _span(
        {
            **SERVER_ATTRIBUTES,
            "url.query": "token=tok-abc123&page=2",
            "db.password": "hunter2",
            "user.text": "bad \ud800 text",
            "tags": ("ok", "x\udfffy"),
        }
    )
    cleaned = scrubbed_span(span, Scrubber())
    assert cleaned is not span
    assert dict(cleaned.attributes or {}) == {
        **SERVER_ATTRIBUTES,
        "url.query": "token=[REDACTED]&page=2",
        "db.password": REDACTED,
        "user.text": "bad \ufffd text",
        "tags": ("ok", "x\ufffdy"),
    }
    assert dict(span.attributes or {})["db.password"] == "hunter2"  # the original is not changed


def test_a_lone_surrogate_inside_a_tuple_is_replaced() -> None:
    """A sequence value is walked: its unencodable string is replaced, its other items kept."""
    span = _span({**SERVER_ATTRIBUTES, "tags": ("ok", "x\udfffy")})
    cleaned = scrubbed_span(span, Scrubber())
    assert dict(cleaned.attributes or {}) == {**SERVER_ATTRIBUTES, "tags": ("ok", "x\ufffdy")}


def test_without_a_scrubber_only_unencodable_text_changes() -> None:
    """Scrubbing off: secrets stay, a lone surrogate is still replaced so the batch can be encoded."""
    span = _span({**SERVER_ATTRIBUTES, "db.password": "hunter2", "user.text": "bad \ud800 text"})
    cleaned = scrubbed_span(span, None)
    assert dict(cleaned.attributes or {}) == {
        **SERVER_ATTRIBUTES,
        "db.password": "hunter2",
        "user.text": "bad \ufffd text",
    }
