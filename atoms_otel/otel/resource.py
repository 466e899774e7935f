"""The resource every signal carries, and this process's ``service.instance.id``.

A worker forked after configure() (``gunicorn --preload``, multiprocessing) is a new instance: it
gets its own id, on the pipeline it inherited too, so series from different workers never collide
in the collector.
"""

from __future__ import annotations

import os
import uuid
import weakref
from typing import Any, Final, Protocol

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.semconv.attributes.deployment_attributes import DEPLOYMENT_ENVIRONMENT_NAME
from opentelemetry.semconv.attributes.service_attributes import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
)
from opentelemetry.semconv.attributes.telemetry_attributes import (
    TELEMETRY_DISTRO_NAME,
    TELEMETRY_DISTRO_VERSION,
)
from opentelemetry.semconv.schemas import Schemas

from atoms_otel._version import __version__
from atoms_otel.base import guard as _guard
from atoms_otel.base.compat import reset_target_info, update_resource
from atoms_otel.base.settings import Settings

__all__ = ["SCHEMA_URL", "build_resource", "follow_forks", "service_instance_id"]


def _newest_schema() -> str:
    def version(schema: Schemas) -> tuple[int, ...]:
        return tuple(int(part) for part in schema.value.rsplit("/", 1)[1].split("."))

    return max(Schemas, key=version).value


SCHEMA_URL: Final = _newest_schema()
"""The newest semantic-conventions schema the installed ``opentelemetry-semantic-conventions`` knows,
whose names the resource and atoms_otel's own attributes follow."""

_instance_id = uuid.uuid4().hex


def _new_instance_id() -> None:
    global _instance_id
    _instance_id = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_instance_id)


def service_instance_id() -> str:
    """This process's ``service.instance.id``."""
    return _instance_id


def build_resource(settings: Settings) -> Resource:
    """The resource of every signal, with the semantic conventions' ``schema_url``.

    Only ``deployment.environment.name`` names the environment; the deprecated
    ``deployment.environment`` appears only when asked for in ``OTEL_RESOURCE_ATTRIBUTES`` /
    ``resource_attributes`` (kept as given, for dashboards still reading it).
    """
    attributes: dict[str, Any] = dict(settings.resource_attributes)
    attributes.update(
        {
            SERVICE_NAME: settings.service_name,
            SERVICE_VERSION: settings.service_version,
            SERVICE_INSTANCE_ID: service_instance_id(),
            DEPLOYMENT_ENVIRONMENT_NAME: settings.environment,
            TELEMETRY_DISTRO_NAME: "atoms_otel",
            TELEMETRY_DISTRO_VERSION: __version__,
        }
    )
    return Resource.create(attributes, schema_url=SCHEMA_URL)


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
