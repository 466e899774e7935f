"""``python -m atoms_otel demo`` (or ``atoms-otel demo``): an instrumented example service with
synthetic traffic, to see what atoms_otel shows before any Collector or Grafana exists.

It starts the example service (:mod:`atoms_otel.demo.service`) on 127.0.0.1 with ``configure()``,
drives a realistic mix of requests against it (:mod:`atoms_otel.demo.traffic`), prints where to
look (``/observability``, ``/metrics``, ``/health``) and runs until Ctrl-C (SIGINT), SIGTERM or
``--duration``. ``--check`` runs a few seconds, asks every endpoint (:mod:`atoms_otel.demo.check`)
and exits 1 naming each one that misbehaved. Exit codes: 0 fine, 1 check failed, 2 could not start.

Needs uvicorn (``pip install 'atoms-otel[demo]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import IO

from atoms_otel.demo.options import CHECK_DURATION_S, DEFAULT_PORT, DEFAULT_RATE, DemoOptions
from atoms_otel.demo.traffic import MAX_RATE

_MISSING = ""
try:  # uvicorn is the optional "demo" extra
    from atoms_otel.demo.runner import serve_demo
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    serve_demo = None  # type: ignore[assignment]
    _MISSING = str(exc)

__all__ = ["DemoOptions", "add_arguments", "options_from", "run"]


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0 = a free port)")
    return port


def _rate(text: str) -> float:
    rate = float(text)
    if not 0 < rate <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"must be > 0 and at most {MAX_RATE:g} requests per second")
    return rate


def _duration(text: str) -> float:
    seconds = float(text)
    if not 0 < seconds < 1e7:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="port on 127.0.0.1 (0 = a free port)"
    )
    parser.add_argument(
        "--duration", type=_duration, default=None, help="stop after SECONDS (default: until Ctrl-C)"
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=DEFAULT_RATE,
        help=f"requests per second (default 5, at most {MAX_RATE:g})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"run {CHECK_DURATION_S:g} s (or --duration), check every endpoint, exit 1 if one misbehaves",
    )
    parser.add_argument("--token", default=None, help="protect the API and the page with this bearer token")
    parser.add_argument("--log-level", default="WARNING", help="service log level (default WARNING)")


def options_from(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        port=args.port,
        duration_s=args.duration,
        rate=args.rate,
        check=args.check,
        token=args.token,
        log_level=args.log_level,
    )


def run(options: DemoOptions, out: IO[str] | None = None) -> int:
    """Run the demo in this process until it is stopped; the exit code."""
    stream = out or sys.stdout
    if serve_demo is None:
        print(
            f"atoms-otel demo: the demo serves with uvicorn ({_MISSING}); pip install 'atoms-otel[demo]'",
            file=stream,
        )
        return 2
    return asyncio.run(serve_demo(options, stream))
