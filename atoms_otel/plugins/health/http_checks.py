"""Health checks that probe real services over HTTP: Supabase (PostgREST) and WorkOS AuthKit.

Both send one GET per run, with instrumentation suppressed (the probe is not user traffic), no
redirects followed, and the run's timeout. Keys travel only in headers and are removed from any
message; they never appear in logs, reports or ``repr``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from atoms_otel.plugins.health.checks import DEFAULT_TIMEOUT_S, CheckOutcome, HealthCheck
from atoms_otel.plugins.health.model import ComponentType, HealthStatus

__all__ = ["AuthKitHealthCheck", "HttpHealthCheck", "SupabaseHealthCheck"]

DEFAULT_SLOW_MS = 1000.0
_MAX_BODY = 1_000_000  # a health response larger than this is not what we expect


def _absolute_url(url: str, what: str) -> str:
    if not isinstance(url, str):
        raise TypeError(f"{what} must be a string URL")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    return url.strip().rstrip("/")


class HttpHealthCheck(HealthCheck):
    """A check that GETs one URL and judges the answer. Subclasses implement :meth:`judge`."""

    service = "service"

    def __init__(
        self,
        name: str,
        url: str,
        component_type: ComponentType,
        *,
        headers: dict[str, str] | None = None,
        critical: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        slow_ms: float | None = DEFAULT_SLOW_MS,
    ) -> None:
        super().__init__(name, component_type, critical=critical, timeout_s=timeout_s, slow_ms=slow_ms)
        self.url = url
        self._headers = {"Accept": "application/json", **(headers or {})}

    async def check(self) -> CheckOutcome:
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            response = await client.get(self.url, headers=self._headers)
        code = response.status_code
        if code in (401, 403):
            return {
                "status": HealthStatus.UNHEALTHY,
                "message": f"{self.service} rejected the key (HTTP {code})",
            }
        if not 200 <= code < 300:
            return {"status": HealthStatus.UNHEALTHY, "message": f"{self.service} answered HTTP {code}"}
        if len(response.content) > _MAX_BODY:
            return {"status": HealthStatus.UNHEALTHY, "message": f"{self.service} answered an oversized body"}
        try:
            body = json.loads(response.content)
        except ValueError:
            return {
                "status": HealthStatus.UNHEALTHY,
                "message": f"{self.service} answered a body that is not JSON",
            }
        problem = self.judge(body)
        if problem:
            return {"status": HealthStatus.UNHEALTHY, "message": f"{self.service} {problem}"}
        return {"status": HealthStatus.HEALTHY, "http_status": code}

    def judge(self, body: Any) -> str | None:
        """What is wrong with a 2xx JSON answer, or ``None`` if it is what a healthy service sends."""
        return None


class SupabaseHealthCheck(HttpHealthCheck):
    """Probe a Supabase project's REST API (PostgREST) with its API key.

    >>> register_health_check(SupabaseHealthCheck(url=SUPABASE_URL, key=SUPABASE_ANON_KEY))

    GETs ``{url}/rest/v1/`` — or, with ``table=``, ``{url}/rest/v1/{table}?select=*&limit=1``,
    which also exercises the database — sending the key as the ``apikey`` header (and as a bearer
    token). Healthy on a 2xx JSON answer; degraded when slower than ``slow_ms`` (default 1000);
    unhealthy on a rejected key, any other status, a body that is not JSON, a connection error or
    a timeout.
    """

    service = "Supabase"

    def __init__(
        self,
        url: str,
        key: str,
        *,
        name: str = "supabase",
        table: str | None = None,
        critical: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        slow_ms: float | None = DEFAULT_SLOW_MS,
    ) -> None:
        if not isinstance(key, str) or not key.strip():
            raise ValueError("SupabaseHealthCheck needs the project's API key (key=...)")
        base = _absolute_url(url, "SupabaseHealthCheck url")
        target = f"{base}/rest/v1/{quote(table, safe='')}?select=*&limit=1" if table else f"{base}/rest/v1/"
        self._key = key.strip()
        super().__init__(
            name,
            target,
            ComponentType.DATABASE,
            headers={"apikey": self._key, "Authorization": f"Bearer {self._key}"},
            critical=critical,
            timeout_s=timeout_s,
            slow_ms=slow_ms,
        )

    def secrets(self) -> tuple[str, ...]:
        return (self._key,)


class AuthKitHealthCheck(HttpHealthCheck):
    """Probe WorkOS AuthKit: its JWKS (the keys that verify access tokens) or its discovery document.

    >>> AuthKitHealthCheck(client_id="client_123")            # https://api.workos.com/sso/jwks/client_123
    >>> AuthKitHealthCheck("acme.authkit.app")                # .../.well-known/openid-configuration
    >>> AuthKitHealthCheck(jwks_url="https://.../jwks")       # any JWKS URL

    Healthy when the JWKS has at least one key (or the discovery document names its ``issuer`` and
    ``jwks_uri``); degraded when slower than ``slow_ms``; unhealthy otherwise.
    """

    service = "AuthKit"

    def __init__(
        self,
        authkit_domain: str | None = None,
        *,
        client_id: str | None = None,
        jwks_url: str | None = None,
        api_base: str = "https://api.workos.com",
        name: str = "authkit",
        critical: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        slow_ms: float | None = DEFAULT_SLOW_MS,
    ) -> None:
        if jwks_url:
            target, self._discovery = _absolute_url(jwks_url, "AuthKitHealthCheck jwks_url"), False
        elif client_id:
            base = _absolute_url(api_base, "AuthKitHealthCheck api_base")
            target, self._discovery = f"{base}/sso/jwks/{quote(client_id, safe='')}", False
        elif authkit_domain:
            domain = authkit_domain if "://" in authkit_domain else f"https://{authkit_domain}"
            base = _absolute_url(domain, "AuthKitHealthCheck authkit_domain")
            target, self._discovery = f"{base}/.well-known/openid-configuration", True
        else:
            raise ValueError("AuthKitHealthCheck needs authkit_domain, client_id or jwks_url")
        super().__init__(
            name, target, ComponentType.AUTH, critical=critical, timeout_s=timeout_s, slow_ms=slow_ms
        )

    def judge(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "answered unexpected JSON (not an object)"
        if self._discovery:
            if not (isinstance(body.get("issuer"), str) and isinstance(body.get("jwks_uri"), str)):
                return "discovery document lacks issuer or jwks_uri"
            return None
        keys = body.get("keys")
        if not isinstance(keys, list) or not any(isinstance(k, dict) and "kty" in k for k in keys):
            return "JWKS has no signing keys"
        return None
