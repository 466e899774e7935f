"""A rotel collector processor: appends what the collector receives to $ATOMS_SINK_FILE as JSON lines.

Loaded by the rotel-agent binary's embedded Python (see tests/support/collector.py). Each line is
{"signal": "span"|"log"|"metric", "resource": {...}, ...} with attribute values unwrapped.
"""

import json
import os

_OUT = os.environ["ATOMS_SINK_FILE"]


def _value(any_value):
    """Unwrap rotel's AnyValue (and nested ArrayValue/KeyValueList) into plain JSON values."""
    if any_value is None:
        return None
    inner = getattr(any_value, "value", any_value)
    if isinstance(inner, bool | int | float | str) or inner is None:
        return inner
    if isinstance(inner, bytes):
        return inner.hex()
    items = _items(inner)
    if items is None:
        return repr(inner)
    if items and all(hasattr(item, "key") for item in items):
        return {item.key: _value(item.value) for item in items}
    return [_value(item) for item in items]


def _items(container):
    """The elements of an ArrayValue/KeyValueList, which index like lists but may not iterate."""
    values = getattr(container, "values", None)
    if values is not None and not callable(values):
        container = values
    if not hasattr(container, "__getitem__"):
        return None
    items = []
    index = 0
    while True:
        try:
            items.append(container[index])
        except (IndexError, KeyError, TypeError):
            return items
        index += 1


def _attrs(attributes):
    return {a.key: _value(a.value) for a in attributes}


def _write(rows):
    with open(_OUT, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")


def _hex(raw):
    return raw.hex() if isinstance(raw, bytes) else str(raw)


def process_spans(resource_spans):
    resource = _attrs(resource_spans.resource.attributes)
    rows = []
    for scope_spans in resource_spans.scope_spans:
        for span in scope_spans.spans:
            rows.append(
                {
                    "signal": "span",
                    "resource": resource,
                    "scope": scope_spans.scope.name if scope_spans.scope else None,
                    "name": span.name,
                    "trace_id": _hex(span.trace_id),
                    "span_id": _hex(span.span_id),
                    "parent_span_id": _hex(span.parent_span_id),
                    "kind": int(span.kind),
                    "attributes": _attrs(span.attributes),
                    "events": [{"name": e.name, "attributes": _attrs(e.attributes)} for e in span.events],
                }
            )
    _write(rows)


def process_logs(resource_logs):
    resource = _attrs(resource_logs.resource.attributes)
    rows = []
    for scope_logs in resource_logs.scope_logs:
        for record in scope_logs.log_records:
            rows.append(
                {
                    "signal": "log",
                    "resource": resource,
                    "scope": scope_logs.scope.name if scope_logs.scope else None,
                    "body": _value(record.body),
                    "severity_text": record.severity_text,
                    "trace_id": _hex(record.trace_id),
                    "span_id": _hex(record.span_id),
                    "attributes": _attrs(record.attributes),
                }
            )
    _write(rows)


def _number(value):
    inner = value[0] if hasattr(value, "__getitem__") else value
    return inner


def process_metrics(resource_metrics):
    resource = _attrs(resource_metrics.resource.attributes)
    rows = []
    for scope_metrics in resource_metrics.scope_metrics:
        for metric in scope_metrics.metrics:
            data = metric.data[0]
            points = []
            for point in data.data_points:
                entry = {"attributes": _attrs(point.attributes)}
                if hasattr(point, "count"):
                    entry["count"] = point.count
                    entry["sum"] = point.sum
                else:
                    entry["value"] = _number(point.value)
                points.append(entry)
            rows.append(
                {
                    "signal": "metric",
                    "resource": resource,
                    "name": metric.name,
                    "unit": metric.unit,
                    "description": metric.description,
                    "type": type(data).__name__,
                    "points": points,
                }
            )
    _write(rows)
