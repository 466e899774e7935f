"""The Prometheus config and alert rules pass promtool, and every shipped PromQL expression is valid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prometheus import run_promtool
from tests.support.stack import (
    PROMETHEUS_PUSH_YML,
    PROMETHEUS_YML,
    RULE_TESTS,
    RULES,
    RUNBOOKS,
    Query,
    dashboard_queries,
    dashboards,
    load_yaml,
    rule_queries,
    rules,
)

pytestmark = pytest.mark.real

REQUIRED_ALERTS = {
    "HighErrorRate",
    "ServiceUnhealthy",
    "SlowRequests",
    "HighToolFailureRate",
    "WebhookDeliveryFailures",
    "MCPToolErrorRatio",
    "AtomsOtelInternalErrors",
    "ServiceAbsent",
    "CollectorExportFailures",
    "CollectorQueueNearlyFull",
}
RUNBOOK_PARTS = ("**Symptom.**", "**First query.**", "**Likely causes.**", "**Fix.**")


def _passes(*args: str) -> None:
    result = run_promtool(*args)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("path", [PROMETHEUS_YML, PROMETHEUS_PUSH_YML], ids=lambda p: p.name)
def test_promtool_accepts_the_prometheus_configs(tmp_path: Path, path: Path) -> None:
    """promtool check config passes on the scrape-mode and push-mode configs (rule_files pointed at
    the repo copy instead of the container path)."""
    config = load_yaml(path)
    assert config["rule_files"] == ["/etc/prometheus/alert-rules.yml"]
    config["rule_files"] = [str(RULES)]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    _passes("check", "config", str(checked))


def test_promtool_accepts_the_alert_rules() -> None:
    """promtool check rules passes on alert-rules.yml."""
    _passes("check", "rules", str(RULES))


def test_the_alert_rule_unit_tests_pass() -> None:
    """promtool test rules runs alert-rules.test.yml and every expectation holds."""
    _passes("test", "rules", str(RULE_TESTS))


def test_the_rule_unit_tests_cover_every_alert() -> None:
    """Each shipped alert is expected to fire in at least one promtool unit test."""
    tests = load_yaml(RULE_TESTS)["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules()} <= firing


def test_the_seed_alerts_and_the_operational_alerts_are_shipped() -> None:
    """The seed's alerts, tool and MCP errors, webhook failures, internal errors, absent services and
    the Collector's export failures and queue are all alerted on."""
    assert {rule["alert"] for rule in rules()} >= REQUIRED_ALERTS


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in, passes promtool as a recording rule."""
    queries = dashboard_queries()
    recording = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q.rendered()} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(recording))
    _passes("check", "rules", str(path))
    assert len(queries) >= 30


_COUNTER_FUNCTION = re.compile(r"\b(?:rate|increase)\(")
_SUMMED_COUNTER = re.compile(r"\bsum(?:\s+by\s*\([^)]*\))?\s*\(\s*(?:rate|increase)\(")


@pytest.mark.parametrize("query", dashboard_queries() + rule_queries(), ids=lambda q: q.where)
def test_every_rate_is_summed_across_processes(query: Query) -> None:
    """Each rate()/increase() sits directly inside sum or sum by, so workers and hosts add up."""
    assert len(_COUNTER_FUNCTION.findall(query.expr)) == len(_SUMMED_COUNTER.findall(query.expr))


def _runbook_sections() -> dict[str, str]:
    """docs/runbooks.md's level-2 sections, by the anchor GitHub gives their heading."""
    sections = re.split(r"^## ", RUNBOOKS.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return {s.split("\n", 1)[0].strip().lower(): s for s in sections}


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_alert_says_what_fired_and_where_to_look(rule: dict[str, Any]) -> None:
    """Summary, a description quoting the value, a runbook section with symptom, first query,
    likely causes and fix, and a link to a shipped dashboard."""
    annotations = rule["annotations"]
    assert annotations["summary"] and "$value" in annotations["description"]
    base, _, anchor = annotations["runbook_url"].partition("#")
    assert base == "https://atoms-otel.example.com/docs/runbooks.md"
    section = _runbook_sections()[anchor]
    assert section.split("\n", 1)[0].strip() == rule["alert"]
    assert all(part in section for part in RUNBOOK_PARTS), rule["alert"]
    assert "```promql" in section
    uid = re.fullmatch(r"http://localhost:3000/d/([a-z-]+)(\?.*)?", annotations["dashboard_url"])
    assert uid and uid.group(1) in {board["uid"] for board in dashboards().values()}


def test_every_runbook_section_belongs_to_a_shipped_alert() -> None:
    """No runbook for an alert that no longer exists."""
    assert set(_runbook_sections()) == {rule["alert"].lower() for rule in rules()}


def test_high_error_rate_ignores_probes_and_metrics_scrapes() -> None:
    """Every http_requests_total selector in HighErrorRate excludes /metrics and /health*."""
    expr = next(r["expr"] for r in rules() if r["alert"] == "HighErrorRate")
    selectors = re.findall(r"http_requests_total(\{[^}]*\})?", expr)
    assert len(selectors) == 3
    assert all('path!~"/metrics|/health.*"' in s for s in selectors)


def test_every_dashboard_annotation_is_valid_promql(tmp_path: Path) -> None:
    """The deployment annotations' PromQL passes promtool as recording rules."""
    exprs = [
        annotation["expr"].replace("$job", "atoms-service")
        for board in dashboards().values()
        for annotation in board["annotations"]["list"]
        if annotation.get("expr")
    ]
    assert len(exprs) == len(dashboards())
    rules_file = tmp_path / "annotations.yml"
    recording = [{"record": f"dashboard:annotation_{i}", "expr": e} for i, e in enumerate(exprs)]
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "annotations", "rules": recording}]}))
    _passes("check", "rules", str(rules_file))
