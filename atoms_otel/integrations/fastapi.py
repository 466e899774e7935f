"""Instrument a FastAPI app: the request middleware, endpoints and startup hooks, installed once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atoms_otel.core.telemetry import Telemetry

__all__ = ["instrument_app", "route_paths"]

_MARK = "_atoms_otel_instrumented"
_logger = logging.getLogger("atoms_otel")

# FastAPI >= 0.16x opens its own server span, duration histogram and operation spans as soon as
# global providers exist. Our middleware produces the server span and the contract metrics at a
# fraction of the cost (bench/bench_http.py), so the native telemetry is turned off for the apps
# we instrument: one server span per request, never two.
_NATIVE_OFF = {"tracing": False, "metrics": False, "logs": False}


def instrument_app(app: Any, telemetry: Telemetry) -> None:
    """Add the request middleware, ``/metrics`` (and the observability router), instrument the MCP
    servers mounted on the app (``instrument_mcp``), and reroute server logs at startup.

    Idempotent: calling configure(app=app) again does not install anything twice. Call it before
    the app starts serving (at import time): an app that already built its middleware stack gets
    the middleware wrapped around the whole stack instead.
    """
    from fastapi import FastAPI

    if not isinstance(app, FastAPI):
        raise TypeError(f"configure(app=...) expects a FastAPI application, got {type(app).__name__}")
    if app not in telemetry.apps:
        telemetry.apps.append(app)
    if getattr(app.state, _MARK, False):
        return
    setattr(app.state, _MARK, True)

    from atoms_otel.endpoints.router import router

    if "/metrics" not in route_paths(app.router.routes):
        app.include_router(router)
    _wrap_lifespan(app)
    _disable_native_telemetry(app)
    _install_middleware(app)
    for server in _mounted_mcp_servers(app.router.routes):
        from atoms_otel.producers.mcp import instrument_mcp

        instrument_mcp(server)
    if telemetry.settings.serverless:
        _install_serverless_flush(app)


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


def _wrap_lifespan(app: Any) -> None:
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        # uvicorn/gunicorn install their own log handlers after configure() ran; take them back.
        from atoms_otel.core.telemetry import get_telemetry

        telemetry = get_telemetry()
        if telemetry is not None and telemetry.logging is not None:
            telemetry.logging.reroute_server_loggers()
        async with original(application) as state:
            yield state

    app.router.lifespan_context = lifespan


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


def _disable_native_telemetry(app: Any) -> None:
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        config.update(_NATIVE_OFF)


def _install_middleware(app: Any) -> None:
    from atoms_otel.producers.http.middleware import TelemetryMiddleware

    if app.middleware_stack is None:
        # Outermost of the user's middleware (inside Starlette's ServerErrorMiddleware), so the
        # span and the timings cover the app's own middleware too.
        app.add_middleware(TelemetryMiddleware)
        return
    _logger.warning(
        "atoms_otel: configure(app=...) was called after the app started; wrapping its middleware "
        "stack. Call configure() at import time so errors get the JSON 500 with the correlation id."
    )
    app.middleware_stack = TelemetryMiddleware(app.middleware_stack)


def _install_serverless_flush(app: Any) -> None:
    """Serverless mode: flush before each response ends. Installed last, so it is the outermost of
    the app's middleware and flushes after every other middleware has ended its span."""
    from atoms_otel.producers.http.serverless import ServerlessFlushMiddleware

    if app.middleware_stack is None:
        app.add_middleware(ServerlessFlushMiddleware)
    else:  # configure(app=...) after the app started: wrap the built stack
        app.middleware_stack = ServerlessFlushMiddleware(app.middleware_stack)
