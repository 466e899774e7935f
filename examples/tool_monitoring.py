"""Monitoring MCP tools with decorators: observation, chains, performance-critical tools, errors,
and manual monitoring. Runs with no collector and exits when the demo is done.

    python examples/tool_monitoring.py

It prints the JSON log lines as they happen, then the tool metrics as Prometheus shows them.
Set OTEL_EXPORTER_OTLP_ENDPOINT to also send the spans, metrics and logs to a Collector.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import atoms_otel
from atoms_otel import (
    LogContext,
    PerformanceMetric,
    get_logger,
    log_operation,
    measure_performance,
    observe_tool,
    record_tool_execution,
    track_database_operation,
)

logger = get_logger("examples.tools")
_users: dict[str, dict[str, str]] = {}


# -- 1. MCP tool observation: a span, a count and a duration per call ------------------------------


@track_database_operation("insert", "users", system="postgresql")
async def insert_user(username: str, email: str) -> dict[str, str]:
    await asyncio.sleep(0.005)
    user = {"id": f"u{len(_users) + 1}", "username": username, "email": email}
    _users[user["id"]] = user
    return user


@observe_tool("create_user", track_performance=True, log_inputs=True)
async def create_user(username: str, email: str, password: str) -> dict[str, str]:
    """An MCP tool: the inputs are logged, with ``password`` redacted by the scrubber."""
    return await insert_user(username, email)


@track_database_operation("select", "users", system="postgresql")
async def find_user(user_id: str) -> dict[str, str] | None:
    await asyncio.sleep(0.002)
    return _users.get(user_id)


@observe_tool("get_user")
async def get_user(user_id: str) -> dict[str, str]:
    user = await find_user(user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    return user


# -- 2. Tool chains: one tool calling others nests their spans -----------------------------------


@observe_tool("onboard_user", log_outputs=True)
async def onboard_user(username: str) -> dict[str, Any]:
    user = await create_user(username, f"{username}@example.com", password="s3cr3t!")
    profile = await get_user(user["id"])
    welcome = await send_welcome(profile["email"])
    return {"user": profile["id"], "welcome_sent": welcome}


@log_operation("send_welcome", log_level="INFO")
async def send_welcome(email: str) -> bool:
    await asyncio.sleep(0.003)
    logger.info("welcome mail queued")  # carries operation=send_welcome
    return True


# -- 3. Performance-critical tools: thresholds turn slow calls into WARNING / ERROR lines -----------


@measure_performance("rank_documents", threshold_warning_ms=20, threshold_critical_ms=60)
@observe_tool("rank_documents")
async def rank_documents(query: str, size: int) -> list[int]:
    await asyncio.sleep(size / 1000)  # pretend the work grows with the input
    return sorted(random.sample(range(1000), k=min(size, 10)))


@observe_tool("stream_results")
async def stream_results(pages: int) -> AsyncIterator[int]:
    """Generators are observed from the first item to the last."""
    for page in range(pages):
        await asyncio.sleep(0.002)
        yield page


# -- 4. Error handling: exceptions are recorded and re-raised unchanged ---------------------------


@observe_tool("charge_card")
def charge_card(amount_cents: int) -> str:
    if amount_cents <= 0:
        raise ValueError("amount must be positive")
    return f"ch_{amount_cents}"


# -- 5. Manual monitoring: for code you cannot decorate -------------------------------------------


def manual_monitoring() -> None:
    started = time.perf_counter()
    ok = random.random() > 0.2
    record_tool_execution("legacy_report", time.perf_counter() - started, success=ok)
    with PerformanceMetric("nightly_export", threshold_ms=5, rows=1200):
        time.sleep(0.01)


async def demo() -> None:
    with LogContext(user_id="admin-1", session_id="demo-session"):
        await onboard_user("ada")
        await onboard_user("grace")
        try:
            await get_user("u404")
        except LookupError:
            logger.warning("lookup failed as expected")
        for size in (5, 40, 80):
            await rank_documents("otel", size)
        pages = [page async for page in stream_results(3)]
        logger.info("streamed", pages=len(pages))
        try:
            charge_card(0)
        except ValueError:
            logger.info("refused a zero charge")
        charge_card(1999)
        manual_monitoring()


def tool_metrics() -> str:
    telemetry = atoms_otel.get_telemetry()
    text = telemetry.metrics_text().decode() if telemetry is not None else ""
    wanted = (
        "tool_executions_total{",
        "database_queries_total{",
        "errors_total{",
        "operation_duration_seconds_count{",
    )
    return "\n".join(line for line in text.splitlines() if line.startswith(wanted))


def main() -> None:
    atoms_otel.configure(service_name="atoms-tools-example")
    asyncio.run(demo())
    print("\n# tool metrics (what GET /metrics would show)")
    print(tool_metrics())
    atoms_otel.shutdown()


if __name__ == "__main__":
    main()
