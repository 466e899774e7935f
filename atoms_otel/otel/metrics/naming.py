"""Metric names as OpenTelemetry and Prometheus spell them, label values, and the standard buckets.

A metric is named the OpenTelemetry way (``http.request.duration``, unit ``s``); Prometheus shows
it as the exporter derives it: characters outside ``[a-zA-Z0-9:]`` become ``_``, the unit is
appended as a word (``_seconds``, ``_bytes``) and counters end in ``_total`` —
``http_request_duration_seconds``, ``http_requests_total``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_OPERATION_NAME
from opentelemetry.semconv._incubating.attributes.mcp_attributes import MCP_PROTOCOL_VERSION
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_RESPONSE_STATUS_CODE
from opentelemetry.semconv.attributes.network_attributes import (
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
)

Labels = Mapping[str, str | int | float | bool]

# OpenTelemetry HTTP semantic-convention buckets, in seconds.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The MCP semantic conventions' advice for mcp.*.operation.duration, in seconds.
MCP_DURATION_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MCP_OPERATION_LABELS: Final = (
    GEN_AI_OPERATION_NAME,
    MCP_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
    RPC_RESPONSE_STATUS_CODE,
)
"""The MCP semantic-convention attributes of ``mcp.server.operation.duration`` besides
``mcp.method.name``, ``gen_ai.tool.name`` and ``error.type`` (each set only where it applies)."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")
_PROM_UNSAFE = re.compile(r"[^a-zA-Z0-9:]+")
_UNIT_SUFFIX: Final = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "", "%": "percent"}


def check_name(name: object) -> None:
    """Raise ValueError for a name the OpenTelemetry API would reject, stating the rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid metric name {name!r}: use letters, digits, '_', '.', '-' or '/', "
            "starting with a letter, at most 255 characters"
        )


def prometheus_name(name: str, unit: str = "", kind: str = "gauge") -> str:
    """The name Prometheus shows for an OpenTelemetry instrument (as the exporter derives it)."""
    base = _PROM_UNSAFE.sub("_", name)
    suffix = _UNIT_SUFFIX.get(unit, re.sub(r"\{.*\}", "", unit).strip("_"))
    if kind == "counter" and base.endswith("_total"):
        base = base[: -len("_total")]
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return base + "_total" if kind == "counter" else base


def label_value(value: object) -> str:
    """A label value as recorded: ``str(value)``, as prometheus_client does. A string — including a
    str subclass such as a ``(str, Enum)`` member — is recorded as the text it is equal to, so that
    equal values always share one series."""
    return str.__str__(value) if isinstance(value, str) else str(value)
