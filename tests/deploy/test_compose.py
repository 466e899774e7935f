"""docker-compose.yml, checked structurally (no Docker engine here): services, files, ports, names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import (
    ALERTMANAGER_YML,
    COLLECTOR_YAML,
    COMPOSE,
    COMPOSE_PROMETHEUS3,
    COMPOSE_PUSH,
    CONFIG,
    PROMETHEUS_OTLP_YML,
    PROMETHEUS_PUSH_YML,
    PROMETHEUS_YML,
    ROOT,
    load_yaml,
)

STACK = {
    "atoms-service",
    "otel-collector",
    "prometheus",
    "alertmanager",
    "alert-receiver",
    "grafana",
    "tempo",
    "loki",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")  # type: ignore[no-any-return]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts.append((source, target))
    return mounts


def test_compose_brings_up_the_whole_stack(compose: dict[str, Any]) -> None:
    """The service, the Collector, Prometheus, Alertmanager (and a receiver), Grafana, Tempo and Loki."""
    assert set(compose["services"]) == STACK


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    """Each bind-mounted path exists in the repository; named volumes are declared."""
    for name, service in compose["services"].items():
        for source, _ in _mounts(service):
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"


def test_services_are_given_the_config_files_they_are_told_to_read(compose: dict[str, Any]) -> None:
    """Every --config.file / -config.file / --config path in a command is a mounted file."""
    for name, service in compose["services"].items():
        command = service.get("command", [])
        targets = {target for _, target in _mounts(service)}
        for arg in command:
            match = re.match(r"-{1,2}config(?:\.file)?=(.+)", arg)
            if match:
                assert match.group(1) in targets, f"{name} reads {match.group(1)}, which is not mounted"


def test_prometheus_gets_the_rule_file_its_config_names(compose: dict[str, Any]) -> None:
    """prometheus.yml's rule_files are mounted from collector-config/alert-rules.yml."""
    mounts = dict((t, s) for s, t in _mounts(compose["services"]["prometheus"]))
    for rule_file in load_yaml(PROMETHEUS_YML)["rule_files"]:
        assert mounts[rule_file] == "./collector-config/alert-rules.yml"


def test_grafana_loads_the_provisioning_and_dashboards(compose: dict[str, Any]) -> None:
    """Grafana mounts datasources and dashboard providers, and the dashboards where the provider looks."""
    mounts = {t: s for s, t in _mounts(compose["services"]["grafana"])}
    assert (
        mounts["/etc/grafana/provisioning/datasources"]
        == "./collector-config/grafana/provisioning/datasources"
    )
    assert (
        mounts["/etc/grafana/provisioning/dashboards"] == "./collector-config/grafana/provisioning/dashboards"
    )
    provider = load_yaml(CONFIG / "grafana/provisioning/dashboards/dashboards.yml")["providers"][0]
    assert mounts[provider["options"]["path"]] == "./collector-config/grafana/dashboards"
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / mounts[str(Path(home).parent)] / Path(home).name).exists()


def test_published_ports_are_the_ones_the_services_listen_on(compose: dict[str, Any]) -> None:
    """Host ports map to the container ports each config listens on."""
    collector = load_yaml(COLLECTOR_YAML)
    listening = {
        "atoms-service": {"8000"},
        "otel-collector": {
            collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1],
            collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1],
            collector["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1],
        },
        "prometheus": {"9090"},
        "alertmanager": {"9093"},
        "grafana": {"3000"},
    }
    for name, ports in listening.items():
        published = {
            str(p).split("#")[0].strip().rsplit(":", 1)[1] for p in compose["services"][name]["ports"]
        }
        assert published == ports, name


def test_every_host_named_in_the_configs_is_a_compose_service(compose: dict[str, Any]) -> None:
    """Hostnames in the Collector, Prometheus and Grafana configs resolve to compose services."""
    texts = [
        COLLECTOR_YAML.read_text(),
        PROMETHEUS_YML.read_text(),
        PROMETHEUS_PUSH_YML.read_text(),
        PROMETHEUS_OTLP_YML.read_text(),
        ALERTMANAGER_YML.read_text(),
        (CONFIG / "grafana/provisioning/datasources/datasources.yml").read_text(),
        str(compose["services"]["atoms-service"]["environment"]),
    ]
    hosts = {
        host for text in texts for host in re.findall(r"(?:https?://|\[\"|\b)([a-z][a-z-]+):\d{2,5}", text)
    }
    hosts -= {"localhost"}
    assert hosts and hosts <= set(compose["services"]), hosts - set(compose["services"])


def test_the_service_pushes_traces_and_logs_to_the_collector(compose: dict[str, Any]) -> None:
    """The example service sends traces and logs to the Collector's OTLP/HTTP receiver, metrics
    only to /metrics (scraped: test_one_metrics_path.py)."""
    environment = compose["services"]["atoms-service"]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert environment["OTEL_METRICS_EXPORTER"] == "prometheus"


def test_the_push_overlay_mounts_files_that_exist_and_services_of_the_stack(compose: dict[str, Any]) -> None:
    """docker-compose.push.yml only changes services the main file defines, with files that exist."""
    overlay = load_yaml(COMPOSE_PUSH)
    assert set(overlay["services"]) <= set(compose["services"])
    for service in overlay["services"].values():
        for source, _ in _mounts(service):
            assert (ROOT / source).exists(), source


def test_the_service_image_is_built_from_files_that_exist(compose: dict[str, Any]) -> None:
    """The Dockerfile exists, copies paths that exist, and runs a module that defines ``app``."""
    build = compose["services"]["atoms-service"]["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    text = dockerfile.read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / build["context"] / source).exists(), source
    module = re.search(r'"([a-z_]+):app", "--app-dir", "([a-z_/]+)"', text)
    assert module is not None
    source = (ROOT / module.group(2) / f"{module.group(1)}.py").read_text()
    assert re.search(r"^app = FastAPI\(", source, re.MULTILINE)


@pytest.mark.parametrize("path", sorted(ROOT.glob("docker-compose*.yml")), ids=lambda p: p.name)
def test_every_image_is_pinned_to_a_version(path: Path) -> None:
    """No floating tags (``latest``, ``main``, none at all) in any compose file: the stack that was
    checked is the stack that runs. Every image names an explicit release, major.minor.patch."""
    images = {name: s["image"] for name, s in load_yaml(path)["services"].items() if "image" in s}
    for name, reference in images.items():
        image, _, tag = reference.rpartition(":")
        assert "@" not in reference or re.search(r"@sha256:[0-9a-f]{64}$", reference), name
        assert image and "/" not in tag and re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9]+)?", tag), (name, tag)
    assert path != COMPOSE or {"prometheus", "otel-collector", "grafana", "tempo", "loki"} <= images.keys()


def test_the_service_healthcheck_probes_liveness(compose: dict[str, Any]) -> None:
    """The container healthcheck asks /health/live, which the service serves (not /health: a
    dependency outage must not mark the container unhealthy)."""
    from fastapi.routing import APIRoute

    from atoms_otel import router

    probe = " ".join(compose["services"]["atoms-service"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health/live" in probe
    assert "/health/live" in {r.path for r in router.routes if isinstance(r, APIRoute)}


def test_the_prometheus3_overlay_receives_otlp_metrics_from_the_service(compose: dict[str, Any]) -> None:
    """docker-compose.prometheus3.yml runs Prometheus 3 with its OTLP receiver and exemplar storage,
    points the service's metrics at it, and mounts prometheus.otlp.yml, which scrapes no service."""
    overlay = load_yaml(COMPOSE_PROMETHEUS3)["services"]
    assert set(overlay) <= set(compose["services"])
    image, _, tag = overlay["prometheus"]["image"].rpartition(":")
    assert image == "prom/prometheus" and tag.startswith("v3.")
    assert {"--web.enable-otlp-receiver", "--enable-feature=exemplar-storage"} <= set(
        overlay["prometheus"]["command"]
    )
    assert overlay["prometheus"]["volumes"] == [
        "./collector-config/prometheus.otlp.yml:/etc/prometheus/prometheus.yml:ro"
    ]
    environment = overlay["atoms-service"]["environment"]
    assert (
        environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == "http://prometheus:9090/api/v1/otlp/v1/metrics"
    )
    assert environment["OTEL_METRICS_EXPORTER"] == "otlp"


def test_the_otlp_prometheus_config_promotes_few_attributes_and_keeps_the_names() -> None:
    """prometheus.otlp.yml: a few resource attributes promoted (never service.instance.id, which is
    already the instance), names translated as /metrics spells them, out-of-order samples accepted,
    and no job that scrapes the service (one path)."""
    config = load_yaml(PROMETHEUS_OTLP_YML)
    promoted = config["otlp"]["promote_resource_attributes"]
    assert 0 < len(promoted) <= 3 and "service.instance.id" not in promoted
    assert config["otlp"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert config["storage"]["tsdb"]["out_of_order_time_window"]
    assert "atoms-service" not in {job["job_name"] for job in config["scrape_configs"]}
    assert config["rule_files"] == load_yaml(ROOT / "collector-config/prometheus.yml")["rule_files"]
