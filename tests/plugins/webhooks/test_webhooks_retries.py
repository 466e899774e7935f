"""Retry policy against real receivers: backoff, Retry-After, 410, 4xx, timeouts, a receiver down."""

from __future__ import annotations

import email.utils
import itertools
import time

from atoms_otel import WebhookManager
from atoms_otel.plugins.webhooks import parse_retry_after
from atoms_otel.testing import CapturedTelemetry
from tests.support.receiver import Receiver, Reply, unused_url
from tests.support.webhooks import fast


def _gaps(receiver: Receiver) -> list[float]:
    times = [r.at for r in receiver.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_server_errors_are_retried_with_growing_gaps(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """500, 502, 503 then 200: delivered on the 4th attempt, each wait longer than the one before."""
    receiver.script(Reply(500), Reply(502), Reply(503))
    webhooks.add_webhook(fast(receiver.url, max_retries=3, retry_backoff_s=0.1))
    results = await (await webhooks.send_warning("flaky receiver"))

    assert [(r.outcome, r.attempts, r.status_code) for r in results] == [("delivered", 4, 200)]
    first, second, third = _gaps(receiver)
    # equal jitter: the n-th wait lies in [0.1·2ⁿ⁻¹, 0.1·2ⁿ]; scheduling can only add to it
    assert 0.05 <= first < 0.1 + 0.2
    assert 0.1 <= second < 0.2 + 0.2
    assert 0.2 <= third < 0.4 + 0.2
    assert third > first


async def test_every_retry_reuses_the_payload_id(receiver: Receiver, webhooks: WebhookManager) -> None:
    """The webhook-id header (the idempotency key) is the same on every attempt."""
    receiver.script(Reply(500))
    webhooks.add_webhook(fast(receiver.url, secret="whsec_" + "a" * 44))
    await (await webhooks.send_warning("retried"))
    ids = {r.headers["webhook-id"] for r in receiver.wait_for(2)}
    assert len(ids) == 1


async def test_retry_after_is_honoured(receiver: Receiver, webhooks: WebhookManager) -> None:
    """429 with Retry-After: 1 waits a full second although the backoff would be 10 ms."""
    receiver.script(Reply(429, headers={"Retry-After": "1"}))
    webhooks.add_webhook(fast(receiver.url, retry_backoff_s=0.01))
    results = await (await webhooks.send_warning("rate limited"))

    assert [r.outcome for r in results] == ["delivered"]
    assert _gaps(receiver)[0] >= 1.0


async def test_retry_after_beyond_the_limit_ends_the_delivery(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """A Retry-After longer than max_retry_after_s fails at once rather than hold the alert."""
    receiver.script(Reply(503, headers={"Retry-After": "120"}))
    webhooks.add_webhook(fast(receiver.url, max_retry_after_s=5))
    results = await (await webhooks.send_warning("maintenance"))

    assert [(r.outcome, r.attempts, r.status_code) for r in results] == [("failed", 1, 503)]
    assert "Retry-After 120s exceeds" in (results[0].error or "")
    assert len(receiver.requests) == 1


async def test_gone_disables_the_webhook(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """410 Gone is not retried, switches the webhook off, and later alerts skip it."""
    receiver.default = Reply(410)
    config = webhooks.add_webhook(fast(receiver.url))
    results = await (await webhooks.send_warning("first"))
    later = await webhooks.send_warning("second")

    assert [(r.outcome, r.attempts) for r in results] == [("gone", 1)]
    assert config not in webhooks.webhooks
    assert config in webhooks.disabled_webhooks
    assert later.status == "unmatched"
    assert len(receiver.requests) == 1
    assert capture_telemetry.metric_value("webhook_deliveries_total", outcome="gone") == 1


async def test_adding_a_gone_webhook_again_enables_it(receiver: Receiver, webhooks: WebhookManager) -> None:
    """A disabled webhook delivers again once it is added again."""
    receiver.script(Reply(410))
    config = webhooks.add_webhook(fast(receiver.url))
    await (await webhooks.send_warning("first"))
    webhooks.add_webhook(config)
    results = await (await webhooks.send_warning("second"))
    assert [r.outcome for r in results] == ["delivered"]
    assert webhooks.disabled_webhooks == {}


async def test_client_errors_are_not_retried(receiver: Receiver, webhooks: WebhookManager) -> None:
    """400 is rejected after one attempt."""
    receiver.default = Reply(400)
    webhooks.add_webhook(fast(receiver.url, max_retries=3))
    results = await (await webhooks.send_warning("bad request"))
    assert [(r.outcome, r.attempts, r.status_code) for r in results] == [("rejected", 1, 400)]
    assert len(receiver.requests) == 1


async def test_redirects_are_not_followed(receiver: Receiver, webhooks: WebhookManager) -> None:
    """A 302 to elsewhere is rejected, not followed."""
    receiver.default = Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    webhooks.add_webhook(fast(receiver.url))
    results = await (await webhooks.send_warning("redirected"))
    assert [(r.outcome, r.status_code) for r in results] == [("rejected", 302)]


async def test_persistent_server_errors_fail_after_the_retries(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """max_retries=2 means three attempts, then failed with the last status."""
    receiver.default = Reply(500)
    webhooks.add_webhook(fast(receiver.url, max_retries=2))
    results = await (await webhooks.send_warning("always 500"))
    assert [(r.outcome, r.attempts, r.status_code, r.error) for r in results] == [
        ("failed", 3, 500, "HTTP 500")
    ]
    assert len(receiver.requests) == 3


async def test_each_attempt_is_bounded_by_the_timeout(receiver: Receiver, webhooks: WebhookManager) -> None:
    """A receiver that hangs costs timeout per attempt, then the delivery fails."""
    receiver.default = Reply(delay=5)
    webhooks.add_webhook(fast(receiver.url, timeout=0.3, max_retries=1, retry_backoff_s=0.01))
    started = time.perf_counter()
    results = await (await webhooks.send_warning("hanging receiver"))
    elapsed = time.perf_counter() - started

    assert [(r.outcome, r.attempts, r.error) for r in results] == [("failed", 2, "timed out after 0.3s")]
    assert 0.6 <= elapsed < 2.0


async def test_receiver_down_fails_without_raising(
    capture_telemetry: CapturedTelemetry, webhooks: WebhookManager
) -> None:
    """Connection refused is retried, then counted as failed; the sender never sees an exception."""
    webhooks.add_webhook(fast(unused_url(), max_retries=2))
    delivery = await webhooks.send_error_alert("DatabaseError", "down", "database")
    results = await delivery

    assert [(r.outcome, r.attempts) for r in results] == [("failed", 3)]
    assert (results[0].error or "").startswith("ConnectError")
    assert capture_telemetry.metric_value("webhook_deliveries_total", outcome="failed") == 1


async def test_receiver_coming_back_receives_later_alerts(webhooks: WebhookManager) -> None:
    """After failures against a dead port, a receiver started there gets the next alert."""
    receiver = Receiver()
    url = receiver.url
    receiver.stop()
    webhooks.add_webhook(fast(url, max_retries=0))
    failed = await (await webhooks.send_warning("while down"))
    revived = Receiver.on_port(receiver.port)
    try:
        delivered = await (await webhooks.send_warning("back up"))
    finally:
        revived.stop()
    assert [r.outcome for r in failed] == ["failed"]
    assert [r.outcome for r in delivered] == ["delivered"]


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    """Delay-seconds and an HTTP date both give the wait in seconds; garbage gives None."""
    now = float(int(time.time()))
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
