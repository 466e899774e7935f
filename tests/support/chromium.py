"""Debian's headless Chromium: ``--dump-dom`` / ``--screenshot`` runs, and a small DevTools-protocol
client over ``--remote-debugging-pipe`` (JSON messages separated by NUL bytes on fds 3 and 4, so
no websocket library is needed)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.net import require_binary

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


# Every element the observability page itself creates inside <main> (the dashboard and the
# explorer); anything else in the DOM would have come from data: the page's injection tests check it.
PAGE_ELEMENTS = {
    "a", "article", "button", "code", "details", "div", "h2", "h3", "input", "label", "li", "line",
    "option", "p", "polygon", "polyline", "pre", "rect", "section", "select", "span", "strong",
    "summary", "svg", "table", "tbody", "td", "th", "thead", "title", "tr", "ul",
}  # fmt: skip


def chromium_binary() -> str:
    """The chromium executable; fails under CI=true when it is missing, skips otherwise."""
    return require_binary("chromium", "chromium (apt-get install chromium)")


def run_headless(url: str, profile: Path, *extra: str, timeout: float = 60.0) -> str:
    """Run one headless Chromium command line (e.g. ``--dump-dom``) and return its stdout."""
    result = subprocess.run(
        [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return result.stdout


class DevTools:
    """A headless Chromium driven over the DevTools protocol, one page at a time."""

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 1600) -> None:
        ours_read, theirs_write = os.pipe()
        theirs_read, ours_write = os.pipe()

        def wire_pipes() -> None:  # in the child: Chromium reads commands on fd 3, answers on fd 4
            commands, answers = os.dup(theirs_read), os.dup(theirs_write)
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        self.process = subprocess.Popen(
            [
                chromium_binary(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire_pipes,
        )
        os.close(theirs_read)
        os.close(theirs_write)
        self._in, self._out = ours_read, ours_write
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command and wait for its answer; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})  # type: ignore[no-any-return]
            if "method" in answer:
                self.events.append(answer)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command for the page."""
        return self.send(method, params, session=self.session)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._in], [], [], remaining)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)  # type: ignore[no-any-return]

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy (errors count as false: the page may be loading)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                last = self.evaluate(expression)
            except RuntimeError as error:
                last = error
            if last and not isinstance(last, RuntimeError):
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout}s ({last!r}): {expression}")
            time.sleep(0.1)

    def set_viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def problems(self) -> list[str]:
        """Uncaught exceptions and console errors so far (CSP violations are console errors)."""
        self.evaluate("0")  # flush pending events
        found = []
        for event in self.events:
            if event["method"] == "Runtime.exceptionThrown":
                found.append(str(event["params"]["exceptionDetails"]))
            elif event["method"] == "Log.entryAdded" and event["params"]["entry"]["level"] == "error":
                found.append(event["params"]["entry"]["text"])
            elif event["method"] == "Runtime.consoleAPICalled" and event["params"]["type"] == "error":
                found.append(str(event["params"]["args"]))
        return found

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._in)
        os.close(self._out)
