"""Run the demo: serve the example service with uvicorn, drive traffic, stop on a signal or a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import IO, Final

import httpx
import uvicorn

import atoms_otel
from atoms_otel.demo.check import Finding, check_endpoints
from atoms_otel.demo.options import CHECK_DURATION_S, DemoOptions
from atoms_otel.demo.service import FlappingDependency, build_app, register_health_checks
from atoms_otel.demo.traffic import TrafficDriver, TrafficStats

__all__ = ["serve_demo"]

_STARTUP_TIMEOUT_S: Final = 15.0
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: the demo stops it itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Stopper:
    """SIGINT / SIGTERM: the first stops the demo gracefully, a second one stops the server
    without waiting for requests in flight."""

    def __init__(self, server: _Server) -> None:
        self.event = asyncio.Event()
        self.signals: list[str] = []
        self._server = server
        self._loop = asyncio.get_running_loop()

    def __enter__(self) -> _Stopper:
        for sig in _SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *_: object) -> None:
        for sig in _SIGNALS:
            self._loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self.signals.append(sig.name)
        if self.event.is_set():
            self._server.force_exit = True
        self.event.set()


def _say(out: IO[str], text: str) -> None:
    print(text, file=out, flush=True)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


async def _start(server: _Server, sock: socket.socket) -> asyncio.Task[None]:
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not server.started:
        if serving.done() or time.monotonic() > deadline:
            server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)
            raise RuntimeError("the service did not start")
        await asyncio.sleep(0.02)
    return serving


async def serve_demo(options: DemoOptions, out: IO[str]) -> int:
    """The whole demo; returns the exit code (0 fine, 1 check failed, 2 could not start)."""
    try:
        sock = _bind(options.port)
    except OSError as exc:
        _say(
            out,
            f"atoms-otel demo: cannot listen on 127.0.0.1:{options.port}: {exc} (--port 0 picks a free one)",
        )
        return 2
    payments = FlappingDependency()
    app = build_app(payments, register_health_checks(payments))
    try:
        telemetry = atoms_otel.configure(
            app=app,
            service_name="atoms-otel-demo",
            environment="demo",
            api_token=options.token,
            log_level=options.log_level,
            advanced=atoms_otel.AdvancedOptions(log_stream=sys.stderr),
        )
    except atoms_otel.ConfigurationError as exc:
        sock.close()
        _say(out, f"atoms-otel demo: {exc}")
        return 2
    server = _Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=3)
    )
    try:
        serving = await _start(server, sock)
    except RuntimeError as exc:
        atoms_otel.shutdown()
        _say(out, f"atoms-otel demo: {exc}")
        return 2
    # The token may also come from ATOMS_OTEL_API_TOKEN: use what configure() resolved.
    token = telemetry.settings.api_token
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with _Stopper(server) as stopper:
        try:
            return await _drive(options, out, base, serving, token, stopper)
        finally:
            server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)
            atoms_otel.shutdown()


async def _drive(
    options: DemoOptions,
    out: IO[str],
    base: str,
    serving: asyncio.Task[None],
    token: str | None,
    stopper: _Stopper,
) -> int:
    loop = asyncio.get_running_loop()
    stop, stopped_by = stopper.event, stopper.signals
    duration = options.duration_s
    if duration is None and options.check:
        duration = CHECK_DURATION_S
    if duration is not None:
        loop.call_later(duration, stop.set)
    _banner(out, base, options, duration, token)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    exit_code = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10.0) as client:
        driver = TrafficDriver(client, options.rate)
        traffic = asyncio.create_task(driver.run(stop))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait((waiter, serving), return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await asyncio.gather(waiter, traffic)
        if serving.done():
            _say(out, "atoms-otel demo: the service stopped unexpectedly")
            exit_code = 2
        elif options.check and stopped_by:
            _say(out, f"atoms-otel demo: check interrupted by {stopped_by[0]}")
            exit_code = 1
        elif options.check:
            exit_code = _report(out, await check_endpoints(client), driver.stats)
    reason = f" by {stopped_by[0]}" if stopped_by else ""
    _say(out, f"stopped{reason} after {time.monotonic() - started:.1f} s: {driver.stats.summary()}")
    return exit_code


def _banner(out: IO[str], base: str, options: DemoOptions, duration: float | None, token: str | None) -> None:
    _say(out, f"atoms-otel demo: the example service is serving on {base}")
    _say(out, f"  live view   {base}/observability{'?token=YOUR_TOKEN' if token else ''}")
    _say(out, f"  metrics     {base}/metrics")
    _say(out, f"  health      {base}/health")
    _say(out, f"  API         {base}/api/observability/dashboard")
    until = f"for {duration:g} s" if duration is not None else "until Ctrl-C"
    _say(out, f"sending {options.rate:g} requests/s {until}")


def _report(out: IO[str], findings: list[Finding], stats: TrafficStats) -> int:
    traffic_ok = stats.sent > 0 and not stats.transport_errors
    findings = [*findings, Finding("traffic", "" if traffic_ok else stats.summary())]
    for finding in findings:
        _say(out, str(finding))
    failed = [f.endpoint for f in findings if not f.ok]
    _say(out, f"check failed: {', '.join(failed)}" if failed else "check passed")
    return 1 if failed else 0
