"""The health endpoints: ``/health`` (plain or IETF health JSON), ``/health/live``, ``/health/ready``."""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from atoms_otel.core.telemetry import Telemetry
from atoms_otel.endpoints import views as api_views
from atoms_otel.endpoints.models import HealthJsonResponse, LivenessResponse, ReadinessResponse
from atoms_otel.plugins.health import HealthMonitor, HealthStatus

__all__ = [
    "HEALTH_JSON_SCHEMA",
    "MAX_ACCEPT_CHARS",
    "MAX_ACCEPT_ITEMS",
    "HealthEndpoints",
    "wants_health_json",
]

_DRAINING: Final = "atoms_otel_draining"
_HEALTH_JSON: Final = "application/health+json"
MAX_ACCEPT_CHARS: Final = 4096
"""How much of an ``Accept``-style header any endpoint reads."""
MAX_ACCEPT_ITEMS: Final = 32


def wants_health_json(accept: str | None) -> bool:
    """Whether ``Accept`` prefers ``application/health+json`` (at least as much as JSON).

    Bounded: only the first 4096 characters and 32 media ranges are read; anything unparsable is
    ignored, and the default is plain JSON.
    """
    if not accept:
        return False
    health = plain = 0.0
    for item in accept[:MAX_ACCEPT_CHARS].split(",")[:MAX_ACCEPT_ITEMS]:
        media, *params = item.split(";")
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # also rejects NaN
                    quality = 0.0
        media = media.strip().lower()
        if media == _HEALTH_JSON:
            health = max(health, quality)
        elif media in ("application/json", "application/*", "*/*"):
            plain = max(plain, quality)
    return health > 0 and health >= plain


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined, to embed it under a second media type."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(dict(defs[ref.rsplit("/", 1)[1]]))
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


HEALTH_JSON_SCHEMA: Final = {_HEALTH_JSON: {"schema": _inline_refs(HealthJsonResponse.model_json_schema())}}


class HealthEndpoints:
    """The health handlers, bound to one handle and one monitor."""

    def __init__(self, telemetry: Telemetry, monitor: HealthMonitor, *, started: float) -> None:
        self.telemetry = telemetry
        self.monitor = monitor
        self.started = started

    def service(self) -> api_views.ServiceInfo:
        uptime = time.monotonic() - self.started
        if not self.telemetry.configured:
            return api_views.ServiceInfo("unknown_service", "0.0.0", "unknown", uptime)
        settings = self.telemetry.settings
        return api_views.ServiceInfo(
            settings.service_name, settings.service_version, settings.environment, uptime
        )

    @staticmethod
    def set_draining(app: Any, draining: bool) -> None:
        state = getattr(app, "state", None)
        if state is not None:
            setattr(state, _DRAINING, draining)

    async def health(self, request: Request) -> Response:
        """Run (or reuse, within the cache interval) every registered check."""
        report = await self.monitor.check_health()
        status_code = 503 if report.status is HealthStatus.UNHEALTHY else 200
        service = self.service()
        if wants_health_json(request.headers.get("accept")):
            body = api_views.health_json(report, service).model_dump(mode="json")
            return JSONResponse(body, status_code=status_code, media_type=_HEALTH_JSON)
        return JSONResponse(api_views.health_response(report, service).model_dump(mode="json"), status_code)

    async def liveness(self) -> LivenessResponse:
        """Answers while the process and its event loop serve. Never checks dependencies."""
        return LivenessResponse(uptime_seconds=round(time.monotonic() - self.started, 3))

    async def readiness(self, request: Request) -> JSONResponse:
        """503 before configure(), while shutting down, or while a critical component is unhealthy."""
        if not self.telemetry.configured:
            body = ReadinessResponse(status="not_ready", reason="telemetry is not configured yet")
        elif getattr(request.app.state, _DRAINING, False):
            body = ReadinessResponse(status="not_ready", reason="shutting down")
        else:
            report = await self.monitor.check_health()
            failing = sorted(
                name
                for name, c in report.components.items()
                if c.critical and c.status is HealthStatus.UNHEALTHY
            )
            body = (
                ReadinessResponse(
                    status="not_ready", reason="critical component unhealthy", failing_components=failing
                )
                if failing
                else ReadinessResponse(status="ready")
            )
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "ready" else 503)
