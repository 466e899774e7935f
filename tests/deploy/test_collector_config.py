"""The OpenTelemetry Collector config, checked structurally (no Collector binary runs here)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stack import COLLECTOR_YAML, PROMETHEUS_YML, load_yaml

KINDS = ("receivers", "processors", "exporters")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load_yaml(COLLECTOR_YAML)  # type: ignore[no-any-return]


def _defined(config: dict[str, Any], kind: str) -> set[str]:
    """Components a pipeline may name as ``kind``: connectors are both exporters and receivers."""
    defined = set(config.get(kind) or {})
    if kind in ("receivers", "exporters"):
        defined |= set(config.get("connectors") or {})
    return defined


def test_every_pipeline_component_is_defined(config: dict[str, Any]) -> None:
    """Each receiver, processor, exporter and connector a pipeline names has a definition."""
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in KINDS:
            for component in pipeline.get(kind, []):
                assert component in _defined(config, kind), f"pipeline {name}: {kind} {component} undefined"
        assert pipeline["receivers"] and pipeline["exporters"], f"pipeline {name} is missing ends"


def test_every_defined_component_is_used(config: dict[str, Any]) -> None:
    """No receiver, processor, exporter, connector or extension is defined and then left out."""
    pipelines = config["service"]["pipelines"].values()
    for kind in KINDS:
        used = {component for pipeline in pipelines for component in pipeline.get(kind, [])}
        assert _defined(config, kind) == used, kind
    assert set(config["extensions"]) == set(config["service"]["extensions"])


def test_spanmetrics_and_servicegraph_turn_traces_into_metrics(config: dict[str, Any]) -> None:
    """Both connectors read the traces pipeline and feed the metrics pipeline (to Prometheus), with
    the names Grafana's Tempo datasource queries and exemplars on."""
    pipelines = config["service"]["pipelines"]
    for connector in ("spanmetrics", "servicegraph"):
        assert connector in config["connectors"]
        assert connector in pipelines["traces"]["exporters"]
        assert connector in pipelines["metrics"]["receivers"]
    spanmetrics = config["connectors"]["spanmetrics"]
    assert spanmetrics["namespace"] == "traces.spanmetrics"
    assert spanmetrics["exemplars"]["enabled"] is True
    assert {"name": "http.route"} in spanmetrics["dimensions"]


def test_traces_metrics_and_logs_each_have_a_pipeline_to_their_backend(config: dict[str, Any]) -> None:
    """Traces go to Tempo by OTLP, metrics to the Prometheus exporter, logs to Loki's OTLP endpoint."""
    pipelines = config["service"]["pipelines"]
    exporters = config["exporters"]
    trace_exporters = [e for e in pipelines["traces"]["exporters"] if e not in config["connectors"]]
    assert [exporters[e]["endpoint"] for e in trace_exporters] == ["tempo:4317"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert [exporters[e]["endpoint"] for e in pipelines["logs"]["exporters"]] == ["http://loki:3100/otlp"]


def test_memory_limiter_comes_first_and_batch_last_in_every_pipeline(config: dict[str, Any]) -> None:
    """memory_limiter refuses data before anything else works on it; batch runs just before export."""
    for name, pipeline in config["service"]["pipelines"].items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter" and processors[-1] == "batch", name


def test_otlp_is_received_over_grpc_and_http_on_every_interface(config: dict[str, Any]) -> None:
    """OTLP listens on 4317 (gRPC) and 4318 (HTTP) on 0.0.0.0, reachable from other containers."""
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def test_resource_processor_never_overwrites_what_services_set(config: dict[str, Any]) -> None:
    """The resource processor only inserts missing attributes (service.instance.id stays per process)."""
    actions = config["processors"]["resource"]["attributes"]
    assert actions and all(a["action"] == "insert" for a in actions)
    assert not any(a["key"].startswith("service.") for a in actions)


def test_prometheus_scrapes_the_collectors_metric_ports(config: dict[str, Any]) -> None:
    """prometheus.yml targets the exporter's port (with honor_labels) and the Collector's own telemetry."""
    exporter_port = config["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    readers = config["service"]["telemetry"]["metrics"]["readers"]
    internal_port = str(readers[0]["pull"]["exporter"]["prometheus"]["port"])
    jobs = {job["job_name"]: job for job in load_yaml(PROMETHEUS_YML)["scrape_configs"]}
    assert jobs["otel-collector"]["static_configs"][0]["targets"] == [f"otel-collector:{exporter_port}"]
    assert jobs["otel-collector"]["honor_labels"] is True
    assert jobs["otel-collector-internal"]["static_configs"][0]["targets"] == [
        f"otel-collector:{internal_port}"
    ]


def test_the_health_check_extension_is_enabled(config: dict[str, Any]) -> None:
    """health_check answers on 13133 for container and Kubernetes probes."""
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    assert "health_check" in config["service"]["extensions"]


def test_the_prometheus_exporter_serves_openmetrics_so_exemplars_survive(config: dict[str, Any]) -> None:
    """enable_open_metrics: the exemplars the SDK samples reach Prometheus (test_exemplars.py)."""
    assert config["exporters"]["prometheus"]["enable_open_metrics"] is True
