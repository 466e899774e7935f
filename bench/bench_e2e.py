"""End to end: a real uvicorn server (one worker) driven by wrk, bare FastAPI against instrumented.

    python bench/bench_e2e.py                       # 3 interleaved passes, wrk -t1 -c16 -d8s
    python bench/bench_e2e.py --passes 5 --duration 8 --scenarios bare,atoms

Each scenario's app is the one bench_http.py measures in-process (``GET /items/{item_id}``), served
by ``uvicorn`` with one worker on a free loopback port in its own subprocess; ``wrk`` (Debian
package ``wrk``, a load generator none of us wrote) drives ``GET /items/<n>`` with ``--latency`` and
the parent reads requests/s and the latency percentiles from its report. Passes interleave the
scenarios (alternating order) so machine noise shows as spread, not bias; the table gives the
median over passes and the ratios against bare FastAPI.

Scenarios (see bench_http.py): ``bare``, ``atoms`` (configure(app=), span batch-exported to a
discarding exporter, metrics, JSON logs to /dev/null), ``otel`` (opentelemetry-instrumentation-
fastapi with the SDK, batch export to a discarding exporter, a Prometheus reader), and
``atoms_ratio`` (atoms with ``OTEL_TRACES_SAMPLER=traceidratio``, ratio 0.1); on request
``atoms_nofreeze`` (atoms with ``ATOMS_OTEL_GC_FREEZE=false``: the full-collection pauses left in,
for comparison), ``atoms_noexplorer`` (atoms with ``ATOMS_OTEL_EXPLORER=false``: without the live
view's trace store) and ``atoms_otlp`` (atoms whose spans are also exported over OTLP/HTTP, as in
production, to a receiver in this process that reads and discards each batch: the export thread's
scrubbing, protobuf encoding and POSTs share the server's GIL).

Besides wrk's figures the table gives the server's **CPU time per request** (user + system, all
its threads, read from ``/proc`` around the measured run) and the part of it spent outside the
event loop's thread. Requests/s depend on how much of a core the server gets while wrk and
anything else on the machine run; CPU per request does much less, so on a shared machine compare
that column. A second table gives the server's garbage collections during the run (timed by a
``gc.callbacks`` hook in the server): µs per request, the longest, and runs per 1000 requests.
"""

from __future__ import annotations

import argparse
import gc
import http.server
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

SCENARIOS = ("bare", "atoms", "otel", "atoms_ratio", "atoms_nofreeze", "atoms_noexplorer", "atoms_otlp")
_HERE = Path(__file__).resolve().parent
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_SCENARIO_ENV = {
    "atoms_ratio": {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "atoms_nofreeze": {"ATOMS_OTEL_GC_FREEZE": "false"},
    "atoms_noexplorer": {"ATOMS_OTEL_EXPLORER": "false"},
}
_TICKS_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Collections:
    """The garbage collector's runs in the measured window (a ``gc.callbacks`` hook in the server):
    SIGUSR1 opens the window, a second SIGUSR1 closes it and writes the report to stderr (the
    server exits by SIGTERM, re-raised after its graceful shutdown: nothing runs after it)."""

    def __init__(self) -> None:
        self.counting = False
        self._started = 0.0
        self._reset()

    def _reset(self) -> None:
        self.runs = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.counting:
            took = time.perf_counter() - self._started
            self.runs[info["generation"]] += 1
            self.seconds[info["generation"]] += took
            self.longest = max(self.longest, took)

    def toggle(self, *_: object) -> None:
        if not self.counting:
            self._reset()
            self.counting = True
            return
        self.counting = False
        report = {"runs": self.runs, "seconds": self.seconds, "longest": self.longest}
        print("GC " + json.dumps(report), file=sys.stderr, flush=True)


def serve(scenario: str, port: int) -> None:
    """The child: build the scenario's app and serve it until SIGTERM."""
    import uvicorn

    collections = Collections()
    gc.callbacks.append(collections)
    signal.signal(signal.SIGUSR1, collections.toggle)
    sys.path.insert(0, str(_HERE))
    import bench_http

    app = bench_http.build_app("atoms" if scenario.startswith("atoms") else scenario)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


def gc_per_request(stderr: str, requests: int) -> dict[str, float]:
    """The server's collections in the measured run: µs per request, the longest (ms), runs by
    generation per 1000 requests."""
    reports = [line[3:] for line in stderr.splitlines() if line.startswith("GC ")]
    if not reports or requests <= 0:
        return {}
    found = json.loads(reports[-1])
    per_1000 = {f"gc{g}_per_1000": runs / requests * 1000 for g, runs in enumerate(found["runs"])}
    return {"gc_us": sum(found["seconds"]) / requests * 1e6, "gc_max_ms": found["longest"] * 1e3, **per_1000}


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that reads each export and answers 200 with an empty (valid) response."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _otlp_sink() -> http.server.ThreadingHTTPServer:
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sink.daemon_threads = True
    threading.Thread(target=sink.serve_forever, name="otlp-sink", daemon=True).start()
    return sink


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/items/0", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not answer within {timeout_s} s")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, from ``/proc`` (empty elsewhere)."""
    found: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except OSError:  # the thread ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        found[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICKS_S
    return found


def cpu_per_request(
    pid: int, before: dict[int, float], after: dict[int, float], requests: int
) -> dict[str, float]:
    """The server's CPU µs per request: all threads, and the event loop's (main) thread alone."""
    if not after or requests <= 0:
        return {}
    total = sum(spent - before.get(tid, 0.0) for tid, spent in after.items())
    main = after.get(pid, 0.0) - before.get(pid, 0.0)
    return {"cpu_us": total / requests * 1e6, "other_us": (total - main) / requests * 1e6}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(report: str) -> dict[str, float]:
    """Requests/s and the 50/75/90/99th latency percentiles (ms) of a ``wrk --latency`` report."""
    found: dict[str, float] = {}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
    if rate is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{report}")
    found["rps"] = float(rate.group(1))
    count = re.search(r"(\d+) requests in", report)
    found["requests"] = float(count.group(1)) if count else 0.0
    for percent, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", report, re.M):
        found[f"p{percent}"] = _ms(value, unit)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    found["non2xx"] = float(errors.group(1)) if errors else 0.0
    return found


def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, float]:
    port = _free_port()
    env = {**os.environ, **_SCENARIO_ENV.get(scenario, {})}
    sink = _otlp_sink() if scenario == "atoms_otlp" else None
    if sink is not None:
        endpoint = f"http://127.0.0.1:{sink.server_address[1]}/v1/traces"
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = endpoint
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", scenario, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(port, server)
        url = f"http://127.0.0.1:{port}/items/42"
        # A short warm-up, so first-request work is not in the measured run.
        subprocess.run([args.wrk, "-t1", "-c4", "-d1s", url], check=True, capture_output=True)
        command = [
            args.wrk,
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            url,
        ]
        server.send_signal(signal.SIGUSR1)  # the server starts counting collections
        before = thread_cpu_s(server.pid)
        report = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        after = thread_cpu_s(server.pid)
        server.send_signal(signal.SIGUSR1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
        if sink is not None:
            sink.shutdown()
            sink.server_close()
    found = parse_wrk(report)
    requests = int(found["requests"])
    return {
        **found,
        **cpu_per_request(server.pid, before, after, requests),
        **gc_per_request(stderr.decode(errors="replace"), requests),
    }


def _print_table(samples: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    keys = ("rps", "p50", "p90", "p99", "cpu_us", "other_us")
    median = {
        s: {k: statistics.median(r.get(k, float("nan")) for r in runs) for k in keys}
        for s, runs in samples.items()
    }
    shape = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, {args.passes} passes"
    print(f"\nGET /items/{{id}}, uvicorn 1 worker, {shape} (medians over passes)")
    columns = ("req/s", "p50 ms", "p90 ms", "p99 ms", "CPU us/req", "threads")
    print(
        f"{'scenario':<16} "
        + " ".join(f"{c:>10}" for c in columns)
        + f" {'req/s vs bare':>14} {'p99/bare':>9} {'CPU - bare':>11}"
    )
    bare = median.get("bare")
    for s, m in median.items():
        rps_ratio = f"{(m['rps'] / bare['rps'] - 1) * 100:+.1f} %" if bare else "n/a"
        p99_ratio = f"{m['p99'] / bare['p99']:.2f}x" if bare else "n/a"
        cpu_delta = f"{m['cpu_us'] - bare['cpu_us']:+.0f} us" if bare else "n/a"
        figures = " ".join(f"{m[k]:>10.2f}" for k in ("p50", "p90", "p99"))
        cpu = f"{m['cpu_us']:>10.1f} {m['other_us']:>10.1f}"
        print(f"{s:<16} {m['rps']:>10.0f} {figures} {cpu} {rps_ratio:>14} {p99_ratio:>9} {cpu_delta:>11}")
    print("\nper pass (req/s, p99 ms, server CPU us/req):")
    for s, runs in samples.items():
        print(
            f"  {s:<16} "
            + "  ".join(f"{r['rps']:.0f}/{r['p99']:.1f}/{r.get('cpu_us', float('nan')):.0f}" for r in runs)
        )
    print(
        "CPU us/req: the server process's CPU time (user + system, all threads) over the requests wrk"
        " completed; threads: the part spent outside the event loop's thread (export, live view)."
    )
    _print_collections(samples)
    if bare:
        print("targets: atoms req/s >= -15 % vs bare; atoms p99 <= 2x bare p99")


def _print_collections(samples: dict[str, list[dict[str, float]]]) -> None:
    keys = ("gc_us", "gc_max_ms", "gc0_per_1000", "gc1_per_1000", "gc2_per_1000")
    print("\nthe server's garbage collections during the run (medians over passes):")
    print(f"  {'scenario':<16} {'us/req':>7} {'longest ms':>11}   runs per 1000 requests, generation 0/1/2")
    for s, runs in samples.items():
        m = {k: statistics.median(r.get(k, float("nan")) for r in runs) for k in keys}
        print(
            f"  {s:<16} {m['gc_us']:>7.1f} {m['gc_max_ms']:>11.2f}   "
            f"{m['gc0_per_1000']:.1f} / {m['gc1_per_1000']:.2f} / {m['gc2_per_1000']:.2f}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=3, help="interleaved passes over all scenarios")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS[:4]), help="comma-separated subset")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk", help="the wrk binary")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return
    if not Path(args.wrk).exists():
        raise SystemExit("wrk not found: apt-get install wrk (or pass --wrk PATH)")
    scenarios = [s for s in args.scenarios.split(",") if s]
    samples: dict[str, list[dict[str, float]]] = {s: [] for s in scenarios}
    for index in range(args.passes):
        order = scenarios if index % 2 == 0 else list(reversed(scenarios))
        for scenario in order:
            result = run_scenario(scenario, args)
            samples[scenario].append(result)
            print(
                f"pass {index + 1}: {scenario:<12} {result['rps']:.0f} req/s, p99 {result['p99']:.2f} ms",
                file=sys.stderr,
            )
    _print_table(samples, args)


if __name__ == "__main__":
    main()
