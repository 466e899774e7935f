"""Write a payload in a webhook's format: generic JSON, Slack, or the Standard Webhooks envelope.

Values under secret-looking keys in ``data`` are redacted by the active scrubber, as in logs, and
credentials recognised by their format (``password=…``, ``Bearer …``, API keys, JWTs) are redacted
from the message and every text in ``data``. The body is always valid UTF-8 (a lone surrogate
becomes U+FFFD).
"""

from __future__ import annotations

import json
from typing import Any, Final

from atoms_otel.base import scrubbing
from atoms_otel.plugins.webhooks._model import WebhookFormat, WebhookPayload, rfc3339

__all__ = ["MAX_BODY_BYTES", "MAX_MESSAGE_CHARS", "render"]

MAX_MESSAGE_CHARS: Final = 4000
MAX_BODY_BYTES: Final = 256 * 1024

_SLACK_EMOJI: Final = {
    "info": ":large_blue_circle:",
    "warning": ":warning:",
    "error": ":red_circle:",
    "critical": ":rotating_light:",
}
# Slack Block Kit limits: header text 150 characters, section text 3000, 10 fields of 2000.
_HEADER_MAX: Final = 150
_TEXT_MAX: Final = 3000
_FIELD_MAX: Final = 2000
_FIELDS_MAX: Final = 10


_MAX_DEPTH: Final = 8


def _json(value: Any) -> bytes:
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return scrubbing.encodable(text).encode()


def _texts_scrubbed(value: Any, scrubber: scrubbing.Scrubber, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrubber.scrub_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _texts_scrubbed(v, scrubber, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_texts_scrubbed(v, scrubber, depth + 1) for v in value]
    return value


def _scrubbed(payload: WebhookPayload) -> dict[str, Any]:
    body = payload.to_dict()
    scrubber = scrubbing.active_scrubber()
    if scrubber is not None:
        body["message"] = scrubber.scrub_text(body["message"])
        if body["data"]:
            body["data"] = _texts_scrubbed(dict(scrubber.scrub_mapping(body["data"])), scrubber)
    return body


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(body: dict[str, Any]) -> dict[str, Any]:
    severity = body["severity"]
    title = body["event_type"].replace("_", " ").capitalize()
    service = body["service"] or "service"
    fallback = f"[{severity.upper()}] {service} ({body['environment']}): {body['message']}"
    fields = [f"*severity*\n{severity}"] + [
        f"*{_mrkdwn(str(key))}*\n{_mrkdwn(str(value))}" for key, value in body["data"].items()
    ]
    context = [f"{body['environment']}", f"id {body['id']}", body["timestamp"]]
    if body["correlation_id"]:
        context.append(f"correlation {body['correlation_id']}")
    if body["trace_id"]:
        context.append(f"trace {body['trace_id']}")
    return {
        "text": _cut(fallback, _TEXT_MAX),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(f"{title}: {service}", _HEADER_MAX)},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _cut(f"{_SLACK_EMOJI.get(severity, '')} {_mrkdwn(body['message'])}", _TEXT_MAX),
                },
            },
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _cut(f, _FIELD_MAX)} for f in fields[:_FIELDS_MAX]],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(" · ".join(context))}]},
        ],
    }


def render(payload: WebhookPayload, fmt: WebhookFormat) -> bytes:
    """The request body for ``payload`` in ``fmt`` (UTF-8 JSON), at most :data:`MAX_BODY_BYTES`:
    a longer message is cut, and ``data`` too large to fit is replaced by a note saying so."""
    body = _scrubbed(payload)
    body["message"] = _cut(body["message"], MAX_MESSAGE_CHARS)
    encoded = _encode(payload, fmt, body)
    if len(encoded) > MAX_BODY_BYTES:
        body["data"] = {
            "truncated": f"data omitted: the alert was {len(encoded)} bytes, over {MAX_BODY_BYTES}"
        }
        encoded = _encode(payload, fmt, body)
    return encoded


def _encode(payload: WebhookPayload, fmt: WebhookFormat, body: dict[str, Any]) -> bytes:
    if fmt is WebhookFormat.SLACK:
        return _json(_slack(body))
    if fmt is WebhookFormat.STANDARD_WEBHOOKS:
        return _json(
            {"type": payload.event_type.dotted, "timestamp": rfc3339(payload.timestamp), "data": body}
        )
    return _json(body)
