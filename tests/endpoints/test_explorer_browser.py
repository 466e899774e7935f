"""The trace explorer in the live view, in a real headless Chromium: against the running demo
service (a uvicorn subprocess) a failing tool call is listed, opens as a nested waterfall with its
log lines, and is found by a pasted trace id; hostile span and log data stays text.

The screenshots in docs/img/ come from these runs (``ATOMS_OTEL_SCREENSHOTS=docs/img``).
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace

from atoms_otel.testing import CapturedTelemetry
from tests.support.chromium import PAGE_ELEMENTS, DevTools, chromium_binary
from tests.support.demo import running_demo
from tests.support.health import isolated_health_state
from tests.support.server import serve

pytestmark = pytest.mark.real

# The docs' screenshots are refreshed by a run with ATOMS_OTEL_SCREENSHOTS=docs/img; otherwise they
# are still taken (the capture is part of what is tested) but written outside the checkout.
DOCS_IMG = Path(os.environ.get("ATOMS_OTEL_SCREENSHOTS") or tempfile.mkdtemp(prefix="atoms-shots-")).resolve()
LIVE = "document.body.dataset.state === 'live'"
_ROW_CLASSES = "Array.from(document.querySelectorAll('#traces tr.clickable'), (r) => r.className)"

HOSTILE_SPAN = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_ATTRIBUTE = "</td></tr></table><script>document.title='pwned'</script>"
HOSTILE_MESSAGE = "<b>bold</b> <svg onload=\"document.title='pwned'\">"
HOSTILE_FIELD = "<iframe src=javascript:alert(1)>"
HOSTILE_EVENT = "<marquee>event</marquee>"


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    chromium_binary()
    instance = DevTools(tmp_path / "profile", width=1280, height=1400)
    try:
        yield instance
    finally:
        instance.close()


def _rows(browser: DevTools) -> list[dict[str, Any]]:
    """The waterfall's rows: span ids, depth, name, duration text and the bar's pixel box."""
    return list(
        browser.evaluate(
            """Array.from(document.querySelectorAll('#waterfall .wf-row'), (row) => {
                const bar = row.querySelector('.wf-bar').getBoundingClientRect();
                const text = (selector) => row.querySelector(selector).textContent;
                return {id: row.dataset.spanId, parent: row.dataset.parentId,
                        depth: Number(row.dataset.depth), name: text('.wf-name'),
                        kind: text('.wf-kind'), duration: text('.wf-dur'),
                        left: bar.left, right: bar.right};
            })"""
        )
    )


def _failing_tool_call(base: str) -> tuple[str, str]:
    """POST a create_ticket call the stand-in database refuses; its correlation id and trace id."""
    correlation = uuid.uuid4().hex
    response = httpx.post(
        f"{base}/tools/create_ticket",
        json={"title": "printer on fire", "priority": "urgent!"},
        headers={"X-Correlation-ID": correlation},
        timeout=10,
    )
    assert response.json()["is_error"] is True, response.text
    found = httpx.get(f"{base}/api/observability/traces", params={"q": correlation}, timeout=10).json()
    assert found["matching"] == 1, found
    return correlation, found["traces"][0]["trace_id"]


def test_failing_tool_call_in_the_demo_opens_as_a_nested_waterfall(browser: DevTools) -> None:
    """Errors-only list → the failing create_ticket call → server, tool and database spans nested,
    bars inside their parents, durations that add up, and the trace's log lines."""
    with running_demo("--rate", "4") as demo:
        correlation, trace_id = _failing_tool_call(demo.url)
        api = httpx.get(f"{demo.url}/api/observability/traces/{trace_id}", timeout=10).json()
        browser.navigate(f"{demo.url}/observability")
        browser.wait_for(LIVE)
        browser.evaluate("document.getElementById('trace-errors').click()")
        browser.wait_for(
            f"!!document.querySelector('#traces tr[data-trace=\"{trace_id}\"]')"
            " && !document.querySelector('#traces tr.clickable:not(.failed)')"
        )
        row = f"document.querySelector('#traces tr[data-trace=\"{trace_id}\"]')"
        listed = browser.evaluate(f"{row}.textContent")
        others = browser.evaluate(_ROW_CLASSES)
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        browser.screenshot(DOCS_IMG / "explorer-list.png")
        browser.evaluate(f"{row}.click()")
        browser.wait_for("document.querySelectorAll('#waterfall .wf-row').length >= 3")
        rows = _rows(browser)
        location = browser.evaluate("location.hash")
        logs = browser.evaluate("document.getElementById('trace-logs').tBodies[0].textContent")
        browser.evaluate("document.querySelector('#waterfall .wf-row[data-depth=\"1\"]').click()")
        browser.wait_for("!!document.querySelector('#waterfall .wf-detail')")
        detail = browser.evaluate("document.querySelector('#waterfall .wf-detail').textContent")
        browser.evaluate("document.getElementById('trace-panel').scrollIntoView()")
        browser.screenshot(DOCS_IMG / "explorer-waterfall.png")
        problems = browser.problems()
        demo.stop()
    assert "POST /tools/{name}" in listed and "create_ticket" in listed
    assert all("failed" in cls for cls in others), others  # errors only
    assert location == f"#trace={trace_id}"
    server, tool, database = rows[0], rows[1], rows[2]
    assert (server["name"], server["kind"], server["depth"]) == ("POST /tools/{name}", "server", 0)
    assert (tool["name"], tool["depth"], tool["parent"]) == ("execute_tool create_ticket", 1, server["id"])
    assert (database["name"], database["kind"], database["depth"]) == ("insert tickets", "client", 2)
    assert database["parent"] == tool["id"]
    for child, parent in ((tool, server), (database, tool)):  # bars nested in their parents (±1 px)
        assert parent["left"] - 1 <= child["left"] and child["right"] <= parent["right"] + 1, (child, parent)
    spans = {s["span_id"]: s for s in api["spans"]}
    s, t, d = spans[server["id"]], spans[tool["id"]], spans[database["id"]]
    for child, parent in ((t, s), (d, t)):  # times add up: each child within its parent
        assert parent["offset_ms"] <= child["offset_ms"]
        end = child["offset_ms"] + child["duration_ms"]
        assert end <= parent["offset_ms"] + parent["duration_ms"] + 0.001
    assert d["duration_ms"] <= t["duration_ms"] <= s["duration_ms"] == api["trace"]["duration_ms"]
    assert d["status"] == t["status"] == "ERROR"
    assert "CHECK constraint failed: tickets.priority" in logs and "tool create_ticket failed" in logs
    assert "ConstraintViolation" in detail and "gen_ai.tool.name" in detail
    assert correlation in api["trace"]["correlation_id"]
    assert problems == []


def test_pasted_trace_id_and_deep_link_find_the_trace(browser: DevTools) -> None:
    """A trace id pasted into the search finds only that trace; #trace=<id> opens it directly."""
    with running_demo("--rate", "4") as demo:
        _, trace_id = _failing_tool_call(demo.url)
        browser.navigate(f"{demo.url}/observability")
        browser.wait_for(LIVE + " && document.querySelectorAll('#traces tr.clickable').length > 1")
        browser.evaluate(
            f"const q = document.getElementById('trace-q'); q.value = '  {trace_id.upper()} ';"
            " q.dispatchEvent(new Event('input'))"
        )
        browser.wait_for("document.querySelectorAll('#traces tr.clickable').length === 1")
        found = browser.evaluate("document.querySelector('#traces tr.clickable').dataset.trace")
        browser.navigate("about:blank")
        browser.navigate(f"{demo.url}/observability#trace={trace_id}")
        browser.wait_for(
            "!document.getElementById('trace-panel').hidden && !!document.querySelector('.wf-row')"
        )
        shown = browser.evaluate("document.getElementById('trace-id').textContent")
        missing = "0" * 31 + "1"
        browser.evaluate(f"location.hash = 'trace={missing}'")
        browser.wait_for("!document.getElementById('trace-message').hidden")
        message = browser.evaluate("document.getElementById('trace-message').textContent")
        problems = [p for p in browser.problems() if "404" not in p]  # the unknown trace's fetch
        demo.stop()
    assert found == trace_id
    assert shown == trace_id
    assert "does not keep that trace" in message
    assert problems == []


def _hostile_app(capture: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("ATOMS_OTEL_TRACE_URL_TEMPLATE", "https://grafana.example/explore?trace={trace_id}")
    app = FastAPI()
    logger = logging.getLogger("hostile <i>logger</i>")

    @app.get("/hostile")
    def hostile() -> dict[str, str]:
        with trace.get_tracer("user-code").start_as_current_span(HOSTILE_SPAN) as span:
            span.set_attribute("note", HOSTILE_ATTRIBUTE)
            span.add_event(HOSTILE_EVENT, {"detail": HOSTILE_ATTRIBUTE})
            logger.warning(HOSTILE_MESSAGE, extra={"payload": HOSTILE_FIELD})
        return {"ok": "yes"}

    capture.reconfigure(app=app, service_name="explorer-hostile")
    return app


def test_hostile_span_and_log_data_renders_as_text(
    browser: DevTools, capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Markup in a span name, attribute, event, log message, logger and field shows as text; the
    copy action and the trace backend link work."""
    app = _hostile_app(capture_telemetry, monkeypatch)
    with serve(app) as base:
        httpx.get(f"{base}/hostile", timeout=10)
        trace_id = httpx.get(f"{base}/api/observability/traces", timeout=10).json()["traces"][0]["trace_id"]
        clipboard_permissions = ["clipboardReadWrite", "clipboardSanitizedWrite"]
        browser.send("Browser.grantPermissions", {"permissions": clipboard_permissions})
        browser.call("Emulation.setFocusEmulationEnabled", {"enabled": True})  # headless has no focus
        browser.navigate(f"{base}/observability#trace={trace_id}")
        browser.wait_for(LIVE + " && document.querySelectorAll('#waterfall .wf-row').length === 2")
        browser.wait_for("document.querySelectorAll('#logs tbody tr td.text').length > 0")
        browser.evaluate("document.querySelector('#waterfall .wf-row[data-depth=\"1\"]').click()")
        browser.evaluate("document.getElementById('trace-copy').click()")
        browser.wait_for("document.getElementById('trace-copy').textContent !== 'Copy trace id'")
        copied = browser.evaluate("document.getElementById('trace-copy').textContent")
        clipboard = browser.call(
            "Runtime.evaluate",
            {"expression": "navigator.clipboard.readText()", "awaitPromise": True, "returnByValue": True},
        )["result"].get("value")
        browser.screenshot(DOCS_IMG / "explorer-hostile.png")
        tags = set(browser.evaluate("Array.from(document.querySelectorAll('main *'), e => e.localName)"))
        waterfall = browser.evaluate("document.getElementById('waterfall').textContent")
        trace_logs = browser.evaluate("document.getElementById('trace-logs').textContent")
        process_logs = browser.evaluate("document.getElementById('logs').textContent")
        link = browser.evaluate("document.getElementById('trace-link').href")
        title = browser.evaluate("document.title")
        dom = browser.dom()
        problems = browser.problems()
    assert tags <= PAGE_ELEMENTS, tags - PAGE_ELEMENTS
    assert HOSTILE_SPAN in waterfall and HOSTILE_ATTRIBUTE in waterfall and HOSTILE_EVENT in waterfall
    for text in (trace_logs, process_logs):
        assert HOSTILE_MESSAGE in text and HOSTILE_FIELD in text and "hostile <i>logger</i>" in text
    assert html.escape(HOSTILE_SPAN, quote=False) in dom
    assert title == "Observability · explorer-hostile"
    assert link == f"https://grafana.example/explore?trace={trace_id}"
    assert (copied, clipboard) == ("Copied", trace_id)
    assert problems == []
