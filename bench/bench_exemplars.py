"""What exemplars cost: one histogram observation in a sampled span, and one OpenMetrics scrape.

    python bench/bench_exemplars.py                 # 9 interleaved rounds of 40000 observations
    python bench/bench_exemplars.py --rounds 5 --observations 20000

Observation (µs per ``Histogram.labels(...).observe()`` inside a sampled span, in-process, one SDK
meter provider per variant, the variants interleaved round by round so machine noise shows as spread):

  off      exemplar filter ``always_off``: the baseline.
  sdk      ``trace_based`` with the SDK's default reservoir (``AlignedHistogramBucketExemplarReservoir``:
           a lock, a linear bucket search, reset at every collection).
  latest   ``trace_based`` with atoms_otel's ``LatestExemplarReservoir`` (what configure() installs).

Request (µs per ``GET /items/{id}`` of a FastAPI app with ``atoms_otel.configure(app=app)``, the ASGI
app called in-process, spans exported to a discarding exporter): ``OTEL_METRICS_EXEMPLAR_FILTER``
``always_off`` versus ``trace_based`` (the default), one process re-configured round by round.

Scrape (ms per ``metrics_text(openmetrics=True)`` of a configured service with ``--series`` HTTP
duration series): with exemplars attached versus the same registry encoded without them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import timeit
from collections.abc import Callable, Sequence
from typing import Any

from bench_http import _drive  # the same in-process ASGI driver (bench/ is on sys.path when run)
from opentelemetry import context, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import (
    AlignedHistogramBucketExemplarReservoir,
    AlwaysOffExemplarFilter,
    ExemplarFilter,
    Histogram,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

import atoms_otel
from atoms_otel.otel.metrics import DURATION_BUCKETS
from atoms_otel.otel.metrics import Histogram as AtomsHistogram
from atoms_otel.otel.metrics.exemplars import LatestExemplarReservoir, exemplar_reservoir_factory

VARIANTS = ("off", "sdk", "latest")


def _histogram(exemplar_filter: ExemplarFilter, views: list[View]) -> Any:
    """A histogram child of an SDK instrument, as atoms_otel's HistogramChild records into it."""
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=CollectorRegistry())],
        exemplar_filter=exemplar_filter,
        views=views,
    )
    return provider.get_meter("bench").create_histogram(
        "http.server.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
    )


def _variants() -> dict[str, Any]:
    latest = [View(instrument_type=Histogram, exemplar_reservoir_factory=exemplar_reservoir_factory)]
    return {
        "off": _histogram(AlwaysOffExemplarFilter(), []),
        "sdk": _histogram(TraceBasedExemplarFilter(), []),
        "latest": _histogram(TraceBasedExemplarFilter(), latest),
    }


def observations(rounds: int, count: int) -> dict[str, list[float]]:
    tracer = TracerProvider().get_tracer("bench")
    histograms = _variants()
    attributes = {"method": "GET", "path": "/items/{item_id}"}
    values = [0.002, 0.03, 0.2, 0.7, 3.0]  # several buckets, as real latencies spread
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with tracer.start_as_current_span("request"):
        for index in range(rounds):
            order = VARIANTS if index % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                record: Callable[..., None] = histograms[variant].record
                start = time.perf_counter()
                for n in range(count):
                    record(values[n % 5], attributes)
                samples[variant].append((time.perf_counter() - start) / count * 1e6)
    return samples


def parts(count: int) -> dict[str, float]:
    """Best-of-5 µs per call of each piece an observation in a sampled span adds (timeit)."""
    tracer = TracerProvider().get_tracer("bench")
    trace_based = TraceBasedExemplarFilter()
    latest = LatestExemplarReservoir(DURATION_BUCKETS)
    aligned = AlignedHistogramBucketExemplarReservoir(DURATION_BUCKETS)
    attributes = {"method": "GET", "path": "/items/{item_id}"}
    with tracer.start_as_current_span("request"):
        current = context.get_current()
        calls: dict[str, Callable[[], Any]] = {
            "trace_based filter": lambda: trace_based.should_sample(0.2, 1, attributes, current),
            "LatestExemplarReservoir.offer": lambda: latest.offer(0.2, 1, attributes, current),
            "SDK AlignedHistogram...offer": lambda: aligned.offer(0.2, 1, attributes, current),
        }
        return {
            name: min(timeit.repeat(call, number=count, repeat=5)) / count * 1e6
            for name, call in calls.items()
        }


def scrape(series: int, rounds: int) -> tuple[float, float]:
    """(ms with exemplars, ms without) for one OpenMetrics encoding of ``series`` histogram series."""
    telemetry = atoms_otel.configure(service_name="bench", install_logging=False)
    durations = AtomsHistogram("bench_request_duration_seconds", "Durations", labels=("route",))
    tracer = trace.get_tracer("bench")
    for n in range(series):
        with tracer.start_as_current_span("request"):
            durations.labels(f"/r{n}").observe(0.01 * (n % 50))
    pipeline = telemetry.pipeline
    assert pipeline is not None
    with_, without = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        telemetry.metrics_text(openmetrics=True)
        with_.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        generate_openmetrics(pipeline.prometheus_registry)
        without.append((time.perf_counter() - start) * 1e3)
    telemetry.shutdown()
    return statistics.median(with_), statistics.median(without)


class _Discard(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def _timed(app: Any, count: int) -> float:
    """µs per request for ``count`` GET /items/{id} through the ASGI app (bench_http's driver)."""
    start = time.perf_counter()
    await _drive(app, count, 0)
    return (time.perf_counter() - start) / count * 1e6


def requests(count: int, rounds: int) -> dict[str, list[float]]:
    """µs/request per filter: one app, re-configured with the other filter before each round
    (configure() swaps the pipeline behind the middleware's handle), so both filters share the
    process, the app and the machine's moment."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    def configure(choice: str, **extra: Any) -> None:
        os.environ["OTEL_METRICS_EXEMPLAR_FILTER"] = choice
        atoms_otel.configure(
            service_name="bench",
            install_logging=False,
            advanced=atoms_otel.AdvancedOptions(span_exporters=(_Discard(),)),
            **extra,
        )

    configure("always_off", app=app)
    asyncio.run(_timed(app, count))  # warm-up
    samples: dict[str, list[float]] = {"always_off": [], "trace_based": []}
    for index in range(rounds):
        order = list(samples) if index % 2 == 0 else list(reversed(samples))
        for choice in order:
            configure(choice)
            asyncio.run(_timed(app, count // 10))  # the new pipeline's first series
            samples[choice].append(asyncio.run(_timed(app, count)))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--observations", type=int, default=40000)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round (0: skip)")
    args = parser.parse_args()
    print("pieces (best of 5, us per call):")
    for name, cost in parts(args.observations).items():
        print(f"  {name:<32} {cost:.3f}")
    samples = observations(args.rounds, args.observations)
    base = statistics.median(samples["off"])
    print(f"one histogram observation in a sampled span, {args.observations} x {args.rounds} rounds")
    print(f"{'variant':<8} {'median us':>10} {'best':>8} {'over off (median)':>18}")
    for variant in VARIANTS:
        median = statistics.median(samples[variant])
        print(f"{variant:<8} {median:>10.3f} {min(samples[variant]):>8.3f} {median - base:>+18.3f}")
    if args.requests:
        by_filter = requests(args.requests, args.rounds)
        off, on = (statistics.median(by_filter[k]) for k in ("always_off", "trace_based"))
        print(f"\nGET /items/{{id}} in-process, {args.requests} requests x {args.rounds} interleaved rounds")
        for choice, values in by_filter.items():
            print(f"{choice:<12} median {statistics.median(values):8.2f} us/request  best {min(values):8.2f}")
        print(f"exemplars (trace_based) cost {on - off:+.2f} us/request (median)")
    with_ms, without_ms = scrape(args.series, args.rounds)
    print(
        f"\nOpenMetrics scrape, {args.series} histogram series: {with_ms:.2f} ms with exemplars, "
        f"{without_ms:.2f} ms without ({with_ms - without_ms:+.2f} ms)"
    )


if __name__ == "__main__":
    main()
