"""The observability endpoints, as a FastAPI ``APIRouter`` built for one ``Telemetry`` handle.

``atoms_otel.router`` is the router for the handle ``atoms_otel.configure()`` fills;
``configure(app=app)`` includes it, and ``app.include_router(router)`` works on its own too.

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

Endpoints only read signals. The router's lifespan runs the plugins' background tasks while the app
serves (the health checks' refresh, the live-signals sampler) and marks the app as draining (not
ready) once shutdown begins. Every response of these routes carries ``X-Content-Type-Options:
nosniff``. After ``shutdown()``, a handle that had an ``api_token`` keeps the API and the page
closed (401) — see :mod:`atoms_otel.endpoints.auth`.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from starlette.concurrency import run_in_threadpool

from atoms_otel.base import first_use
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.endpoints import page
from atoms_otel.endpoints import views as api_views
from atoms_otel.endpoints.auth import bearer, metrics_token_check, token_check, token_matches
from atoms_otel.endpoints.explorer import add_explorer_routes
from atoms_otel.endpoints.health import (
    HEALTH_JSON_SCHEMA,
    MAX_ACCEPT_CHARS,
    MAX_ACCEPT_ITEMS,
    HealthEndpoints,
)
from atoms_otel.endpoints.models import (
    DashboardResponse,
    ErrorResponse,
    HealthCheckResponse,
    LivenessResponse,
    MetricModel,
    MetricsSnapshotResponse,
    ReadinessResponse,
)
from atoms_otel.plugins.health import HealthMonitor
from atoms_otel.plugins.signals.live import MAX_SERIES_POINTS
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin

__all__ = ["build_router"]

_ACCEPT_HTML: Final = "text/html"
_MAX_FORM_BYTES: Final = 4096
_METRIC_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,254}")  # always fullmatch()ed
_UNAUTHORIZED: Final[dict[int | str, dict[str, Any]]] = {401: {"model": ErrorResponse}}


async def _small_form(request: Request) -> dict[str, list[str]] | None:
    """The request's form-encoded body, at most 4 KiB; ``None`` when it is not one."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return None
    try:
        return parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None


class _NoSniffRoute(APIRoute):
    """A route whose responses say ``X-Content-Type-Options: nosniff`` (JSON must stay JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_nosniff(request: Request) -> Response:
            response = await handler(request)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            return response

        return with_nosniff


def _accepts_gzip(accept_encoding: str) -> bool:
    """``gzip`` listed in ``Accept-Encoding`` without ``q=0``."""
    for item in accept_encoding.split(",")[:MAX_ACCEPT_ITEMS]:
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class ApiEndpoints(HealthEndpoints):
    """The handlers, bound to one handle and one health monitor."""

    def metrics(self, request: Request) -> Response:
        """Every metric: text 0.0.4 by default, OpenMetrics 1.0 when ``Accept`` asks for
        ``application/openmetrics-text``, gzip-compressed when ``Accept-Encoding`` allows it."""
        accept = request.headers.get("accept", "")[:MAX_ACCEPT_CHARS]
        openmetrics = "application/openmetrics-text" in accept
        body = self.telemetry.metrics_text(openmetrics=openmetrics)
        headers = {"Vary": "Accept, Accept-Encoding"}
        if _accepts_gzip(request.headers.get("accept-encoding", "")[:MAX_ACCEPT_CHARS]):
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        media_type = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE_LATEST
        return Response(content=body, media_type=media_type, headers=headers)

    async def dashboard(
        self,
        window: Annotated[float, Query(ge=10, le=3600, description="Sliding window in seconds")] = 300.0,
        top: Annotated[int, Query(ge=1, le=50, description="Tools per list")] = 10,
        errors: Annotated[int, Query(ge=0, le=100, description="Recent errors to include")] = 20,
        routes: Annotated[int, Query(ge=0, le=100, description="Routes to include, busiest first")] = 20,
        points: Annotated[
            int, Query(ge=2, le=MAX_SERIES_POINTS, description="Most time-series points")
        ] = 120,
    ) -> DashboardResponse:
        """Health, request and error rates over the window (totals, per status code and as a time
        series), latency percentiles, busiest routes, top tools, connections, recent errors."""
        telemetry = self.telemetry
        report = await self.monitor.check_health()

        def build() -> DashboardResponse:  # snapshot and arithmetic scale with series: off the loop
            return api_views.dashboard(
                report=report,
                data=telemetry.metrics_snapshot(),
                signals=telemetry.plugin(LiveSignalsPlugin),
                service=self.service(),
                window_s=window,
                top=top,
                errors=errors,
                routes=routes,
                points=points,
            )

        return await run_in_threadpool(build)

    async def metrics_snapshot(self) -> MetricsSnapshotResponse:
        """Every metric with its type, description, unit and current (cumulative) data points."""
        data = await run_in_threadpool(self.telemetry.metrics_snapshot)
        models = await run_in_threadpool(api_views.metric_models, data)
        return MetricsSnapshotResponse(service=self.service().name, timestamp=api_views.now(), metrics=models)

    async def metric_by_name(
        self, name: Annotated[str, Path(description="e.g. http_requests_total or http.requests")]
    ) -> Any:
        """One metric, e.g. ``http_requests_total`` or ``http.requests``; a JSON 404 if unknown."""
        found = None
        valid = _METRIC_NAME.fullmatch(name) is not None
        if valid and self.telemetry.configured:
            data = await run_in_threadpool(self.telemetry.metrics_snapshot)
            found = api_views.find_metric(data, name)
        if found is None:
            shown = name if valid else "(not a metric name)"
            return JSONResponse({"detail": f"unknown metric: {shown}"}, status_code=404)
        return found

    def page(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        token: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> Response:
        """The live view. With ``api_token`` set: the token as a bearer header or ``?token=``."""
        return self._page(request, credentials.credentials if credentials is not None else None, token)

    async def page_login(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Response:
        """The live view, for the login form's POST (``token=…``, form-encoded): no token in a URL."""
        form = await _small_form(request)
        if form is None:
            return JSONResponse({"detail": "expected a small form-encoded body"}, status_code=400)
        posted = form.get("token", [None])[0]
        return self._page(request, credentials.credentials if credentials is not None else None, posted)

    def _page(self, request: Request, presented: str | None, token: str | None) -> Response:
        telemetry = self.telemetry
        expected = telemetry.settings.api_token if telemetry.configured else None
        closed = not telemetry.configured and telemetry.token_required  # shut down: fail closed
        nonce = page.new_nonce()
        headers = page.security_headers(nonce)
        if closed or (
            expected
            and not (
                token_matches(presented, expected) or (token is not None and token_matches(token, expected))
            )
        ):
            headers["WWW-Authenticate"] = 'Bearer realm="atoms_otel"'
            if _ACCEPT_HTML in request.headers.get("accept", "")[:MAX_ACCEPT_CHARS]:
                login = page.render_login(nonce, rejected=token is not None and request.method == "POST")
                return HTMLResponse(login, status_code=401, headers=headers)
            return JSONResponse(
                {"detail": "missing or invalid bearer token"}, status_code=401, headers=headers
            )
        return HTMLResponse(page.render_page(nonce), headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """While the app serves: the plugins' background tasks; once shutdown begins: draining."""
        _first_use()
        async with self.telemetry.running():
            self.set_draining(app, False)
            try:
                yield
            finally:
                self.set_draining(app, True)


def _first_use() -> None:
    """Serving the router before configure() configures with the defaults (once)."""
    if first_use.pending:
        first_use.run()


def build_router(telemetry: Telemetry, monitor: HealthMonitor) -> APIRouter:
    """The observability router for ``telemetry``, serving ``monitor``'s health."""
    endpoints = ApiEndpoints(telemetry, monitor, started=time.monotonic())
    router = APIRouter(
        tags=["observability"],
        lifespan=endpoints.lifespan,
        route_class=_NoSniffRoute,
        dependencies=[Depends(_first_use)],
    )
    router.add_api_route(
        "/metrics",
        endpoints.metrics,
        methods=["GET"],
        include_in_schema=False,
        response_class=Response,
        dependencies=[Depends(metrics_token_check(telemetry))],
    )
    router.add_api_route(
        "/health",
        endpoints.health,
        methods=["GET"],
        response_model=HealthCheckResponse,
        summary="Aggregated health of the service and its dependencies",
        responses={
            200: {"description": "Healthy or degraded", "content": HEALTH_JSON_SCHEMA},
            503: {"description": "Unhealthy", "model": HealthCheckResponse, "content": HEALTH_JSON_SCHEMA},
        },
    )
    router.add_api_route(
        "/health/live",
        endpoints.liveness,
        methods=["GET"],
        response_model=LivenessResponse,
        summary="Liveness probe",
    )
    router.add_api_route(
        "/health/ready",
        endpoints.readiness,
        methods=["GET"],
        response_model=ReadinessResponse,
        summary="Readiness probe",
        responses={503: {"model": ReadinessResponse, "description": "Not ready"}},
    )
    router.include_router(_api_router(endpoints, telemetry))
    router.add_api_route(
        "/observability",
        endpoints.page,
        methods=["GET"],
        include_in_schema=False,
        response_class=HTMLResponse,
    )
    router.add_api_route(
        "/observability",
        endpoints.page_login,
        methods=["POST"],
        include_in_schema=False,
        response_class=HTMLResponse,
    )
    return router


def _api_router(endpoints: ApiEndpoints, telemetry: Telemetry) -> APIRouter:
    api = APIRouter(
        prefix="/api/observability",
        dependencies=[Depends(token_check(telemetry))],
        responses=_UNAUTHORIZED,
        route_class=_NoSniffRoute,
    )
    api.add_api_route(
        "/dashboard",
        endpoints.dashboard,
        methods=["GET"],
        response_model=DashboardResponse,
        summary="Dashboard data from live signals",
    )
    api.add_api_route(
        "/metrics/snapshot",
        endpoints.metrics_snapshot,
        methods=["GET"],
        response_model=MetricsSnapshotResponse,
        summary="Every metric as JSON",
    )
    api.add_api_route(
        "/metrics/{name}",
        endpoints.metric_by_name,
        methods=["GET"],
        response_model=MetricModel,
        summary="One metric by OpenTelemetry or Prometheus name",
        responses={404: {"model": ErrorResponse, "description": "No such metric"}},
    )
    add_explorer_routes(api, telemetry)
    return api
