"""The observability endpoints, as a FastAPI ``APIRouter``.

``configure(app=app)`` includes :data:`router`; ``app.include_router(router)`` works on its own too.

- ``GET /metrics``: Prometheus text (bearer token required when ``protect_metrics`` is set).
- ``GET /health``: aggregated health JSON — 200 healthy/degraded, 503 unhealthy; with
  ``Accept: application/health+json``, the IETF health-check format.
- ``GET /health/live``: 200 while the process and its event loop serve; checks nothing else.
- ``GET /health/ready``: 503 before configure(), while shutting down, or while a critical
  component is unhealthy; else 200.
- ``GET /api/observability/dashboard``, ``/metrics/snapshot``, ``/metrics/{name}``: JSON computed
  from our own live signals; bearer token required when ``api_token`` is set.
- ``GET /observability``: the live view, a self-contained HTML page over the dashboard API (see
  :mod:`atoms_otel.endpoints.page`); same token as the API.

Endpoints only read signals. The router's lifespan runs the default monitor's checks in the
background every ``refresh_interval_s`` while the app serves, takes a live-signals reading every
5 s (so the dashboard's time series covers the last minutes even before anyone looks), and marks
the app as draining (not ready) once shutdown begins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from atoms_otel.base import guard as _guard

from atoms_otel.endpoints import views as api_views

from atoms_otel.plugins.signals import live as live_signals

from atoms_otel.endpoints import page
from atoms_otel.endpoints.models import (
    DashboardResponse,
    ErrorResponse,
    HealthCheckResponse,
    HealthJsonResponse,
    LivenessResponse,
    MetricModel,
    MetricsSnapshotResponse,
    ReadinessResponse,
)
from atoms_otel.core.telemetry import Telemetry, get_telemetry
from atoms_otel.plugins.health import HealthStatus, get_health_monitor

__all__ = ["router", "wants_health_json"]

_ACCEPT_HTML: Final = "text/html"

_STARTED: Final = time.monotonic()
_DRAINING: Final = "atoms_otel_draining"
_HEALTH_JSON: Final = "application/health+json"
_MAX_ACCEPT_CHARS: Final = 4096
_MAX_ACCEPT_ITEMS: Final = 32
_METRIC_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,254}$")


async def _sample_live_signals() -> None:
    """Feed the live-signals ring while the app serves, so its time series has no holes."""
    while True:
        await asyncio.sleep(live_signals.SAMPLE_INTERVAL_S)
        with _guard.guard("live signals sampler"):
            # A snapshot costs CPU in proportion to the series count: off the event loop.
            await asyncio.to_thread(_take_reading)


def _take_reading() -> None:
    telemetry, signals = get_telemetry(), live_signals.active()
    if telemetry is not None and signals is not None:
        signals[0].observe(telemetry.metrics_snapshot())


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    state = getattr(app, "state", None)
    if state is not None:
        setattr(state, _DRAINING, False)
    monitor = get_health_monitor()
    tasks = [asyncio.create_task(_sample_live_signals())]
    if monitor.refresh_interval_s:
        tasks.append(asyncio.create_task(monitor.run_periodically()))
    try:
        yield
    finally:
        if state is not None:
            setattr(state, _DRAINING, True)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


router = APIRouter(tags=["observability"], lifespan=_lifespan)

_bearer = HTTPBearer(auto_error=False, description="The api_token / ATOMS_OTEL_API_TOKEN setting.")


def _token_matches(credentials: HTTPAuthorizationCredentials | None, token: str) -> bool:
    presented = credentials.credentials if credentials is not None else ""
    return hmac.compare_digest(presented.encode("utf-8", "replace"), token.encode("utf-8"))


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="missing or invalid bearer token",
        headers={"WWW-Authenticate": 'Bearer realm="atoms_otel"'},
    )


def require_api_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Enforce the ``api_token`` setting (constant-time comparison). Open when no token is set."""
    telemetry = get_telemetry()
    token = telemetry.settings.api_token if telemetry is not None else None
    if token and not _token_matches(credentials, token):
        raise _unauthorized()


def _require_metrics_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    telemetry = get_telemetry()
    if telemetry is None or not telemetry.settings.protect_metrics or not telemetry.settings.api_token:
        return
    if not _token_matches(credentials, telemetry.settings.api_token):
        raise _unauthorized()


_UNAUTHORIZED: Final[dict[int | str, dict[str, Any]]] = {401: {"model": ErrorResponse}}


@router.get(
    "/metrics",
    include_in_schema=False,
    response_class=Response,
    dependencies=[Depends(_require_metrics_token)],
)
def metrics_endpoint() -> Response:
    """Every metric in the Prometheus text exposition format (empty before configure())."""
    telemetry = get_telemetry()
    body = telemetry.metrics_text() if telemetry is not None else b""
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


# -- health -------------------------------------------------------------------------------------


def wants_health_json(accept: str | None) -> bool:
    """Whether ``Accept`` prefers ``application/health+json`` (at least as much as JSON).

    Bounded: only the first 4096 characters and 32 media ranges are read; anything unparsable is
    ignored, and the default is plain JSON.
    """
    if not accept:
        return False
    health = plain = 0.0
    for item in accept[:_MAX_ACCEPT_CHARS].split(",")[:_MAX_ACCEPT_ITEMS]:
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


def _service(telemetry: Telemetry | None) -> api_views.ServiceInfo:
    uptime = time.monotonic() - _STARTED
    if telemetry is None:
        return api_views.ServiceInfo("unknown_service", "0.0.0", "unknown", uptime)
    settings = telemetry.settings
    return api_views.ServiceInfo(
        settings.service_name, settings.service_version, settings.environment, uptime
    )


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


_HEALTH_JSON_SCHEMA: Final = {_HEALTH_JSON: {"schema": _inline_refs(HealthJsonResponse.model_json_schema())}}


@router.get(
    "/health",
    response_model=HealthCheckResponse,
    summary="Aggregated health of the service and its dependencies",
    responses={
        200: {"description": "Healthy or degraded", "content": _HEALTH_JSON_SCHEMA},
        503: {"description": "Unhealthy", "model": HealthCheckResponse, "content": _HEALTH_JSON_SCHEMA},
    },
)
async def health(request: Request) -> Response:
    """Run (or reuse, within the cache interval) every registered check."""
    report = await get_health_monitor().check_health()
    status_code = 503 if report.status is HealthStatus.UNHEALTHY else 200
    service = _service(get_telemetry())
    if wants_health_json(request.headers.get("accept")):
        body = api_views.health_json(report, service).model_dump(mode="json")
        return JSONResponse(body, status_code=status_code, media_type=_HEALTH_JSON)
    return JSONResponse(api_views.health_response(report, service).model_dump(mode="json"), status_code)


@router.get("/health/live", response_model=LivenessResponse, summary="Liveness probe")
async def liveness() -> LivenessResponse:
    """Answers while the process and its event loop serve. Never checks dependencies."""
    return LivenessResponse(uptime_seconds=round(time.monotonic() - _STARTED, 3))


@router.get(
    "/health/ready",
    response_model=ReadinessResponse,
    summary="Readiness probe",
    responses={503: {"model": ReadinessResponse, "description": "Not ready"}},
)
async def readiness(request: Request) -> JSONResponse:
    """503 before configure(), while shutting down, or while a critical component is unhealthy."""
    telemetry = get_telemetry()
    if telemetry is None:
        body = ReadinessResponse(status="not_ready", reason="telemetry is not configured yet")
    elif getattr(request.app.state, _DRAINING, False):
        body = ReadinessResponse(status="not_ready", reason="shutting down")
    else:
        report = await get_health_monitor().check_health()
        failing = sorted(
            name for name, c in report.components.items() if c.critical and c.status is HealthStatus.UNHEALTHY
        )
        body = (
            ReadinessResponse(
                status="not_ready", reason="critical component unhealthy", failing_components=failing
            )
            if failing
            else ReadinessResponse(status="ready")
        )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "ready" else 503)


# -- observability API --------------------------------------------------------------------------

api = APIRouter(
    prefix="/api/observability", dependencies=[Depends(require_api_token)], responses=_UNAUTHORIZED
)


@api.get("/dashboard", response_model=DashboardResponse, summary="Dashboard data from live signals")
async def dashboard(
    window: Annotated[float, Query(ge=10, le=3600, description="Sliding window in seconds")] = 300.0,
    top: Annotated[int, Query(ge=1, le=50, description="Tools per list")] = 10,
    errors: Annotated[int, Query(ge=0, le=100, description="Recent errors to include")] = 20,
    routes: Annotated[int, Query(ge=0, le=100, description="Routes to include, busiest first")] = 20,
    points: Annotated[
        int, Query(ge=2, le=live_signals.MAX_SERIES_POINTS, description="Most time-series points")
    ] = 120,
) -> DashboardResponse:
    """Health, request and error rates over the window (totals, per status code and as a time
    series), latency percentiles, busiest routes, top tools, connections, recent errors."""
    telemetry = get_telemetry()
    report = await get_health_monitor().check_health()

    def build() -> DashboardResponse:  # snapshot and arithmetic scale with series: off the loop
        return api_views.dashboard(
            report=report,
            data=telemetry.metrics_snapshot() if telemetry is not None else None,
            signals=live_signals.active(),
            service=_service(telemetry),
            window_s=window,
            top=top,
            errors=errors,
            routes=routes,
            points=points,
        )

    return await run_in_threadpool(build)


@api.get("/metrics/snapshot", response_model=MetricsSnapshotResponse, summary="Every metric as JSON")
async def metrics_snapshot() -> MetricsSnapshotResponse:
    """Every metric with its type, description, unit and current (cumulative) data points."""
    telemetry = get_telemetry()
    data = await run_in_threadpool(telemetry.metrics_snapshot) if telemetry is not None else None
    models = await run_in_threadpool(api_views.metric_models, data)
    return MetricsSnapshotResponse(
        service=_service(telemetry).name, timestamp=api_views._now(), metrics=models
    )


@api.get(
    "/metrics/{name}",
    response_model=MetricModel,
    summary="One metric by OpenTelemetry or Prometheus name",
    responses={404: {"model": ErrorResponse, "description": "No such metric"}},
)
async def metric_by_name(
    name: Annotated[str, Path(description="e.g. http_requests_total or http.requests")],
) -> Any:
    """One metric, e.g. ``http_requests_total`` or ``http.requests``; a JSON 404 if unknown."""
    telemetry = get_telemetry()
    found = None
    if _METRIC_NAME.match(name) and telemetry is not None:
        data = await run_in_threadpool(telemetry.metrics_snapshot)
        found = api_views.find_metric(data, name)
    if found is None:
        shown = name if _METRIC_NAME.match(name) else "(not a metric name)"
        return JSONResponse({"detail": f"unknown metric: {shown}"}, status_code=404)
    return found


router.include_router(api)


# -- the live view ------------------------------------------------------------------------------


@router.get("/observability", include_in_schema=False, response_class=HTMLResponse)
def observability_page(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The live view. With ``api_token`` set: the token as a bearer header or ``?token=``."""
    telemetry = get_telemetry()
    expected = telemetry.settings.api_token if telemetry is not None else None
    nonce = page.new_nonce()
    headers = page.security_headers(nonce)
    if expected and not (
        _token_matches(credentials, expected)
        or (token is not None and hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode()))
    ):
        headers["WWW-Authenticate"] = 'Bearer realm="atoms_otel"'
        if _ACCEPT_HTML in request.headers.get("accept", "")[:_MAX_ACCEPT_CHARS]:
            return HTMLResponse(page.render_login(nonce), status_code=401, headers=headers)
        return JSONResponse({"detail": "missing or invalid bearer token"}, status_code=401, headers=headers)
    return HTMLResponse(page.render_page(nonce), headers=headers)
