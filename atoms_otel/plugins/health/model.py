"""What a health check produces: statuses, component types, one component's result, the report.

Also the two sanitizers every result goes through, so a report can be served to anyone who can
reach ``/health``: messages are one short line with secrets removed, details are small and
JSON-safe.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from atoms_otel.base import scrubbing

__all__ = [
    "ComponentHealth",
    "ComponentType",
    "HealthReport",
    "HealthStatus",
    "aggregate",
    "sanitize_details",
    "sanitize_message",
]

MAX_MESSAGE_CHARS: Final = 200
MAX_DETAIL_KEYS: Final = 20
MAX_DETAIL_TEXT: Final = 200


class HealthStatus(StrEnum):
    """A component's or the service's health. Prints as its value: ``print(status)`` → ``healthy``."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"

    @property
    def gauge_value(self) -> float:
        """The value of ``health_check_status``: 1 healthy, 0.5 degraded (or unknown), 0 unhealthy."""
        return {HealthStatus.HEALTHY: 1.0, HealthStatus.UNHEALTHY: 0.0}.get(self, 0.5)


class ComponentType(StrEnum):
    """What kind of dependency a component is (shown in ``/health`` and used for IETF mapping)."""

    DATABASE = "database"
    CACHE = "cache"
    AUTH = "auth"
    EXTERNAL_API = "external_api"
    QUEUE = "queue"
    STORAGE = "storage"
    CIRCUIT_BREAKER = "circuit_breaker"
    PERFORMANCE = "performance"
    CUSTOM = "custom"


@dataclass(frozen=True)
class ComponentHealth:
    """The result of one health check run."""

    name: str
    status: HealthStatus
    component_type: ComponentType
    critical: bool
    response_time_ms: float
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    checked_at: float = field(default_factory=time.time)
    """When the check finished (seconds since the epoch)."""

    @property
    def last_checked(self) -> datetime:
        return datetime.fromtimestamp(self.checked_at, UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "component_type": self.component_type.value,
            "critical": self.critical,
            "response_time_ms": round(self.response_time_ms, 3),
            "message": self.message,
            "last_checked": self.last_checked.isoformat(),
            "details": dict(self.details),
        }


def aggregate(components: Iterable[ComponentHealth]) -> HealthStatus:
    """Any critical component unhealthy → unhealthy; otherwise any component unhealthy, degraded or
    unknown → degraded; otherwise (including no components at all) healthy."""
    overall = HealthStatus.HEALTHY
    for component in components:
        if component.status is HealthStatus.HEALTHY:
            continue
        if component.status is HealthStatus.UNHEALTHY and component.critical:
            return HealthStatus.UNHEALTHY
        overall = HealthStatus.DEGRADED
    return overall


@dataclass(frozen=True)
class HealthReport:
    """The aggregated result of every registered check (what ``check_health()`` returns)."""

    status: HealthStatus
    components: Mapping[str, ComponentHealth]
    checked_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.status is HealthStatus.HEALTHY

    @property
    def ready(self) -> bool:
        """False while a critical component is unhealthy (what ``/health/ready`` reports)."""
        return self.status is not HealthStatus.UNHEALTHY

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.checked_at, UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "timestamp": self.timestamp.isoformat(),
            "duration_ms": round(self.duration_ms, 3),
            "components": {name: c.to_dict() for name, c in self.components.items()},
        }


# ---------------------------------------------------------------------------------------------
# Sanitizing: whatever a check or an exception says is shown on an open endpoint.

_SPACE = re.compile(r"\s+")


def sanitize_message(text: object, *, secrets: Iterable[str] = ()) -> str:
    """One line, at most 200 characters, without credentials: known ``secrets`` are removed, as are
    every credential :meth:`~atoms_otel.base.scrubbing.Scrubber.scrub_text` recognises."""
    try:
        message = str(text)
    except Exception:
        message = f"<unprintable {type(text).__name__}>"
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, scrubbing.REDACTED)
    message = (scrubbing.active_scrubber() or scrubbing.Scrubber()).scrub_text(message)
    message = _SPACE.sub(" ", message).strip()
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


def describe_exception(exc: BaseException, *, secrets: Iterable[str] = ()) -> str:
    """``ErrorType: message``, sanitized."""
    text = str(exc)
    return sanitize_message(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, secrets=secrets)


def _json_safe(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return sanitize_message(value)
    if isinstance(value, StrEnum):
        return value.value
    if depth < 2 and isinstance(value, Mapping):
        return sanitize_details(value, _depth=depth + 1)
    if depth < 2 and isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value[:MAX_DETAIL_KEYS]]
    return sanitize_message(f"<{type(value).__name__}>")


def sanitize_details(details: Mapping[Any, Any], *, _depth: int = 0) -> dict[str, Any]:
    """At most 20 keys, two levels deep, JSON-safe values, secret-looking keys redacted."""
    scrubber = scrubbing.active_scrubber() or scrubbing.Scrubber()
    result: dict[str, Any] = {}
    for key, value in list(details.items())[:MAX_DETAIL_KEYS]:
        name = sanitize_message(key)[:64]
        result[name] = scrubbing.REDACTED if scrubber.is_secret_key(name) else _json_safe(value, _depth)
    return result
