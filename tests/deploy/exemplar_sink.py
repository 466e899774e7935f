"""A rotel collector processor for the exemplar test: appends each received span's trace id, and
each histogram data point's exemplars (trace id, span id, value), to $ATOMS_EXEMPLAR_FILE as JSON
lines. Loaded by rotel-agent's embedded Python by absolute path (tests/deploy/test_exemplars.py)."""

import json
import os

_OUT = os.environ["ATOMS_EXEMPLAR_FILE"]


def _write(rows):
    if rows:
        with open(_OUT, "a", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)


def _scalar(value):
    """rotel wraps numbers (ExemplarValue_AsDouble, ...): unwrap until a plain number."""
    for _ in range(3):
        if isinstance(value, int | float):
            return float(value)
        value = value[0] if hasattr(value, "__getitem__") else getattr(value, "value", value)
    return float(value)


def _attributes(attributes):
    pairs = {}
    for item in attributes:
        inner = getattr(item.value, "value", item.value)
        pairs[item.key] = (
            getattr(inner, "value", inner) if not isinstance(inner, str | int | float) else inner
        )
    return pairs


def process_spans(resource_spans):
    rows = []
    for scope_spans in resource_spans.scope_spans:
        for span in scope_spans.spans:
            rows.append({"signal": "span", "name": span.name, "trace_id": bytes(span.trace_id).hex()})
    _write(rows)


def process_logs(resource_logs):
    pass


def process_metrics(resource_metrics):
    rows = []
    for scope_metrics in resource_metrics.scope_metrics:
        for metric in scope_metrics.metrics:
            data = metric.data[0]
            if type(data).__name__ != "Histogram":
                continue
            for point in data.data_points:
                exemplars = [
                    {
                        "trace_id": bytes(e.trace_id).hex(),
                        "span_id": bytes(e.span_id).hex(),
                        "value": _scalar(e.value),
                    }
                    for e in (point.exemplars or [])
                ]
                if exemplars:
                    rows.append(
                        {
                            "signal": "exemplars",
                            "metric": metric.name,
                            "attributes": _attributes(point.attributes),
                            "exemplars": exemplars,
                        }
                    )
    _write(rows)
