"""One guard for every failure inside atoms_otel: contain it, count it, log it once.

Nothing atoms_otel does may break the host application. Hooks, processors, exporters, plugins and
deliveries call :func:`report_internal_error` (or use :func:`guard`) instead of letting an exception
escape. Each distinct ``component`` is logged once, at ERROR, with the traceback; every occurrence
is counted and exposed as ``atoms_otel_internal_errors_total{component}``.

Tests of atoms_otel itself set :data:`raise_internal_errors` so bugs fail loudly instead.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["count", "guard", "internal_error_counts", "report_internal_error", "reset", "warn_once"]

_logger = logging.getLogger("atoms_otel")
_lock = threading.Lock()
_counts: Counter[str] = Counter()
_reported: set[str] = set()

raise_internal_errors = False
"""When true, internal errors are re-raised after being counted (for atoms_otel's own tests)."""


def report_internal_error(component: str, exc: BaseException | None = None, message: str = "") -> None:
    """Count an internal failure of ``component`` and log it the first time it happens."""
    with _lock:
        _counts[component] += 1
        first = component not in _reported
        _reported.add(component)
    if first:
        with suppress(Exception):  # logging itself is broken: stay silent
            _logger.error(
                "atoms_otel internal error in %s%s; telemetry may be incomplete, "
                "your application is unaffected",
                component,
                f": {message}" if message else "",
                exc_info=exc if exc is not None else False,
                extra={"atoms_otel_component": component},
            )
    if raise_internal_errors and exc is not None:
        raise exc


@contextmanager
def guard(component: str) -> Iterator[None]:
    """Run a block whose failure must not reach the caller."""
    try:
        yield
    except Exception as exc:
        report_internal_error(component, exc)


def warn_once(component: str, message: str) -> None:
    """A misuse by the caller (not our bug): a WARNING the first time, counted every time."""
    with _lock:
        _counts[component] += 1
        first = component not in _reported
        _reported.add(component)
    if first:
        with suppress(Exception):
            _logger.warning("%s: %s", component, message, extra={"atoms_otel_component": component})


def count(component: str) -> None:
    """Count a failure that is reported elsewhere (e.g. an export outage logged by its wrapper)."""
    with _lock:
        _counts[component] += 1


def internal_error_counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget counts and which components were reported (tests)."""
    with _lock:
        _counts.clear()
        _reported.clear()
