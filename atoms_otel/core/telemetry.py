"""The ``Telemetry`` handle: the one object that owns a configured pipeline.

``configure()`` fills a handle; everything that records or serves signals — the middleware, the
decorators, the MCP integration, the plugins, the endpoints — is given the handle (or the part it
needs) when it is built, and reads the current configuration through it. Re-configuring the same
handle swaps the configuration behind it: the new pipeline is put in place first, then the old one
is retired, so whatever holds the handle keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client import generate_latest

from atoms_otel._version import __version__
from atoms_otel.base import guard as _guard
from atoms_otel.base import scrubbing as _scrubbing
from atoms_otel.base.events import EventBus
from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.base.settings import Settings, resolve
from atoms_otel.core.options import AdvancedOptions
from atoms_otel.otel import proxy as _proxy
from atoms_otel.otel.logs import LoggingInstallation
from atoms_otel.otel.metrics import MetricsRegistry, get_metrics_registry
from atoms_otel.otel.metrics.exemplars import openmetrics_text
from atoms_otel.otel.pipeline import Pipeline

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["Configuration", "Plugin", "RequestContext", "Telemetry"]

P = TypeVar("P")

RequestContext = Callable[[MutableMapping[str, Any]], Mapping[str, Any] | None]
"""``configure(request_context=...)``: given a request's ASGI scope, the ``user_id`` /
``session_id`` (and other context fields) its log lines and spans should carry, or ``None``."""


@runtime_checkable
class Plugin(Protocol):
    """What configure() needs from a plugin: ``setup(telemetry)`` and ``shutdown()``.

    Optional: ``force_flush(timeout_s) -> bool`` (flushed by ``force_flush()``), and
    ``async run()`` — a background task the plugin owns, run while an app with the router serves
    (started and cancelled by :meth:`Telemetry.running`).
    """

    def setup(self, telemetry: Telemetry) -> None: ...

    def shutdown(self) -> None: ...


@dataclass
class Configuration:
    """What one configure() built; retired as a unit when the next one is in place."""

    settings: Settings
    pipeline: Pipeline | None
    scrubber: Scrubber | None
    advanced: AdvancedOptions
    plugins: list[Plugin] = field(default_factory=list)
    logging: LoggingInstallation | None = None
    request_context: RequestContext | None = None

    def force_flush(self, deadline: float) -> bool:
        flushed = True
        for plugin in self.plugins:
            flush = getattr(plugin, "force_flush", None)
            if callable(flush):
                with _guard.guard(f"plugin {type(plugin).__name__} force_flush"):
                    flushed = bool(flush(max(0.0, deadline - time.monotonic()))) and flushed
        if self.pipeline is None:
            return flushed
        return self.pipeline.force_flush(max(0.0, deadline - time.monotonic())) and flushed

    def retire(self, events: EventBus) -> None:
        """Stop the plugins, drop every subscriber, flush and release the providers, undo logging."""
        for plugin in reversed(self.plugins):
            with _guard.guard(f"plugin {type(plugin).__name__} shutdown"):
                plugin.shutdown()
        events.clear()
        if self.pipeline is not None:
            with _guard.guard("pipeline shutdown"):
                self.pipeline.shutdown(self.advanced.shutdown_timeout_s)
        if self.logging is not None:
            self.logging.uninstall()


class Telemetry:
    """The handle configure() returns: settings, providers, metrics, events and the running parts.

    >>> telemetry = atoms_otel.configure(service_name="atoms-mcp")
    >>> telemetry.events.subscribe(HealthChanged, on_health)
    """

    def __init__(self, *, metrics: MetricsRegistry | None = None) -> None:
        self.events = EventBus()
        """Typed events: producers publish, plugins subscribe (see :mod:`atoms_otel.base.events`)."""
        self.apps: list[Any] = []
        """The FastAPI apps instrumented with this handle."""
        self.lock = threading.RLock()
        self._metrics = metrics
        self._current: Configuration | None = None
        self._defaults: Settings | None = None
        self._tracer = _proxy.TRACER_PROVIDER.get_tracer("atoms_otel", __version__)
        self._guarded: tuple[bool, bool] = (False, False)  # (api_token set, protect_metrics set)

    # -- the current configuration --------------------------------------------------------------

    @property
    def configured(self) -> bool:
        """True between configure() and shutdown()."""
        return self._current is not None

    @property
    def token_required(self) -> bool:
        """Whether the last configuration set ``api_token``. Kept after shutdown(), so the
        observability API and page fail closed instead of opening up; cleared only by a
        configure() without a token."""
        return self._guarded[0]

    @property
    def metrics_token_required(self) -> bool:
        """Whether the last configuration protected ``/metrics`` with the token (kept after shutdown)."""
        return self._guarded[1]

    @property
    def configuration(self) -> Configuration | None:
        return self._current

    @property
    def settings(self) -> Settings:
        """The resolved settings; before configure(), the table's defaults."""
        current = self._current
        if current is not None:
            return current.settings
        if self._defaults is None:
            self._defaults = resolve({}, {})
        return self._defaults

    @property
    def pipeline(self) -> Pipeline | None:
        current = self._current
        return current.pipeline if current is not None else None

    @property
    def scrubber(self) -> Scrubber | None:
        current = self._current
        return current.scrubber if current is not None else _scrubbing.active_scrubber()

    @property
    def plugins(self) -> list[Plugin]:
        current = self._current
        return list(current.plugins) if current is not None else []

    @property
    def logging(self) -> LoggingInstallation | None:
        current = self._current
        return current.logging if current is not None else None

    @property
    def advanced(self) -> AdvancedOptions:
        current = self._current
        return current.advanced if current is not None else AdvancedOptions()

    @property
    def request_context(self) -> RequestContext | None:
        """The application's hook that names a request's user and session (or ``None``)."""
        current = self._current
        return current.request_context if current is not None else None

    @property
    def enabled(self) -> bool:
        """False before configure() and with ``OTEL_SDK_DISABLED=true``: everything is a no-op."""
        return self.pipeline is not None

    def plugin(self, kind: type[P]) -> P | None:
        """The running plugin of type ``kind``, if any."""
        return next((p for p in self.plugins if isinstance(p, kind)), None)

    # -- signals --------------------------------------------------------------------------------

    @property
    def tracer(self) -> trace_api.Tracer:
        """atoms_otel's tracer; it follows re-configuration."""
        return self._tracer

    @property
    def tracer_provider(self) -> trace_api.TracerProvider:
        """The provider to hand third-party instrumentations; it follows re-configuration."""
        return _proxy.TRACER_PROVIDER

    @property
    def meter_provider(self) -> metrics_api.MeterProvider:
        """The meter provider to hand third-party instrumentations; it follows re-configuration."""
        return _proxy.METER_PROVIDER

    @property
    def meter(self) -> metrics_api.Meter:
        return _proxy.METER_PROVIDER.get_meter("atoms_otel", __version__)

    @property
    def metrics(self) -> MetricsRegistry:
        """The registry holding the pre-configured metrics (and any created through it)."""
        if self._metrics is None:
            self._metrics = get_metrics_registry()
        return self._metrics

    @property
    def prometheus_registry(self) -> CollectorRegistry | None:
        pipeline = self.pipeline
        return pipeline.prometheus_registry if pipeline is not None else None

    def metrics_text(self, *, openmetrics: bool = False) -> bytes:
        """Every metric in the Prometheus text exposition format 0.0.4 (what ``GET /metrics`` serves
        by default), or in OpenMetrics 1.0 (``# EOF`` terminated, ``_created`` series, and on each
        histogram bucket the exemplar of its latest sampled measurement: the trace it was in)."""
        pipeline = self.pipeline
        if pipeline is None:
            return b"# EOF\n" if openmetrics else b""
        if openmetrics:
            return openmetrics_text(pipeline.prometheus_registry, pipeline.prometheus_reader)
        body: bytes = generate_latest(pipeline.prometheus_registry)
        return body

    def metrics_snapshot(self) -> MetricsData | None:
        """Every metric's current data points (cumulative), collected now."""
        pipeline = self.pipeline
        return pipeline.prometheus_reader.snapshot() if pipeline is not None else None

    # -- life cycle -----------------------------------------------------------------------------

    def replace(self, configuration: Configuration) -> Configuration | None:
        """Make ``configuration`` current and retire the previous one (configure() calls this
        after the new providers are in place)."""
        with self.lock:
            previous, self._current = self._current, configuration
            settings = configuration.settings
            self._guarded = (bool(settings.api_token), bool(settings.api_token and settings.protect_metrics))
            if previous is not None:
                previous.retire(self.events)
            return previous

    def force_flush(self, timeout_s: float | None = None) -> bool:
        """Export everything buffered now, plugins first (webhooks: queued alerts). Bounded by
        ``timeout_s`` (default: the shutdown timeout)."""
        current = self._current
        if current is None:
            return True
        limit = timeout_s if timeout_s is not None else current.advanced.shutdown_timeout_s
        return current.force_flush(time.monotonic() + limit)

    def shutdown(self) -> None:
        """Stop plugins, flush and release the providers, undo the logging changes. Idempotent."""
        with self.lock:
            current, self._current = self._current, None
            if current is None:
                return
            current.retire(self.events)
            _proxy.delegate_to()  # no-ops
            _scrubbing.set_active_scrubber(_scrubbing.Scrubber())

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run each plugin's ``async run()`` as a task while the block runs (an app's lifespan)."""
        tasks = [asyncio.create_task(_guarded(p)) for p in self.plugins if callable(getattr(p, "run", None))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def __repr__(self) -> str:
        if not self.configured:
            return "Telemetry(configured=False)"
        settings = self.settings
        destinations = self.pipeline.destinations if self.pipeline is not None else {}
        exporting = {signal: _scrubbing.mask_url(url) for signal, url in destinations.items()}
        plugins = [type(p).__name__ for p in self.plugins]
        return (
            f"Telemetry(service_name={settings.service_name!r}, environment={settings.environment!r}, "
            f"enabled={self.enabled}, exporting={exporting!r}, plugins={plugins})"
        )


async def _guarded(plugin: Any) -> None:
    run: Callable[[], Awaitable[None]] = plugin.run
    try:
        await run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _guard.report_internal_error(f"plugin {type(plugin).__name__} run", exc)
