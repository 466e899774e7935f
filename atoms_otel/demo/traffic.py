"""Synthetic traffic for the demo: a weighted mix of requests at a steady, capped rate.

Bounded: at most :data:`MAX_RATE` requests per second and :data:`MAX_IN_FLIGHT` requests at once;
when the service is slower than the rate, requests are skipped (and counted), never queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from atoms_otel.demo.service import TOOL_NAMES

__all__ = ["MAX_IN_FLIGHT", "MAX_RATE", "TrafficDriver", "TrafficStats"]

MAX_RATE: Final = 50.0
MAX_IN_FLIGHT: Final = 16
_WORDS: Final = ("invoice", "latency", "otel", "onboarding", "refund", "quota", "mcp", "grafana")


@dataclass
class TrafficStats:
    """What the driver sent and got back."""

    sent: int = 0
    skipped: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    last_transport_error: str = ""

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.by_status.items()))
        text = f"{self.sent} requests sent ({codes or 'no answers'})"
        if self.skipped:
            text += f", {self.skipped} skipped (service slower than the rate)"
        if self.transport_errors:
            text += f", {self.transport_errors} transport errors (last: {self.last_transport_error})"
        return text


def _request(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """One request of the mix: (method, path, httpx keyword arguments)."""
    roll = rng.random()
    if roll < 0.28:
        return "GET", f"/items/{rng.randint(1, 60)}", {}
    if roll < 0.40:
        return "GET", "/search", {"params": {"q": rng.choice(_WORDS)}}
    if roll < 0.50:
        return "POST", "/orders", {"json": {"item_id": rng.randint(1, 60), "quantity": rng.randint(1, 5)}}
    if roll < 0.53:
        return "POST", "/orders", {"json": {"item_id": 0, "quantity": 500}}  # a 422
    if roll < 0.58:
        return "GET", f"/reports/{rng.randint(1, 20)}", {}
    if roll < 0.68:
        return "POST", "/checkout", {"params": {"amount_cents": rng.randint(500, 20_000)}}
    if roll < 0.70:
        return "GET", rng.choice(("/wp-login.php", "/.env", "/admin")), {}  # scanners: 404s
    tool = rng.choice(TOOL_NAMES)
    arguments: dict[str, dict[str, Any]] = {
        "search_documents": {"query": rng.choice(_WORDS), "limit": rng.randint(1, 8)},
        "create_ticket": {
            "title": "demo ticket",
            "priority": rng.choice(("low", "normal", "high", "urgent!")),
        },
        "summarize": {"text": " ".join(rng.choices(_WORDS, k=12))},
    }
    return "POST", f"/tools/{tool}", {"json": arguments[tool]}


class TrafficDriver:
    """Sends the mix to ``client`` (whose ``base_url`` is the service) at ``rate`` requests/s."""

    def __init__(self, client: httpx.AsyncClient, rate: float, *, rng: random.Random | None = None) -> None:
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be > 0 and at most {MAX_RATE:g} requests/s")
        self._client = client
        self._interval = 1.0 / rate
        self._rng = rng or random.Random()
        self._in_flight: set[asyncio.Task[None]] = set()
        self.stats = TrafficStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set, then wait briefly for the requests in flight."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            if len(self._in_flight) < MAX_IN_FLIGHT:
                task = asyncio.create_task(self._send(*_request(self._rng)))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            else:
                self.stats.skipped += 1
            next_at += self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(next_at - loop.time(), 0.0))
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=3.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _send(self, method: str, path: str, options: dict[str, Any]) -> None:
        self.stats.sent += 1
        try:
            response = await self._client.request(method, path, **options)
        except httpx.HTTPError as exc:
            self.stats.transport_errors += 1
            self.stats.last_transport_error = f"{method} {path}: {type(exc).__name__}: {exc}"[:300]
            return
        self.stats.by_status[response.status_code] += 1
