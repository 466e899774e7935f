"""A FastAPI service instrumented with one configure() call, with health checks. Runs with no collector.

    python examples/basic_fastapi.py          # http://127.0.0.1:8000  (PORT to change)

Then try:
    curl localhost:8000/health                                   # aggregated health (503 if unhealthy)
    curl -H 'Accept: application/health+json' localhost:8000/health
    curl localhost:8000/health/live                              # Kubernetes liveness
    curl localhost:8000/health/ready                             # Kubernetes readiness
    curl localhost:8000/metrics                                  # Prometheus text
    curl localhost:8000/api/observability/dashboard              # rates, latency, tools, errors
    curl localhost:8000/api/observability/metrics/snapshot
    curl localhost:8000/api/observability/metrics/http_requests_total

Set ATOMS_OTEL_API_TOKEN to put /api/observability/* behind a bearer token
(``curl -H "Authorization: Bearer $ATOMS_OTEL_API_TOKEN" ...``). Set SUPABASE_URL and SUPABASE_KEY,
and/or WORKOS_CLIENT_ID (or AUTHKIT_DOMAIN), to probe those services too. Set
OTEL_EXPORTER_OTLP_ENDPOINT to send traces, metrics and logs to an OpenTelemetry Collector as well.
"""

from __future__ import annotations

import os
import random

from fastapi import FastAPI

import atoms_otel
from atoms_otel import (
    AuthKitHealthCheck,
    CircuitBreaker,
    ComponentType,
    CustomHealthCheck,
    LogContext,
    PerformanceMonitor,
    SupabaseHealthCheck,
    get_logger,
    register_health_check,
)

app = FastAPI(title="atoms-otel example")
logger = get_logger(__name__)

# -- health checks --------------------------------------------------------------------------------

_cache: dict[str, str] = {}


def cache_ping() -> bool:
    """A synchronous check: runs on its own thread, never on the event loop."""
    _cache["ping"] = "pong"
    return _cache.get("ping") == "pong"


async def queue_depth() -> dict[str, object]:
    """An async check returning details; "degraded" when the backlog grows."""
    depth = random.randint(0, 120)
    return {"status": "degraded" if depth > 100 else "healthy", "depth": depth}


register_health_check(CustomHealthCheck("cache", ComponentType.CACHE, check_func=cache_ping, critical=True))
register_health_check(
    CustomHealthCheck("jobs", ComponentType.QUEUE, check_func=queue_depth, critical=False, timeout_s=2)
)
# Degraded when the service's own p95 latency or 5xx rate over 5 minutes crosses a threshold.
register_health_check(PerformanceMonitor(window_s=300, latency_p95_ms=1000, error_rate=0.05))

if os.environ.get("SUPABASE_URL") and os.environ.get("SUPABASE_KEY"):
    register_health_check(SupabaseHealthCheck(url=os.environ["SUPABASE_URL"], key=os.environ["SUPABASE_KEY"]))
if os.environ.get("WORKOS_CLIENT_ID") or os.environ.get("AUTHKIT_DOMAIN"):
    register_health_check(
        AuthKitHealthCheck(os.environ.get("AUTHKIT_DOMAIN"), client_id=os.environ.get("WORKOS_CLIENT_ID"))
    )

# A circuit breaker shows up in /health (component "inventory") and as circuit_breaker_state.
inventory_breaker = CircuitBreaker("inventory", failure_threshold=3, reset_timeout_s=15)


@inventory_breaker
def fetch_stock(item_id: int) -> int:
    if item_id % 13 == 0:
        raise ConnectionError("inventory service unreachable")
    return item_id * 7 % 50


# -- routes ---------------------------------------------------------------------------------------


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    with LogContext(user_id="demo-user"):
        logger.info("reading item", extra_fields={"item_id": item_id})
    try:
        stock = fetch_stock(item_id)
    except (ConnectionError, atoms_otel.CircuitOpenError):
        stock = -1  # degrade gracefully; the breaker's state is visible in /health
    return {"item_id": item_id, "stock": stock}


atoms_otel.configure(app=app, service_name="atoms-example", service_version="0.1.0")

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_config=None)
