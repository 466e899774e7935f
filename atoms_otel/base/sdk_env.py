"""The OpenTelemetry SDK's own variables: checked here, read by the SDK.

The batch processors (``OTEL_BSP_*``, ``OTEL_BLRP_*``), the span and log limits
(``OTEL_ATTRIBUTE_*``, ``OTEL_SPAN_*``, ``OTEL_EVENT_*``, ``OTEL_LINK_*``), the metric export
timeout and ``OTEL_PROPAGATORS`` are read by the SDK classes atoms_otel builds, exactly as the plain
SDK would. The SDK is lenient where atoms_otel is not: a non-numeric ``OTEL_BSP_MAX_QUEUE_SIZE`` only
logs a warning and falls back to the default, and a batch larger than the queue fails deep inside
``configure()`` with a message that does not say which variable. :func:`check_sdk_environment`
validates them all up front, with the settings table's messages, so configure() names the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Final

from atoms_otel.base import parsers as p
from atoms_otel.base.parsers import Invalid

__all__ = ["SDK_VARIABLES", "SdkVariable", "check_sdk_environment"]


@dataclass(frozen=True)
class SdkVariable:
    name: str
    parse: Callable[[Any], Any]
    doc: str


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Empty means unset, as in the SDK."""
    return lambda value: None if not p.text(value) else parse(value)


def _propagators(value: Any) -> tuple[str, ...]:
    names = tuple(n.strip() for n in p.text(value).split(",") if n.strip())
    installed = {ep.name for ep in entry_points(group="opentelemetry_propagator")}
    unknown = [n for n in names if n != "none" and n not in installed]
    if unknown:
        raise Invalid(
            f"unknown propagator {', '.join(unknown)}; installed: {', '.join(sorted(installed)) or 'none'}"
        )
    return names


def _batch(prefix: str, what: str) -> tuple[SdkVariable, ...]:
    positive, non_negative = _optional(p.integer(minimum=1)), _optional(p.integer(minimum=0))
    return (
        SdkVariable(f"{prefix}_SCHEDULE_DELAY", positive, f"{what}: ms between exports"),
        SdkVariable(f"{prefix}_EXPORT_TIMEOUT", non_negative, f"{what}: ms per export"),
        SdkVariable(f"{prefix}_MAX_QUEUE_SIZE", positive, f"{what}: queue bound (then dropped, counted)"),
        SdkVariable(f"{prefix}_MAX_EXPORT_BATCH_SIZE", positive, f"{what}: batch size"),
    )


_LIMIT = _optional(p.integer(minimum=0))

SDK_VARIABLES: Final = (
    *_batch("OTEL_BSP", "span batches"),
    *_batch("OTEL_BLRP", "log batches"),
    SdkVariable("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", _LIMIT, "longest attribute value (spans, logs)"),
    SdkVariable("OTEL_ATTRIBUTE_COUNT_LIMIT", _LIMIT, "attributes per span / log record"),
    SdkVariable("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", _LIMIT, "longest span attribute value"),
    SdkVariable("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", _LIMIT, "attributes per span"),
    SdkVariable("OTEL_SPAN_EVENT_COUNT_LIMIT", _LIMIT, "events per span"),
    SdkVariable("OTEL_SPAN_LINK_COUNT_LIMIT", _LIMIT, "links per span"),
    SdkVariable("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", _LIMIT, "attributes per span event"),
    SdkVariable("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", _LIMIT, "attributes per span link"),
    SdkVariable("OTEL_METRIC_EXPORT_TIMEOUT", _optional(p.integer(minimum=100)), "ms per OTLP metrics push"),
    SdkVariable("OTEL_PROPAGATORS", _propagators, "inbound/outbound context formats (tracecontext,baggage)"),
)


def check_sdk_environment(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The parsed values of the SDK variables that are set, and the problems (each naming its variable)."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for variable in SDK_VARIABLES:
        if variable.name not in environ:
            continue
        try:
            values[variable.name] = variable.parse(environ[variable.name])
        except Invalid as exc:
            problems.append(f"{variable.name}={p.shown_raw(environ[variable.name], secret=False)}: {exc}")
    for prefix in ("OTEL_BSP", "OTEL_BLRP"):
        batch, queue = values.get(f"{prefix}_MAX_EXPORT_BATCH_SIZE"), values.get(f"{prefix}_MAX_QUEUE_SIZE")
        if batch is not None and batch > (queue if queue is not None else 2048):
            problems.append(
                f"{prefix}_MAX_EXPORT_BATCH_SIZE={batch}: must not exceed {prefix}_MAX_QUEUE_SIZE "
                f"({queue if queue is not None else '2048, the default'})"
            )
    return values, problems
