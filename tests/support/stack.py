"""The shipped deployment files (collector-config/, docker-compose.yml) as data for the tests: the
PromQL of every dashboard panel and rule, and the metric names each expression reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "collector-config"
DASHBOARDS = CONFIG / "grafana" / "dashboards"
RULES = CONFIG / "alert-rules.yml"
RULE_TESTS = CONFIG / "alert-rules.test.yml"
PROMETHEUS_YML = CONFIG / "prometheus.yml"
PROMETHEUS_PUSH_YML = CONFIG / "prometheus.push.yml"
ALERTMANAGER_YML = CONFIG / "alertmanager.yml"
COLLECTOR_YAML = CONFIG / "otel-collector.yaml"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_PUSH = ROOT / "docker-compose.push.yml"
COMPOSE_PROMETHEUS3 = ROOT / "docker-compose.prometheus3.yml"
PROMETHEUS_OTLP_YML = CONFIG / "prometheus.otlp.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
SERVICE_JOB = "atoms-service"

# The seed's "Prometheus Queries", verbatim.
SEED_QUERIES = {
    "request rate": "rate(http_requests_total[5m])",
    "95th percentile latency": "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))",
    "error rate": "rate(errors_total[5m])",
    "tool execution rate": "rate(tool_executions_total[5m])",
    "health status": "health_check_status",
}


def stack_service_command(port: int, *uvicorn_options: str) -> list[str]:
    """The command line that serves examples/stack_service.py under uvicorn on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "stack_service:app",
        "--app-dir",
        str(ROOT / "examples"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        *uvicorn_options,
    ]


def start_stack_service(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Serve examples/stack_service.py under uvicorn on a free loopback port with ``env`` (this
    worktree first on the path); returns the process (stop it by PID) and its base URL."""
    port = free_port()
    env = {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    log_path = workdir / f"service-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        stack_service_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, timeout=30, process=process)
    except Exception:
        process.kill()
        process.wait(timeout=5)
        raise RuntimeError(log_path.read_text(errors="replace")) from None
    return process, f"http://127.0.0.1:{port}"


def environment_without_otlp() -> dict[str, str]:
    """This process's environment without any OTEL_EXPORTER_OTLP_* or OTEL_SDK_DISABLED."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_EXPORTER_OTLP") and k != "OTEL_SDK_DISABLED"
    }


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_service_environment(*files: Path, service: str = "atoms-service") -> dict[str, str]:
    """The environment compose gives ``service`` with ``files`` layered in order (later files win)."""
    environment: dict[str, str] = {}
    for path in files:
        environment.update(load_yaml(path)["services"].get(service, {}).get("environment", {}))
    return {key: str(value) for key, value in environment.items()}


def dashboards() -> dict[str, dict[str, Any]]:
    """Every shipped dashboard, by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


@dataclass(frozen=True)
class Query:
    """One PromQL expression shipped in a dashboard panel or a rule."""

    where: str
    expr: str

    def rendered(self, job: str = SERVICE_JOB, rate_interval: str = "5m", range_: str = "5m") -> str:
        """The expression as Grafana sends it, with its variables filled in: ``job``, All (``.*``) for
        instance, route and tool, windows of 5 minutes by default (so a test's burst of traffic stays
        in every window while the test queries)."""
        return (
            self.expr.replace("$__rate_interval", rate_interval)
            .replace("$__range", range_)
            .replace("$job", job)
            .replace("$instance", ".*")  # the multi-value variables' All
            .replace("$route", ".*")
            .replace("$tool", ".*")
        )


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p.get("type") != "row"]


def dashboard_queries() -> list[Query]:
    """The PromQL of every Prometheus panel target of every dashboard."""
    queries = []
    for name, board in dashboards().items():
        for panel in panels(board):
            if panel["datasource"]["type"] != "prometheus":
                continue
            for target in panel["targets"]:
                queries.append(Query(f"{name} / {panel['title']} / {target['refId']}", target["expr"]))
    return queries


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def rule_queries() -> list[Query]:
    return [Query(f"alert-rules.yml / {r.get('alert') or r.get('record')}", r["expr"]) for r in rules()]


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels removed)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or suffix of a number (1e3)
        names.add(match.group())
    return names
