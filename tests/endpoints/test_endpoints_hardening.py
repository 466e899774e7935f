"""Fail-closed auth after shutdown, strict metric names, nosniff — over a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from atoms_otel.testing import CapturedTelemetry
from tests.support.health import isolated_health_state
from tests.support.server import serve

TOKEN = "obs-token-4f9a2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


def test_after_shutdown_a_token_protected_api_and_page_fail_closed(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """shutdown() does not open the API, the page or a protected /metrics to requests without the token."""
    app = FastAPI()
    telemetry = capture_telemetry.reconfigure(app=app, api_token=TOKEN, protect_metrics=True)
    with serve(app) as base:
        assert httpx.get(f"{base}/api/observability/metrics/snapshot", headers=AUTH).status_code == 200
        telemetry.shutdown()
        for path in ("/api/observability/metrics/snapshot", "/api/observability/dashboard", "/metrics"):
            assert httpx.get(f"{base}{path}").status_code == 401, path
            assert httpx.get(f"{base}{path}", headers=AUTH).status_code == 401, path
        page = httpx.get(f"{base}/observability?token={TOKEN}", headers={"Accept": "text/html"})
        assert page.status_code == 401 and "<form" in page.text


def test_after_shutdown_a_handle_without_token_stays_open(capture_telemetry: CapturedTelemetry) -> None:
    """No token was ever configured: nothing to fail closed on, the API answers as before."""
    app = FastAPI()
    telemetry = capture_telemetry.reconfigure(app=app)
    with serve(app) as base:
        telemetry.shutdown()
        assert httpx.get(f"{base}/api/observability/metrics/snapshot").status_code == 200


def test_a_metric_name_with_a_trailing_newline_is_not_a_metric_name(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """'/metrics/http_requests_total%0A' is a 404 that does not echo the name; the plain name is found."""
    app = FastAPI()
    capture_telemetry.reconfigure(app=app)
    with serve(app) as base:
        httpx.get(f"{base}/missing")
        assert httpx.get(f"{base}/api/observability/metrics/http_requests_total").status_code == 200
        response = httpx.get(f"{base}/api/observability/metrics/http_requests_total%0A")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown metric: (not a metric name)"}


def test_json_api_responses_carry_nosniff(capture_telemetry: CapturedTelemetry) -> None:
    """200s, 404s and 401s of the JSON API and the health endpoints all carry nosniff."""
    app = FastAPI()
    capture_telemetry.reconfigure(app=app, api_token=TOKEN)
    with serve(app) as base:
        responses = [
            httpx.get(f"{base}/api/observability/metrics/snapshot", headers=AUTH),
            httpx.get(f"{base}/api/observability/metrics/nope", headers=AUTH),
            httpx.get(f"{base}/api/observability/dashboard"),
            httpx.get(f"{base}/health"),
            httpx.get(f"{base}/health/ready"),
        ]
    assert [r.status_code for r in responses] == [200, 404, 401, 200, 200]
    for response in responses:
        assert response.headers.get("x-content-type-options") == "nosniff", response.url
