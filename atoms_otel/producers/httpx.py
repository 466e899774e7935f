"""Context out: ``httpx`` requests made while handling a request carry ``traceparent``, ``baggage``
and the request's ``X-Correlation-ID``, so the next service joins the trace and the log search.

Built on ``opentelemetry-instrumentation-httpx`` (``pip install 'atoms-otel[httpx]'``), which opens
a CLIENT span per request and injects the global propagators; atoms_otel adds its correlation-id
propagator to them. Our own webhook deliveries and health probes suppress instrumentation, so they
are neither traced nor given the header.
"""

from __future__ import annotations

from typing import Any, Final

from atoms_otel.base.propagation import propagate_correlation_id
from atoms_otel.core.telemetry import Telemetry

__all__ = ["instrument_httpx"]

_INSTALL_HINT: Final = "instrument_httpx() needs the httpx instrumentation: pip install 'atoms-otel[httpx]'"


def instrument_httpx(*, telemetry: Telemetry, **options: Any) -> None:
    """Instrument every ``httpx`` client (sync and async, created before or after) for ``telemetry``.

    Idempotent. ``options`` go to ``HTTPXClientInstrumentor().instrument()`` (e.g. ``request_hook``).
    """
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError as exc:  # an optional extra
        raise ImportError(_INSTALL_HINT) from exc
    propagate_correlation_id()
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, **options
        )
