"""What every metric facade shares: its name and declared labels, and its bound children.

``labels(...)`` returns a child bound to one label set, as prometheus_client does. Children are
cached per metric by their label values (at most ``_MAX_CHILDREN``; past that ``labels()`` still
returns a working child, built for the call), so a hot path pays one dictionary lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar

from opentelemetry import metrics as metrics_api
from opentelemetry.metrics import Meter

from atoms_otel.base import guard as _guard
from atoms_otel.otel.metrics.naming import Labels, check_name, label_value, prometheus_name


class Registry(Protocol):
    """What a metric needs of the registry it belongs to (``Registry`` is one)."""

    @property
    def meter(self) -> Meter: ...

    def _register(self, metric: Any) -> None: ...


__all__ = ["ChildT", "Registry", "use_default_registry"]

ChildT = TypeVar("ChildT")

# Like the SDK's default metric_cardinality_limit: at most this many cached children per metric.
_MAX_CHILDREN: Final = 2000

_default_registry: list[Callable[[], Registry]] = []


def use_default_registry(getter: Callable[[], Registry]) -> None:
    """Set where metrics created without ``registry=`` register (the registry module does, once)."""
    _default_registry[:] = [getter]


class _Metric(Generic[ChildT]):
    kind: str = ""

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        registry: Registry | None = None,
    ) -> None:
        check_name(name)
        if isinstance(labels, str):
            raise TypeError("labels must be a sequence of label names, not a string")
        self.name = name
        self.description = description or name.replace("_", " ").replace(".", " ")
        self.unit = unit
        self.label_names: tuple[str, ...] = tuple(labels)
        self._declared = frozenset(self.label_names) if self.label_names else None
        self.prometheus_name = prometheus_name(name, unit, "counter" if self.kind == "counter" else self.kind)
        self._children: dict[tuple[object, ...], ChildT] = {}
        self._children_lock = threading.Lock()
        self._registry = registry if registry is not None else _default_registry[0]()
        self._instrument: Any = self._create(self._registry.meter)
        self._registry._register(self)

    def _create(self, meter: metrics_api.Meter) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _new_child(self, values: tuple[str, ...]) -> ChildT:  # pragma: no cover - abstract
        raise NotImplementedError

    def _labels(self, labels: Labels | None) -> Labels | None:
        """Drop label names that were not declared (bounded cardinality); logged once."""
        if labels is None or self._declared is None or self._declared.issuperset(labels):
            return labels
        undeclared = sorted(set(labels) - self._declared)
        _guard.warn_once(
            f"metric {self.name}",
            f"undeclared labels {undeclared} dropped; declared: {list(self.label_names)}",
        )
        return {k: v for k, v in labels.items() if k in self._declared}

    def labels(self, /, *values: object, **named: object) -> ChildT:
        """The child bound to one label set: ``labels("GET", "/users")`` gives the values in the
        declared order, ``labels(method="GET", path="/users")`` by name. Every declared label must
        be given, and no other (``ValueError`` otherwise). Values are recorded as ``str(value)``.
        The same values return the same (cached) child."""
        if not named:
            try:
                child = self._children.get(values)
            except TypeError:  # an unhashable value: recorded as its str() like any other
                child = None
            if child is not None:
                return child
        return self._child(self._label_values(values, named))

    def _label_values(self, values: tuple[object, ...], named: dict[str, object]) -> tuple[str, ...]:
        names = self.label_names
        if not names:
            raise ValueError(
                f"metric {self.name!r} has no declared labels, so it has no labels() children: "
                "record on the metric itself, or declare labels=(...) when creating it"
            )
        if values and named:
            raise ValueError(f"metric {self.name!r}: give label values by position or by name, not both")
        if named:
            missing = [n for n in names if n not in named]
            undeclared = sorted(set(named) - set(names))
            if missing or undeclared:
                wrong = [f"missing label names {missing}"] if missing else []
                wrong += [f"undeclared label names {undeclared}"] if undeclared else []
                raise ValueError(
                    f"metric {self.name!r}: labels(): {', '.join(wrong)}; declared: {list(names)}"
                )
            values = tuple(named[n] for n in names)
        elif len(values) != len(names):
            raise ValueError(
                f"metric {self.name!r}: labels() takes {len(names)} values, for {list(names)}; "
                f"got {len(values)}"
            )
        return tuple(map(label_value, values))

    def _child(self, key: tuple[str, ...]) -> ChildT:
        """The cached child for these label values, caching a new one while there is room."""
        child = self._children.get(key)
        if child is not None:
            return child
        child = self._new_child(key)
        with self._children_lock:
            children = self._children
            if len(children) >= _MAX_CHILDREN:
                return child
            child = children.setdefault(key, child)
            full = len(children) == _MAX_CHILDREN
        if full:
            _guard.warn_once(
                f"metric {self.name} labels()",
                f"{_MAX_CHILDREN} label sets cached; children for further label sets are built per call",
            )
        return child

    def _rebound(self) -> None:
        """configure() swapped the pipeline (the proxy instrument already records into the new one)."""

    def _reset(self) -> None:
        """Forget the values kept in the process (the testing fixture starts each test from zero)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={self.label_names!r})"
