"""The resource every signal carries, and this process's ``service.instance.id``.

A worker forked after configure() (``gunicorn --preload``, multiprocessing) is a new instance: it
gets its own id, on the pipeline it inherited too, so series from different workers never collide
in the collector.
"""

from __future__ import annotations

import os
import uuid
import weakref
from typing import Any, Protocol

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.resources import Resource

from atoms_otel._version import __version__
from atoms_otel.base import guard as _guard
from atoms_otel.base.compat import reset_target_info, update_resource
from atoms_otel.base.settings import Settings

__all__ = ["build_resource", "follow_forks", "service_instance_id"]

_instance_id = uuid.uuid4().hex


def _new_instance_id() -> None:
    global _instance_id
    _instance_id = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_instance_id)


def service_instance_id() -> str:
    """This process's ``service.instance.id``."""
    return _instance_id


def build_resource(settings: Settings) -> Resource:
    attributes: dict[str, Any] = dict(settings.resource_attributes)
    attributes.update(
        {
            "service.name": settings.service_name,
            "service.version": settings.service_version,
            "service.instance.id": service_instance_id(),
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
            "telemetry.distro.name": "atoms_otel",
            "telemetry.distro.version": __version__,
        }
    )
    return Resource.create(attributes)


class _Forkable(Protocol):
    """What a fork handler needs of a pipeline (kept weakly: a retired pipeline is let go)."""

    resource: Resource

    @property
    def tracer_provider(self) -> Any: ...

    @property
    def meter_provider(self) -> Any: ...

    @property
    def logger_provider(self) -> Any: ...

    @property
    def prometheus_reader(self) -> PrometheusMetricReader: ...


def follow_forks(pipeline: _Forkable) -> None:
    """Give the pipeline a forked worker inherits that worker's ``service.instance.id``.

    Called after the providers were built, so the handler runs after the SDK's own fork handlers
    (registration order), which re-create the providers' locks and batch threads first.
    """
    reference = weakref.ref(pipeline)

    def after_in_child() -> None:
        inherited = reference()
        if inherited is None:
            return
        with _guard.guard("fork: new service.instance.id"):
            update = Resource({"service.instance.id": service_instance_id()})
            providers = (inherited.tracer_provider, inherited.meter_provider, inherited.logger_provider)
            update_resource(providers, update)
            inherited.resource = inherited.resource.merge(update)
            reset_target_info(inherited.prometheus_reader)

    os.register_at_fork(after_in_child=after_in_child)
