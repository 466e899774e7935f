"""Instrument a FastAPI app: the request middleware, endpoints and startup hooks, installed once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from atoms_otel.base import guard as _guard
from atoms_otel.base.compat import disable_fastapi_native_telemetry
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.producers.http.engine import TelemetryMiddleware
from atoms_otel.producers.http.serverless import ServerlessFlushMiddleware
from atoms_otel.producers.mcp import instrument_mcp

__all__ = ["instrument_fastapi", "route_paths"]

_MARK = "_atoms_otel_instrumented"
_logger = logging.getLogger("atoms_otel")


def instrument_fastapi(
    app: Any,
    telemetry: Telemetry,
    *,
    router: APIRouter | None,
    middleware: type[TelemetryMiddleware] = TelemetryMiddleware,
    flush_middleware: type[ServerlessFlushMiddleware] = ServerlessFlushMiddleware,
) -> None:
    """Add the request middleware, ``/metrics`` (and the observability router), instrument the MCP
    servers mounted on the app (``instrument_mcp``), and reroute server logs at startup.

    Idempotent: calling configure(app=app) again does not install anything twice. Call it before
    the app starts serving (at import time): an app that already built its middleware stack gets
    the middleware wrapped around the whole stack instead. ``router=None`` adds no routes.
    ``middleware`` and ``flush_middleware`` are the classes installed (the facade passes its own,
    so ``isinstance`` checks against ``atoms_otel.TelemetryMiddleware`` hold).
    """
    if not isinstance(app, FastAPI):
        raise TypeError(f"configure(app=...) expects a FastAPI application, got {type(app).__name__}")
    if app not in telemetry.apps:
        telemetry.apps.append(app)
    if getattr(app.state, _MARK, False):
        return
    setattr(app.state, _MARK, True)

    if router is not None and "/metrics" not in route_paths(app.router.routes):
        app.include_router(router)
    _wrap_lifespan(app, telemetry)
    # FastAPI >= 0.16x opens its own server span, duration histogram and operation spans as soon
    # as global providers exist. Our middleware produces the server span and the contract metrics
    # at a fraction of the cost (bench/bench_http.py): one server span per request, never two.
    disable_fastapi_native_telemetry(app)
    _install(app, middleware, telemetry)
    for server in _mounted_mcp_servers(app.router.routes):
        instrument_mcp(server, telemetry=telemetry)
    if telemetry.settings.serverless:
        # Installed last, so it is the outermost of the app's middleware and flushes after every
        # other middleware has ended its span.
        _install(app, flush_middleware, telemetry)


def route_paths(routes: Any, prefix: str = "") -> list[str]:
    """Every path the routes serve, including those of included routers (FastAPI >= 0.165
    includes routers lazily, as one entry holding the original router)."""
    paths: list[str] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            paths += route_paths(included.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif isinstance(getattr(route, "path", None), str):
            paths.append(prefix + route.path)
    return paths


def _wrap_lifespan(app: Any, telemetry: Telemetry) -> None:
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        # uvicorn/gunicorn install their own log handlers after configure() ran; take them back.
        if telemetry.logging is not None:
            telemetry.logging.reroute_server_loggers()
        try:
            async with original(application) as state:
                yield state
        finally:
            # The server is stopping (uvicorn and gunicorn's workers re-raise SIGTERM afterwards, so
            # atexit never runs): export what the processors and the metric reader hold now. The
            # handle is flushed, not shut down: the app (or another one) may be started again.
            await anyio.to_thread.run_sync(_flush, telemetry)

    app.router.lifespan_context = lifespan


def _flush(telemetry: Telemetry) -> None:
    with _guard.guard("flush at lifespan shutdown"):
        telemetry.force_flush()


def _mounted_mcp_servers(routes: Any, depth: int = 0) -> list[Any]:
    """The MCP SDK servers behind the apps mounted on these routes (``mcp.streamable_http_app()``).

    Found through the SDK's streamable-HTTP endpoint (``session_manager.app``), unwrapping auth
    middleware; anything else is ignored, so an unknown SDK layout only means "none found"."""
    servers: list[Any] = []
    if depth > 4:
        return servers
    for route in routes:
        endpoint = getattr(route, "app", None)
        for _ in range(4):  # RequireAuthMiddleware and similar wrappers keep the endpoint in .app
            manager = getattr(endpoint, "session_manager", None)
            server = getattr(manager, "app", None)
            if isinstance(getattr(server, "middleware", None), list):
                if server not in servers:
                    servers.append(server)
                break
            endpoint = getattr(endpoint, "app", None)
        inner = getattr(getattr(route, "app", None), "routes", None)
        if isinstance(inner, list):
            servers += [s for s in _mounted_mcp_servers(inner, depth + 1) if s not in servers]
    return servers


def _install(app: Any, middleware: type[Any], telemetry: Telemetry) -> None:
    if app.middleware_stack is None:
        # Outermost of the user's middleware (inside Starlette's ServerErrorMiddleware), so the
        # span and the timings cover the app's own middleware too.
        app.add_middleware(middleware, telemetry=telemetry)
        return
    if issubclass(middleware, TelemetryMiddleware):
        _logger.warning(
            "atoms_otel: configure(app=...) was called after the app started; wrapping its middleware "
            "stack. Call configure() at import time so errors get the JSON 500 with the correlation id."
        )
    app.middleware_stack = middleware(app.middleware_stack, telemetry=telemetry)
