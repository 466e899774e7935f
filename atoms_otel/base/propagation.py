"""``X-Correlation-ID`` as an OpenTelemetry propagator, so outbound calls carry it.

Any instrumentation that injects the global propagators into an outgoing request (httpx, requests,
aiohttp, gRPC, ...) then sends the current correlation id next to ``traceparent`` and ``baggage``,
and the next service joins the same log search. Inbound, the HTTP middleware reads and validates
the header itself (a client must not be able to inject arbitrary values), so :meth:`extract`
leaves the context unchanged.
"""

from __future__ import annotations

from typing import Final

from opentelemetry import propagate
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from atoms_otel.base.context import correlation_id_var

__all__ = ["CORRELATION_HEADER", "CorrelationIdPropagator", "propagate_correlation_id"]

CORRELATION_HEADER: Final = "x-correlation-id"


class CorrelationIdPropagator(TextMapPropagator):
    """Injects the current correlation id as ``X-Correlation-ID``; extracts nothing."""

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        return context if context is not None else get_current()

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        correlation_id = correlation_id_var.get()
        if correlation_id:
            setter.set(carrier, CORRELATION_HEADER, correlation_id)

    @property
    def fields(self) -> set[str]:
        return {CORRELATION_HEADER}


_installed: list[TextMapPropagator] = []


def propagate_correlation_id() -> None:
    """Add :class:`CorrelationIdPropagator` to the global propagators (once: a textmap we already
    extended is left alone)."""
    textmap = propagate.get_global_textmap()
    if isinstance(textmap, CorrelationIdPropagator) or any(t is textmap for t in _installed):
        return
    extended = CompositePropagator([textmap, CorrelationIdPropagator()])
    _installed.append(extended)
    propagate.set_global_textmap(extended)
