"""Flush on SIGTERM for processes that die by the signal.

Kubernetes and ``docker stop`` stop a service with SIGTERM. Python's default action kills the
process without running ``atexit``, and uvicorn re-raises the signal after its graceful shutdown,
so whatever the batch processors and the metric reader still hold would be lost. When configure()
runs in the main thread and SIGTERM still has its default action, this installs one handler that
shuts every configured handle down (flushing, bounded by each handle's ``shutdown_timeout_s``) and
then re-delivers SIGTERM with the default action: the process still exits by the signal, as
without us. A handler set by the application (or by a server) is never replaced.
"""

from __future__ import annotations

import signal
import threading
import weakref
from types import FrameType

from atoms_otel.base import guard as _guard
from atoms_otel.core.telemetry import Telemetry

__all__ = ["install_sigterm_flush", "sigterm_flush_installed"]

_handles: weakref.WeakSet[Telemetry] = weakref.WeakSet()
# Slack on top of the handles' own deadlines, for the thread to start and the locks to be taken.
_GRACE_S = 1.0


def install_sigterm_flush(telemetry: Telemetry) -> bool:
    """Shut ``telemetry`` down on SIGTERM; True when the handler is (now) in place."""
    if threading.current_thread() is not threading.main_thread():
        return False  # signal handlers can only be set from the main thread
    _handles.add(telemetry)
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm:
        return True
    if current is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def sigterm_flush_installed() -> bool:
    """True when SIGTERM currently runs atoms_otel's flush handler."""
    return signal.getsignal(signal.SIGTERM) is _on_sigterm


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    handles = list(_handles)
    deadline = sum(h.advanced.shutdown_timeout_s for h in handles) + _GRACE_S
    # In a thread, joined with a deadline: the interrupted main thread may hold a lock the exporters
    # need, and a handler that waited on it forever would keep the process from dying.
    worker = threading.Thread(target=_shutdown_all, args=(handles,), name="atoms-otel-sigterm", daemon=True)
    worker.start()
    worker.join(deadline)
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _shutdown_all(handles: list[Telemetry]) -> None:
    for telemetry in handles:
        with _guard.guard("shutdown on SIGTERM"):
            telemetry.shutdown()
