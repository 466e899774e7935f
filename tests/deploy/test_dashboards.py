"""The Grafana dashboards and datasources, checked structurally. Their PromQL is run against a real
Prometheus in test_live_prometheus.py and checked by promtool in test_rules.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stack import CONFIG, dashboards, load_yaml, metric_names, panels

DATASOURCES = CONFIG / "grafana/provisioning/datasources/datasources.yml"


def _datasource_uids() -> dict[str, str]:
    return {d["uid"]: d["type"] for d in load_yaml(DATASOURCES)["datasources"]}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_each_dashboard_is_well_formed(name: str) -> None:
    """A uid and title, unique panel ids, every panel placed on the 24-column grid, each target a refId."""
    board = dashboards()[name]
    assert board["uid"] and board["title"].startswith("atoms_otel / ")
    every = [*board["panels"], *(p for row in board["panels"] for p in row.get("panels", []))]
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24 and position["h"] > 0, panel["title"]
        assert panel["targets"] and all(t["refId"] for t in panel["targets"]), panel["title"]


def test_dashboard_uids_are_unique() -> None:
    """Grafana refuses to provision two dashboards with one uid."""
    uids = [board["uid"] for board in dashboards().values()]
    assert len(uids) == len(set(uids))


def test_every_panel_uses_a_provisioned_datasource() -> None:
    """Each panel and target names a datasource uid (and type) that provisioning creates."""
    provisioned = _datasource_uids()
    for board in dashboards().values():
        for panel in panels(board):
            for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert provisioned.get(source["uid"]) == source["type"], panel["title"]
        for variable in board["templating"]["list"]:
            assert provisioned[variable["datasource"]["uid"]] == variable["datasource"]["type"]


def test_every_prometheus_query_is_filtered_by_the_job_variable() -> None:
    """Each selector carries job="$job", so one job is shown and scraped and pushed series never add up."""
    for board in dashboards().values():
        for panel in panels(board):
            if panel["datasource"]["type"] == "prometheus":
                for target in panel["targets"]:
                    selectors = target["expr"].count("{")
                    assert target["expr"].count('job="$job"') == selectors, panel["title"]


def _queried(board: dict[str, Any]) -> dict[str, set[str]]:
    return {
        panel["title"]: {name for t in panel["targets"] for name in metric_names(t.get("expr", ""))}
        for panel in panels(board)
        if panel["datasource"]["type"] == "prometheus"
    }


def test_the_overview_shows_traffic_errors_latency_connections_and_health() -> None:
    """The overview has request rate, error ratio, p50/p95/p99, status codes, connections, health."""
    board = dashboards()["atoms-overview.json"]
    queried = _queried(board)
    assert "http_requests_total" in queried["Request rate"]
    assert "http_requests_total" in queried["Error ratio (5xx)"]
    assert "http_requests_total" in queried["Status codes"]
    assert "active_connections" in queried["Active connections"]
    assert "health_check_status" in queried["Health per component"]
    latency = next(p for p in panels(board) if p["title"] == "Latency p50 / p95 / p99")
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.50",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]


def test_the_tools_dashboard_shows_calls_errors_latency_per_tool_and_mcp() -> None:
    """Calls, errors and latency per tool, and the MCP operation-duration histogram."""
    queried = _queried(dashboards()["atoms-tools.json"])
    assert "tool_executions_total" in queried["Calls by tool"]
    assert "tool_executions_total" in queried["Errors by tool"]
    assert "tool_execution_duration_seconds_bucket" in queried["Latency by tool (p50, p95)"]
    assert "mcp_server_operation_duration_seconds_bucket" in queried["MCP tool-call p95 by tool"]


def test_the_dependencies_dashboard_shows_database_and_cache() -> None:
    """Database query rate and latency, cache hit ratio."""
    queried = _queried(dashboards()["atoms-dependencies.json"])
    assert "database_queries_total" in queried["Queries by operation and table"]
    assert "database_query_duration_seconds_bucket" in queried["Query latency p95 by operation"]
    assert "cache_operations_total" in queried["Cache hit ratio"]


def test_latency_panels_show_exemplars_that_open_the_trace_in_tempo() -> None:
    """Every time-series target over a histogram's buckets asks for exemplars, and the Prometheus
    datasource turns an exemplar's trace_id into a link to Tempo."""
    latency_targets = [
        target
        for board in dashboards().values()
        for panel in panels(board)
        if panel["type"] == "timeseries"
        for target in panel["targets"]
        if "_bucket" in target.get("expr", "")
    ]
    assert len(latency_targets) >= 8
    assert all(target.get("exemplar") is True for target in latency_targets)
    prometheus = next(d for d in load_yaml(DATASOURCES)["datasources"] if d["type"] == "prometheus")
    tempo = next(d for d in load_yaml(DATASOURCES)["datasources"] if d["type"] == "tempo")
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": tempo["uid"]}
    ]
