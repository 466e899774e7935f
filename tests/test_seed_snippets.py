"""The spec's usage examples, copied verbatim (``lib.atoms.observability`` read as ``atoms_otel``),
work without any configure() call: the first use configures with the defaults. Each runs in a
fresh interpreter, as a new user's script would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS_LINE = "atoms_otel configured with defaults; call configure() to choose"


def _run(script: str) -> list[dict[str, Any]]:
    """Run ``script`` in a new interpreter; its stdout's JSON lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = []
    for line in done.stdout.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append({"raw": line})
    return lines


def test_the_logging_snippet_prints_its_json_line_without_configure() -> None:
    """logger.info inside LogContext prints one JSON line with the context, after one INFO notice."""
    lines = _run(
        """
        from atoms_otel import get_logger, LogContext

        logger = get_logger(__name__)

        with LogContext(user_id="user123", correlation_id="req-456"):
            logger.info("Processing request", extra_fields={"action": "create"})
        """
    )
    notices = [line for line in lines if line.get("message") == DEFAULTS_LINE]
    assert len(notices) == 1 and notices[0]["level"] == "INFO"
    line = next(line for line in lines if line.get("message") == "Processing request")
    assert (line["level"], line["user_id"], line["correlation_id"], line["action"]) == (
        "INFO",
        "user123",
        "req-456",
        "create",
    )


def test_the_metrics_snippet_records_into_the_default_pipeline() -> None:
    """record_http_request and @observe_tool before any configure() reach /metrics."""
    lines = _run(
        """
        import asyncio
        import atoms_otel

        class db:  # the snippet's database, for this test
            @staticmethod
            async def create_user(username):
                return {"username": username}

        from atoms_otel import record_http_request, observe_tool

        # Record HTTP request
        record_http_request("POST", "/api/users", 201, 0.345)

        # Monitor tool execution
        @observe_tool("create_user", track_performance=True)
        async def create_user(username: str):
            return await db.create_user(username)

        asyncio.run(create_user("ada"))
        print(atoms_otel.get_telemetry().metrics_text().decode())
        """
    )
    text = "\n".join(line.get("raw", "") for line in lines)
    assert 'http_requests_total{method="POST",path="/api/users",status="201"} 1.0' in text
    assert 'tool_executions_total{status="success",tool="create_user"} 1.0' in text


def test_the_fastapi_snippet_serves_metrics_and_readiness() -> None:
    """The manual wiring (middleware + router, no configure) serves a counted /metrics and a ready
    /health/ready."""
    lines = _run(
        """
        from fastapi import FastAPI
        from atoms_otel import (
            router,
            RequestTrackingMiddleware,
            ErrorTrackingMiddleware
        )

        app = FastAPI()
        app.add_middleware(RequestTrackingMiddleware)
        app.add_middleware(ErrorTrackingMiddleware)
        app.include_router(router)

        @app.get("/items/{item_id}")
        def item(item_id: int):
            return {"item_id": item_id}

        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            assert client.get("/items/3").json() == {"item_id": 3}
            ready = client.get("/health/ready")
            print("READY", ready.status_code)
            print(client.get("/metrics").text)
        """
    )
    raw = [line.get("raw", "") for line in lines]
    assert "READY 200" in raw
    assert 'http_requests_total{method="GET",path="/items/{item_id}",status="200"} 1.0' in raw
