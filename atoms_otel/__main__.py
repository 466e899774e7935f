"""``python -m atoms_otel`` / ``atoms-otel``: small command-line helpers."""

from __future__ import annotations

import argparse
import os
import sys

from atoms_otel import demo
from atoms_otel._version import __version__
from atoms_otel.base.environment import describe_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atoms-otel", description="atoms_otel command-line helpers")
    parser.add_argument("--version", action="version", version=f"atoms-otel {__version__}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser(
        "env", help="list the environment variables atoms_otel reads, with their values and sources"
    )
    demo.add_arguments(
        commands.add_parser(
            "demo",
            help="run an instrumented example service with synthetic traffic and the live view",
            description="Serve an example service on 127.0.0.1 with synthetic traffic; "
            "open /observability to watch it. Ctrl-C stops it.",
        )
    )
    args = parser.parse_args(argv)
    if args.command == "env":
        for line in describe_environment(os.environ):
            print(line)
        return 0
    if args.command == "demo":
        return demo.run(demo.options_from(args))
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
