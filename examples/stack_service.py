"""The service the observability stack runs (docker-compose.yml) and the deployment tests scrape.

    uvicorn stack_service:app --app-dir examples --port 8000

Routes produce every signal the dashboards and alert rules read: requests of each status class,
an unhandled exception (a 500 and ``errors_total``), slow requests, tool executions that succeed
and fail (over plain HTTP at ``/tools/{name}``, and as MCP tools at ``/mcp/``), database queries
behind a circuit breaker, cache lookups, measured operations, and health checks (the database
reports degraded for 30 s after a failed query). Set ATOMS_OTEL_WEBHOOK_URL to receive alerts
(unhandled errors, health changes) as webhooks, and OTEL_EXPORTER_OTLP_ENDPOINT to push traces,
metrics and logs to an OpenTelemetry Collector (it serves ``/metrics`` either way).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from mcp.server.mcpserver import MCPServer

import atoms_otel
from atoms_otel import (
    CircuitBreaker,
    CircuitOpenError,
    ComponentType,
    CustomHealthCheck,
    HealthStatus,
    LogContext,
    PerformanceMetric,
    get_logger,
    register_health_check,
)

logger = get_logger("stack_service")
mcp = MCPServer("atoms-stack-tools", instructions="Look up items and add numbers.")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with mcp.session_manager.run():  # MCP sessions live as long as the service
        yield


app = FastAPI(title="atoms-otel stack example", lifespan=lifespan)
app.mount("/mcp", mcp.streamable_http_app(streamable_http_path="/"))

_ITEMS = {n: {"id": n, "name": f"item-{n}"} for n in range(1, 51)}
_cache: dict[int, dict[str, Any]] = {}


class ToolFailed(Exception):
    """A tool could not do its job (the caller gets a 422)."""


_last_database_failure = 0.0
items_db = CircuitBreaker("items-db", failure_threshold=5, reset_timeout_s=10)


class DatabaseUnavailable(Exception):
    """The stand-in database failed (the caller gets a 503)."""


def database_health() -> HealthStatus:
    """Degraded while a query failed in the last 30 s."""
    recent = time.monotonic() - _last_database_failure < 30
    return HealthStatus.DEGRADED if _last_database_failure and recent else HealthStatus.HEALTHY


@items_db
async def _load_item(item_id: int) -> dict[str, Any] | None:
    """A stand-in for a database query: timed and counted in database_queries_total.
    Item 0 makes the query fail."""
    started = time.perf_counter()
    await asyncio.sleep(random.uniform(0.001, 0.01))
    ok = item_id != 0
    atoms_otel.record_database_query("select", time.perf_counter() - started, ok, table="items")
    if not ok:
        global _last_database_failure
        _last_database_failure = time.monotonic()
        raise DatabaseUnavailable("items table unavailable")
    return _ITEMS.get(item_id)


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, Any]:
    """Cache first, then the "database"; 404 for an unknown item, 503 when the database fails."""
    cached = _cache.get(item_id)
    atoms_otel.record_cache_operation("get", cached is not None, cache="items")
    if cached is not None:
        return cached
    try:
        item = await _load_item(item_id)
    except (DatabaseUnavailable, CircuitOpenError) as exc:
        logger.error("database query failed", extra_fields={"item_id": item_id})
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    if item is None:
        raise HTTPException(status_code=404, detail=f"item {item_id} not found")
    _cache[item_id] = item
    atoms_otel.record_cache_operation("set", "ok", cache="items")
    return item


_TOOLS = {
    "search": lambda arguments: {"matches": [i for i in _ITEMS if str(arguments.get("q", "")) in str(i)]},
    "summarize": lambda arguments: {"summary": str(arguments.get("text", ""))[:40]},
}


@app.post("/tools/{name}")
async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a tool: counted in tool_executions_total{tool,status} and timed per tool."""
    started = time.perf_counter()
    with LogContext(request_path=f"/tools/{name}"):
        try:
            if name not in _TOOLS or arguments.get("fail"):
                raise ToolFailed(f"tool {name} failed")
            with PerformanceMetric(f"tool.{name}"):
                result = _TOOLS[name](arguments)
        except ToolFailed as exc:
            atoms_otel.record_tool_execution(name, time.perf_counter() - started, success=False)
            logger.warning("tool failed", extra_fields={"tool": name})
            raise HTTPException(status_code=422, detail=str(exc)) from exc
    atoms_otel.record_tool_execution(name, time.perf_counter() - started, success=True)
    return result


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool()
async def lookup_item(item_id: int) -> dict[str, Any]:
    """An item by id; unknown ids fail (counted as MCP tool errors)."""
    item = await _load_item(item_id)
    if item is None:
        raise KeyError(f"no item {item_id}")
    return item


@app.get("/slow")
async def slow(seconds: float = 1.2) -> dict[str, float]:
    """A slow request (over ATOMS_OTEL_SLOW_REQUEST_MS, default 1 s): logged and counted as slow."""
    seconds = min(max(seconds, 0.0), 5.0)
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/boom")
async def boom() -> None:
    """An unhandled exception: the client gets a 500, the error is counted and logged."""
    raise RuntimeError("boom")


atoms_otel.configure(app=app, service_name="atoms-mcp", service_version="0.1.0")
register_health_check(CustomHealthCheck("database", ComponentType.DATABASE, database_health, critical=True))
register_health_check(
    CustomHealthCheck("cache", ComponentType.CACHE, lambda: len(_cache) < 10_000, critical=False)
)
