"""The health plugin: checks for dependencies, aggregation, circuit breakers, transitions as events.

>>> from atoms_otel import register_health_check, CustomHealthCheck, ComponentType, check_health
>>> register_health_check(CustomHealthCheck(
...     name="redis", component_type=ComponentType.CACHE,
...     check_func=lambda: redis_client.ping(), critical=True))
>>> health = await check_health()
>>> print(health.status)  # healthy, degraded or unhealthy

The health plugin (run by ``configure()``) exposes the results as the ``health_check_status``
gauge and reports every status transition; ``/health``, ``/health/live`` and ``/health/ready``
serve them.
"""

from atoms_otel.plugins.health.checks import CheckOutcome, CustomHealthCheck, HealthCheck
from atoms_otel.plugins.health.circuit_breaker import CircuitBreaker, CircuitOpenError, CircuitState
from atoms_otel.plugins.health.http_checks import AuthKitHealthCheck, SupabaseHealthCheck
from atoms_otel.plugins.health.model import (
    ComponentHealth,
    ComponentType,
    HealthReport,
    HealthStatus,
    aggregate,
)
from atoms_otel.plugins.health.monitor import (
    HealthMonitor,
    check_health,
    get_health_monitor,
    register_health_check,
)
from atoms_otel.plugins.health.plugin import HealthPlugin

__all__ = [
    "AuthKitHealthCheck",
    "CheckOutcome",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ComponentHealth",
    "ComponentType",
    "CustomHealthCheck",
    "HealthCheck",
    "HealthMonitor",
    "HealthPlugin",
    "HealthReport",
    "HealthStatus",
    "SupabaseHealthCheck",
    "aggregate",
    "check_health",
    "get_health_monitor",
    "register_health_check",
]
