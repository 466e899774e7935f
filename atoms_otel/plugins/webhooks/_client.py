"""``WebhookClient``: deliver one payload to one webhook, with retries, signing and a timeout.

Retry policy: network errors, timeouts, 5xx and 429 are retried up to ``max_retries`` times with
exponential backoff and "equal jitter" (the n-th wait is between ``b·2ⁿ⁻¹`` and ``b·2ⁿ`` seconds,
capped at ``max_backoff_s``, so waits grow and concurrent senders spread out). A ``Retry-After``
header (seconds or an HTTP date) replaces the backoff; one longer than ``max_retry_after_s`` ends
the delivery as failed. 410 Gone means the receiver is gone for good (``gone``); any other 4xx, and
3xx (redirects are not followed), is ``rejected`` at once. Each attempt is bounded by ``timeout``
from connect to response headers; the response body is never read.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context

# The keys OpenTelemetry instrumentations check before tracing an outgoing request (the API
# exports them privately; opentelemetry-instrumentation imports them from here too).
from atoms_otel._version import __version__
from atoms_otel.base.compat import SUPPRESS_INSTRUMENTATION_KEYS
from atoms_otel.plugins.webhooks._model import DeliveryOutcome, DeliveryResult, WebhookConfig, WebhookPayload
from atoms_otel.plugins.webhooks._render import render
from atoms_otel.plugins.webhooks._signing import parse_secret, signature_headers
from atoms_otel.plugins.webhooks._urls import AddressPolicy, BlockedAddress

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookClient", "new_http_client", "parse_retry_after", "suppressed_instrumentation"]

_USER_AGENT: Final = f"atoms-otel/{__version__} (webhooks)"


def new_http_client() -> httpx.AsyncClient:
    """The HTTP client deliveries use: no redirects followed (a redirect could lead anywhere)."""
    import httpx

    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": _USER_AGENT})


def suppressed_instrumentation() -> otel_context.Context:
    """A context in which OpenTelemetry HTTP instrumentations do not trace our own requests."""
    ctx = otel_context.get_current()
    for key in SUPPRESS_INSTRUMENTATION_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    return otel_context.set_value("suppress_instrumentation", True, ctx)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookClient:
    """Sends payloads to one webhook. Usable on its own::

        async with WebhookClient(WebhookConfig(url)) as client:
            result = await client.send(payload)   # a DeliveryResult; never raises for HTTP trouble

    :class:`WebhookManager` shares one HTTP connection pool between its clients (``http=``).
    """

    def __init__(
        self,
        config: WebhookConfig,
        *,
        http: httpx.AsyncClient | None = None,
        policy: AddressPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._http = http
        self._owns_http = http is None
        self._policy = policy or AddressPolicy()
        self._key = parse_secret(config.secret, "WebhookConfig.secret") if config.secret else None
        self._rng = rng or random.Random()

    async def __aenter__(self) -> WebhookClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this webhook client created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based), with equal jitter."""
        ceiling = min(self.config.max_backoff_s, self.config.retry_backoff_s * (2.0**retry))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def send(self, payload: WebhookPayload) -> DeliveryResult:
        """Deliver ``payload`` (retrying as configured) and say how it ended."""
        import httpx

        config = self.config
        body = render(payload, config.format)  # type: ignore[arg-type]
        status: int | None = None
        error: str | None = None
        attempts = 0
        for retry in range(config.max_retries + 1):
            attempts += 1
            retry_after: float | None = None
            try:
                status, retry_after = await self._attempt(payload.id, body)
            except BlockedAddress as exc:
                return self._result("blocked", attempts, None, str(exc))
            except (TimeoutError, httpx.TimeoutException):
                status, error = None, f"timed out after {config.timeout:g}s"
            except (httpx.TransportError, OSError) as exc:
                status, error = None, self._describe(exc)
            else:
                if 200 <= status < 300:
                    return self._result("delivered", attempts, status, None)
                if status == 410:
                    return self._result("gone", attempts, status, "HTTP 410 Gone")
                error = f"HTTP {status}"
                if not _retryable(status):
                    return self._result("rejected", attempts, status, error)
            if retry == config.max_retries:
                break
            delay = self.backoff(retry)
            if retry_after is not None:
                if retry_after > config.max_retry_after_s:
                    reason = f"{error}; Retry-After {retry_after:g}s exceeds max_retry_after_s"
                    return self._result("failed", attempts, status, reason)
                delay = retry_after
            await asyncio.sleep(delay)
        return self._result("failed", attempts, status, error)

    async def _attempt(self, msg_id: str, body: bytes) -> tuple[int, float | None]:
        import httpx

        if self._http is None:
            self._http = new_http_client()
        config = self.config
        url = httpx.URL(config.url)
        headers = {"Content-Type": "application/json", **config.headers}
        extensions: dict[str, Any] = {}
        pinned = await self._policy.pin(url.host, url.port or (443 if url.scheme == "https" else 80))
        if pinned is not None:
            headers["Host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = url.host
            url = url.copy_with(host=pinned)
        if self._key is not None:
            headers.update(signature_headers(self._key, msg_id, body))
        token = otel_context.attach(suppressed_instrumentation())
        try:
            # asyncio.timeout bounds the whole attempt; httpx's timeout bounds each phase.
            async with (
                asyncio.timeout(config.timeout),
                self._http.stream(
                    "POST", url, content=body, headers=headers, timeout=config.timeout, extensions=extensions
                ) as response,
            ):
                return response.status_code, parse_retry_after(response.headers.get("retry-after"))
        finally:
            otel_context.detach(token)

    def _describe(self, exc: BaseException) -> str:
        # Transport errors may quote the URL; results and logs must not.
        text = str(exc).replace(self.config.url, "<url>") or type(exc).__name__
        return f"{type(exc).__name__}: {text}"[:300]

    def _result(
        self, outcome: DeliveryOutcome, attempts: int, status: int | None, error: str | None
    ) -> DeliveryResult:
        return DeliveryResult(
            webhook=self.config.name or "",
            outcome=outcome,
            attempts=attempts,
            status_code=status,
            error=error,
        )
