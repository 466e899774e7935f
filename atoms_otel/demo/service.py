"""The demo's example service: a FastAPI app with ordinary routes, a slow one, MCP-style tools and a
payments dependency that flaps, instrumented like any user's service."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Body, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from atoms_otel import (
    CircuitBreaker,
    CircuitOpenError,
    ComponentType,
    CustomHealthCheck,
    HealthStatus,
    PerformanceMonitor,
    get_health_monitor,
    observe_tool,
    track_database_operation,
)

__all__ = ["TOOL_NAMES", "FlappingDependency", "build_app", "register_health_checks"]

Tool = Callable[..., Awaitable[dict[str, Any]]]


class FlappingDependency:
    """A downstream payments API that cycles healthy → degraded → unhealthy every ``period_s``.

    Healthy for the first 60 % of the cycle, degraded (slow) for the next 15 %, then down.
    """

    def __init__(self, period_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._start = clock()

    def status(self) -> HealthStatus:
        phase = ((self._clock() - self._start) % self.period_s) / self.period_s
        if phase < 0.60:
            return HealthStatus.HEALTHY
        return HealthStatus.DEGRADED if phase < 0.75 else HealthStatus.UNHEALTHY

    def probe(self) -> dict[str, Any]:
        """The health check: what a real probe of the dependency would report."""
        status = self.status()
        message = {
            HealthStatus.HEALTHY: "",
            HealthStatus.DEGRADED: "p95 latency 1.4 s (threshold 0.5 s)",
            HealthStatus.UNHEALTHY: "connection refused by payments.internal:443",
        }[status]
        return {"status": status, "message": message}

    async def charge(self, amount_cents: int) -> str:
        status = self.status()
        if status is HealthStatus.UNHEALTHY:
            raise ConnectionError("payments-api: connection refused by payments.internal:443")
        await asyncio.sleep(0.35 if status is HealthStatus.DEGRADED else 0.02)
        return f"ch_{amount_cents:x}{int(self._clock() * 1000) % 100000:05d}"


def register_health_checks(payments: FlappingDependency) -> CircuitBreaker:
    """The demo's dependencies on the default monitor; returns the payments circuit breaker."""
    monitor = get_health_monitor()
    monitor.refresh_interval_s, monitor.cache_ttl_s = 2.0, 1.0  # flaps show within seconds
    monitor.register(
        CustomHealthCheck(
            "database",
            ComponentType.DATABASE,
            check_func=lambda: {"status": "healthy", "pool_in_use": random.randint(1, 8)},
            critical=True,
        )
    )
    monitor.register(
        CustomHealthCheck("payments-api", ComponentType.EXTERNAL_API, payments.probe, critical=False)
    )
    monitor.register(PerformanceMonitor(window_s=60, latency_p95_ms=1500, error_rate=0.2))
    return CircuitBreaker("payments", failure_threshold=3, reset_timeout_s=10)


# -- tools --------------------------------------------------------------------------------------


async def _search(query: str, limit: int) -> dict[str, Any]:
    await asyncio.sleep(random.uniform(0.005, 0.06))
    if random.random() < 0.03:
        raise TimeoutError("search index did not answer within 50 ms")
    return {"query": query, "hits": [f"doc-{random.randint(1, 999)}" for _ in range(min(limit, 10))]}


@observe_tool("search_documents")
async def search_documents(query: str = "", limit: int = 5) -> dict[str, Any]:
    return await _search(query, limit)


class ConstraintViolation(ValueError):
    """The stand-in database refused a row (like a CHECK constraint)."""


@track_database_operation("insert", "tickets", system="sqlite")
async def _insert_ticket(title: str, priority: str) -> int:
    """A stand-in for an INSERT (a database client span inside the tool's span)."""
    await asyncio.sleep(random.uniform(0.005, 0.02))
    if priority not in ("low", "normal", "high"):
        raise ConstraintViolation(f"CHECK constraint failed: tickets.priority ({priority!r})")
    return random.randint(1000, 9999)


@observe_tool("create_ticket", log_inputs=True)
async def create_ticket(title: str = "", priority: str = "normal") -> dict[str, Any]:
    await asyncio.sleep(random.uniform(0.02, 0.12))
    ticket = await _insert_ticket(title, priority)
    return {"ticket": f"T-{ticket}", "title": title, "priority": priority}


@observe_tool("summarize")
async def summarize(text: str = "") -> dict[str, Any]:
    await asyncio.sleep(random.uniform(0.1, 0.7))
    if random.random() < 0.05:
        raise RuntimeError("model overloaded, try again")
    return {"summary": text[:40]}


_TOOLS: Final[dict[str, Tool]] = {
    "search_documents": search_documents,
    "create_ticket": create_ticket,
    "summarize": summarize,
}
TOOL_NAMES: Final = tuple(_TOOLS)


async def _run_tool(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        result = await tool(**arguments)
    except (TypeError, ValueError, TimeoutError, RuntimeError) as exc:
        # Like an MCP CallToolResult: the call answered, and says it failed.
        return {"is_error": True, "error": f"{type(exc).__name__}: {exc}"}
    return {"is_error": False, "result": result}


# -- routes -------------------------------------------------------------------------------------


class Order(BaseModel):
    item_id: int = Field(ge=1)
    quantity: int = Field(ge=1, le=100)


def build_app(payments: FlappingDependency, breaker: CircuitBreaker) -> FastAPI:
    """The example service (not yet instrumented: the caller runs configure(app=...))."""
    app = FastAPI(title="atoms-otel demo service")

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, Any]:
        await asyncio.sleep(random.uniform(0.002, 0.03))
        if item_id % 11 == 0:
            raise HTTPException(404, "item not found")
        return {"item_id": item_id, "stock": item_id * 7 % 50}

    @app.get("/search")
    async def search(q: str = Query(min_length=1, max_length=100)) -> dict[str, Any]:
        return await _search(q, 5)

    @app.post("/orders", status_code=201)
    async def create_order(order: Order) -> dict[str, Any]:
        await asyncio.sleep(random.uniform(0.01, 0.05))
        return {"order_id": random.randint(10_000, 99_999), **order.model_dump()}

    @app.get("/reports/{report_id}")
    async def build_report(report_id: int) -> dict[str, Any]:
        """The slow route: some reports take longer than the 1 s slow-request threshold."""
        await asyncio.sleep(random.choice((0.15, 0.3, 0.6, 1.2)))
        return {"report_id": report_id, "rows": report_id * 13 % 500}

    @app.post("/checkout")
    async def checkout(amount_cents: int = Query(default=1999, ge=1)) -> dict[str, Any]:
        """Calls the flapping payments API through a circuit breaker. While it is down the first
        calls fail with an unhandled ConnectionError (a 500), then the open breaker answers 503."""
        try:
            async with breaker:
                charge = await payments.charge(amount_cents)
        except CircuitOpenError as exc:
            raise HTTPException(
                503, "payments unavailable", headers={"Retry-After": str(round(exc.retry_after_s))}
            ) from exc
        return {"charge": charge}

    @app.post("/tools/{name}")
    async def call_tool(
        name: str, arguments: Annotated[dict[str, Any], Body(default_factory=dict)]
    ) -> dict[str, Any]:
        tool = _TOOLS.get(name)
        if tool is None:
            raise HTTPException(404, "unknown tool")
        return await _run_tool(tool, arguments)

    return app
