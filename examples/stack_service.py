"""The service the observability stack runs (docker-compose.yml) and the deployment tests scrape.

    python examples/stack_service.py                            # http://127.0.0.1:8000 (PORT)
    uvicorn stack_service:app --app-dir examples --host 0.0.0.0 --port 8000

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
import inspect
import random
import time
from collections.abc import AsyncIterator, Callable
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
    PerformanceMetric,
    get_logger,
    observe_tool,
    register_health_check,
    track_database_operation,
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
@track_database_operation("select", "items", system="sqlite")
async def _load_item(item_id: int) -> dict[str, Any] | None:
    """A stand-in for a database query (a client span, database_queries_total and its duration).
    Item 0 makes the query fail."""
    global _last_database_failure
    await asyncio.sleep(random.uniform(0.001, 0.01))
    if item_id == 0:
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
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    if item is None:
        raise HTTPException(status_code=404, detail=f"item {item_id} not found")
    _cache[item_id] = item
    atoms_otel.record_cache_operation("set", "ok", cache="items")
    return item


@observe_tool("search")
def search(q: str = "", fail: bool = False) -> dict[str, Any]:
    """Item ids containing ``q``. ``fail=True`` makes the tool fail (a tool error)."""
    if fail:
        raise ToolFailed("search backend refused the query")
    return {"matches": [i for i in _ITEMS if q in str(i)]}


@observe_tool("summarize")
def summarize(text: str = "") -> dict[str, str]:
    """The first 40 characters of ``text``."""
    logger.info("summarizing", extra_fields={"length": len(text)})  # carries trace and span ids
    return {"summary": text[:40]}


_TOOLS: dict[str, Callable[..., dict[str, Any]]] = {"search": search, "summarize": summarize}


@app.post("/tools/{name}")
async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a tool over plain HTTP: 404 for an unknown tool, 422 for bad arguments or a failure."""
    tool = _TOOLS.get(name)
    if tool is None:
        raise HTTPException(status_code=404, detail=f"no tool {name!r}")
    try:
        inspect.signature(tool).bind(**arguments)
    except TypeError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    try:
        with PerformanceMetric(f"tool.{name}"):
            return tool(**arguments)
    except ToolFailed as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


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

if __name__ == "__main__":
    import os

    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_config=None)
