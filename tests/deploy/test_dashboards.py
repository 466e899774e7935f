"""The Grafana dashboards and datasources, checked structurally. Their PromQL is run against a real
Prometheus in test_live_prometheus.py and checked by promtool in test_rules.py."""

from __future__ import annotations

import re
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


DATASOURCE_VARIABLES = {"prometheus": "${datasource}", "loki": "${loki}", "tempo": "${tempo}"}
CURRENT_SCHEMA_VERSION = 40  # what Grafana 11.5 exports; newer Grafana migrates it on load


def _variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in board["templating"]["list"]}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_datasources_are_template_variables_never_uids(name: str) -> None:
    """Every panel, target, variable and annotation names its datasource through a datasource-type
    variable, so the dashboard imports into any Grafana whatever its datasources' uids."""
    board = dashboards()[name]
    variables = _variables(board)
    for kind, reference in DATASOURCE_VARIABLES.items():
        variable = variables[reference.strip("${}")]
        assert variable["type"] == "datasource" and variable["query"] == kind
    references = [
        source
        for panel in panels(board)
        for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
    ]
    references += [v["datasource"] for v in board["templating"]["list"] if "datasource" in v]
    references += [a["datasource"] for a in board["annotations"]["list"] if not a.get("builtIn")]
    assert references
    for source in references:
        assert source["uid"] == DATASOURCE_VARIABLES[source["type"]], source


def test_provisioned_datasources_still_define_the_uids_links_use() -> None:
    """The provisioned datasources keep fixed uids for their own cross-links (Tempo to Loki, Loki to
    Tempo, exemplars to Tempo); the dashboards never use them."""
    provisioned = _datasource_uids()
    assert set(provisioned.values()) == {"prometheus", "tempo", "loki"}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_job_and_instance_are_multi_select_with_all(name: str) -> None:
    """job and instance (and route, tool where they apply) are multi-value variables with All."""
    variables = _variables(dashboards()[name])
    expected = {"job", "instance"} | {"atoms-overview.json": {"route"}, "atoms-tools.json": {"tool"}}.get(
        name, set()
    )
    for variable_name in expected:
        variable = variables[variable_name]
        assert variable["multi"] is True and variable["includeAll"] is True, variable_name
        # job's All is the listed jobs (services with HTTP metrics), never ".*": in scrape mode the
        # Collector's trace-derived series carry job=<service.name> and would count twice.
        assert variable.get("allValue") == (None if variable_name == "job" else ".*"), variable_name
    assert variables["job"]["query"]["query"] == "label_values(http_requests_total, job)"


def test_every_prometheus_query_is_filtered_by_job_and_instance() -> None:
    """Each selector carries job=~"$job" and instance=~"$instance", so the chosen services and
    processes are shown; a multi-value variable needs the regex match."""
    for board in dashboards().values():
        for panel in panels(board):
            if panel["datasource"]["type"] == "prometheus":
                for target in panel["targets"]:
                    selectors = target["expr"].count("{")
                    assert target["expr"].count('job=~"$job",instance=~"$instance"') == selectors, panel[
                        "title"
                    ]


def test_route_and_tool_variables_filter_the_route_and_tool_panels() -> None:
    """Every HTTP selector on the overview filters path=~"$route"; every tool selector on the tools
    dashboard filters tool (or, for MCP tool calls, gen_ai_tool_name) by $tool."""
    for panel in panels(dashboards()["atoms-overview.json"]):
        for target in panel["targets"]:
            for selector in re.findall(r"http_[a-z_]+\{[^}]*\}", target.get("expr", "")):
                assert 'path=~"$route"' in selector, panel["title"]
    tools = [t["expr"] for p in panels(dashboards()["atoms-tools.json"]) for t in p["targets"]]
    for selector in re.findall(r"tool_execution[a-z_]+\{[^}]*\}", " ".join(tools)):
        assert 'tool=~"$tool"' in selector
    mcp_calls = re.findall(r'mcp_server[a-z_]+\{[^}]*mcp_method_name="tools/call"[^}]*\}', " ".join(tools))
    assert mcp_calls and all('gen_ai_tool_name=~"$tool"' in s for s in mcp_calls)


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_has_a_unit(name: str) -> None:
    """Every panel that shows numbers says what they are (s, reqps, percentunit, short, none...)."""
    for panel in panels(dashboards()[name]):
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_metric_panels_link_to_the_services_traces_and_logs(name: str) -> None:
    """Each Prometheus time series and stat panel links to Tempo and Loki through the datasource
    variables; the logs link filters on the trace_id structured-metadata field OTLP-fed Loki has."""
    for panel in panels(dashboards()[name]):
        if panel["datasource"]["type"] != "prometheus" or panel["type"] not in ("timeseries", "stat"):
            continue
        urls = [link["url"] for link in panel["links"]]
        assert any('"datasource":"${tempo}"' in u and "traceql" in u for u in urls), panel["title"]
        assert any('"datasource":"${loki}"' in u and "trace_id" in u for u in urls), panel["title"]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_deployments_are_annotated_from_target_info(name: str) -> None:
    """A new service.version in target_info marks a deployment on every dashboard."""
    annotation = next(a for a in dashboards()[name]["annotations"]["list"] if a["name"] == "Deployments")
    assert "target_info" in annotation["expr"] and "service_version" in annotation["expr"]
    assert annotation["enable"] is True


def test_every_dashboard_is_on_the_current_schema_version() -> None:
    """schemaVersion is the current one, so Grafana does not migrate (and rewrite) them on load."""
    assert {board["schemaVersion"] for board in dashboards().values()} == {CURRENT_SCHEMA_VERSION}


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


def test_a_span_links_to_its_log_lines_by_the_trace_id_field() -> None:
    """Tempo's traces-to-logs query filters Loki on the trace_id structured-metadata field."""
    tempo = next(d for d in load_yaml(DATASOURCES)["datasources"] if d["type"] == "tempo")
    links = tempo["jsonData"]["tracesToLogsV2"]
    assert links["customQuery"] is True
    assert '| trace_id = "$${__trace.traceId}"' in links["query"]
