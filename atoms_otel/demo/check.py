"""``demo --check``: ask every endpoint a user would look at, and say which misbehaves and how."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

__all__ = ["Finding", "check_endpoints"]

_METRIC_FAMILIES: Final = (
    "http_requests_total",
    "http_request_duration_seconds",
    "tool_executions_total",
    "health_check_status",
)


@dataclass(frozen=True)
class Finding:
    """One endpoint's verdict: ``problem`` is empty when it behaved."""

    endpoint: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def __str__(self) -> str:
        return f"ok    {self.endpoint}" if self.ok else f"FAIL  {self.endpoint}: {self.problem}"


class _Misbehaved(Exception):
    pass


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise _Misbehaved(problem)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _Misbehaved(f"status {response.status_code}, not JSON: {response.text[:80]!r}") from None


def _status(response: httpx.Response, *allowed: int) -> None:
    _expect(response.status_code in allowed, f"status {response.status_code}: {response.text[:120]!r}")


async def _live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    _status(response, 200)
    _expect(_json(response).get("status") == "alive", "status is not 'alive'")


async def _ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    _status(response, 200)
    _expect(_json(response).get("status") == "ready", "not ready")


async def _health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    _status(response, 200, 503)
    body = _json(response)
    _expect(body.get("status") in ("healthy", "degraded", "unhealthy"), f"bad status {body.get('status')!r}")
    _expect(bool(body.get("components")), "no components reported")
    _expect(response.status_code == 200, f"503: service is {body.get('status')}")


async def _metrics(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    _status(response, 200)
    missing = [name for name in _METRIC_FAMILIES if f"# TYPE {name} " not in response.text]
    _expect(not missing, f"no {', '.join(missing)} in the exposition")


async def _dashboard(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/observability/dashboard")
    _status(response, 200)
    body = _json(response)
    _expect(body["requests"]["requests"] > 0, "no requests counted")
    _expect(bool(body["routes"]), "no routes listed")
    _expect(bool(body["top_tools_by_calls"]), "no tool calls listed")
    _expect(bool(body["health_checks"]), "no health checks listed")


async def _page(client: httpx.AsyncClient) -> None:
    response = await client.get("/observability", headers={"Accept": "text/html"})
    _status(response, 200)
    _expect(response.headers.get("content-type", "").startswith("text/html"), "not HTML")
    policy = response.headers.get("content-security-policy", "")
    _expect("script-src 'nonce-" in policy, "no Content-Security-Policy with a script nonce")
    _expect('id="routes"' in response.text, "not the live view")


_CHECKS: Final[tuple[tuple[str, Callable[[httpx.AsyncClient], Awaitable[None]]], ...]] = (
    ("GET /health/live", _live),
    ("GET /health/ready", _ready),
    ("GET /health", _health),
    ("GET /metrics", _metrics),
    ("GET /api/observability/dashboard", _dashboard),
    ("GET /observability", _page),
)


async def check_endpoints(client: httpx.AsyncClient) -> list[Finding]:
    """Every check, in order; ``client`` has the service's ``base_url`` (and the API token, if any)."""
    findings = []
    for endpoint, check in _CHECKS:
        try:
            await check(client)
        except _Misbehaved as exc:
            findings.append(Finding(endpoint, str(exc)))
        except (httpx.HTTPError, KeyError, TypeError, AttributeError) as exc:
            findings.append(Finding(endpoint, f"{type(exc).__name__}: {exc}"))
        else:
            findings.append(Finding(endpoint))
    return findings
