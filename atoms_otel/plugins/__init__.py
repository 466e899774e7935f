"""Plugins consume signals: a tiny protocol that configure() drives, and an event hub.

A plugin is any object with ``setup(telemetry)`` and ``shutdown()``; pass it to
``configure(plugins=[...])``. Plugins talk to each other through :class:`EventHub` — the health
plugin publishes status transitions, the webhook plugin subscribes to them — so neither imports
the other, and integrations import neither. A failing plugin or subscriber is contained by the
internal-error guard; it never reaches the request that caused the event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from atoms_otel.base import guard as _guard

if TYPE_CHECKING:
    from atoms_otel.base.settings import Settings
    from atoms_otel.core.telemetry import Telemetry

__all__ = ["Event", "EventHub", "Plugin", "Subscriber", "builtin_plugins"]


@runtime_checkable
class Plugin(Protocol):
    """What configure() needs from a plugin."""

    def setup(self, telemetry: Telemetry) -> None: ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Event:
    """Something a plugin may react to.

    ``kind`` is a dotted name: ``error.unhandled`` (an unhandled request exception),
    ``health.changed`` (a component's status changed), ``performance.degraded``, or any name a
    plugin or the application chooses. ``correlation_id`` and ``trace_id`` tie it to the request
    that caused it, when there was one.
    """

    kind: str
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "info"
    correlation_id: str | None = None
    trace_id: str | None = None
    timestamp: float = field(default_factory=time.time)


Subscriber = Callable[[Event], None]


class EventHub:
    """Synchronous publish/subscribe. Subscribers must be quick (queue work, don't do I/O)."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._lock = threading.Lock()

    def subscribe(self, prefix: str, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every event whose kind starts with ``prefix`` ("" for all).
        Returns a function that unsubscribes."""
        entry = (prefix, subscriber)
        with self._lock:
            self._subscribers = [*self._subscribers, entry]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not entry]

        return unsubscribe

    def publish(self, event: Event) -> None:
        for prefix, subscriber in self._subscribers:  # copy-on-write list: no lock needed here
            if event.kind.startswith(prefix):
                try:
                    subscriber(event)
                except Exception as exc:
                    _guard.report_internal_error(
                        f"event subscriber {getattr(subscriber, '__qualname__', subscriber)}", exc
                    )

    def clear(self) -> None:
        with self._lock:
            self._subscribers = []


def builtin_plugins(settings: Settings) -> list[Plugin]:
    """The plugins configure() always runs, before the user's own (``configure(plugins=...)``).

    Each built-in plugin module adds itself here; configure() is the only caller.
    """
    from atoms_otel.plugins.health.plugin import HealthPlugin
    from atoms_otel.plugins.webhooks.plugin import WebhookPlugin

    # Health first: its transitions are events the webhook plugin turns into alerts. Webhooks are
    # always on: events with no webhook registered cost one check, and webhooks added in code
    # (configure_vercel_webhook, webhook_manager.add_webhook) get the event-driven alerts too.
    return [HealthPlugin(), WebhookPlugin()]
