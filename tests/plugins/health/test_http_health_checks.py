"""SupabaseHealthCheck and AuthKitHealthCheck against local servers that behave like the services."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from atoms_otel import AuthKitHealthCheck, HealthStatus, SupabaseHealthCheck
from atoms_otel.plugins.health import ComponentHealth
from atoms_otel.testing import CapturedTelemetry
from tests.support.fake_services import SUPABASE_KEY, FakeService, fake_service
from tests.support.net import free_port


@pytest.fixture
def service() -> Iterator[FakeService]:
    with fake_service() as running:
        yield running


async def _supabase(service: FakeService, **options: object) -> ComponentHealth:
    options.setdefault("key", SUPABASE_KEY)
    return await SupabaseHealthCheck(url=service.url, **options).run()  # type: ignore[arg-type]


async def test_supabase_up_is_healthy_and_sends_the_api_key(service: FakeService) -> None:
    """A 2xx JSON answer is healthy; the key travels in the apikey header (and as a bearer)."""
    result = await _supabase(service)
    assert result.status is HealthStatus.HEALTHY
    assert service.requests[0]["path"] == "/rest/v1/"
    assert service.requests[0]["headers"]["apikey"] == SUPABASE_KEY
    assert service.requests[0]["headers"]["authorization"] == f"Bearer {SUPABASE_KEY}"


async def test_supabase_table_probe_queries_one_row(service: FakeService) -> None:
    """With table=..., the probe reads one row through PostgREST."""
    await _supabase(service, table="profiles")
    assert service.requests[0]["path"] == "/rest/v1/profiles?select=*&limit=1"


async def test_supabase_rejected_key_is_unhealthy(service: FakeService) -> None:
    """A 401 from the gateway says the key was rejected — without showing the key."""
    result = await _supabase(service, key="sb-wrong-key-zzzzzzzz")
    assert (result.status, result.message) == (HealthStatus.UNHEALTHY, "Supabase rejected the key (HTTP 401)")


async def test_supabase_5xx_is_unhealthy(service: FakeService) -> None:
    """A server error is unhealthy, naming the status."""
    service.mode = "error"
    result = await _supabase(service)
    assert (result.status, result.message) == (HealthStatus.UNHEALTHY, "Supabase answered HTTP 503")


async def test_supabase_bad_json_is_unhealthy(service: FakeService) -> None:
    """A 200 that is not JSON (a proxy's maintenance page) is not a healthy Supabase."""
    service.mode = "bad_json"
    result = await _supabase(service)
    assert (result.status, result.message) == (
        HealthStatus.UNHEALTHY,
        "Supabase answered a body that is not JSON",
    )


async def test_supabase_slow_answer_is_degraded(service: FakeService) -> None:
    """Slower than slow_ms but within the timeout: degraded."""
    service.mode, service.delay_s = "slow", 0.3
    result = await _supabase(service, slow_ms=100, timeout_s=5)
    assert result.status is HealthStatus.DEGRADED
    assert result.message.startswith("slow: ")


async def test_supabase_slower_than_the_timeout_is_unhealthy(service: FakeService) -> None:
    """A hanging service costs the timeout, not more, and reads as a timeout."""
    service.mode, service.delay_s = "slow", 3.0
    start = time.perf_counter()
    result = await _supabase(service, timeout_s=0.5)
    assert time.perf_counter() - start < 2.0
    assert result.status is HealthStatus.UNHEALTHY
    assert "timed out" in result.message.lower() or "timeout" in result.message.lower()


async def test_supabase_unreachable_is_unhealthy() -> None:
    """Nothing listening: a connection error, reported briefly."""
    result = await SupabaseHealthCheck(url=f"http://127.0.0.1:{free_port()}", key=SUPABASE_KEY).run()
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message.startswith("ConnectError")


async def test_supabase_key_never_appears_in_logs_messages_or_repr(
    service: FakeService, capture_telemetry: CapturedTelemetry
) -> None:
    """Whatever happens, the key is nowhere in what we emit."""
    check = SupabaseHealthCheck(url=service.url, key=SUPABASE_KEY)
    outputs = [repr(check)]
    for mode in ("up", "error", "bad_json"):
        service.mode = mode
        result = await check.run()
        outputs += [result.message, repr(result)]
    outputs += capture_telemetry.raw_log_lines
    assert not [text for text in outputs if SUPABASE_KEY in text]


def test_supabase_requires_an_absolute_url_and_a_key() -> None:
    """Misconfiguration fails at construction with a clear message."""
    with pytest.raises(ValueError, match="absolute http"):
        SupabaseHealthCheck(url="project.supabase.co", key=SUPABASE_KEY)
    with pytest.raises(ValueError, match="API key"):
        SupabaseHealthCheck(url="https://project.supabase.co", key="")


async def test_authkit_jwks_with_keys_is_healthy(service: FakeService) -> None:
    """The client's JWKS with signing keys is healthy."""
    check = AuthKitHealthCheck(client_id="client_123", api_base=service.url)
    result = await check.run()
    assert result.status is HealthStatus.HEALTHY
    assert service.requests[0]["path"] == "/sso/jwks/client_123"


async def test_authkit_discovery_document_is_healthy(service: FakeService) -> None:
    """The AuthKit domain's discovery document with issuer and jwks_uri is healthy."""
    result = await AuthKitHealthCheck(service.url).run()
    assert result.status is HealthStatus.HEALTHY
    assert service.requests[0]["path"] == "/.well-known/openid-configuration"


async def test_authkit_jwks_without_keys_is_unhealthy(service: FakeService) -> None:
    """A JWKS with no keys cannot verify any token."""
    service.mode = "empty_jwks"
    result = await AuthKitHealthCheck(jwks_url=f"{service.url}/oauth2/jwks").run()
    assert (result.status, result.message) == (HealthStatus.UNHEALTHY, "AuthKit JWKS has no signing keys")


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "AuthKit answered HTTP 503"), ("bad_json", "AuthKit answered a body that is not JSON")],
)
async def test_authkit_failures_are_unhealthy(service: FakeService, mode: str, message: str) -> None:
    """5xx and non-JSON answers are unhealthy with a clear message."""
    service.mode = mode
    result = await AuthKitHealthCheck(client_id="client_123", api_base=service.url).run()
    assert (result.status, result.message) == (HealthStatus.UNHEALTHY, message)


async def test_authkit_slow_answer_is_degraded(service: FakeService) -> None:
    """Slower than slow_ms: degraded."""
    service.mode, service.delay_s = "slow", 0.3
    result = await AuthKitHealthCheck(client_id="client_123", api_base=service.url, slow_ms=100).run()
    assert result.status is HealthStatus.DEGRADED


def test_authkit_needs_a_target() -> None:
    """Without a domain, client id or JWKS URL there is nothing to probe."""
    with pytest.raises(ValueError, match="authkit_domain, client_id or jwks_url"):
        AuthKitHealthCheck()
