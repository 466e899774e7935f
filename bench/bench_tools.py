"""Cost of ``@observe_tool`` per call, next to the same telemetry written by hand with the raw SDK;
and of an MCP ``tools/call`` through ``instrument_mcp``, next to the mcp SDK's own spans.

    python bench/bench_tools.py                 # 5 interleaved rounds of 20000 calls each
    python bench/bench_tools.py --calls 50000 --rounds 7
    python bench/bench_tools.py --mcp           # 14 interleaved rounds of 400 in-process tools/call

Both sides record the same signals into equivalent pipelines: an SDK tracer with batch export to a
discarding exporter, and an SDK meter with a Prometheus reader. The raw baseline is what you would
write by hand — ``with tracer.start_as_current_span("execute_tool t", attributes=...)``, then a
counter ``add`` and a histogram ``record`` with ``{tool, status}`` inside the span. The decorated
tool does that plus the error handling, the context management for generators and the guard.
Rounds alternate between the two so machine noise shows as spread rather than bias; the best
round of each is compared (target: the decorator costs at most 0.6x the raw baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

import atoms_otel
from atoms_otel import observe_tool
from atoms_otel.otel.metrics import MCP_DURATION_BUCKETS


class Discard(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def raw_baseline() -> tuple[Callable[[int], int], Callable[[int], Any]]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = tracer_provider.get_tracer("raw")
    reader = PrometheusMetricReader(registry=CollectorRegistry())
    meter = MeterProvider(metric_readers=[reader]).get_meter("raw")
    executions = meter.create_counter("raw.tool.executions")
    duration = meter.create_histogram(
        "raw.tool.duration", unit="s", explicit_bucket_boundaries_advisory=MCP_DURATION_BUCKETS
    )
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "raw"}

    def raw_tool(x: int) -> int:
        start = time.perf_counter()
        with tracer.start_as_current_span("execute_tool raw", attributes=attributes):
            result = x + 1
            labels = {"tool": "raw", "status": "success"}
            executions.add(1, labels)
            duration.record(time.perf_counter() - start, labels)
        return result

    async def raw_async_tool(x: int) -> int:
        start = time.perf_counter()
        with tracer.start_as_current_span("execute_tool raw", attributes=attributes):
            result = x + 1
            labels = {"tool": "raw", "status": "success"}
            executions.add(1, labels)
            duration.record(time.perf_counter() - start, labels)
        return result

    return raw_tool, raw_async_tool


def decorated() -> tuple[Callable[[int], int], Callable[[int], Any]]:
    atoms_otel.configure(
        service_name="bench-tools",
        advanced=atoms_otel.AdvancedOptions(
            span_processors=[BatchSpanProcessor(Discard())],
            log_stream=open(os.devnull, "w"),  # noqa: SIM115 - lives as long as the process
        ),
    )

    @observe_tool("observed")
    def observed_tool(x: int) -> int:
        return x + 1

    @observe_tool("observed_async")
    async def observed_async_tool(x: int) -> int:
        return x + 1

    return observed_tool, observed_async_tool


def time_sync(fn: Callable[[int], int], calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - start) / calls * 1e9


def time_async(fn: Callable[[int], Any], calls: int) -> float:
    async def loop() -> float:
        start = time.perf_counter()
        for i in range(calls):
            await fn(i)
        return (time.perf_counter() - start) / calls * 1e9

    return asyncio.run(loop())


MCP_SCENARIOS = ("none", "sdk", "atoms")
"""``none``: no tracer provider (the SDK's spans are no-ops); ``sdk``: an SDK tracer provider with
batch export to a discarding exporter, so the mcp SDK's own client and server spans are recorded;
``atoms``: ``atoms_otel.configure()`` (same export) and ``instrument_mcp(server)``."""


def mcp_worker(scenario: str) -> None:
    """One scenario in its own process: an in-process ``mcp.Client(server)`` session; each line
    ``N`` on stdin runs N ``tools/call`` and prints the ns per call."""
    import mcp
    from mcp.server.mcpserver import MCPServer
    from opentelemetry import trace

    if scenario == "sdk":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Discard()))
        trace.set_tracer_provider(provider)
    server = MCPServer("bench")

    @server.tool()
    async def add(a: int, b: int) -> int:  # async: no worker-thread hop to blur the comparison
        """Adds."""
        return a + b

    if scenario == "atoms":
        atoms_otel.configure(
            service_name="bench-mcp",
            advanced=atoms_otel.AdvancedOptions(
                span_processors=[BatchSpanProcessor(Discard())],
                log_stream=open(os.devnull, "w"),  # noqa: SIM115 - lives as long as the process
            ),
        )
        atoms_otel.instrument_mcp(server)

    async def serve() -> None:
        async with mcp.Client(server) as client:
            for i in range(50):  # warm-up: labels, children, code paths
                await client.call_tool("add", {"a": i, "b": 1})
            loop = asyncio.get_running_loop()
            while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                calls = int(line)
                start, cpu = time.perf_counter(), time.process_time()
                for i in range(calls):
                    await client.call_tool("add", {"a": i, "b": 1})
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                print(wall / calls * 1e9, cpu / calls * 1e9, flush=True)

    asyncio.run(serve())


def mcp_main(calls: int, rounds: int) -> None:
    workers = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--mcp-worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in MCP_SCENARIOS
    }

    def run(name: str) -> tuple[float, float]:
        worker = workers[name]
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(f"{calls}\n")
        worker.stdin.flush()
        wall, cpu = worker.stdout.readline().split()
        return float(wall) / 1000.0, float(cpu) / 1000.0

    for name in MCP_SCENARIOS:  # warm-up round, not counted
        run(name)
    walls: dict[str, list[float]] = {name: [] for name in MCP_SCENARIOS}
    cpus: dict[str, list[float]] = {name: [] for name in MCP_SCENARIOS}
    for index in range(rounds):
        order = MCP_SCENARIOS if index % 2 == 0 else MCP_SCENARIOS[::-1]
        for name in order:
            wall, cpu = run(name)
            walls[name].append(wall)
            cpus[name].append(cpu)
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(timeout=30)

    print(f"\nMCP tools/call, in-process mcp.Client(server): us per call, {calls} calls x {rounds} rounds")
    print("(cpu: process CPU time per call, all threads; steadier than wall time on a busy machine)")
    print(
        f"{'scenario':<8} {'wall med':>9} {'best':>8} {'cpu med':>8} {'best':>8}"
        f" {'cpu over none':>14} {'over sdk':>9}"
    )
    median = {name: statistics.median(values) for name, values in cpus.items()}
    for name in MCP_SCENARIOS:
        print(
            f"{name:<8} {statistics.median(walls[name]):>9.1f} {min(walls[name]):>8.1f} "
            f"{median[name]:>8.1f} {min(cpus[name]):>8.1f} "
            f"{median[name] - median['none']:>+14.1f} {median[name] - median['sdk']:>+9.1f}"
        )
    # Each round runs the scenarios back to back: the median of the per-round differences cancels
    # the machine's slow swings, which the difference of medians does not.
    paired = {
        name: statistics.median(c - s for c, s in zip(cpus[name], cpus["sdk"], strict=True))
        for name in ("none", "atoms")
    }
    print(
        f"paired per round (cpu): sdk over none {-paired['none']:+.1f} us, "
        f"atoms_otel over sdk {paired['atoms']:+.1f} us"
    )
    extra = paired["atoms"]
    verdict = "met" if extra <= 25 else "NOT met"
    print(
        f"atoms_otel over the SDK's own spans: {extra:+.1f} us CPU per call, paired median"
        f" ({verdict}; target <= +25 us)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5; --mcp: 14)")
    parser.add_argument("--mcp", action="store_true", help="MCP tools/call: none vs sdk vs atoms_otel")
    parser.add_argument("--mcp-worker", choices=MCP_SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mcp_worker:
        mcp_worker(args.mcp_worker)
        return
    if args.mcp:
        mcp_main(400 if args.calls == 20_000 else args.calls, args.rounds or 14)
        return
    args.rounds = args.rounds or 5

    raw_sync, raw_async = raw_baseline()
    ours_sync, ours_async = decorated()
    cases: dict[str, Callable[[], float]] = {
        "raw span+counter+histogram (sync)": lambda: time_sync(raw_sync, args.calls),
        "@observe_tool (sync)": lambda: time_sync(ours_sync, args.calls),
        "raw span+counter+histogram (async)": lambda: time_async(raw_async, args.calls),
        "@observe_tool (async)": lambda: time_async(ours_async, args.calls),
    }
    for run in cases.values():  # warm-up
        run()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, run in cases.items():
            samples[name].append(run())

    print(f"\nns per call, {args.calls} calls x {args.rounds} interleaved rounds")
    print(f"{'case':<38} {'best':>9} {'median':>9}")
    for name, values in samples.items():
        print(f"{name:<38} {min(values):>9.0f} {statistics.median(values):>9.0f}")
    for kind in ("sync", "async"):
        raw = min(samples[f"raw span+counter+histogram ({kind})"])
        ours = min(samples[f"@observe_tool ({kind})"])
        verdict = "met" if ours <= 0.6 * raw else "not met"
        print(f"@observe_tool / raw baseline ({kind}): {ours / raw:.2f}  ({verdict}; target <= 0.60)")
    atoms_otel.shutdown()


if __name__ == "__main__":
    main()
