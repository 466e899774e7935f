"""What the trace explorer costs: per request, and per log line. In-process, no server, no network.

    PYTHONPATH=$PWD python bench/bench_explorer.py                 # 3 interleaved passes
    PYTHONPATH=$PWD python bench/bench_explorer.py --passes 5 --requests 4000

Per request: the same ``GET /items/{id}`` app as bench/bench_http.py, driven through its ASGI
callable, in fresh subprocesses whose order alternates between passes. It measures the process's
CPU time (``time.process_time()``: every thread, so the explorer's own thread counts), which a
machine shared with other work disturbs less than wall-clock time:

  bare          FastAPI with its native telemetry off and no providers: the baseline.
  explorer-off  atoms_otel.configure(app=app) with ATOMS_OTEL_EXPLORER=false.
  explorer-on   the same with the explorer on (the default).
  otel          opentelemetry-instrumentation-fastapi with the SDK (the ratio's reference).

It prints the explorer's own cost (on - off) and the HTTP overhead ratio against the OTel
instrumentor with the explorer off and on; the project's budget for the explorer is +0.01x.

Per log line: ``logger.info("...", extra={2 fields})`` inside a span, through configure()'s JSON
handler, with and without the explorer's handler on the root logger (interleaved rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench_http import _drive  # the same in-process ASGI driver (bench/ is on sys.path when run)

SCENARIOS = ("bare", "explorer-off", "explorer-on", "otel")
_OFF = {"tracing": False, "metrics": False, "logs": False}


def _discard() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return Discard()


def build_app(scenario: str) -> Any:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    app = FastAPI(telemetry=dict(_OFF))  # type: ignore[arg-type]

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    if scenario.startswith("explorer"):
        os.environ["ATOMS_OTEL_EXPLORER"] = "true" if scenario == "explorer-on" else "false"
        import atoms_otel

        atoms_otel.configure(
            app=app,
            service_name="bench",
            advanced=atoms_otel.AdvancedOptions(
                span_processors=[BatchSpanProcessor(_discard())],
                log_stream=open(os.devnull, "w"),  # noqa: SIM115 - lives as long as the process
            ),
        )
    elif scenario == "otel":
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
        from prometheus_client import CollectorRegistry

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(_discard()))
        meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=CollectorRegistry())])
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    return app


async def _rounds(app: Any, requests: int, rounds: int) -> list[float]:
    await _drive(app, requests, 0)  # warm-up
    results = []
    for r in range(rounds):
        start = time.process_time()  # CPU of every thread of the process: the explorer's too
        await _drive(app, requests, (r + 1) * requests)
        results.append((time.process_time() - start) / requests * 1e6)
    return results


def _log_rounds(count: int, rounds: int) -> dict[str, list[float]]:
    """µs per log line inside a span, with and without the explorer's handler (interleaved)."""
    import atoms_otel
    from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin

    os.environ["ATOMS_OTEL_EXPLORER"] = "true"
    telemetry = atoms_otel.configure(
        service_name="bench",
        advanced=atoms_otel.AdvancedOptions(log_stream=open(os.devnull, "w")),  # noqa: SIM115
    )
    explorer = telemetry.plugin(LiveSignalsPlugin).explorer  # type: ignore[union-attr]
    assert explorer is not None
    root, logger = logging.getLogger(), logging.getLogger("bench.app")
    results: dict[str, list[float]] = {"without": [], "with": []}
    with telemetry.tracer.start_as_current_span("request"):
        for index in range(rounds * 2 + 2):
            on = index % 2 == 1
            if on:
                root.addHandler(explorer.log_handler)
            else:
                root.removeHandler(explorer.log_handler)
            start = time.perf_counter()
            for i in range(count):
                logger.info("order placed", extra={"order_id": i, "amount": 12.5})
            if index >= 2:  # the first pair warms up
                results["with" if on else "without"].append((time.perf_counter() - start) / count * 1e6)
    atoms_otel.shutdown()
    return results


def _run_child(scenario: str, requests: int, rounds: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", scenario, "--requests", str(requests), "--rounds", str(rounds)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1])["us"])


def _report(samples: dict[str, list[float]], shape: str) -> None:
    median = {s: statistics.median(v) for s, v in samples.items()}
    print(f"\nGET /items/{{id}}, in-process ASGI, {shape} (median CPU us/request, all threads)")
    for scenario, value in median.items():
        print(
            f"  {scenario:<13} {value:8.1f}  (spread {max(samples[scenario]) - min(samples[scenario]):.1f})"
        )
    bare, otel = median["bare"], median["otel"] - median["bare"]
    off, on = median["explorer-off"] - bare, median["explorer-on"] - bare
    print(f"explorer cost per request: {on - off:+.1f} us")
    print(f"HTTP overhead / OTel instrumentor's: {off / otel:.3f}x explorer off, {on / otel:.3f}x on")
    print(f"  -> the explorer moves the ratio by {(on - off) / otel:+.3f}x (budget +0.010x)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", choices=(*SCENARIOS, "logs"), help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per subprocess")
    parser.add_argument("--passes", type=int, default=3, help="interleaved passes over all scenarios")
    parser.add_argument("--lines", type=int, default=5000, help="log lines per round")
    args = parser.parse_args(argv)
    if args.child == "logs":
        print(json.dumps(_log_rounds(args.lines, args.rounds * args.passes)))
        return
    if args.child:
        print(json.dumps({"us": asyncio.run(_rounds(build_app(args.child), args.requests, args.rounds))}))
        return
    samples: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    for index in range(args.passes):
        for scenario in SCENARIOS if index % 2 == 0 else tuple(reversed(SCENARIOS)):
            samples[scenario].extend(_run_child(scenario, args.requests, args.rounds))
        print(f"pass {index + 1}/{args.passes} done", file=sys.stderr)
    _report(samples, f"{args.requests} requests x {args.rounds} rounds x {args.passes} passes")
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "logs",
            "--lines",
            str(args.lines),
            "--rounds",
            str(args.rounds),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    logs = json.loads(out.stdout.strip().splitlines()[-1])
    without, with_ = statistics.median(logs["without"]), statistics.median(logs["with"])
    rounds = len(logs["with"])
    print(f"\nlog line inside a span, JSON to /dev/null, {args.lines} lines x {rounds} rounds (median)")
    delta = with_ - without
    print(f"  without the explorer's handler {without:6.2f} us, with it {with_:6.2f} us: {delta:+.2f} us")


if __name__ == "__main__":
    main()
