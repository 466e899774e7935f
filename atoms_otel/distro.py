"""Zero-code start: ``opentelemetry-instrument uvicorn app:app`` runs an unmodified app with atoms_otel.

Registered as the ``opentelemetry_distro`` and ``opentelemetry_configurator`` entry points (the
``opentelemetry-instrumentation`` package provides the command). At start-up:

- :class:`AtomsConfigurator` calls ``atoms_otel.configure()`` with the defaults and the ``OTEL_*`` /
  ``ATOMS_OTEL_*`` environment: JSON logs with context, the pipeline, OTLP export when an endpoint is
  set. A later explicit ``configure()`` in the app re-configures the same handle (no split pipeline).
- Every FastAPI app created afterwards gets the request middleware (one server span per request,
  correlation ids, the contract metrics); the router (``/metrics``, probes, API, page) only with
  ``ATOMS_OTEL_ENDPOINTS=true``, since it changes the app's routes.
- :class:`AtomsDistro` loads every other installed instrumentor (httpx, requests, ...) but not the
  contrib FastAPI instrumentor: atoms_otel instruments FastAPI itself, and two would mean two server
  spans per request.

If another distro's configurator (``opentelemetry-distro``) is installed too, the command loads only
one; choose with ``OTEL_PYTHON_CONFIGURATOR=atoms_otel`` and ``OTEL_PYTHON_DISTRO=atoms_otel``.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any, Final

import fastapi
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from atoms_otel import _default
from atoms_otel.integrations.fastapi import instrument_fastapi

__all__ = ["AtomsConfigurator", "AtomsDistro"]

# Instrumentors atoms_otel replaces: loading them as well would instrument twice.
_REPLACED: Final = frozenset({"fastapi"})


class AtomsDistro(BaseDistro):  # type: ignore[misc]
    """Loads the installed instrumentors, except those atoms_otel replaces."""

    def _configure(self, **kwargs: Any) -> None:
        """Nothing to set up before the configurator runs."""

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        if entry_point.name in _REPLACED:
            return
        super().load_instrumentor(entry_point, **kwargs)


class _InstrumentedFastAPI(fastapi.FastAPI):
    """A FastAPI app instrumented by atoms_otel from its creation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        telemetry = _default.DEFAULT_TELEMETRY
        instrument_fastapi(
            self,
            telemetry,
            router=_default.router if telemetry.settings.endpoints else None,
            middleware=_default.TelemetryMiddleware,
            flush_middleware=_default.ServerlessFlushMiddleware,
        )


class AtomsConfigurator:
    """``opentelemetry_configurator``: configure atoms_otel from the environment, and instrument
    every FastAPI app the process creates."""

    def configure(self, **kwargs: Any) -> None:
        _default.configure()
        fastapi.FastAPI = _InstrumentedFastAPI  # type: ignore[misc]
