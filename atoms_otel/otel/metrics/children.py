"""Metrics bound to one label set: what ``Counter.labels(...)`` and friends return.

A child builds its attribute dictionary once. It records through its metric's proxy instrument,
reading the proxy's current SDK instrument at each call, so a child made before ``configure()``
(or before it runs again) records into the pipeline that is current when it records.

Counter children record without a trace context by default (``NO_EXEMPLAR``): an exemplar links a
measurement to the trace it happened in, which is worth its cost on a duration histogram, not on
every count. Histogram children record in the current context, so their exemplars are kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry.context import Context, get_current

from atoms_otel.base.compat import BoundSeries, accepts, bind_series

SeriesKey = frozenset[tuple[str, Any]]


class Counter(Protocol):
    """What a counter child needs of its counter."""

    label_names: tuple[str, ...]
    _instrument: Any

    def _refuse_negative(self) -> None: ...

    def _count(self, key: SeriesKey, amount: float) -> None: ...


class Histogram(Protocol):
    """What a histogram child needs of its histogram."""

    label_names: tuple[str, ...]
    _instrument: Any


class Gauge(Protocol):
    """What a gauge child needs of its gauge."""

    label_names: tuple[str, ...]

    def _move(self, key: SeriesKey, labels: Any, delta: float | None, target: float | None) -> None: ...

    def _read(self, key: SeriesKey) -> float: ...


__all__ = [
    "NO_EXEMPLAR",
    "BoundInstrument",
    "CounterChild",
    "GaugeChild",
    "HistogramChild",
    "ObservedCounterChild",
]

# A context with no span (and not empty, so the SDK does not fall back to the current one): the
# SDK samples no exemplar for a measurement recorded in it.
NO_EXEMPLAR: Final = otel_context.set_value("atoms_otel.no_exemplar", True, Context())


class _Child:
    __slots__ = ("_attributes", "label_values")

    def __init__(self, label_names: tuple[str, ...], values: tuple[Any, ...]) -> None:
        self.label_values = values
        self._attributes = dict(zip(label_names, values, strict=True))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._attributes!r}>"


class _Recording(_Child):
    """A child of an SDK-recorded metric: it records through its bound series when it can
    (``compat.BoundSeries``: the same aggregations, without the SDK's per-call lookups), else
    through the public API."""

    __slots__ = ("_bound", "_instrument", "_unbound")

    def __init__(self, label_names: tuple[str, ...], values: tuple[Any, ...], instrument: Any) -> None:
        super().__init__(label_names, values)
        self._instrument: Any = instrument  # the proxy: rebound in place by configure()
        self._bound: BoundSeries | None = None
        self._unbound: Any = None
        """The instrument that could not be bound (no SDK yet, another SDK layout): not retried."""

    def _series(self, real: Any) -> BoundSeries | None:
        bound = self._bound
        if bound is not None and bound.valid_for(real):
            return bound
        if real is self._unbound:
            return None
        bound = self._bound = bind_series(real, self._attributes)
        self._unbound = real if bound is None else None
        return bound

    def _record(self, value: float, exemplar: bool, public: str) -> None:
        """Record ``value`` through the bound series, or through the instrument's ``public``
        method (``add`` / ``record``) when it cannot be bound or the SDK would refuse the value;
        in the current trace context (``exemplar``) or in none."""
        real = self._instrument._real
        bound = self._series(real) if accepts(value) else None
        if bound is None:
            getattr(real, public)(value, self._attributes, None if exemplar else NO_EXEMPLAR)
        else:
            bound.record(value, get_current() if exemplar else NO_EXEMPLAR)


class CounterChild(_Recording):
    """A counter bound to one label set: ``inc(amount=1)``."""

    __slots__ = ("_metric",)

    def __init__(self, metric: Counter, values: tuple[str, ...]) -> None:
        super().__init__(metric.label_names, values, metric._instrument)
        self._metric = metric

    def inc(self, amount: float = 1, *, exemplar: bool = False) -> None:
        """Add ``amount`` (not negative). ``exemplar=True`` records in the current trace context,
        so the SDK may sample an exemplar; by default no trace context is used."""
        if amount < 0:
            self._metric._refuse_negative()
            return
        self._record(amount, exemplar, "add")


class ObservedCounterChild(CounterChild):
    """A child of an ``observed=True`` counter: ``inc`` adds to the in-process count."""

    __slots__ = ("_key",)

    def __init__(self, metric: Counter, values: tuple[str, ...]) -> None:
        super().__init__(metric, values)
        self._key = frozenset(self._attributes.items())

    def inc(self, amount: float = 1, *, exemplar: bool = False) -> None:
        """Add ``amount`` (not negative). Observed counts carry no exemplars."""
        if amount < 0:
            self._metric._refuse_negative()
            return
        self._metric._count(self._key, amount)


class HistogramChild(_Recording):
    """A histogram bound to one label set: ``observe(value)``, ``with child.time(): ...``."""

    __slots__ = ()

    def __init__(self, metric: Histogram, values: tuple[str, ...]) -> None:
        super().__init__(metric.label_names, values, metric._instrument)

    def observe(self, value: float, *, exemplar: bool = True) -> None:
        """Record ``value``, in the current trace context (``exemplar=False``: in none)."""
        self._record(value, exemplar, "record")

    @contextmanager
    def time(self, *, exemplar: bool = True) -> Iterator[None]:
        """Observe the duration of a block in seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start, exemplar=exemplar)


class BoundInstrument(_Recording):
    """An OpenTelemetry counter or histogram of the proxy meter, bound to one attribute set: for
    instruments whose attributes are not Prometheus labels (the semantic-convention metrics).
    ``record(value)`` (histogram) and ``add(amount)`` (counter) record in the current context,
    like the instrument's own methods, with the bound children's cost."""

    __slots__ = ()

    def __init__(self, instrument: Any, attributes: Mapping[str, Any]) -> None:
        super().__init__(tuple(attributes), tuple(attributes.values()), instrument)

    def record(self, value: float) -> None:
        self._record(value, True, "record")

    def add(self, amount: float) -> None:
        self._record(amount, True, "add")


class GaugeChild(_Child):
    """A gauge bound to one label set: ``set(value)``, ``inc(amount=1)``, ``dec(amount=1)``,
    ``value()``."""

    __slots__ = ("_key", "_metric")

    def __init__(self, metric: Gauge, values: tuple[str, ...]) -> None:
        super().__init__(metric.label_names, values)
        self._metric = metric
        self._key = frozenset(self._attributes.items())

    def set(self, value: float) -> None:
        self._metric._move(self._key, self._attributes, None, value)

    def inc(self, amount: float = 1) -> None:
        self._metric._move(self._key, self._attributes, amount, None)

    def dec(self, amount: float = 1) -> None:
        self._metric._move(self._key, self._attributes, -amount, None)

    def value(self) -> float:
        """The current value (0 if never set)."""
        return self._metric._read(self._key)
