"""Per-call cost of the core facades next to the raw OpenTelemetry SDK and stdlib logging.

    python bench/bench_core.py [--calls 20000] [--repeats 7]

Not a test: it prints ns/call (best of N repeats, each a tight loop) and ratios. Everything is
measured in one process, one after another and interleaved, on the same MeterProvider and readers,
writing logs to the same discarding stream — so the comparison is fair on a noisy machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

import atoms_otel
from atoms_otel import AdvancedOptions, Counter, Histogram, LogContext, get_logger


def best_ns(fn: Callable[[], None], calls: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls)
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
    telemetry = atoms_otel.configure(service_name="bench", advanced=AdvancedOptions(log_stream=sink))
    assert telemetry.pipeline is not None
    sdk_meter = telemetry.pipeline.meter_provider.get_meter("bench.raw")

    attrs = {"method": "GET", "path": "/items/{item_id}", "status": "200"}
    hist_attrs = {"method": "GET", "path": "/items/{item_id}"}
    ours_counter = Counter("bench_requests_total", "Bench requests", labels=("method", "path", "status"))
    raw_counter = sdk_meter.create_counter("bench_raw_requests", description="Raw SDK counter")
    ours_hist = Histogram("bench_duration", "Bench durations", unit="s", labels=("method", "path"))
    raw_hist = sdk_meter.create_histogram(
        "bench_raw_duration",
        unit="s",
        description="Raw SDK histogram",
        explicit_bucket_boundaries_advisory=ours_hist.buckets,
    )

    ours_log = get_logger("bench.atoms")
    scrubber = telemetry.scrubber
    assert scrubber is not None
    plain_text = '127.0.0.1:50312 - "GET /items/42?page=2 HTTP/1.1" 200'
    secret_text = "payment failed: key sk_live_51HabcdefGHIJKL rejected, password=hunter2 user=bob"
    pjl = logging.getLogger("bench.pjl")
    pjl.propagate = False
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{", timestamp=True))
    pjl.addHandler(handler)
    pjl.setLevel(logging.INFO)
    plain = logging.getLogger("bench.plain")
    plain.propagate = False
    plain_handler = logging.StreamHandler(sink)
    plain_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    plain.addHandler(plain_handler)
    plain.setLevel(logging.INFO)

    cases: dict[str, Callable[[], None]] = {
        "counter: atoms_otel Counter.inc": lambda: ours_counter.inc(labels=attrs),
        "counter: raw SDK counter.add": lambda: raw_counter.add(1, attrs),
        "histogram: atoms_otel Histogram.observe": lambda: ours_hist.observe(0.05, hist_attrs),
        "histogram: raw SDK histogram.record": lambda: raw_hist.record(0.05, hist_attrs),
        "log line: atoms_otel JSON (extra_fields)": lambda: ours_log.info(
            "Processing request", extra_fields={"action": "create", "item": 7}
        ),
        "log line: stdlib + python-json-logger": lambda: pjl.info(
            "Processing request", extra={"action": "create", "item": 7}
        ),
        "log line: stdlib text formatter": lambda: plain.info(
            "Processing request", extra={"action": "create", "item": 7}
        ),
        # Value scrubbing by credential format (issue 11 item 8): its share of a log line.
        "scrub_text: plain access-log message": lambda: scrubber.scrub_text(plain_text),
        "scrub_text: message with key and password=": lambda: scrubber.scrub_text(secret_text),
        "log line: atoms_otel JSON, password= in message": lambda: ours_log.info(
            "login failed password=hunter2 for %s", "bob", extra_fields={"action": "create"}
        ),
    }
    # Interleave: every case runs once per round, rounds repeated; keep each case's best round.
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(3):
        for name, fn in cases.items():
            results[name].append(best_ns(fn, args.calls, max(1, args.repeats // 3)))
    best = {name: min(values) for name, values in results.items()}
    spread = {name: statistics.pstdev(values) / min(values) * 100 for name, values in results.items()}

    with LogContext(user_id="u1", correlation_id="c1"):
        in_context = best_ns(
            lambda: ours_log.info("Processing request", extra_fields={"action": "create"}),
            args.calls,
            args.repeats,
        )

    print(f"python {sys.version.split()[0]}, {args.calls} calls x {args.repeats} repeats, best-of (ns/call)")
    for name, value in best.items():
        print(f"  {name:<45} {value:9.0f} ns   (round spread {spread[name]:4.1f}%)")
    print(f"  {'log line: atoms_otel JSON inside LogContext':<45} {in_context:9.0f} ns")
    print("ratios")
    counter_ratio = best["counter: atoms_otel Counter.inc"] / best["counter: raw SDK counter.add"]
    hist_ratio = best["histogram: atoms_otel Histogram.observe"] / best["histogram: raw SDK histogram.record"]
    log_ratio = (
        best["log line: atoms_otel JSON (extra_fields)"] / best["log line: stdlib + python-json-logger"]
    )
    print(f"  counter   atoms_otel / raw SDK             {counter_ratio:5.3f}  (target < 1.10)")
    print(f"  histogram atoms_otel / raw SDK             {hist_ratio:5.3f}  (target < 1.10)")
    print(f"  JSON log  atoms_otel / python-json-logger  {log_ratio:5.3f}  (target <= 1.00)")
    atoms_otel.shutdown()
    sink.close()


if __name__ == "__main__":
    main()
