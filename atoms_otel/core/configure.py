"""``configure(telemetry, ...)``: validate every setting, build a pipeline, swap it in, run plugins.

It knows nothing of FastAPI or of any particular plugin: the facade's ``atoms_otel.configure()``
passes the built-in plugins and instruments the app. Every setting is validated first (one
:class:`ConfigurationError` naming each bad setting), then a new pipeline is built, swapped in
behind the global providers, and only then is the previous configuration retired — so calling it
again replaces the setup cleanly, and a failed call leaves the previous setup untouched.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from atoms_otel.base import guard as _guard
from atoms_otel.base import scrubbing as _scrubbing
from atoms_otel.base.scrubbing import Scrubber, ScrubbingOptions
from atoms_otel.base.settings import ConfigurationError, Settings, resolve
from atoms_otel.core.lifecycle import install_sigterm_flush
from atoms_otel.core.options import AdvancedOptions, MetricsOptions
from atoms_otel.core.telemetry import Configuration, Plugin, RequestContext, Telemetry
from atoms_otel.otel import proxy as _proxy
from atoms_otel.otel.logs import LoggingInstallation
from atoms_otel.otel.metrics import rebind_all
from atoms_otel.otel.pipeline import Pipeline, build_pipeline

__all__ = ["configure"]

_logger = logging.getLogger("atoms_otel")
_at_exit: weakref.WeakSet[Telemetry] = weakref.WeakSet()


def configure(
    telemetry: Telemetry,
    arguments: Mapping[str, Any],
    *,
    metrics: MetricsOptions | None = None,
    scrubbing: ScrubbingOptions | Literal[False] | None = None,
    install_logging: bool = True,
    plugins: Sequence[Plugin] = (),
    advanced: AdvancedOptions | None = None,
    request_context: RequestContext | None = None,
) -> Telemetry:
    """Configure ``telemetry`` from ``arguments`` (setting name → value, ``None`` = not given).

    Raises:
        ConfigurationError: a setting has an invalid value; the message names each one.
    """
    if request_context is not None and not callable(request_context):
        raise ConfigurationError("request_context: expected a callable taking the ASGI scope")
    metric_options = metrics or MetricsOptions()
    settings = resolve({**arguments, **metric_options.arguments()}, os.environ)
    buckets = metric_options.buckets()
    advanced = advanced or AdvancedOptions()
    scrubber = None if scrubbing is False else Scrubber(scrubbing or None)
    with telemetry.lock:
        pipeline = None if settings.disabled else _build(settings, scrubber, advanced, buckets)
        configuration = Configuration(settings, pipeline, scrubber, advanced, request_context=request_context)
        taken = _proxy.install_globals()
        _delegate_to(pipeline)
        telemetry.metrics  # noqa: B018 - the pre-configured metrics exist from the first configure()
        rebind_all()
        _scrubbing.set_active_scrubber(scrubber)
        telemetry.replace(configuration)
        if install_logging:
            configuration.logging = _install_logging(settings, advanced, pipeline)
        if telemetry not in _at_exit:
            _at_exit.add(telemetry)
            atexit.register(telemetry.shutdown)
        if advanced.flush_on_sigterm:
            # atexit does not run when SIGTERM kills the process (Kubernetes, docker stop).
            install_sigterm_flush(telemetry)
    if taken:
        _logger.warning(
            "another OpenTelemetry %s provider was already set globally; atoms_otel's own "
            "instrumentation uses its pipeline, but third-party instrumentation keeps the other one",
            "/".join(taken),
        )
    for plugin in plugins:
        try:
            plugin.setup(telemetry)
            configuration.plugins.append(plugin)
        except Exception as exc:
            _guard.report_internal_error(f"plugin {type(plugin).__name__} setup", exc)
    _logger.debug(
        "atoms_otel configured",
        extra={"service": settings.service_name, "otlp": dict(pipeline.destinations) if pipeline else {}},
    )
    return telemetry


def _build(
    settings: Settings,
    scrubber: Scrubber | None,
    advanced: AdvancedOptions,
    buckets: dict[str, tuple[float, ...]],
) -> Pipeline:
    return build_pipeline(
        settings,
        scrubber,
        span_exporters=advanced.span_exporters,
        span_processors=advanced.span_processors,
        metric_readers=advanced.metric_readers,
        log_exporters=advanced.log_exporters,
        log_processors=advanced.log_processors,
        simple_export=advanced.synchronous_export,
        histogram_buckets=buckets,
    )


def _delegate_to(pipeline: Pipeline | None) -> None:
    if pipeline is None:
        _proxy.delegate_to()  # no-ops: OTEL_SDK_DISABLED
    else:
        _proxy.delegate_to(pipeline.tracer_provider, pipeline.meter_provider, pipeline.logger_provider)


def _install_logging(
    settings: Settings, advanced: AdvancedOptions, pipeline: Pipeline | None
) -> LoggingInstallation:
    installation = LoggingInstallation(
        level=settings.log_level,
        fmt=settings.log_format,
        stream=advanced.log_stream,
        otel_provider=_proxy.LOGGER_PROVIDER if pipeline is not None and pipeline.exports_logs else None,
    )
    installation.install()
    return installation
