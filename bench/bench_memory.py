"""Memory and ``/metrics`` size against distinct raw paths: do they stay flat?

    python bench/bench_memory.py [--requests 20000]

Not a test: it drives the example-shaped app in-process (ASGI calls, no server) with a different raw
path on every request — half of them matching ``/items/{item_id}``, half of them unknown (404) — and
prints the process RSS, the ``/metrics`` body size and its number of series before and after, at each
quarter of the run. Route templates (and the ``unmatched`` label for 404s) keep the label sets fixed,
so the series count must not move and the body may only grow by the digits of the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
from typing import Any

from fastapi import FastAPI

import atoms_otel
from atoms_otel import AdvancedOptions


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_app() -> tuple[FastAPI, atoms_otel.Telemetry]:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    telemetry = atoms_otel.configure(
        app=app, service_name="bench-memory", advanced=AdvancedOptions(log_stream=io.StringIO())
    )
    return app, telemetry


async def call(app: FastAPI, path: str) -> int:
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def snapshot(telemetry: atoms_otel.Telemetry) -> tuple[float, int, int]:
    gc.collect()
    body = telemetry.metrics_text()
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return rss_mib(), len(body), series


async def run(requests: int) -> None:
    app, telemetry = build_app()
    for number in range(200):  # warm up: first-request allocations are not growth
        await call(app, f"/items/{number}")
        await call(app, f"/warm-{number}")
    rows = [("start", *snapshot(telemetry))]
    quarter = requests // 4
    for number in range(requests):
        path = f"/items/{number}" if number % 2 else f"/unknown/{number}/x{number * 7919}"
        await call(app, path)
        if (number + 1) % quarter == 0:
            rows.append((f"{number + 1}", *snapshot(telemetry)))
    print(f"{'after':>8} {'RSS MiB':>9} {'/metrics bytes':>15} {'series':>7}")
    for label, rss, size, series in rows:
        print(f"{label:>8} {rss:9.1f} {size:15d} {series:7d}")
    start, end = rows[0], rows[-1]
    print(f"\n{requests} distinct raw paths: RSS {end[1] - start[1]:+.1f} MiB, "
          f"/metrics {end[2] - start[2]:+d} bytes, series {end[3] - start[3]:+d}")  # fmt: skip
    atoms_otel.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
