"""The health probes and the observability API, through real HTTP (TestClient and uvicorn)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import atoms_otel
from atoms_otel import (
    ComponentType,
    CustomHealthCheck,
    HealthStatus,
    UnhandledError,
    get_health_monitor,
    register_health_check,
)
from atoms_otel.endpoints.health import wants_health_json
from atoms_otel.plugins.signals import plugin as signals_plugin
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin
from atoms_otel.testing import CapturedTelemetry
from tests.support.health import isolated_health_state
from tests.support.server import serve

TOKEN = "obs-token-4f9a2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


@pytest.fixture
def app(capture_telemetry: CapturedTelemetry) -> FastAPI:
    application = FastAPI()
    capture_telemetry.reconfigure(app=application, service_name="atoms-mcp", service_version="1.4.2")
    return application


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def secured(capture_telemetry: CapturedTelemetry) -> TestClient:
    application = FastAPI()
    capture_telemetry.reconfigure(app=application, api_token=TOKEN)
    return TestClient(application)


def _register(name: str, result: Any, *, critical: bool = True, **options: Any) -> None:
    """Register a check returning ``result`` (or calling it, when it is a function)."""
    func = result if callable(result) else lambda: result
    register_health_check(CustomHealthCheck(name, ComponentType.DATABASE, func, critical, **options))


# -- /health ------------------------------------------------------------------------------------


def test_health_reports_service_and_components(client: TestClient) -> None:
    """200 with status, service, version, timestamp, uptime and each component's fields."""
    _register("db", True)
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["service"], body["version"]) == ("healthy", "atoms-mcp", "1.4.2")
    assert body["uptime_seconds"] >= 0
    assert body["timestamp"].endswith("Z")
    db = body["components"]["db"]
    assert set(db) == {
        "status",
        "component_type",
        "critical",
        "response_time_ms",
        "message",
        "last_checked",
        "details",
    }
    assert (db["status"], db["component_type"], db["critical"]) == ("healthy", "database", True)


def test_health_is_503_when_a_critical_component_is_unhealthy(client: TestClient) -> None:
    """A failing critical dependency makes the whole service unhealthy: 503."""
    _register("db", False)
    response = client.get("/health")
    assert (response.status_code, response.json()["status"]) == (503, "unhealthy")


def test_health_is_200_degraded_when_a_noncritical_component_fails(client: TestClient) -> None:
    """A failing optional dependency degrades the service but it still answers 200."""
    _register("db", True)
    _register("search", False, critical=False)
    response = client.get("/health")
    assert (response.status_code, response.json()["status"]) == (200, "degraded")


def test_health_json_format_on_request(client: TestClient) -> None:
    """Accept: application/health+json gets the IETF format and media type."""
    _register("db", True)
    _register("search", HealthStatus.DEGRADED, critical=False)
    response = client.get("/health", headers={"Accept": "application/health+json"})
    body = response.json()
    assert response.headers["content-type"] == "application/health+json"
    assert (body["status"], body["serviceId"], body["releaseId"]) == ("warn", "atoms-mcp", "1.4.2")
    assert body["checks"]["db:responseTime"][0]["status"] == "pass"
    assert body["checks"]["db:responseTime"][0]["componentType"] == "datastore"
    assert body["checks"]["search:responseTime"][0]["status"] == "warn"


def test_health_json_fail_is_503(client: TestClient) -> None:
    """An unhealthy service is "fail" with a 503 in the IETF format too."""
    _register("db", False)
    response = client.get("/health", headers={"Accept": "application/health+json"})
    assert (response.status_code, response.json()["status"]) == (503, "fail")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/health+json", True),
        ("application/health+json, application/json;q=0.9", True),
        ("application/json, application/health+json;q=0.5", False),
        ("application/health+json;q=0", False),
        ("application/health+json;q=banana", False),
        ("application/health+json;q=nan", False),
        (";;;,,,=q=", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_accept_negotiation(accept: str, expected: bool) -> None:
    """health+json only when preferred at least as much as JSON; malformed values fall back to JSON."""
    assert wants_health_json(accept) is expected


def test_huge_or_malformed_accept_gets_plain_json(client: TestClient) -> None:
    """An 8 KB or garbled Accept header is answered normally with JSON."""
    _register("db", True)
    for accept in (
        "text/html;q=" + "9" * 8000,
        "\x7f;;q=1,,," * 50,
        "application/health+json" + ",x/y" * 2000,
    ):
        response = client.get("/health", headers={"Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"] in ("application/json", "application/health+json")


def test_large_accept_header_over_real_http_gets_plain_json(app: FastAPI) -> None:
    """Through uvicorn, a 12 KB Accept header is parsed within bounds and answered with JSON."""
    _register("db", True)
    accept = ",".join(f"application/x-{i};q=0.{i % 10}" for i in range(600))
    with serve(app) as base:
        response = httpx.get(f"{base}/health", headers={"Accept": accept})
    assert len(accept) > 12_000
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")


def test_checks_returning_garbage_give_a_clear_answer(client: TestClient) -> None:
    """A check returning nonsense shows as unknown with a message; /health still answers."""
    _register("weird", object(), critical=False)
    body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["components"]["weird"]["status"] == "unknown"
    assert "unsupported value" in body["components"]["weird"]["message"]


def test_five_one_second_checks_answer_in_about_a_second(app: FastAPI) -> None:
    """Over real HTTP, five blocking 1 s checks cost about one second, not five."""
    for i in range(5):
        _register(f"dep{i}", lambda: time.sleep(1.0) or True)
    with serve(app) as base:
        start = time.perf_counter()
        response = httpx.get(f"{base}/health", timeout=10)
        elapsed = time.perf_counter() - start
    assert response.json()["status"] == "healthy"
    assert 1.0 <= elapsed < 3.0


def test_hanging_check_cannot_hang_health(app: FastAPI) -> None:
    """A check that never returns costs its timeout; /health answers with it unhealthy."""
    _register("stuck", lambda: time.sleep(30), timeout_s=0.5)
    with serve(app) as base:
        start = time.perf_counter()
        response = httpx.get(f"{base}/health", timeout=10)
        elapsed = time.perf_counter() - start
    assert response.status_code == 503
    assert response.json()["components"]["stuck"]["message"] == "timed out after 0.5 s"
    assert elapsed < 3.0


# -- probes -------------------------------------------------------------------------------------


def test_liveness_never_runs_checks(client: TestClient) -> None:
    """/health/live answers 200 even with a failing critical check, without calling it."""
    calls: list[int] = []
    register_health_check(
        CustomHealthCheck("db", ComponentType.DATABASE, lambda: calls.append(1) or False, critical=True)
    )
    response = client.get("/health/live")
    assert (response.status_code, response.json()["status"]) == (200, "alive")
    assert calls == []


def test_readiness_is_503_while_a_critical_component_is_unhealthy(client: TestClient) -> None:
    """Not ready, naming the failing critical components."""
    _register("db", False)
    _register("search", False, critical=False)
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not_ready",
        "reason": "critical component unhealthy",
        "failing_components": ["db"],
    }


def test_readiness_is_200_when_only_degraded(client: TestClient) -> None:
    """Degraded is still ready: traffic keeps flowing."""
    _register("db", HealthStatus.DEGRADED)
    _register("search", False, critical=False)
    assert client.get("/health/ready").json()["status"] == "ready"


def test_readiness_is_503_before_configure() -> None:
    """Setup incomplete: the router without configure() is not ready."""
    atoms_otel.shutdown()
    application = FastAPI()
    application.include_router(atoms_otel.router)
    response = TestClient(application).get("/health/ready")
    assert (response.status_code, response.json()["reason"]) == (503, "telemetry is not configured yet")


def test_readiness_is_503_once_shutdown_begins(app: FastAPI) -> None:
    """After the lifespan's shutdown starts, readiness drains traffic away."""
    with TestClient(app) as running:
        assert running.get("/health/ready").status_code == 200
    response = TestClient(app).get("/health/ready")
    assert (response.status_code, response.json()["reason"]) == (503, "shutting down")


def test_background_refresh_keeps_the_gauge_current(app: FastAPI) -> None:
    """While the app serves, the checks re-run on their own; the gauge follows without probes."""
    state = {"ok": True}
    register_health_check(CustomHealthCheck("db", ComponentType.DATABASE, lambda: state["ok"]))
    get_health_monitor().refresh_interval_s = 0.1
    with serve(app) as base:
        deadline = time.monotonic() + 5
        while "db" not in get_health_monitor().last_results() and time.monotonic() < deadline:
            time.sleep(0.05)
        state["ok"] = False
        while time.monotonic() < deadline:
            text = httpx.get(f"{base}/metrics").text
            if 'health_check_status{component="db"} 0.0' in text:
                break
            time.sleep(0.05)
    assert 'health_check_status{component="db"} 0.0' in text


# -- observability API --------------------------------------------------------------------------


def test_dashboard_computes_rates_and_latency(client: TestClient) -> None:
    """Request count, error rate and percentiles come from the recorded HTTP metrics."""
    for i in range(20):
        atoms_otel.record_http_request("GET", "/items/{id}", 500 if i < 5 else 200, 0.2)
    body = client.get("/api/observability/dashboard").json()
    requests = body["requests"]
    assert (requests["requests"], requests["errors"], requests["error_rate"]) == (20.0, 5.0, 0.25)
    assert requests["request_rate"] > 0
    assert 100.0 < requests["latency"]["p50_ms"] <= requests["latency"]["p95_ms"] <= 250.0


def test_dashboard_lists_top_tools_by_calls_and_errors(client: TestClient) -> None:
    """Tools are ranked by calls, and separately by errors (only tools that failed)."""
    for _ in range(5):
        atoms_otel.record_tool_execution("search", 0.05, True)
    for success in (True, False, False):
        atoms_otel.record_tool_execution("create_user", 0.2, success)
    atoms_otel.record_tool_execution("delete_user", 0.1, True)
    body = client.get("/api/observability/dashboard", params={"top": 2}).json()
    assert [(t["tool"], t["calls"]) for t in body["top_tools_by_calls"]] == [
        ("search", 5.0),
        ("create_user", 3.0),
    ]
    assert [(t["tool"], t["errors"]) for t in body["top_tools_by_errors"]] == [("create_user", 2.0)]
    assert body["top_tools_by_calls"][1]["avg_duration_ms"] == pytest.approx(200.0)


def test_dashboard_shows_active_connections_and_health(client: TestClient) -> None:
    """The live connection gauge and each component's status are included."""
    _register("db", HealthStatus.DEGRADED)
    atoms_otel.get_metrics_registry().active_connections.set(3)
    body = client.get("/api/observability/dashboard").json()
    assert body["active_connections"] == 3.0 + 1  # the dashboard request itself is in flight
    assert body["health"] == {"status": "degraded", "components": {"db": "degraded"}}


def test_dashboard_shows_recent_errors_newest_first(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """error.unhandled events land in a bounded ring, served newest first."""
    assert capture_telemetry.telemetry is not None
    for i in range(105):
        capture_telemetry.telemetry.events.publish(
            UnhandledError(
                message=f"boom {i}",
                error_type="ValueError",
                method="POST",
                route="/tools/{name}",
                correlation_id=f"corr-{i}",
                trace_id="0af7651916cd43dd8448eb211c80319c",
            )
        )
    errors = client.get("/api/observability/dashboard", params={"errors": 100}).json()["recent_errors"]
    assert len(errors) == 100
    assert [e["message"] for e in errors[:2]] == ["boom 104", "boom 103"]
    assert errors[-1]["message"] == "boom 5"
    assert (errors[0]["error_type"], errors[0]["route"], errors[0]["status_code"]) == (
        "ValueError",
        "/tools/{name}",
        500,
    )


def test_dashboard_rejects_out_of_range_parameters(client: TestClient) -> None:
    """Bad query parameters get a 422 that names them."""
    response = client.get("/api/observability/dashboard", params={"window": "-5", "errors": "lots"})
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {("query", "window"), ("query", "errors")}


def test_snapshot_lists_every_metric_with_type_unit_and_points(client: TestClient) -> None:
    """Each metric has its type, description, unit and data points."""
    atoms_otel.record_http_request("GET", "/items/{id}", 200, 0.05)
    metrics = {m["name"]: m for m in client.get("/api/observability/metrics/snapshot").json()["metrics"]}
    requests = metrics["http.requests"]
    assert (requests["type"], requests["prometheus_name"], requests["unit"]) == (
        "counter",
        "http_requests_total",
        "",
    )
    assert requests["description"].startswith("Total HTTP requests")
    assert requests["data_points"][0]["attributes"] == {
        "method": "GET",
        "path": "/items/{id}",
        "status": "200",
    }
    assert requests["data_points"][0]["value"] == 1.0
    duration = metrics["http.request.duration"]
    assert (duration["type"], duration["unit"], duration["data_points"][0]["count"]) == ("histogram", "s", 1)
    assert duration["data_points"][0]["buckets"][-1]["le"] == "+Inf"


@pytest.mark.parametrize("name", ["http_requests_total", "http.requests"])
def test_metric_by_prometheus_or_otel_name(client: TestClient, name: str) -> None:
    """One metric can be fetched by either of its names."""
    atoms_otel.record_http_request("GET", "/", 200, 0.01)
    body = client.get(f"/api/observability/metrics/{name}").json()
    assert (body["name"], body["prometheus_name"]) == ("http.requests", "http_requests_total")


def test_prometheus_names_match_the_exposition(client: TestClient) -> None:
    """Every prometheus_name in the snapshot is a metric family on /metrics."""
    atoms_otel.record_http_request("GET", "/", 200, 0.01)
    atoms_otel.record_tool_execution("t", 0.01)
    names = [
        m["prometheus_name"] for m in client.get("/api/observability/metrics/snapshot").json()["metrics"]
    ]
    text = client.get("/metrics").text
    assert names
    assert [n for n in names if f"# TYPE {n} " not in text] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/observability/metrics/no_such_metric",
        "/api/observability/metrics/..%2F..%2Fetc%2Fpasswd",
        "/api/observability/metrics/%2e%2e",
        "/api/observability/metrics/" + "x" * 5000,
        "/api/observability/metrics/%00%ff",
    ],
    ids=["unknown", "encoded-traversal", "dots", "huge", "binary"],
)
def test_unknown_or_hostile_metric_names_get_a_json_404(client: TestClient, path: str) -> None:
    """Anything that is not a metric is a JSON 404; nothing is read outside the snapshot."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"] in (
        "Not Found",
        "unknown metric: no_such_metric",
        "unknown metric: (not a metric name)",
    )


def test_path_traversal_with_slashes_does_not_escape_the_api(client: TestClient) -> None:
    """A literal ../ is normalized or unmatched: never another endpoint's data."""
    response = client.get("/api/observability/metrics/../../../etc/passwd")
    assert response.status_code == 404


# -- bearer token -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/observability/dashboard",
        "/api/observability/metrics/snapshot",
        "/api/observability/metrics/errors",
    ],
)
def test_api_requires_the_token(secured: TestClient, path: str) -> None:
    """Without the token: 401 with a Bearer challenge."""
    response = secured.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "missing or invalid bearer token"}


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", f"bearer{TOKEN}", "Bearer ünïcödé"]
)
def test_api_rejects_a_wrong_token(secured: TestClient, header: str) -> None:
    """Wrong, empty, differently-schemed or malformed (non-ASCII) credentials are all 401."""
    raw = header.encode("latin-1")
    assert secured.get("/api/observability/dashboard", headers={"Authorization": raw}).status_code == 401


def test_api_accepts_the_token(secured: TestClient) -> None:
    """The right bearer token opens the API."""
    assert secured.get("/api/observability/dashboard", headers=AUTH).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready", "/metrics"])
def test_probes_and_metrics_stay_open_with_a_token(secured: TestClient, path: str) -> None:
    """Kubernetes probes and the Prometheus scrape need no token by default."""
    assert secured.get(path).status_code == 200


def test_metrics_can_be_protected_too(capture_telemetry: CapturedTelemetry) -> None:
    """protect_metrics=True puts /metrics behind the same token."""
    application = FastAPI()
    capture_telemetry.reconfigure(app=application, api_token=TOKEN, protect_metrics=True)
    http = TestClient(application)
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers=AUTH).status_code == 200


def test_token_comes_from_the_environment(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_API_TOKEN protects the API without any code change."""
    monkeypatch.setenv("ATOMS_OTEL_API_TOKEN", TOKEN)
    application = FastAPI()
    capture_telemetry.reconfigure(app=application)
    http = TestClient(application)
    assert http.get("/api/observability/metrics/snapshot").status_code == 401
    assert http.get("/api/observability/metrics/snapshot", headers=AUTH).status_code == 200


# -- OpenAPI ------------------------------------------------------------------------------------


def test_openapi_documents_every_endpoint_with_its_model(client: TestClient) -> None:
    """The endpoints and their response models are in the schema; /metrics is not JSON and is hidden."""
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    refs = {
        path: paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit(
            "/", 1
        )[1]
        for path in paths
    }
    assert refs == {
        "/health": "HealthCheckResponse",
        "/health/live": "LivenessResponse",
        "/health/ready": "ReadinessResponse",
        "/api/observability/dashboard": "DashboardResponse",
        "/api/observability/metrics/snapshot": "MetricsSnapshotResponse",
        "/api/observability/metrics/{name}": "MetricModel",
        "/api/observability/traces": "TracesResponse",
        "/api/observability/traces/{trace_id}": "TraceDetailResponse",
        "/api/observability/logs": "LogsResponse",
    }
    health_json = paths["/health"]["get"]["responses"]["200"]["content"]["application/health+json"]["schema"]
    assert set(health_json["properties"]) >= {"status", "checks", "serviceId"}
    assert "$ref" not in str(health_json)
    assert "ErrorResponse" in str(paths["/api/observability/metrics/{name}"]["get"]["responses"]["404"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_endpoints_work_with_telemetry_disabled(capture_telemetry: CapturedTelemetry) -> None:
    """With OTEL_SDK_DISABLED the probes and the API still answer, with empty numbers."""
    application = FastAPI()
    capture_telemetry.reconfigure(app=application, disabled=True)
    _register("db", True)
    http = TestClient(application)
    assert http.get("/health").json()["status"] == "healthy"
    assert http.get("/health/ready").status_code == 200
    dashboard = http.get("/api/observability/dashboard").json()
    assert (dashboard["requests"]["requests"], dashboard["top_tools_by_calls"]) == (0.0, [])
    assert http.get("/api/observability/metrics/snapshot").json()["metrics"] == []
    assert http.get("/api/observability/metrics/http_requests_total").status_code == 404


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_protecting_metrics_without_a_token_fails_configure(
    monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """protect_metrics without api_token is a configuration error naming both settings."""
    monkeypatch.delenv("ATOMS_OTEL_API_TOKEN", raising=False)
    if source == "environment":
        monkeypatch.setenv("ATOMS_OTEL_PROTECT_METRICS", "true")
    options = {"protect_metrics": True} if source == "argument" else {}
    with pytest.raises(
        atoms_otel.ConfigurationError, match=r"PROTECT_METRICS=true: needs api_token|protect_metrics=true"
    ):
        atoms_otel.configure(**options)


# -- what the live view needs -------------------------------------------------------------------


def test_dashboard_has_series_status_codes_routes_and_health_messages(client: TestClient) -> None:
    """The live view's data: a time series, codes over the window, routes, each check's message."""
    _register("payments", {"status": "degraded", "message": "p95 1.4 s"}, critical=False)
    client.get("/api/observability/dashboard")  # a first reading (itself counted as one more 200)
    for status in (200, 200, 404, 500):
        atoms_otel.record_http_request("GET", "/items/{id}", status, 0.1)
    time.sleep(1.1)  # readings closer than 1 s are not stored
    body = client.get("/api/observability/dashboard").json()
    assert body["requests"]["status_codes"] == {"200": 3.0, "404": 1.0, "500": 1.0}
    assert sum(p["requests"] for p in body["series"]) == 5.0
    assert sum(p["errors"] for p in body["series"]) == 1.0
    routes = {(r["method"], r["route"]): r for r in body["routes"]}
    items = routes[("GET", "/items/{id}")]
    assert (items["requests"], items["client_errors"], items["server_errors"]) == (4.0, 1.0, 1.0)
    assert routes[("GET", "/api/observability/dashboard")]["requests"] == 1.0
    payments = body["health_checks"]["payments"]
    assert (payments["status"], payments["message"], payments["critical"]) == ("degraded", "p95 1.4 s", False)


def test_dashboard_lists_the_busiest_routes_first(client: TestClient) -> None:
    """routes=N keeps the N routes with the most requests."""
    for path, count in (("/a", 1), ("/b", 3), ("/c", 2)):
        for _ in range(count):
            atoms_otel.record_http_request("GET", path, 200, 0.01)
    body = client.get("/api/observability/dashboard", params={"routes": 2}).json()
    assert [r["route"] for r in body["routes"]] == ["/b", "/c"]


@pytest.mark.parametrize(("name", "value"), [("routes", "101"), ("points", "1"), ("points", "301")])
def test_dashboard_bounds_routes_and_points(client: TestClient, name: str, value: str) -> None:
    """The list and series sizes are capped: out-of-range values are a 422 naming the parameter."""
    response = client.get("/api/observability/dashboard", params={name: value})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", name]


def test_serving_app_takes_readings_without_anyone_asking(
    app: FastAPI, capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the app serves, the router's lifespan feeds the ring, so the series covers idle minutes."""
    monkeypatch.setattr(signals_plugin, "SAMPLE_INTERVAL_S", 0.2)
    assert capture_telemetry.telemetry is not None
    signals = capture_telemetry.telemetry.plugin(LiveSignalsPlugin)
    assert signals is not None
    before = len(signals.live._samples)
    with serve(app):
        time.sleep(2.6)
    assert len(signals.live._samples) - before >= 2


def test_metrics_negotiates_openmetrics_and_gzip(client: TestClient) -> None:
    """Accept: application/openmetrics-text gets OpenMetrics 1.0 (# EOF, counter families named
    without _total); Accept-Encoding:
    gzip gets the same bytes compressed; the default stays text 0.0.4."""
    import gzip

    client.get("/metrics")
    plain = client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers["content-type"].startswith("text/plain;")
    assert "# EOF" not in plain.text and "http_requests_total{" in plain.text
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.endswith("# EOF\n") and "# TYPE http_requests counter" in om.text
    raw = client.get("/metrics", headers={"Accept-Encoding": "gzip"}, extensions={})
    assert raw.headers["content-encoding"] == "gzip" and "Accept-Encoding" in raw.headers["vary"]
    assert "http_requests_total{" in raw.text  # the client decompressed it
    assert gzip.decompress(gzip.compress(raw.content)) == raw.content
    refused = client.get("/metrics", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
