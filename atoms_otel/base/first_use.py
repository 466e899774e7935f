"""First use before ``configure()``: configure with the defaults instead of silently doing nothing.

The spec's snippets never call ``configure()``. So the first use of the API — a logger call, a
``record_*`` recorder, a decorator, a middleware class, the router's startup — configures atoms_otel
with the defaults an empty ``configure()`` gives (read from the environment), once per process, and
says so at INFO. The facade arms the hook at import; an explicit ``configure()`` or ``shutdown()``
disarms it for good, so it never fights the application's own setup. Callers on hot paths test the
module attribute :data:`pending` first (one attribute load when nothing is to be done).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from atoms_otel.base import guard

__all__ = ["arm", "disarm", "pending", "run"]

pending = False
"""True until the first use ran the hook, or configure()/shutdown() disarmed it."""

_hook: Callable[[], None] | None = None
_lock = threading.Lock()


def arm(hook: Callable[[], None]) -> None:
    """Run ``hook`` at the first use (the facade's configure-with-defaults)."""
    global _hook, pending
    with _lock:
        _hook, pending = hook, True


def disarm() -> None:
    """Never run the hook: configure() or shutdown() was called explicitly."""
    global _hook, pending
    with _lock:
        _hook, pending = None, False


def run() -> None:
    """Run the hook if it is still armed (at most once; a failure is contained and counted)."""
    global _hook, pending
    with _lock:
        if not pending:
            return
        hook, _hook, pending = _hook, None, False
    if hook is not None:
        with guard.guard("configure with defaults on first use"):
            hook()
