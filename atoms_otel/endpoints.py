"""The observability endpoints, as a FastAPI ``APIRouter``: ``GET /metrics`` (Prometheus text).

``configure(app=app)`` includes :data:`router`; ``app.include_router(router)`` works on its own too.
Endpoints only read signals; they never change them.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from atoms_otel.config import get_telemetry

__all__ = ["router"]

router = APIRouter(tags=["observability"])


@router.get("/metrics", include_in_schema=False, response_class=Response)
def metrics_endpoint() -> Response:
    """Every metric in the Prometheus text exposition format (empty before configure())."""
    telemetry = get_telemetry()
    body = telemetry.metrics_text() if telemetry is not None else b""
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
