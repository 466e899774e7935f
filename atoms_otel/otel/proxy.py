"""Global providers whose SDK delegate can be replaced.

The OpenTelemetry API lets a global provider be set once per process. ``configure()`` may run many
times (tests do, and so does a service that reloads its settings), so the globals we install are
these thin swappable providers: every tracer, meter, instrument and logger handed out — including
the API's own proxies created at import time, before ``configure()`` — forwards to the current SDK
delegate, and is rebound when ``configure()`` installs a new one. The forwarding costs one
attribute load and one call; our own hot paths hold the rebound objects directly.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import _logs as logs_api
from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.util.types import Attributes

from atoms_otel.base.compat import API_GAUGE as APIGauge

__all__ = [
    "ProxyLoggerProvider",
    "ProxyMeterProvider",
    "ProxyTracerProvider",
    "delegate_to",
    "install_globals",
]


def _scope_key(
    name: str, version: str | None, schema_url: str | None, attributes: Attributes
) -> tuple[Any, ...]:
    return (name, version, schema_url, tuple(sorted((attributes or {}).items())))


# ---------------------------------------------------------------------------------------------
# Traces


class _ProxyTracer(trace_api.Tracer):
    def __init__(self, args: tuple[Any, ...], real: trace_api.Tracer) -> None:
        self._args = args
        self._real = real

    def start_span(self, *args: Any, **kwargs: Any) -> trace_api.Span:
        return self._real.start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._real.start_as_current_span(*args, **kwargs)


class ProxyTracerProvider(trace_api.TracerProvider):
    """A TracerProvider that forwards to a replaceable SDK ``TracerProvider``."""

    def __init__(self) -> None:
        self._delegate: trace_api.TracerProvider = trace_api.NoOpTracerProvider()
        self._tracers: dict[tuple[Any, ...], _ProxyTracer] = {}
        self._lock = threading.Lock()

    @property
    def delegate(self) -> trace_api.TracerProvider:
        return self._delegate

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace_api.Tracer:
        key = _scope_key(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        with self._lock:
            tracer = self._tracers.get(key)
            if tracer is None:
                args = (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
                tracer = self._tracers[key] = _ProxyTracer(args, self._delegate.get_tracer(*args))
            return tracer

    def set_delegate(self, delegate: trace_api.TracerProvider) -> None:
        with self._lock:
            self._delegate = delegate
            for tracer in self._tracers.values():
                tracer._real = delegate.get_tracer(*tracer._args)

    def add_span_processor(self, processor: Any) -> None:
        """Forwarded, so tools that add a processor to the global provider keep working."""
        self._delegate.add_span_processor(processor)  # type: ignore[attr-defined]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush: Callable[[int], bool] | None = getattr(self._delegate, "force_flush", None)
        return flush(timeout_millis) if flush else True


# ---------------------------------------------------------------------------------------------
# Metrics


class _ProxyInstrument:
    """Forwards measurements to ``_real``; rebuilt on the new meter when the delegate changes."""

    def __init__(self, factory: str, args: tuple[Any, ...], kwargs: dict[str, Any], meter: Any) -> None:
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._real: Any = getattr(meter, factory)(*args, **kwargs)

    def _rebind(self, meter: metrics_api.Meter) -> None:
        self._real = getattr(meter, self._factory)(*self._args, **self._kwargs)


class _Counter(_ProxyInstrument, metrics_api.Counter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Any = None) -> None:
        self._real.add(amount, attributes, context)


class _UpDownCounter(_ProxyInstrument, metrics_api.UpDownCounter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Any = None) -> None:
        self._real.add(amount, attributes, context)


class _Histogram(_ProxyInstrument, metrics_api.Histogram):
    def record(self, amount: int | float, attributes: Attributes = None, context: Any = None) -> None:
        self._real.record(amount, attributes, context)


class _Gauge(_ProxyInstrument, APIGauge):
    def set(self, amount: int | float, attributes: Attributes = None, context: Any = None) -> None:
        self._real.set(amount, attributes, context)


class _Observable(_ProxyInstrument):
    """Observable instruments have nothing to forward: their callbacks move with them."""


class _ObservableCounter(_Observable, metrics_api.ObservableCounter):
    pass


class _ObservableGauge(_Observable, metrics_api.ObservableGauge):
    pass


class _ObservableUpDownCounter(_Observable, metrics_api.ObservableUpDownCounter):
    pass


class _ProxyMeter(metrics_api.Meter):
    def __init__(self, args: tuple[Any, ...], real: metrics_api.Meter) -> None:
        super().__init__(args[0], version=args[1], schema_url=args[2])
        self._args = args
        self._real = real
        # Synchronous instruments are held by the code that records into them: weak references
        # let unused ones go. Observable ones are often not kept by anyone (their callbacks are
        # the point), so they are held strongly, as the SDK holds its own.
        self._instruments: weakref.WeakSet[_ProxyInstrument] = weakref.WeakSet()
        self._observables: list[_ProxyInstrument] = []
        self._lock = threading.Lock()

    def _rebind(self, provider: metrics_api.MeterProvider) -> None:
        with self._lock:
            self._real = provider.get_meter(*self._args)
            for instrument in [*self._instruments, *self._observables]:
                instrument._rebind(self._real)

    def _make(self, cls: type[_ProxyInstrument], factory: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            instrument = cls(factory, args, kwargs, self._real)
            if isinstance(instrument, _Observable):
                self._observables.append(instrument)
            else:
                self._instruments.add(instrument)
            return instrument

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics_api.Counter:
        return self._make(_Counter, "create_counter", name, unit, description)  # type: ignore[no-any-return]

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> metrics_api.UpDownCounter:
        return self._make(_UpDownCounter, "create_up_down_counter", name, unit, description)  # type: ignore[no-any-return]

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> metrics_api.Histogram:
        return self._make(  # type: ignore[no-any-return]
            _Histogram,
            "create_histogram",
            name,
            unit,
            description,
            explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
        )

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> APIGauge:
        return self._make(_Gauge, "create_gauge", name, unit, description)  # type: ignore[no-any-return]

    def create_observable_counter(
        self, name: str, callbacks: Sequence[Any] | None = None, unit: str = "", description: str = ""
    ) -> metrics_api.ObservableCounter:
        return self._make(  # type: ignore[no-any-return]
            _ObservableCounter, "create_observable_counter", name, callbacks, unit, description
        )

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[Any] | None = None, unit: str = "", description: str = ""
    ) -> metrics_api.ObservableGauge:
        return self._make(  # type: ignore[no-any-return]
            _ObservableGauge, "create_observable_gauge", name, callbacks, unit, description
        )

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[Any] | None = None, unit: str = "", description: str = ""
    ) -> metrics_api.ObservableUpDownCounter:
        return self._make(  # type: ignore[no-any-return]
            _ObservableUpDownCounter, "create_observable_up_down_counter", name, callbacks, unit, description
        )


class ProxyMeterProvider(metrics_api.MeterProvider):
    """A MeterProvider that forwards to a replaceable SDK ``MeterProvider``."""

    def __init__(self) -> None:
        self._delegate: metrics_api.MeterProvider = metrics_api.NoOpMeterProvider()
        self._meters: dict[tuple[Any, ...], _ProxyMeter] = {}
        self._lock = threading.Lock()

    @property
    def delegate(self) -> metrics_api.MeterProvider:
        return self._delegate

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> metrics_api.Meter:
        key = _scope_key(name, version, schema_url, attributes)
        with self._lock:
            meter = self._meters.get(key)
            if meter is None:
                args = (name, version, schema_url, attributes)
                meter = self._meters[key] = _ProxyMeter(args, self._delegate.get_meter(*args))
            return meter

    def set_delegate(self, delegate: metrics_api.MeterProvider) -> None:
        with self._lock:
            self._delegate = delegate
            meters = list(self._meters.values())
        for meter in meters:
            meter._rebind(delegate)

    def add_metric_reader(self, reader: Any) -> None:
        self._delegate.add_metric_reader(reader)  # type: ignore[attr-defined]

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        flush: Callable[[float], bool] | None = getattr(self._delegate, "force_flush", None)
        return flush(timeout_millis) if flush else True


# ---------------------------------------------------------------------------------------------
# Logs


class _ProxyLogger(logs_api.Logger):
    def __init__(self, args: tuple[Any, ...], real: logs_api.Logger) -> None:
        super().__init__(args[0], version=args[1], schema_url=args[2], attributes=args[3])
        self._args = args
        self._real = real

    def emit(self, *args: Any, **kwargs: Any) -> None:
        self._real.emit(*args, **kwargs)

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return self._real.enabled(*args, **kwargs)


class ProxyLoggerProvider(logs_api.LoggerProvider):
    """A LoggerProvider that forwards to a replaceable SDK ``LoggerProvider``."""

    def __init__(self) -> None:
        self._delegate: logs_api.LoggerProvider = logs_api.NoOpLoggerProvider()
        self._loggers: dict[tuple[Any, ...], _ProxyLogger] = {}
        self._lock = threading.Lock()

    @property
    def delegate(self) -> logs_api.LoggerProvider:
        return self._delegate

    def get_logger(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> logs_api.Logger:
        key = _scope_key(name, version, schema_url, attributes)
        with self._lock:
            logger = self._loggers.get(key)
            if logger is None:
                args = (name, version, schema_url, attributes)
                logger = self._loggers[key] = _ProxyLogger(args, self._delegate.get_logger(*args))
            return logger

    def set_delegate(self, delegate: logs_api.LoggerProvider) -> None:
        with self._lock:
            self._delegate = delegate
            for logger in self._loggers.values():
                logger._real = delegate.get_logger(*logger._args)

    def add_log_record_processor(self, processor: Any) -> None:
        self._delegate.add_log_record_processor(processor)  # type: ignore[attr-defined]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush: Callable[[int], bool] | None = getattr(self._delegate, "force_flush", None)
        return flush(timeout_millis) if flush else True


TRACER_PROVIDER = ProxyTracerProvider()
METER_PROVIDER = ProxyMeterProvider()
LOGGER_PROVIDER = ProxyLoggerProvider()
_installed = False
_install_lock = threading.Lock()


def install_globals() -> list[str]:
    """Make our proxies the API's global providers (once). Returns the signals whose global was
    already taken by someone else; our own instrumentation still uses our proxies directly."""
    global _installed
    with _install_lock:
        if _installed:
            return []
        _installed = True
        taken = []
        trace_api.set_tracer_provider(TRACER_PROVIDER)
        if trace_api.get_tracer_provider() is not TRACER_PROVIDER:
            taken.append("traces")
        metrics_api.set_meter_provider(METER_PROVIDER)
        if metrics_api.get_meter_provider() is not METER_PROVIDER:
            taken.append("metrics")
        logs_api.set_logger_provider(LOGGER_PROVIDER)
        if logs_api.get_logger_provider() is not LOGGER_PROVIDER:
            taken.append("logs")
        return taken


def delegate_to(
    tracer_provider: trace_api.TracerProvider | None = None,
    meter_provider: metrics_api.MeterProvider | None = None,
    logger_provider: logs_api.LoggerProvider | None = None,
) -> None:
    """Point the three global proxies at these SDK providers (no-ops where ``None``)."""
    TRACER_PROVIDER.set_delegate(tracer_provider or trace_api.NoOpTracerProvider())
    METER_PROVIDER.set_delegate(meter_provider or metrics_api.NoOpMeterProvider())
    LOGGER_PROVIDER.set_delegate(logger_provider or logs_api.NoOpLoggerProvider())
