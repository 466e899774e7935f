"""A FastAPI service instrumented with one configure() call. Runs with no collector.

    python examples/basic_fastapi.py          # http://127.0.0.1:8000  (PORT to change)

Then look at /metrics, and at the JSON log lines on stdout. Set OTEL_EXPORTER_OTLP_ENDPOINT to send
traces, metrics and logs to an OpenTelemetry Collector as well.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

import atoms_otel
from atoms_otel import LogContext, get_logger

app = FastAPI(title="atoms-otel example")
logger = get_logger(__name__)


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    with LogContext(user_id="demo-user"):
        logger.info("reading item", extra_fields={"item_id": item_id})
    return {"item_id": item_id}


atoms_otel.configure(app=app, service_name="atoms-example", service_version="0.1.0")

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), log_config=None)
