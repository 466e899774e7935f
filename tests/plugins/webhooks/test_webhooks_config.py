"""Webhook configuration: validation at configure time, secrets kept out of logs, the SSRF guard."""

from __future__ import annotations

import re

import pytest

import atoms_otel
from atoms_otel import ConfigurationError, WebhookConfig, WebhookEventType, WebhookManager
from atoms_otel.plugins.webhooks import generate_webhook_secret
from atoms_otel.plugins.webhooks._urls import AddressPolicy, BlockedAddress
from atoms_otel.testing import CapturedTelemetry
from tests.support.receiver import Receiver, unused_url
from tests.support.webhooks import fast


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://files.example.com/drop", "expected an absolute http or https URL, got ftp://files"),
        ("/relative/hook", "expected an absolute http or https URL, got a relative URL"),
        ("https://exa mple.com/", "must not contain spaces"),
        ("https://example.com:99999/", "not a valid URL"),
    ],
)
def test_invalid_urls_are_refused_naming_the_field(url: str, expected: str) -> None:
    """WebhookConfig rejects non-http(s), relative, spaced and badly-ported URLs."""
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.url: ") as raised:
        WebhookConfig(url)
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("hunter2-hunter2-hunter2-hunter2", "expected a Standard Webhooks secret 'whsec_<base64>'"),
        ("whsec_not*base64", "not valid base64"),
        ("whsec_c2hvcnQ=", "must be 24 to 64 bytes (got 5)"),
    ],
)
def test_invalid_secrets_are_refused_without_showing_them(secret: str, expected: str) -> None:
    """A secret that is not whsec_<base64 of 24-64 bytes> is refused; the message never quotes it."""
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.secret: ") as raised:
        WebhookConfig("https://example.com/hook", secret=secret)
    assert expected in str(raised.value)
    assert secret not in str(raised.value)


def test_other_fields_are_validated() -> None:
    """Unknown event types and formats, and out-of-range numbers, name their field."""
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.event_types: .*'errors'"):
        WebhookConfig("https://example.com/hook", event_types=["errors"])
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.format: 'teams' is not one of"):
        WebhookConfig("https://example.com/hook", format="teams")
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.max_retries: .*between 0 and 20"):
        WebhookConfig("https://example.com/hook", max_retries=-1)
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.timeout: "):
        WebhookConfig("https://example.com/hook", timeout=0)
    with pytest.raises(ConfigurationError, match=r"WebhookConfig\.headers: invalid header 'X-Bad\\r'"):
        WebhookConfig("https://example.com/hook", headers={"X-Bad\r": "v"})


def test_event_types_accept_names() -> None:
    """Event types may be given as enum members or their string values."""
    config = WebhookConfig("https://example.com/hook", event_types=["error_occurred"])
    assert config.types == frozenset({WebhookEventType.ERROR_OCCURRED})
    assert config.accepts(WebhookEventType.ERROR_OCCURRED)
    assert not config.accepts(WebhookEventType.CUSTOM)


def test_manager_options_are_validated() -> None:
    """Bad queue, concurrency and allow-list values fail at construction."""
    with pytest.raises(ConfigurationError, match="queue_size"):
        WebhookManager(queue_size=0)
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        WebhookManager(max_concurrency=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ssrf_allowed_networks"):
        WebhookManager(ssrf_allowed_networks=["10.0.0.0/33"])


def test_configure_refuses_a_bad_webhook_secret(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configure() fails naming ATOMS_OTEL_WEBHOOK_SECRET, without echoing the value."""
    monkeypatch.setenv("ATOMS_OTEL_WEBHOOK_SECRET", "plain-text-password")
    with pytest.raises(ConfigurationError) as raised:
        capture_telemetry.reconfigure()
    message = str(raised.value)
    assert "ATOMS_OTEL_WEBHOOK_SECRET=<hidden>: expected a Standard Webhooks secret" in message
    assert "plain-text-password" not in message


def test_configure_refuses_a_bad_webhook_url(capture_telemetry: CapturedTelemetry) -> None:
    """configure(webhook_url=...) needs an absolute http(s) URL."""
    with pytest.raises(ConfigurationError, match=re.escape("webhook_url='mailto:ops@example.com'")):
        capture_telemetry.reconfigure(webhook_url="mailto:ops@example.com")


def test_configure_refuses_a_bad_webhook_log_level(capture_telemetry: CapturedTelemetry) -> None:
    """webhook_log_level takes the usual level names."""
    with pytest.raises(ConfigurationError, match="webhook_log_level='LOUD': expected one of DEBUG"):
        capture_telemetry.reconfigure(webhook_log_level="LOUD")


async def test_failure_logs_name_the_webhook_but_never_its_secrets(
    capture_telemetry: CapturedTelemetry, webhooks: WebhookManager
) -> None:
    """A failing delivery is logged with the webhook's name only: no URL path, header or secret."""
    secret = generate_webhook_secret()
    url = unused_url().replace("/hooks/down", "/services/T000/B000/XXXXSECRETPATH?token=qs-secret")
    config = webhooks.add_webhook(
        fast(url, secret=secret, headers={"Authorization": "Bearer header-secret"}, max_retries=0)
    )
    results = await (await webhooks.send_warning("receiver is down"))

    lines = capture_telemetry.raw_log_lines
    text = "\n".join(lines) + repr(results)
    assert any(config.name and config.name in line for line in lines)
    for leaked in ("XXXXSECRETPATH", "qs-secret", "header-secret", secret):
        assert leaked not in text


def test_configure_vercel_webhook_registers_on_the_global_manager(receiver: Receiver) -> None:
    """The seed's one-liner adds a webhook to webhook_manager; calling it again replaces it."""
    manager = atoms_otel.webhook_manager
    try:
        first = atoms_otel.configure_vercel_webhook(
            receiver.url, event_types=[WebhookEventType.ERROR_OCCURRED]
        )
        second = atoms_otel.configure_vercel_webhook(receiver.url)
        assert manager.webhooks.count(second) == 1
        assert first not in manager.webhooks
        assert manager.notify_custom("deploy", "done").result(timeout=5)[0].ok
    finally:
        manager.remove_webhook(receiver.url)
        manager.shutdown(timeout=1)
    assert receiver.wait_for(1)[0].json()["event_type"] == "custom"


def test_ssrf_guard_refuses_loopback_at_configuration() -> None:
    """With the guard on, literal and resolved loopback/private addresses are refused."""
    manager = WebhookManager(block_private_addresses=True)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/",
    ):
        with pytest.raises(ConfigurationError, match="refused by the SSRF guard"):
            manager.add_webhook(WebhookConfig(url))
    assert manager.webhooks == ()


def test_ssrf_guard_is_off_by_default(receiver: Receiver) -> None:
    """Without the guard a loopback receiver is accepted (local development works)."""
    manager = WebhookManager()
    assert manager.add_webhook(WebhookConfig(receiver.url)) in manager.webhooks


async def test_ssrf_guard_checks_again_at_delivery() -> None:
    """The address is resolved and checked for every attempt (DNS may change after configuration)."""
    policy = AddressPolicy(block_private=True)
    with pytest.raises(BlockedAddress):
        await policy.pin("localhost", 80)
    assert await AddressPolicy().pin("localhost", 80) is None


async def test_ssrf_allow_list_admits_a_network_and_connects_to_the_checked_address(
    receiver: Receiver,
) -> None:
    """An allowed network passes the guard; the request goes to the checked IP with the original Host."""
    manager = WebhookManager(block_private_addresses=True, ssrf_allowed_networks=["127.0.0.0/8", "::1/128"])
    try:
        manager.add_webhook(fast(receiver.url.replace("127.0.0.1", "localhost")))
        results = await (await manager.send_warning("via allow-list"))
    finally:
        manager.shutdown(timeout=1)
    assert [r.outcome for r in results] == ["delivered"]
    assert receiver.wait_for(1)[0].headers["host"] == f"localhost:{receiver.port}"
