"""A FastAPI service instrumented with one configure() call: health checks, a decorated tool, a
circuit breaker, webhooks from the environment. Runs with no collector.

    python examples/basic_fastapi.py          # http://127.0.0.1:8000  (PORT to change)
    ATOMS_OTEL_EXAMPLE_WIRING=manual python examples/basic_fastapi.py   # the spec's manual wiring

Then try:
    curl localhost:8000/items/3                                  # a JSON log line with user_id on stdout
    curl -X POST 'localhost:8000/tools/search?query=otel'        # a tool call: span + tool metrics
    curl localhost:8000/tools/fail                               # a failing tool: ERROR line, errors_total
    curl localhost:8000/health                                   # aggregated health (503 if unhealthy)
    curl -H 'Accept: application/health+json' localhost:8000/health
    curl localhost:8000/health/live                              # Kubernetes liveness
    curl localhost:8000/health/ready                             # Kubernetes readiness
    curl localhost:8000/metrics                                  # Prometheus text
    curl localhost:8000/api/observability/dashboard              # rates, latency, tools, errors
    curl localhost:8000/api/observability/metrics/snapshot
    curl localhost:8000/api/observability/metrics/http_requests_total

Every request prints one JSON line per log call, with correlation_id, trace_id and span_id; the
response carries X-Correlation-ID. Set ATOMS_OTEL_WEBHOOK_URL (a Slack/Vercel/any URL) to receive
alerts for unhandled errors and health changes. Set ATOMS_OTEL_API_TOKEN to put
/api/observability/* behind a bearer token
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
    ErrorTrackingMiddleware,
    LogContext,
    PerformanceMonitor,
    RequestTrackingMiddleware,
    SupabaseHealthCheck,
    get_logger,
    observe_tool,
    register_health_check,
    router,
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


@observe_tool("search", log_inputs=True)
async def search(query: str) -> list[str]:
    """A tool: a span ``execute_tool search``, tool_executions_total and its duration histogram."""
    return [f"{query} result {n}" for n in range(3)]


@observe_tool("fail")
def always_fails() -> None:
    raise RuntimeError("the tool failed")


@app.post("/tools/search")
async def run_search(query: str) -> dict[str, list[str]]:
    return {"results": await search(query)}


@app.get("/tools/fail")
def run_fail() -> dict[str, str]:
    try:
        always_fails()
    except RuntimeError:
        return {"status": "failed, and recorded"}
    return {"status": "ok"}


if os.environ.get("ATOMS_OTEL_EXAMPLE_WIRING") == "manual":
    # The spec's manual wiring: the middleware and the router by hand, no configure() at all; the
    # first use configures atoms_otel with the defaults (and says so on stdout).
    app.add_middleware(RequestTrackingMiddleware)
    app.add_middleware(ErrorTrackingMiddleware)
    app.include_router(router)
else:
    # The recommended way: one call installs the middleware, /metrics, probes, API and live view.
    atoms_otel.configure(app=app, service_name="atoms-example", service_version="0.1.0")

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_config=None)
