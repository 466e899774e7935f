"""GET /observability: the HTML served, its security headers, token protection and escaping rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import atoms_otel
from atoms_otel.testing import CapturedTelemetry
from tests.support.health import isolated_health_state

TOKEN = "page-token-7d1e"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PAGE_SOURCE = Path(atoms_otel.__file__).parent / "endpoints" / "static" / "observability.html"


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


@pytest.fixture
def client(capture_telemetry: CapturedTelemetry) -> TestClient:
    application = FastAPI()
    capture_telemetry.reconfigure(app=application, service_name="page-test")
    return TestClient(application)


@pytest.fixture
def secured(capture_telemetry: CapturedTelemetry) -> TestClient:
    application = FastAPI()
    capture_telemetry.reconfigure(app=application, api_token=TOKEN)
    return TestClient(application)


def _nonce(policy: str) -> str:
    match = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", policy)
    assert match, policy
    return match.group(1)


# -- the document -------------------------------------------------------------------------------


def test_page_is_one_html_document_with_every_panel(client: TestClient) -> None:
    """200 text/html with the charts, percentiles, status codes, routes, tools, health and errors."""
    response = client.get("/observability", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for element_id in (
        "chart-rate",
        "chart-errors",
        "p50",
        "p95",
        "p99",
        "status-bar",
        "routes",
        "tools",
        "health",
        "connections",
        "errors",
        "status",
    ):
        assert f'id="{element_id}"' in response.text, element_id


def test_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    """No CDN or external URL: the only URL the document names is the SVG namespace."""
    text = client.get("/observability").text
    assert re.findall(r"(?:https?:)?//[\w.-]+", text) == ["http://www.w3.org"]
    assert "<script src" not in text
    assert '<link rel="stylesheet"' not in text


def test_page_polls_the_dashboard_api_relative_to_itself(client: TestClient) -> None:
    """The script fetches api/observability/dashboard relative to the page (works under a prefix)."""
    text = client.get("/observability").text
    assert 'new URL("api/observability/dashboard", location.href)' in text


def test_page_is_not_in_the_openapi_schema(client: TestClient) -> None:
    """The live view is HTML for people, not an API operation."""
    assert "/observability" not in client.get("/openapi.json").json()["paths"]


# -- security headers -----------------------------------------------------------------------------


def test_csp_allows_only_this_responses_script_and_style(client: TestClient) -> None:
    """The CSP names a nonce that the page's one script and one style carry; nothing else runs."""
    response = client.get("/observability")
    policy = response.headers["content-security-policy"]
    nonce = _nonce(policy)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": f"'nonce-{nonce}'",
        "style-src": f"'nonce-{nonce}'",
        "connect-src": "'self'",
        "img-src": "data:",
        "form-action": "'self'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "require-trusted-types-for": "'script'",
        "trusted-types": "'none'",
    }
    assert re.findall(r"<script[^>]*>", response.text) == [f'<script nonce="{nonce}">']
    assert re.findall(r"<style[^>]*>", response.text) == [f'<style nonce="{nonce}">']


def test_csp_nonce_is_new_for_every_response(client: TestClient) -> None:
    """A nonce seen once is useless for the next response."""
    nonces = {_nonce(client.get("/observability").headers["content-security-policy"]) for _ in range(5)}
    assert len(nonces) == 5
    assert all(len(n) >= 22 for n in nonces)


def test_page_headers_forbid_caching_framing_sniffing_and_referrers(client: TestClient) -> None:
    """The URL may carry the token once: it must not leak through Referer, caches or frames."""
    headers = client.get("/observability").headers
    assert (
        headers["referrer-policy"],
        headers["cache-control"],
        headers["x-content-type-options"],
        headers["x-frame-options"],
    ) == ("no-referrer", "no-store", "nosniff", "DENY")


def test_page_has_no_inline_event_handlers(client: TestClient) -> None:
    """Inline handlers would be blocked by the CSP anyway; the page uses none."""
    assert re.search(r"\son[a-z]+\s*=", client.get("/observability").text) is None


# -- escaping ------------------------------------------------------------------------------------


def test_page_embeds_no_data(client: TestClient) -> None:
    """A hostile route name recorded before the request is not in the HTML: data only arrives as JSON."""
    atoms_otel.record_http_request("GET", "/x/<img src=x onerror=alert(1)>", 500, 0.1)
    atoms_otel.record_tool_execution("</script><script>alert(1)</script>", 0.1, False)
    text = client.get("/observability").text
    assert "onerror=alert" not in text
    assert "alert(1)" not in text


def test_hostile_values_reach_the_page_only_as_json_strings(client: TestClient) -> None:
    """The API returns markup in names verbatim inside JSON; the page renders it as text."""
    route = '/x/<img src=x onerror="alert(1)">'
    atoms_otel.record_http_request("GET", route, 500, 0.1)
    body = client.get("/api/observability/dashboard").json()
    assert [r["route"] for r in body["routes"]] == [route]


def test_script_renders_values_only_through_text_and_numeric_attributes() -> None:
    """The script has no HTML sinks (innerHTML, insertAdjacentHTML, document.write, eval, handlers)."""
    source = PAGE_SOURCE.read_text(encoding="utf-8")
    script = source[source.index("<script") :]
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "DOMParser",
        "createContextualFragment",
        "srcdoc",
    ):
        assert sink not in script, sink
    # Attributes are set in one place, the SVG helper, which only ever builds shapes.
    assert script.count("setAttribute(") == 1
    assert sorted(set(re.findall(r'svg\("(\w+)"', script))) == [
        "line",
        "polygon",
        "polyline",
        "rect",
        "title",
    ]


# -- token ---------------------------------------------------------------------------------------


def test_page_is_open_when_no_token_is_set(client: TestClient) -> None:
    """Without api_token the page answers like the API: to anyone who can reach it."""
    assert client.get("/observability").status_code == 200


def test_page_without_the_token_is_401_json_for_non_browsers(secured: TestClient) -> None:
    """curl and friends get the same JSON 401 and Bearer challenge as the API."""
    response = secured.get("/observability")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="atoms_otel"'
    assert response.json() == {"detail": "missing or invalid bearer token"}


def test_page_without_the_token_asks_a_browser_for_it(secured: TestClient) -> None:
    """A browser gets a 401 page with a token form, under the same CSP, and none of the live view."""
    response = secured.get("/observability", headers=HTML)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    nonce = _nonce(response.headers["content-security-policy"])
    assert '<input id="token" name="token" type="password"' in response.text
    assert f'<script nonce="{nonce}">' in response.text
    assert 'id="routes"' not in response.text


@pytest.mark.parametrize(
    ("headers", "params"),
    [({"Authorization": f"Bearer {TOKEN}"}, {}), ({}, {"token": TOKEN})],
    ids=["bearer-header", "query-parameter"],
)
def test_page_opens_with_the_token(
    secured: TestClient, headers: dict[str, str], params: dict[str, str]
) -> None:
    """The token as a bearer header or as ?token= opens the page."""
    response = secured.get("/observability", headers={**HTML, **headers}, params=params)
    assert response.status_code == 200
    assert 'id="routes"' in response.text


@pytest.mark.parametrize(
    "params",
    [{"token": TOKEN + "x"}, {"token": ""}, {"token": TOKEN.upper()}, {"token": "ünïcödé"}],
    ids=["longer", "empty", "case", "non-ascii"],
)
def test_page_rejects_a_wrong_token(secured: TestClient, params: dict[str, str]) -> None:
    """Anything but the exact token is a 401."""
    assert secured.get("/observability", params=params, headers=HTML).status_code == 401


def test_oversized_token_parameter_is_rejected_cleanly(secured: TestClient) -> None:
    """A 5000-character ?token= gets a 422 naming the parameter, not a 500."""
    response = secured.get("/observability", params={"token": "x" * 5000})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "token"]


def test_token_is_never_written_into_the_page(secured: TestClient) -> None:
    """Opened with ?token=, the HTML still does not contain the token: the script reads the URL."""
    text = secured.get("/observability", params={"token": TOKEN}).text
    assert TOKEN not in text


def test_page_token_is_the_api_token_from_the_environment(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_API_TOKEN protects the page as it protects the API."""
    monkeypatch.setenv("ATOMS_OTEL_API_TOKEN", TOKEN)
    application = FastAPI()
    capture_telemetry.reconfigure(app=application)
    http = TestClient(application)
    assert http.get("/observability").status_code == 401
    assert http.get("/observability", params={"token": TOKEN}).status_code == 200


def test_page_accepts_the_token_posted_by_its_form(secured: TestClient) -> None:
    """POST token=… opens the page; a wrong one gets the form back marked refused; junk bodies are a 400."""
    html = {"Accept": "text/html"}
    opened = secured.post("/observability", data={"token": TOKEN}, headers=html)
    refused = secured.post("/observability", data={"token": "wrong"}, headers=html)
    oversized = secured.post("/observability", data={"token": "x" * 5000}, headers=html)
    assert opened.status_code == 200 and "<main" in opened.text
    assert TOKEN not in opened.text
    assert refused.status_code == 401 and '<p id="rejected" >' in refused.text
    assert oversized.status_code == 400
