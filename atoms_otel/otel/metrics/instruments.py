"""``Counter``, ``Gauge`` and ``Histogram``: Prometheus-style facades over OpenTelemetry instruments.

They keep the familiar Prometheus surface (``inc``, ``set``, ``observe``, declared label names,
``labels(...)`` children) while recording into OpenTelemetry instruments created on the swappable
proxy meter, so they may be created at import time, before ``configure()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import metrics as metrics_api

from atoms_otel.base import guard as _guard
from atoms_otel.otel.metrics.children import (
    BoundInstrument,
    CounterChild,
    GaugeChild,
    HistogramChild,
    ObservedCounterChild,
)
from atoms_otel.otel.metrics.metric import Registry, _Metric
from atoms_otel.otel.metrics.naming import DURATION_BUCKETS, Labels

__all__ = ["Counter", "Gauge", "Histogram"]

SeriesKey = frozenset[tuple[str, Any]]

_MAX_GAUGE_SERIES: Final = 2000
_MAX_OBSERVED_SERIES: Final = 10_000
_OVERFLOW: Final = frozenset({("otel_metric_overflow", "true")})
_NO_LABELS: Final[SeriesKey] = frozenset()


def _key(labels: Labels | None) -> SeriesKey:
    return frozenset(labels.items()) if labels else _NO_LABELS


def _observations(table: dict[SeriesKey, float], lock: threading.Lock) -> list[metrics_api.Observation]:
    """An observed counter's or gauge's in-process values, as the SDK reads them at collection."""
    with lock:
        items = list(table.items())
    return [metrics_api.Observation(value, dict(key) or None) for key, value in items]


class Counter(_Metric[CounterChild]):
    """A monotonically increasing count. ``inc(amount=1, labels=None)``, or ``labels(...).inc()``.

    >>> orders = Counter("orders_total", "Orders placed", labels=("region",))
    >>> orders.inc(labels={"region": "eu"})
    >>> orders.labels("eu").inc()

    ``observed=True`` keeps the counts in the process and reports them when metrics are collected
    (an OpenTelemetry *observable* counter): ``inc`` costs a dictionary update under a lock instead
    of an SDK call — for counts taken on every request. Like any counter it starts from zero when
    configure() builds a new pipeline. At most 10000 label sets are kept; later ones are counted in
    one ``otel_metric_overflow="true"`` series.
    """

    kind = "counter"

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        registry: Registry | None = None,
        observed: bool = False,
    ) -> None:
        self._observed = observed
        self._counts: dict[SeriesKey, float] = {}
        self._lock = threading.Lock()
        super().__init__(name, description, unit, labels, registry=registry)

    def _create(self, meter: metrics_api.Meter) -> Any:
        if self._observed:
            return meter.create_observable_counter(self.name, [self._observe], self.unit, self.description)
        return meter.create_counter(self.name, self.unit, self.description)

    def _new_child(self, values: tuple[str, ...]) -> CounterChild:
        return ObservedCounterChild(self, values) if self._observed else CounterChild(self, values)

    def inc(self, amount: float = 1, labels: Labels | None = None) -> None:
        if amount < 0:
            self._refuse_negative()
            return
        declared = self._declared
        if declared is not None and labels is not None and not declared.issuperset(labels):
            labels = self._labels(labels)
        if self._observed:
            self._count(_key(labels), amount)
            return
        self._instrument._real.add(amount, labels)

    def _refuse_negative(self) -> None:
        _guard.warn_once(f"metric {self.name}", "a counter cannot go down; negative increment ignored")

    def _count(self, key: SeriesKey, amount: float) -> None:
        """Add to an observed counter's in-process count (past the bound: the overflow series)."""
        with self._lock:
            counts = self._counts
            if key not in counts and len(counts) >= _MAX_OBSERVED_SERIES:
                key = _OVERFLOW
            counts[key] = counts.get(key, 0) + amount

    def _observe(self, _options: metrics_api.CallbackOptions) -> list[metrics_api.Observation]:
        return _observations(self._counts, self._lock)

    def _rebound(self) -> None:
        # A new pipeline starts every counter from zero; an observed one does too, so that ratios
        # between counters (errors per request) stay true across configure().
        self._reset()

    def _reset(self) -> None:
        with self._lock:
            self._counts.clear()


class Histogram(_Metric[HistogramChild]):
    """A distribution (e.g. durations in seconds). ``observe(value, labels=None)``, or
    ``labels(...).observe(value)``.

    Buckets default to the OpenTelemetry HTTP buckets (in seconds) when ``unit="s"`` or the name
    ends in ``_seconds``; pass ``buckets=`` to choose.
    """

    kind = "histogram"

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] | None = None,
        registry: Registry | None = None,
    ) -> None:
        if buckets is None and (unit == "s" or name.endswith(("_seconds", ".seconds"))):
            buckets = DURATION_BUCKETS
        if buckets is not None:
            buckets = tuple(float(b) for b in buckets)
            if list(buckets) != sorted(set(buckets)):
                raise ValueError(f"histogram {name!r}: buckets must be strictly increasing")
        self.buckets: tuple[float, ...] | None = buckets
        super().__init__(name, description, unit, labels, registry=registry)

    def _create(self, meter: metrics_api.Meter) -> Any:
        return meter.create_histogram(
            self.name, self.unit, self.description, explicit_bucket_boundaries_advisory=self.buckets
        )

    def _new_child(self, values: tuple[str, ...]) -> HistogramChild:
        return HistogramChild(self, values)

    def observe(self, value: float, labels: Labels | None = None) -> None:
        declared = self._declared
        if declared is not None and labels is not None and not declared.issuperset(labels):
            labels = self._labels(labels)
        self._instrument._real.record(value, labels)

    def bind(self, labels: Labels) -> BoundInstrument:
        """This histogram bound to ``labels`` as ``observe(value, labels)`` would record them (the
        undeclared ones dropped), with values of any attribute type: ``record(value)`` at a
        child's cost. For label sets built per call (semantic-convention attributes) and cached
        by the caller, who bounds how many it keeps."""
        return BoundInstrument(self._instrument, self._labels(labels) or {})

    @contextmanager
    def time(self, labels: Labels | None = None) -> Iterator[None]:
        """Observe the duration of a block in seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start, labels)


class Gauge(_Metric[GaugeChild]):
    """A value that goes up and down: ``set(value)``, ``inc(amount=1)``, ``dec(amount=1)``, also on
    ``labels(...)`` children.

    Backed by an OpenTelemetry UpDownCounter, so values from many processes add up correctly in
    the collector; ``set`` records the difference from the current value. At most 2000 label sets
    are tracked per gauge; further ones are ignored and logged once.

    ``observed=True`` backs it by an *observable* UpDownCounter instead: the current values are
    read when metrics are collected, so ``inc``/``dec``/``set`` only update a number under a lock
    (about a microsecond, against several for an SDK call) — for values changed on every request.
    """

    kind = "gauge"

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        registry: Registry | None = None,
        observed: bool = False,
    ) -> None:
        self._values: dict[SeriesKey, float] = {}
        self._lock = threading.Lock()
        self._observed = observed
        super().__init__(name, description, unit, labels, registry=registry)

    def _create(self, meter: metrics_api.Meter) -> Any:
        if self._observed:
            return meter.create_observable_up_down_counter(
                self.name, [self._observe], self.unit, self.description
            )
        return meter.create_up_down_counter(self.name, self.unit, self.description)

    def _new_child(self, values: tuple[str, ...]) -> GaugeChild:
        return GaugeChild(self, values)

    def _observe(self, _options: metrics_api.CallbackOptions) -> list[metrics_api.Observation]:
        return _observations(self._values, self._lock)

    def _add(self, delta: float | None, labels: Labels | None, target: float | None = None) -> None:
        if self._declared is not None and labels is not None:
            labels = self._labels(labels)
        self._move(_key(labels), labels, delta, target)

    def _move(self, key: SeriesKey, labels: Labels | None, delta: float | None, target: float | None) -> None:
        """Change one series by ``delta``, or to ``target``; a non-observed gauge records the change."""
        with self._lock:
            current = self._values.get(key)
            if current is None:
                if len(self._values) >= _MAX_GAUGE_SERIES:
                    _guard.warn_once(
                        f"metric {self.name}", f"more than {_MAX_GAUGE_SERIES} label sets; new ones ignored"
                    )
                    return
                current = 0.0
            if target is not None:
                delta = target - current
            assert delta is not None
            self._values[key] = current + delta
            if delta and not self._observed:
                self._instrument._real.add(delta, labels)

    def set(self, value: float, labels: Labels | None = None) -> None:
        self._add(None, labels, target=value)

    def inc(self, amount: float = 1, labels: Labels | None = None) -> None:
        self._add(amount, labels)

    def dec(self, amount: float = 1, labels: Labels | None = None) -> None:
        self._add(-amount, labels)

    def value(self, labels: Labels | None = None) -> float:
        """The current value for a label set (0 if never set)."""
        return self._read(_key(labels))

    def _read(self, key: SeriesKey) -> float:
        with self._lock:
            return self._values.get(key, 0.0)

    def _rebound(self) -> None:
        # A new pipeline starts from zero; carry the current values over so the gauge stays true.
        if self._observed:  # read at collection time: nothing to carry
            return
        with self._lock:
            for key, value in self._values.items():
                if value:
                    self._instrument._real.add(value, dict(key) or None)

    def _reset(self) -> None:
        with self._lock:
            self._values.clear()
