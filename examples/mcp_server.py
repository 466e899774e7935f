"""A FastAPI service serving MCP tools over streamable HTTP, instrumented with one configure() call.
Runs with no collector.

    python examples/mcp_server.py             # MCP endpoint http://127.0.0.1:8000/mcp/ (PORT to change)

Call a tool with the MCP SDK's client:

    python -c "import asyncio, mcp
    async def main():
        async with mcp.Client('http://127.0.0.1:8000/mcp/') as client:
            print(await client.call_tool('add', {'a': 1, 'b': 2}))
    asyncio.run(main())"

then look at ``curl localhost:8000/metrics`` (tool_executions_total, mcp_server_operation_duration_
seconds, http_requests_total) and at the JSON log lines on stdout. Set OTEL_EXPORTER_OTLP_ENDPOINT
to send traces, metrics and logs to an OpenTelemetry Collector as well.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer

import atoms_otel
from atoms_otel import get_logger, track_database_operation

logger = get_logger("examples.mcp")
mcp = MCPServer("atoms-tools", instructions="Arithmetic and a tiny document store.")
_documents = {"readme": "atoms_otel observes MCP tools.", "license": "Apache-2.0"}


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    logger.info("adding", a=a, b=b)  # carries the request's correlation id and the tool name
    return a + b


@track_database_operation("select", "documents", system="sqlite")
async def load_document(name: str) -> str | None:
    await asyncio.sleep(0.001)
    return _documents.get(name)


@mcp.tool()
async def read_document(name: str) -> str:
    """Read a document by name; unknown names fail (and are counted as tool errors)."""
    text = await load_document(name)
    if text is None:
        raise KeyError(f"no document named {name!r}")
    return text


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with mcp.session_manager.run():  # the MCP app's sessions live as long as the service
        yield


app = FastAPI(title="atoms-otel MCP example", lifespan=lifespan)
app.mount("/mcp", mcp.streamable_http_app(streamable_http_path="/"))


@app.get("/")
async def index() -> dict[str, str]:
    return {"mcp": "/mcp/", "metrics": "/metrics"}


# The one call: request middleware, /metrics, and instrument_mcp() for the mounted MCP server.
atoms_otel.configure(app=app, service_name="atoms-mcp", service_version="0.1.0")

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_config=None)
