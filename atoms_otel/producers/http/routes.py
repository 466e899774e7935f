"""The route template of a request — what the ``path`` label and the span name carry.

Never the raw path: a client choosing URLs must not be able to create metric series. FastAPI
knows the full template of the route it selected (router prefixes, nested routers, mounts with
parameters), and reports it to a request-telemetry object it finds in the scope. When FastAPI's
own telemetry is off for the app (configure(app=) turns it off, see middleware/_engine.py) we put
such an object in the scope ourselves, so the template comes from the router that routed the
request. Plain Starlette apps, or FastAPI versions without that hook, fall back to
``scope["route"]``. Anything that matched no route collapses into :data:`UNMATCHED`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from atoms_otel.base.compat import new_route_tracker

__all__ = ["TRACKER_KEY", "UNMATCHED", "install_route_tracker", "route_template"]

UNMATCHED: Final = "unmatched"
"""The ``path`` label of requests that matched no route — 404s, Starlette's trailing-slash
redirects (307), and requests a mounted sub-app's router did not match; never a real template."""

TRACKER_KEY: Final = "fastapi.telemetry"
"""Where FastAPI looks for the object it reports the selected route to."""
_MOUNT_SUFFIX: Final = "/{path}"


def install_route_tracker(scope: MutableMapping[str, Any]) -> Any:
    """Make the router report the route template it selects; returns the object it reports to.

    If FastAPI's native telemetry already put one in the scope, that one is returned (and it
    carries FastAPI's server span). Its presence also stops mounted FastAPI sub-apps from opening
    their own server span for this request.
    """
    existing = scope.get(TRACKER_KEY)
    if existing is not None:
        return existing
    tracker = new_route_tracker(scope)
    if tracker is not None:
        scope[TRACKER_KEY] = tracker
    return tracker


def route_template(scope: MutableMapping[str, Any], tracker: Any, root_path: str) -> str:
    """The template of the route that handled the request (``/items/{item_id}``), or UNMATCHED.

    ``root_path`` is the scope's root path when the request entered the middleware.
    """
    if not _dispatched(scope):
        return UNMATCHED
    route = getattr(tracker, "route", None)
    if isinstance(route, str):
        if route.endswith(_MOUNT_SUFFIX):
            return _refine_mount(scope, route, root_path)
        return route
    return _starlette_template(scope, root_path)


def _dispatched(scope: MutableMapping[str, Any]) -> bool:
    """Whether a router handed the request to a route. Starlette's routers put the chosen
    ``endpoint`` (and, for a route, the ``route``) in the scope; a trailing-slash redirect and a
    404 leave them unset — even when the route the redirect points to was reported as matched.
    A mounted app with a router of its own (a Starlette or FastAPI sub-app) counts only when its
    router chose a route; any other mounted ASGI app (static files) handles the whole mount."""
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return False
    if "route" in scope:
        return True
    return not isinstance(getattr(endpoint, "routes", None), list)


def _segments(path: str) -> int:
    return path.count("/")


def _refine_mount(scope: MutableMapping[str, Any], route: str, root_path: str) -> str:
    """A mounted non-FastAPI app (e.g. the MCP app) is reported as ``/prefix/{path}``; when the
    mount is one level deep, its inner Starlette route gives the rest of the template."""
    inner = scope.get("route")
    inner_format = getattr(inner, "path_format", None)
    if not isinstance(inner_format, str) or inner_format.endswith(_MOUNT_SUFFIX):
        return route
    prefix = route[: -len(_MOUNT_SUFFIX)]
    raw_prefix = scope.get("root_path", "")[len(root_path) :]
    if _segments(raw_prefix) != _segments(prefix):
        return route
    return prefix + inner_format


def _starlette_template(scope: MutableMapping[str, Any], root_path: str) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return UNMATCHED
    raw_prefix = scope.get("root_path", "")[len(root_path) :]
    if not raw_prefix:
        return template
    # Through a mount whose template we cannot see: name the mount, not the raw path.
    mount = _matching_mount(scope, root_path)
    return mount if mount is not None else UNMATCHED


def _matching_mount(scope: MutableMapping[str, Any], root_path: str) -> str | None:
    router = scope.get("router")
    path = scope.get("path", "")[len(root_path) :]
    for candidate in getattr(router, "routes", ()):
        regex = getattr(candidate, "path_regex", None)
        template = getattr(candidate, "path_format", None)
        if regex is None or not isinstance(template, str) or not template.endswith(_MOUNT_SUFFIX):
            continue
        if regex.match(path):
            return template
    return None
