"""Per-request overhead of HTTP instrumentation, driven in-process (no server, no network).

    python bench/bench_http.py                  # all scenarios, 3 interleaved passes
    python bench/bench_http.py --passes 5 --requests 4000

Each scenario runs in its own fresh subprocess (FastAPI's native telemetry switches on as soon as
any global OpenTelemetry provider is set, so scenarios must not share a process), and the passes
interleave the scenarios so machine noise shows up as spread rather than as a bias. A subprocess
calls the ASGI app directly with a prepared scope for ``GET /items/{id}`` in a loop and reports
µs/request for each round; the parent prints the median and best round per scenario, the overhead
over bare FastAPI, and the ratios the project targets.

Scenarios:
  bare        FastAPI with its native telemetry off and no providers: the baseline.
  atoms       atoms_otel.configure(app=app): span (batch-exported to a discarding exporter),
              metrics, correlation id, log context, response headers.
  otel        opentelemetry-instrumentation-fastapi alone: SDK tracer with batch export to a
              discarding exporter, SDK meter with a Prometheus reader.
  native      FastAPI's own native telemetry alone (same providers as `otel`, set globally).
  pfi         prometheus-fastapi-instrumentator alone.
  atoms_ratio atoms with OTEL_TRACES_SAMPLER=traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1: nine
              requests in ten get no span (metrics, correlation and headers as always).
  atoms_pushed atoms with a second metric reader, as when metrics are pushed by OTLP: exemplars
              are sampled and the semconv http.server.* metrics are recorded too (with
              ATOMS_OTEL_HTTP_SEMCONV_METRICS=false in the environment: exemplars only).
  atoms_noexplorer atoms with ATOMS_OTEL_EXPLORER=false: what the live view's trace store costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

SCENARIOS = ("bare", "atoms", "otel", "native", "pfi", "atoms_ratio", "atoms_pushed", "atoms_noexplorer")
# Wall time by default; BENCH_CLOCK=cpu measures the process's CPU time (all its threads, the span
# export thread included), which a machine busy with other work disturbs much less.
_CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter
_RATIO_ENV = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
_SCENARIO_ENV = {"atoms_ratio": _RATIO_ENV, "atoms_noexplorer": {"ATOMS_OTEL_EXPLORER": "false"}}
_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}


def _discarding_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return Discard()


def _sdk_providers() -> tuple[Any, Any]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from prometheus_client import CollectorRegistry

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_discarding_exporter()))
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=CollectorRegistry())])
    return tracer_provider, meter_provider


def build_app(scenario: str) -> Any:
    from fastapi import FastAPI

    app = FastAPI() if scenario == "native" else FastAPI(telemetry=dict(_TELEMETRY_OFF))  # type: ignore[arg-type]

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    if scenario in ("atoms", "atoms_ratio", "atoms_pushed", "atoms_noexplorer"):
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        import atoms_otel

        atoms_otel.configure(
            app=app,
            service_name="bench",
            advanced=atoms_otel.AdvancedOptions(
                span_processors=[BatchSpanProcessor(_discarding_exporter())],
                # A reader besides /metrics: metrics "leave the process", as with OTLP.
                metric_readers=[InMemoryMetricReader()] if scenario == "atoms_pushed" else (),
                log_stream=open(os.devnull, "w"),  # noqa: SIM115 - lives as long as the process
            ),
        )
    elif scenario == "otel":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        tracer_provider, meter_provider = _sdk_providers()
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    elif scenario == "native":
        from opentelemetry import metrics, trace

        tracer_provider, meter_provider = _sdk_providers()
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    elif scenario == "pfi":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app)
    elif scenario != "bare":
        raise SystemExit(f"unknown scenario {scenario!r}")
    return app


_HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench/1.0"), (b"accept", b"*/*")]


async def _drive(app: Any, count: int, offset: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    for i in range(offset, offset + count):
        path = f"/items/{i}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": _HEADERS,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)


async def _rounds(app: Any, requests: int, rounds: int) -> list[float]:
    await _drive(app, requests, 0)  # warm-up: imports, caches, first-request stack build
    results = []
    for r in range(rounds):
        start = _CLOCK()
        await _drive(app, requests, (r + 1) * requests)
        results.append((_CLOCK() - start) / requests * 1e6)
    return results


def child(scenario: str, requests: int, rounds: int) -> None:
    app = build_app(scenario)
    results = asyncio.run(_rounds(app, requests, rounds))
    print(json.dumps({"scenario": scenario, "us": results}))


def _run_child(scenario: str, requests: int, rounds: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", scenario, "--requests", str(requests), "--rounds", str(rounds)],
        env={**os.environ, **_SCENARIO_ENV.get(scenario, {})},
        check=True,
        capture_output=True,
        text=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1])["us"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per subprocess")
    parser.add_argument("--passes", type=int, default=3, help="interleaved passes over all scenarios")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.requests, args.rounds)
        return

    scenarios = [s for s in args.scenarios.split(",") if s]
    samples: dict[str, list[float]] = {s: [] for s in scenarios}
    for index in range(args.passes):
        order = scenarios if index % 2 == 0 else list(reversed(scenarios))
        for scenario in order:
            samples[scenario].extend(_run_child(scenario, args.requests, args.rounds))
        print(f"pass {index + 1}/{args.passes} done", file=sys.stderr)

    median = {s: statistics.median(v) for s, v in samples.items()}
    best = {s: min(v) for s, v in samples.items()}
    shape = f"{args.requests} requests x {args.rounds} rounds x {args.passes} passes"
    print(f"\nGET /items/{{id}}, in-process ASGI, {shape}")
    header = ("scenario", "median us/req", "best", "spread", "overhead (median)", "(best)")
    print(f"{header[0]:<10} {header[1]:>14} {header[2]:>8} {header[3]:>8} {header[4]:>18} {header[5]:>8}")
    for s in scenarios:
        spread = max(samples[s]) - min(samples[s])
        over = f"{median[s] - median['bare']:+.1f}" if "bare" in median else "n/a"
        over_best = f"{best[s] - best['bare']:+.1f}" if "bare" in best else "n/a"
        print(f"{s:<10} {median[s]:>14.1f} {best[s]:>8.1f} {spread:>8.1f} {over:>18} {over_best:>8}")
    if {"bare", "atoms"} <= median.keys():
        ours = median["atoms"] - median["bare"]
        ours_best = best["atoms"] - best["bare"]
        for peer, label in (
            ("otel", "OTel FastAPI instrumentor"),
            ("native", "FastAPI native telemetry"),
            ("pfi", "prometheus-fastapi-instrumentator"),
        ):
            if peer in median:
                theirs = median[peer] - median["bare"]
                theirs_best = best[peer] - best["bare"]
                target = "  (target <= 0.15)" if peer == "otel" else ""
                print(
                    f"atoms overhead / {label} overhead: {ours / theirs:.2f} median, "
                    f"{ours_best / theirs_best:.2f} best{target}"
                )
        if {"otel", "atoms_noexplorer"} <= median.keys():
            theirs = median["otel"] - median["bare"]
            without = median["atoms_noexplorer"] - median["bare"]
            print(
                f"the live view's trace store: {ours - without:+.1f} us/request, "
                f"{(ours - without) / theirs:+.3f}x of the OTel instrumentor's overhead (target <= +0.01)"
            )


if __name__ == "__main__":
    main()
