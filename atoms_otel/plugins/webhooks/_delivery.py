"""``WebhookDelivery``: the handle a send returns — queued at once, results when they are known."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Generator
from typing import Any, Literal

from atoms_otel.plugins.webhooks._model import DeliveryResult, WebhookPayload

__all__ = ["DeliveryStatus", "WebhookDelivery"]

DeliveryStatus = Literal["queued", "sent", "coalesced", "dropped", "unmatched", "cancelled"]


class WebhookDelivery:
    """Returned by every ``send_*`` call as soon as the alert is queued (or held back).

    ``status`` is ``queued`` until the alert is handled, then ``sent`` (each matching webhook
    answered or gave up: see :attr:`results`), ``coalesced`` (held back as a repeat; it is counted
    in the next summary), ``dropped`` (pushed out of a full queue), ``unmatched`` (no webhook
    takes this event type) or ``cancelled`` (still queued when shutdown's deadline passed).

    To wait for the outcome: ``results = await delivery`` in async code, or
    ``delivery.result(timeout=5)`` in a thread that is not running an event loop.
    """

    __slots__ = ("_future", "payload", "status")

    def __init__(self, payload: WebhookPayload, status: DeliveryStatus = "queued") -> None:
        self.payload = payload
        self.status: DeliveryStatus = status
        self._future: concurrent.futures.Future[tuple[DeliveryResult, ...]] = concurrent.futures.Future()
        if status != "queued":
            self._future.set_result(())

    def finish(self, status: DeliveryStatus, results: tuple[DeliveryResult, ...] = ()) -> None:
        if self._future.done():
            return
        self.status = status
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self._future.set_result(results)

    def done(self) -> bool:
        return self._future.done()

    @property
    def results(self) -> tuple[DeliveryResult, ...]:
        """Per-webhook results once done (empty before, and for alerts that were not sent)."""
        return self._future.result() if self._future.done() else ()

    @property
    def delivered(self) -> bool:
        """True once every matching webhook accepted the alert."""
        return self.status == "sent" and all(r.ok for r in self.results)

    def result(self, timeout: float | None = None) -> tuple[DeliveryResult, ...]:
        """Block until done (``TimeoutError`` after ``timeout`` seconds) and return the results."""
        return self._future.result(timeout)

    def __await__(self) -> Generator[Any, None, tuple[DeliveryResult, ...]]:
        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        return (
            f"WebhookDelivery({self.payload.id!r}, {self.payload.event_type.value}, status={self.status!r})"
        )
