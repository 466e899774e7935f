"""The background queue: coalescing, overflow, drain on shutdown, and never slowing a request."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
from fastapi import FastAPI

from atoms_otel import WebhookManager
from atoms_otel.testing import CapturedTelemetry
from tests.support.receiver import Receiver, Reply
from tests.support.server import serve
from tests.support.webhooks import fast


async def test_identical_alerts_within_the_window_are_coalesced(
    capture_telemetry: CapturedTelemetry, receiver: Receiver
) -> None:
    """Five identical alerts: one goes out at once, one summary with repeated=4 when the window ends."""
    manager = WebhookManager(coalesce_window_s=1.0)
    try:
        manager.add_webhook(fast(receiver.url))
        statuses = [(await manager.send_error_alert("DatabaseError", "down", "db")).status for _ in range(5)]
        first = receiver.wait_for(1)[0].json()
        await asyncio.sleep(0.2)
        assert len(receiver.requests) == 1
        summary = receiver.wait_for(2, timeout=4)[1].json()
    finally:
        manager.shutdown(timeout=1)

    assert statuses == ["queued", "coalesced", "coalesced", "coalesced", "coalesced"]
    assert "repeated" not in first["data"]
    assert summary["data"]["repeated"] == 4
    assert summary["data"]["window_s"] == 1.0
    assert summary["message"] == "DatabaseError: down (repeated 4 more times)"
    assert capture_telemetry.metric_value("webhook_deliveries_total", outcome="coalesced") == 4


async def test_different_alerts_are_not_coalesced(receiver: Receiver) -> None:
    """Alerts that differ (here: the source) each go out."""
    manager = WebhookManager(coalesce_window_s=60)
    try:
        manager.add_webhook(fast(receiver.url))
        for source in ("db", "cache", "auth"):
            await manager.send_error_alert("TimeoutError", "slow", source)
        received = receiver.wait_for(3)
    finally:
        manager.shutdown(timeout=1)
    assert sorted(r.json()["data"]["source"] for r in received) == ["auth", "cache", "db"]


async def test_a_quiet_window_sends_no_summary(receiver: Receiver) -> None:
    """A single alert produces exactly one request, even after its window closed."""
    manager = WebhookManager(coalesce_window_s=0.2)
    try:
        manager.add_webhook(fast(receiver.url))
        await (await manager.send_warning("once"))
        await asyncio.sleep(0.5)
    finally:
        manager.shutdown(timeout=1)
    assert len(receiver.requests) == 1


async def test_shutdown_sends_the_pending_summary(receiver: Receiver) -> None:
    """Repeats held back in an open window are reported at shutdown, not lost."""
    manager = WebhookManager(coalesce_window_s=60)
    manager.add_webhook(fast(receiver.url))
    for _ in range(3):
        await manager.send_warning("flapping")
    manager.shutdown(timeout=2)
    # the summary may overtake the first alert: both are delivered in parallel at shutdown
    assert sorted(r.json()["message"] for r in receiver.requests) == [
        "flapping",
        "flapping (repeated 2 more times)",
    ]


async def test_full_queue_drops_the_oldest_and_counts_it(
    capture_telemetry: CapturedTelemetry, receiver: Receiver
) -> None:
    """With one delivery in flight and room for two, a fourth alert pushes out the second."""
    receiver.default = Reply(delay=0.3)
    manager = WebhookManager(queue_size=2, max_concurrency=1, coalesce_window_s=0)
    try:
        manager.add_webhook(fast(receiver.url))
        in_flight = await manager.send_warning("a")
        receiver.wait_for(1)
        b, c, d = [await manager.send_warning(name) for name in ("b", "c", "d")]
        assert b.status == "dropped"
        assert manager.flush(timeout=5)
    finally:
        manager.shutdown(timeout=1)

    assert [r.json()["message"] for r in receiver.requests] == ["a", "c", "d"]
    assert [x.status for x in (in_flight, c, d)] == ["sent", "sent", "sent"]
    assert capture_telemetry.metric_value("webhook_deliveries_total", outcome="dropped") == 1


async def test_shutdown_drains_the_queue(receiver: Receiver) -> None:
    """Everything queued before shutdown() is delivered before it returns."""
    receiver.default = Reply(delay=0.05)
    manager = WebhookManager(max_concurrency=2, coalesce_window_s=0)
    manager.add_webhook(fast(receiver.url))
    deliveries = [await manager.send_warning(f"alert {i}") for i in range(8)]
    manager.shutdown(timeout=5)
    assert [d.status for d in deliveries] == ["sent"] * 8
    assert all(d.delivered for d in deliveries)
    assert len(receiver.requests) == 8


async def test_shutdown_deadline_cancels_what_is_left(
    capture_telemetry: CapturedTelemetry, receiver: Receiver
) -> None:
    """A hanging receiver cannot hold shutdown past its deadline; the rest is cancelled and counted."""
    receiver.default = Reply(delay=10)
    manager = WebhookManager(max_concurrency=1, coalesce_window_s=0)
    manager.add_webhook(fast(receiver.url, timeout=10))
    in_flight = await manager.send_warning("stuck")
    queued = await manager.send_warning("behind it")
    receiver.wait_for(1)
    started = time.perf_counter()
    manager.shutdown(timeout=0.3)
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0
    assert in_flight.status == "sent"
    assert [r.outcome for r in in_flight.results] == ["cancelled"]
    assert queued.status == "cancelled"
    assert capture_telemetry.metric_value("webhook_deliveries_total", outcome="cancelled") == 2


async def test_alerts_after_shutdown_start_the_worker_again(receiver: Receiver) -> None:
    """shutdown() is not the end: the next alert is delivered by a fresh worker."""
    manager = WebhookManager(coalesce_window_s=0)
    manager.add_webhook(fast(receiver.url))
    await (await manager.send_warning("before"))
    manager.shutdown(timeout=1)
    try:
        results = await (await manager.send_warning("after"))
    finally:
        manager.shutdown(timeout=1)
    assert [r.outcome for r in results] == ["delivered"]


def test_flush_waits_until_delivered(receiver: Receiver, webhooks: WebhookManager) -> None:
    """flush() returns True once the queue is empty and nothing is in flight, False on timeout."""
    receiver.default = Reply(delay=0.4)
    webhooks.add_webhook(fast(receiver.url))
    webhooks.notify_warning("slow")
    assert webhooks.flush(timeout=0.1) is False
    assert webhooks.flush(timeout=5) is True
    assert webhooks.pending == 0


def test_a_hanging_receiver_does_not_slow_requests(receiver: Receiver, webhooks: WebhookManager) -> None:
    """Requests that raise alerts while the receiver hangs answer as fast as requests that don't."""
    receiver.default = Reply(delay=5)
    webhooks.add_webhook(fast(receiver.url, timeout=4, max_retries=0))
    app = FastAPI()

    @app.get("/quiet")
    async def quiet() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/alerting/{n}")
    async def alerting(n: int) -> dict[str, str]:
        await webhooks.send_error_alert("UpstreamError", f"failure {n}", "payments")
        return {"ok": "yes"}

    def timed(client: httpx.Client, path: str) -> float:
        started = time.perf_counter()
        assert client.get(path).status_code == 200
        return time.perf_counter() - started

    with serve(app) as base_url, httpx.Client(base_url=base_url) as client:
        timed(client, "/quiet")  # warm up the connection
        quiet_times = [timed(client, "/quiet") for _ in range(10)]
        alert_times = [timed(client, f"/alerting/{n}") for n in range(8)]
        receiver.wait_for(8)  # every alert reached the (still hanging) receiver

    assert max(alert_times) < 1.0  # nowhere near the receiver's 5 s hang or the 4 s timeout
    assert statistics.median(alert_times) < statistics.median(quiet_times) + 0.02
