"""Per-call cost of the core facades next to the raw OpenTelemetry SDK and stdlib logging.

    python bench/bench_core.py [--calls 20000] [--repeats 7]
    python bench/bench_core.py --import-time [--runs 15]

Not a test: it prints ns/call (best of N repeats, each a tight loop) and ratios. Everything is
measured in one process, one after another and interleaved, on the same MeterProvider and readers,
writing logs to the same discarding stream — so the comparison is fair on a noisy machine.

The log lines: ``atoms_otel JSON`` is one ``get_logger(...).info`` with two fields inside a
``LogContext`` (correlation and user id), the case the README's target is stated for; it is
measured on the direct path (only our handler listens), on the stdlib record path (a handler of
someone else's on the logger forces the ``LogRecord``), and with the json module instead of
``orjson``. The references are stdlib logging with a plain-text formatter and with
python-json-logger, given the same two fields.

The last part measures what the semconv ``db.client.operation.duration`` adds to a
``@track_database_operation`` call: OTLP metrics on (to a closed local port, export interval 10
minutes, so nothing is sent while measuring; traces and logs not exported), rounds alternating
``ATOMS_OTEL_DB_CLIENT_METRICS`` on and off.

``--import-time`` measures what ``import atoms_otel`` adds over importing its dependencies first
(FastAPI, the OpenTelemetry SDK and the exporters it uses, prometheus_client, pydantic, httpx),
each run in a fresh interpreter; medians. Whether Python may cache bytecode
(``PYTHONDONTWRITEBYTECODE``) changes the figure a lot: it is printed with it.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from pythonjsonlogger.json import JsonFormatter

import atoms_otel
from atoms_otel import AdvancedOptions, Counter, Histogram, LogContext, get_logger, track_database_operation
from atoms_otel.otel.logs import format as log_format

Case = tuple[Callable[[], None], Callable[[], Any]]


def best_ns(
    fn: Callable[[], None], calls: int, repeats: int, around: Callable[[], Any] = nullcontext
) -> float:
    samples = []
    with around():
        for _ in range(repeats):
            start = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            samples.append((time.perf_counter_ns() - start) / calls)
    return min(samples)


@contextmanager
def in_log_context() -> Iterator[None]:
    with LogContext(user_id="u1", correlation_id="c1"):
        yield


@contextmanager
def stdlib_json() -> Iterator[None]:
    """The json module instead of orjson (a tree without the orjson switch measures its only path)."""
    saved = getattr(log_format, "orjson", None)
    if hasattr(log_format, "orjson"):
        log_format.orjson = None  # type: ignore[assignment]
    try:
        with in_log_context():
            yield
    finally:
        if hasattr(log_format, "orjson"):
            log_format.orjson = saved


_IMPORT_PROBE = """
import time
start = time.perf_counter()
import fastapi, httpx, prometheus_client, pydantic
import opentelemetry.sdk._logs, opentelemetry.sdk.metrics, opentelemetry.sdk.trace
import opentelemetry.exporter.otlp.proto.http._log_exporter
import opentelemetry.exporter.otlp.proto.http.metric_exporter
import opentelemetry.exporter.otlp.proto.http.trace_exporter
import opentelemetry.exporter.prometheus
deps = time.perf_counter()
import atoms_otel
done = time.perf_counter()
print((deps - start) * 1e3, (done - deps) * 1e3)
"""


_ROOT = Path(__file__).resolve().parent.parent


def import_time(runs: int) -> None:
    """Median ms of the dependencies' import, and of ``import atoms_otel`` after them."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
        )
        deps, ours = map(float, out.stdout.split())
        samples.append((deps, ours))
    cached = "off" if (os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.dont_write_bytecode) else "on"
    print(f"python {sys.version.split()[0]}, {runs} fresh interpreters, bytecode caching {cached}")
    print(f"  dependencies first               median {statistics.median(d for d, _ in samples):7.1f} ms")
    ours = [o for _, o in samples]
    print(
        f"  import atoms_otel over them      median {statistics.median(ours):7.1f} ms  (best {min(ours):.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--import-time", action="store_true", help="measure import atoms_otel instead")
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters for --import-time")
    args = parser.parse_args()
    if args.import_time:
        import_time(args.runs)
        return

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
    record_path_log = get_logger("bench.record")  # someone else's handler listens: the record is built
    logging.getLogger("bench.record").addHandler(logging.NullHandler())
    library = logging.getLogger("bench.library")
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

    fields = {"action": "create", "item": 7}
    plain_ctx = nullcontext
    cases: dict[str, Case] = {
        "counter: atoms_otel Counter.inc": (lambda: ours_counter.inc(labels=attrs), plain_ctx),
        "counter: raw SDK counter.add": (lambda: raw_counter.add(1, attrs), plain_ctx),
        "histogram: atoms_otel Histogram.observe": (lambda: ours_hist.observe(0.05, hist_attrs), plain_ctx),
        "histogram: raw SDK histogram.record": (lambda: raw_hist.record(0.05, hist_attrs), plain_ctx),
        "log: atoms_otel JSON, context + 2 fields": (
            lambda: ours_log.info("Processing request", extra_fields=fields),
            in_log_context,
        ),
        "log: same, json module (no orjson)": (
            lambda: ours_log.info("Processing request", extra_fields=fields),
            stdlib_json,
        ),
        "log: same, stdlib record path": (
            lambda: record_path_log.info("Processing request", extra_fields=fields),
            in_log_context,
        ),
        "log: stdlib logger through our handler": (
            lambda: library.info("Processing request", extra=fields),
            in_log_context,
        ),
        "log: stdlib + python-json-logger": (
            lambda: pjl.info("Processing request", extra=fields),
            in_log_context,
        ),
        "log: stdlib plain text formatter": (
            lambda: plain.info("Processing request", extra=fields),
            in_log_context,
        ),
        # Value scrubbing by credential format (issue 11 item 8): its share of a log line.
        "scrub_text: plain access-log message": (lambda: scrubber.scrub_text(plain_text), plain_ctx),
        "scrub_text: message with key and password=": (lambda: scrubber.scrub_text(secret_text), plain_ctx),
        "log: atoms_otel JSON, password= in message": (
            lambda: ours_log.info(
                "login failed password=hunter2 for %s", "bob", extra_fields={"action": "create"}
            ),
            plain_ctx,
        ),
    }
    # Interleave: every case runs once per round, rounds repeated; keep each case's best round.
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(3):
        for name, (fn, around) in cases.items():
            results[name].append(best_ns(fn, args.calls, max(1, args.repeats // 3), around))
    best = {name: min(values) for name, values in results.items()}
    spread = {name: statistics.pstdev(values) / min(values) * 100 for name, values in results.items()}

    print(f"python {sys.version.split()[0]}, {args.calls} calls x {args.repeats} repeats, best-of (ns/call)")
    print(f"orjson {'installed' if getattr(log_format, 'ORJSON', False) else 'not used'}")
    for name, value in best.items():
        print(f"  {name:<45} {value:9.0f} ns   (round spread {spread[name]:4.1f}%)")
    print("ratios")
    counter_ratio = best["counter: atoms_otel Counter.inc"] / best["counter: raw SDK counter.add"]
    hist_ratio = best["histogram: atoms_otel Histogram.observe"] / best["histogram: raw SDK histogram.record"]
    ours = best["log: atoms_otel JSON, context + 2 fields"]
    print(f"  counter   atoms_otel / raw SDK                    {counter_ratio:5.3f}  (target < 1.10)")
    print(f"  histogram atoms_otel / raw SDK                    {hist_ratio:5.3f}  (target < 1.10)")
    plain_ratio = ours / best["log: stdlib plain text formatter"]
    pjl_ratio = ours / best["log: stdlib + python-json-logger"]
    print(f"  JSON log  atoms_otel / stdlib plain text        {plain_ratio:5.3f}  (target <= 1.00)")
    print(f"  JSON log  atoms_otel / python-json-logger       {pjl_ratio:5.3f}")
    json_ratio = best["log: same, json module (no orjson)"] / ours
    record_ratio = best["log: same, stdlib record path"] / ours
    print(f"  JSON log  json module / orjson                  {json_ratio:5.3f}")
    print(f"  JSON log  stdlib record path / direct path      {record_ratio:5.3f}")
    atoms_otel.shutdown()
    exported_log_cost(args.calls, args.repeats, sink)
    database_cost(args.calls, args.repeats, sink)
    sink.close()


class _DiscardLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def exported_log_cost(calls: int, repeats: int, sink: Any) -> None:
    """ns per JSON line when logs are also exported (the OTel bridge on, batch export discarded)."""
    advanced = AdvancedOptions(log_stream=sink, log_exporters=(_DiscardLogs(),))
    atoms_otel.configure(service_name="bench", advanced=advanced)
    direct, record = get_logger("bench.export.direct"), get_logger("bench.export.record")
    logging.getLogger("bench.export.record").addHandler(logging.NullHandler())
    fields = {"action": "create", "item": 7}
    results: dict[str, list[float]] = {"direct": [], "record": []}
    for _ in range(3):
        for mode, log in (("direct", direct), ("record", record)):
            results[mode].append(
                best_ns(
                    lambda log=log: log.info("Processing request", extra_fields=fields),
                    calls // 2,
                    max(1, repeats // 3),
                    in_log_context,
                )
            )
    atoms_otel.shutdown()
    on, off = min(results["direct"]), min(results["record"])
    print("log line with logs exported (JSON line + OTel log record; best-of ns/call)")
    print(f"  atoms_otel, direct path                                     {on:9.0f} ns")
    print(f"  atoms_otel, stdlib record path                              {off:9.0f} ns  ({off / on:.3f}x)")


def database_cost(calls: int, repeats: int, sink: Any) -> None:
    """ns per @track_database_operation call with and without db.client.operation.duration."""
    os.environ.update(
        OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", OTEL_METRIC_EXPORT_INTERVAL="600000"
    )

    @track_database_operation("select", "users", system="postgresql")
    def query() -> int:
        return 1

    results: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(3):
        for mode in results:
            os.environ["ATOMS_OTEL_DB_CLIENT_METRICS"] = "true" if mode == "on" else "false"
            atoms_otel.configure(
                service_name="bench",
                otlp_endpoint="http://127.0.0.1:9",
                advanced=AdvancedOptions(log_stream=sink),
            )
            results[mode].append(best_ns(query, calls // 2, max(1, repeats // 3)))
    atoms_otel.shutdown()
    on, off = min(results["on"]), min(results["off"])
    print("database call, OTLP metrics on (best-of ns/call)")
    print(f"  @track_database_operation, db.client.operation.duration on  {on:9.0f} ns")
    print(f"  @track_database_operation, opted out                        {off:9.0f} ns")
    print(
        f"  the semconv histogram adds                                  {on - off:9.0f} ns  ({on / off:.3f}x)"
    )


if __name__ == "__main__":
    main()
