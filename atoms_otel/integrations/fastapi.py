"""Instrument a FastAPI app: endpoints and startup hooks, installed once per app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atoms_otel.config import Telemetry

__all__ = ["instrument_app", "route_paths"]

_MARK = "_atoms_otel_instrumented"


def instrument_app(app: Any, telemetry: Telemetry) -> None:
    """Add ``/metrics`` (and the observability router) and reroute server logs at startup.

    Idempotent: calling configure(app=app) again does not install anything twice.
    """
    from fastapi import FastAPI

    if not isinstance(app, FastAPI):
        raise TypeError(f"configure(app=...) expects a FastAPI application, got {type(app).__name__}")
    if app not in telemetry.apps:
        telemetry.apps.append(app)
    if getattr(app.state, _MARK, False):
        return
    setattr(app.state, _MARK, True)

    from atoms_otel.endpoints import router

    if "/metrics" not in route_paths(app.router.routes):
        app.include_router(router)
    _wrap_lifespan(app)
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
        from atoms_otel.config import get_telemetry

        telemetry = get_telemetry()
        if telemetry is not None and telemetry.logging is not None:
            telemetry.logging.reroute_server_loggers()
        async with original(application) as state:
            yield state

    app.router.lifespan_context = lifespan


def _install_serverless_flush(app: Any) -> None:
    """Serverless mode: flush before each response ends. Installed last, so it is the outermost of
    the app's middleware and flushes after every other middleware has ended its span."""
    from atoms_otel.serverless import ServerlessFlushMiddleware

    if app.middleware_stack is None:
        app.add_middleware(ServerlessFlushMiddleware)
    else:  # configure(app=...) after the app started: wrap the built stack
        app.middleware_stack = ServerlessFlushMiddleware(app.middleware_stack)
