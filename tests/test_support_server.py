"""The uvicorn fixture helper the end-to-end tests rely on."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.support.server import serve


def test_serves_a_fastapi_app_on_loopback() -> None:
    """Requests reach the app through a real socket; the server stops afterwards."""
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with serve(app) as base_url:
        response = httpx.get(f"{base_url}/ping")
    assert response.json() == {"pong": "yes"}
    try:
        httpx.get(f"{base_url}/ping", timeout=0.5)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("server still answering after the context exited")
