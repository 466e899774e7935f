"""The live view in a real browser (Debian's headless Chromium): data renders, hostile markup stays
text, the token flow works, the page goes stale instead of breaking, and it fits a phone screen.

Screenshots are saved under ``.artifacts/`` for a person to look at.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import atoms_otel
from atoms_otel import ComponentType, CustomHealthCheck, UnhandledError, register_health_check
from atoms_otel.testing import CapturedTelemetry
from tests.support.chromium import PAGE_ELEMENTS, DevTools, chromium_binary, run_headless
from tests.support.demo import running_demo
from tests.support.health import isolated_health_state
from tests.support.server import serve

pytestmark = pytest.mark.real

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"
TOKEN = "browser-token-5b7e"
LIVE_WITH_ROUTES = (
    "document.body.dataset.state === 'live'"
    " && document.querySelectorAll('#routes tbody tr td.num').length > 0"
)

HOSTILE_ROUTE = "/pets/<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_TOOL = "</script><script>document.title='pwned'</script>"
HOSTILE_CHECK = "inventory <b>bold</b>"
HOSTILE_HEALTH_MESSAGE = "<svg onload=\"document.title='pwned'\">"
HOSTILE_ERROR = "boom </td></tr></table><h1>injected</h1><img src=x onerror=alert(1)>"
HOSTILE_CORRELATION = "<i>corr</i>-42"


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    chromium_binary()
    instance = DevTools(tmp_path / "profile")
    try:
        yield instance
    finally:
        instance.close()


def _app(capture: CapturedTelemetry, **options: Any) -> FastAPI:
    application = FastAPI()
    capture.reconfigure(app=application, service_name="browser-test", **options)
    register_health_check(CustomHealthCheck("database", ComponentType.DATABASE, lambda: True))
    for status in (200, 200, 200, 404, 500):
        atoms_otel.record_http_request("GET", "/items/{item_id}", status, 0.04)
    atoms_otel.record_tool_execution("search_documents", 0.02, True)
    return application


def _record_hostile_data(capture: CapturedTelemetry) -> None:
    assert capture.telemetry is not None
    atoms_otel.record_http_request("GET", HOSTILE_ROUTE, 500, 0.2)
    atoms_otel.record_tool_execution(HOSTILE_TOOL, 0.1, False)
    register_health_check(
        CustomHealthCheck(
            HOSTILE_CHECK,
            ComponentType.EXTERNAL_API,
            lambda: {"status": "degraded", "message": HOSTILE_HEALTH_MESSAGE},
            critical=False,
        )
    )
    capture.telemetry.events.publish(
        UnhandledError(
            message=HOSTILE_ERROR,
            error_type="<i>TypeError</i>",
            method="GET",
            route=HOSTILE_ROUTE,
            correlation_id=HOSTILE_CORRELATION,
        )
    )


def _text(browser: DevTools, selector: str) -> str:
    return str(browser.evaluate(f"document.querySelector({selector!r}).textContent"))


# -- against the running demo --------------------------------------------------------------------


def test_demo_page_shows_routes_tools_and_health(tmp_path: Path) -> None:
    """--dump-dom of the live view over a running demo: its routes, tools and health components."""
    with running_demo("--rate", "30") as demo:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the traffic reached routes and tools
            body = httpx.get(f"{demo.url}/api/observability/dashboard", timeout=10).json()
            if len(body["routes"]) >= 3 and len(body["top_tools_by_calls"]) >= 2:
                break
            time.sleep(0.5)
        dom = run_headless(
            f"{demo.url}/observability", tmp_path / "dump", "--virtual-time-budget=5000", "--dump-dom"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        run_headless(
            f"{demo.url}/observability",
            tmp_path / "shot",
            "--virtual-time-budget=5000",
            "--window-size=1280,1900",
            f"--screenshot={ARTIFACTS / 'observability-demo.png'}",
        )
        code, _ = demo.stop()
    assert code == 0
    assert '<body data-state="live">' in dom
    assert "atoms-otel-demo" in dom
    for route in ("/items/{item_id}", "/tools/{name}"):
        assert f'<td class="text" data-label="Route">{route}</td>' in dom, route
    assert ">search_documents</td>" in dom and ">create_ticket</td>" in dom
    for component in ("database", "payments-api"):
        assert f'<td class="text" data-label="Component">{component}</td>' in dom, component
    assert (ARTIFACTS / "observability-demo.png").stat().st_size > 10_000


# -- hostile data --------------------------------------------------------------------------------


def test_hostile_names_and_messages_render_as_text(
    browser: DevTools, capture_telemetry: CapturedTelemetry
) -> None:
    """Markup in routes, tools, health messages and errors shows as text: no element, no script."""
    app = _app(capture_telemetry)
    _record_hostile_data(capture_telemetry)
    with serve(app) as base:
        browser.navigate(f"{base}/observability")
        browser.wait_for(
            LIVE_WITH_ROUTES + " && document.querySelectorAll('#errors tbody td.text').length > 0"
        )
        browser.screenshot(ARTIFACTS / "observability-hostile.png")
        tags = set(browser.evaluate("Array.from(document.querySelectorAll('main *'), e => e.localName)"))
        texts = {table: _text(browser, f"#{table}") for table in ("routes", "tools", "health", "errors")}
        title = browser.evaluate("document.title")
        dom = browser.dom()
        problems = browser.problems()
    assert tags <= PAGE_ELEMENTS, tags - PAGE_ELEMENTS
    assert HOSTILE_ROUTE in texts["routes"]
    assert HOSTILE_TOOL in texts["tools"]
    assert HOSTILE_CHECK in texts["health"] and HOSTILE_HEALTH_MESSAGE in texts["health"]
    assert all(value in texts["errors"] for value in (HOSTILE_ERROR, HOSTILE_CORRELATION, "<i>TypeError</i>"))
    assert title == "Observability · browser-test"
    assert html.escape(HOSTILE_ROUTE, quote=False) in dom
    assert problems == []


# -- token ---------------------------------------------------------------------------------------


def test_token_from_the_url_is_used_then_hidden(
    browser: DevTools, capture_telemetry: CapturedTelemetry
) -> None:
    """Opened with ?token=, the page loads data with the bearer header and removes the token from the URL."""
    app = _app(capture_telemetry, api_token=TOKEN)
    with serve(app) as base:
        browser.navigate(f"{base}/observability?token={TOKEN}")
        browser.wait_for(LIVE_WITH_ROUTES)
        location = browser.evaluate("location.href")
        stored = browser.evaluate("sessionStorage.getItem('atoms_otel_api_token')")
        problems = browser.problems()
    assert location == f"{base}/observability"
    assert stored == TOKEN
    assert problems == []


def test_reload_in_the_same_tab_reuses_the_token(
    browser: DevTools, capture_telemetry: CapturedTelemetry
) -> None:
    """After the token left the URL, a reload goes through the token page and back to live data."""
    app = _app(capture_telemetry, api_token=TOKEN)
    with serve(app) as base:
        browser.navigate(f"{base}/observability?token={TOKEN}")
        browser.wait_for(LIVE_WITH_ROUTES)
        browser.evaluate("window.beforeReload = true")
        browser.call("Page.reload")
        browser.wait_for("!window.beforeReload && " + LIVE_WITH_ROUTES)
        location = browser.evaluate("location.href")
    assert location == f"{base}/observability"


class _Recorder:
    """Pass-through ASGI wrapper that keeps every HTTP request's method, path and query string."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"], scope["query_string"].decode()))
        await self.app(scope, receive, send)


def test_reloads_never_put_the_token_back_in_a_url(
    browser: DevTools, capture_telemetry: CapturedTelemetry
) -> None:
    """Logged in through the form, two reloads reach live data again and no request URL carries the token."""
    recorder = _Recorder(_app(capture_telemetry, api_token=TOKEN))
    with serve(recorder) as base:
        browser.navigate(f"{base}/observability")
        browser.wait_for("!!document.getElementById('token')")
        browser.evaluate(
            f"document.getElementById('token').value = {TOKEN!r}; document.forms[0].requestSubmit()"
        )
        browser.wait_for(LIVE_WITH_ROUTES)
        for _ in range(2):
            browser.evaluate("window.beforeReload = true")
            browser.call("Page.reload")
            browser.wait_for("!window.beforeReload && " + LIVE_WITH_ROUTES)
        location = browser.evaluate("location.href")
    assert location == f"{base}/observability"
    assert not [r for r in recorder.requests if TOKEN in r[2]], recorder.requests
    assert sum(r[:2] == ("POST", "/observability") for r in recorder.requests) >= 3


def test_wrong_token_in_the_form_shows_it_was_refused(
    browser: DevTools, capture_telemetry: CapturedTelemetry
) -> None:
    """A wrong token typed into the form comes back as the form saying so, and is not retried."""
    app = _app(capture_telemetry, api_token=TOKEN)
    with serve(app) as base:
        browser.navigate(f"{base}/observability")
        browser.wait_for("!!document.getElementById('token')")
        browser.evaluate(
            "document.getElementById('token').value = 'wrong'; document.forms[0].requestSubmit()"
        )
        browser.wait_for("document.getElementById('rejected') && !document.getElementById('rejected').hidden")
        stored = browser.evaluate("sessionStorage.getItem('atoms_otel_api_token')")
    assert stored is None


def test_wrong_token_shows_the_token_form(browser: DevTools, capture_telemetry: CapturedTelemetry) -> None:
    """A wrong token ends on the form saying it was refused, without retrying it and with no data."""
    app = _app(capture_telemetry, api_token=TOKEN)
    with serve(app) as base:
        browser.navigate(f"{base}/observability?token=wrong")
        browser.wait_for("document.getElementById('rejected') && !document.getElementById('rejected').hidden")
        stored = browser.evaluate("sessionStorage.getItem('atoms_otel_api_token')")
        location = browser.evaluate("location.href")
        routes = browser.evaluate("document.getElementById('routes')")
    assert (stored, location, routes) == (None, f"{base}/observability", None)


def test_token_form_opens_the_live_view(browser: DevTools, capture_telemetry: CapturedTelemetry) -> None:
    """Typing the token into the 401 page's form opens the live view with data."""
    app = _app(capture_telemetry, api_token=TOKEN)
    with serve(app) as base:
        browser.navigate(f"{base}/observability")
        browser.wait_for("!!document.getElementById('token')")
        browser.evaluate(
            f"document.getElementById('token').value = {TOKEN!r}; document.forms[0].requestSubmit()"
        )
        browser.wait_for(LIVE_WITH_ROUTES)
        location = browser.evaluate("location.href")
    assert location == f"{base}/observability"


# -- failures and small screens ------------------------------------------------------------------


class _Breakable:
    """Pass-through ASGI wrapper that can make the observability API fail with a 503."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.broken = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.broken and scope["type"] == "http" and scope["path"].startswith("/api/"):
            await send(
                {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"down"})
            return
        await self.app(scope, receive, send)


def test_page_goes_stale_and_recovers_when_the_api_fails(
    browser: DevTools, capture_telemetry: CapturedTelemetry
) -> None:
    """While the API fails the page says "stale" and keeps the last data; it recovers by itself."""
    app = _Breakable(_app(capture_telemetry))
    with serve(app) as base:
        browser.navigate(f"{base}/observability")
        browser.wait_for(LIVE_WITH_ROUTES)
        app.broken = True
        browser.wait_for("document.body.dataset.state === 'stale'", timeout=15)
        status = _text(browser, "#status")
        rows = browser.evaluate("document.querySelectorAll('#routes tbody td.num').length")
        browser.screenshot(ARTIFACTS / "observability-stale.png")
        app.broken = False
        browser.wait_for("document.body.dataset.state === 'live'", timeout=20)
        problems = [p for p in browser.problems() if "503" not in p]  # the failed fetches themselves
    assert status.startswith("stale · last update ") and "HTTP 503" in status
    assert rows > 0
    assert problems == []


def test_page_fits_a_phone_screen(browser: DevTools, capture_telemetry: CapturedTelemetry) -> None:
    """At 390 px wide nothing scrolls sideways: tables turn into label/value rows."""
    app = _app(capture_telemetry)
    _record_hostile_data(capture_telemetry)  # long unbroken strings too
    with serve(app) as base:
        browser.set_viewport(390, 844, mobile=True)
        browser.navigate(f"{base}/observability")
        browser.wait_for(LIVE_WITH_ROUTES)
        widths = browser.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        header_shown = browser.evaluate("getComputedStyle(document.querySelector('#routes thead')).display")
        browser.screenshot(ARTIFACTS / "observability-narrow.png")
    assert widths[0] <= widths[1] == 390
    assert header_shown == "none"
