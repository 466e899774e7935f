"""collector-config/alertmanager.yml with the real Debian Alertmanager (and amtool).

End to end: the example service sends its own error webhooks to a receiver that refuses them, a
real Prometheus with the shipped rules sees the rejected deliveries and fires
WebhookDeliveryFailures, and the shipped Alertmanager routes it to a loopback webhook receiver.
Grouping by service and the ComponentDegraded inhibition are checked on the same Alertmanager with
alerts posted to its API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.alertmanager import Alertmanager, run_amtool, start_alertmanager
from tests.support.net import free_port, stop_process
from tests.support.prometheus import Prometheus, start_prometheus
from tests.support.receiver import Receiver, Reply
from tests.support.stack import (
    ALERTMANAGER_YML,
    PROMETHEUS_YML,
    RULES,
    SERVICE_JOB,
    environment_without_otlp,
    load_yaml,
    start_stack_service,
)

pytestmark = pytest.mark.real


def _alertmanager_config(receiver_url: str) -> dict[str, Any]:
    """The shipped alertmanager.yml, its webhook pointed at ``receiver_url`` and its waits cut to 1 s."""
    config = load_yaml(ALERTMANAGER_YML)
    config["route"].update({"group_wait": "1s", "group_interval": "1s"})
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = receiver_url
    return config


@dataclass
class Paging:
    alertmanager: Alertmanager
    pager: Receiver


@pytest.fixture
def paging(tmp_path: Path) -> Iterator[Paging]:
    pager = Receiver()
    alertmanager = None
    try:
        alertmanager = start_alertmanager(tmp_path, _alertmanager_config(pager.url))
        yield Paging(alertmanager, pager)
    finally:
        if alertmanager is not None:
            alertmanager.stop()
        pager.stop()


def _notifications(pager: Receiver) -> list[dict[str, Any]]:
    return [request.json() for request in pager.requests]


def _wait(predicate: Any, *, timeout: float, what: str, log: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not true after {timeout}s\n{log}")
        time.sleep(0.25)
    return result


def _logs(prometheus: Prometheus) -> str:
    return prometheus.log_file.read_text(errors="replace")[-2000:]


def test_amtool_accepts_the_shipped_config() -> None:
    """amtool check-config passes on collector-config/alertmanager.yml."""
    result = run_amtool("check-config", str(ALERTMANAGER_YML))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_routes_every_severity_to_the_on_call_receiver() -> None:
    """amtool config routes test: critical and warning alerts of a service both reach on-call."""
    for severity in ("critical", "warning"):
        result = run_amtool(
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_YML}",
            "alertname=HighErrorRate",
            "job=atoms-mcp",
            f"severity={severity}",
        )
        assert result.returncode == 0 and result.stdout.strip() == "on-call", result.stdout + result.stderr


def _alert(name: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": name},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }


def test_alerts_are_grouped_by_service(paging: Paging) -> None:
    """Two alerts of one service arrive in one notification; another service's in its own."""
    paging.alertmanager.post_alerts(
        [
            _alert("HighErrorRate", job="atoms-mcp", severity="critical"),
            _alert("SlowRequests", job="atoms-mcp", severity="critical"),
            _alert("HighErrorRate", job="billing", severity="critical"),
        ]
    )
    notes = _wait(
        lambda: len(_notifications(paging.pager)) >= 2 and _notifications(paging.pager),
        timeout=15,
        what="two notifications",
        log=paging.alertmanager.log(),
    )
    by_job = {note["groupLabels"]["job"]: note for note in notes}
    assert {note["groupLabels"]["job"] for note in notes} == {"atoms-mcp", "billing"}
    assert sorted(a["labels"]["alertname"] for a in by_job["atoms-mcp"]["alerts"]) == [
        "HighErrorRate",
        "SlowRequests",
    ]
    assert [a["labels"]["alertname"] for a in by_job["billing"]["alerts"]] == ["HighErrorRate"]


def test_service_unhealthy_inhibits_component_degraded(paging: Paging) -> None:
    """With ServiceUnhealthy firing for a component, its ComponentDegraded is inhibited (not sent);
    ComponentDegraded of another component still is."""
    unhealthy = _alert("ServiceUnhealthy", job="atoms-mcp", component="database", severity="critical")
    paging.alertmanager.post_alerts([unhealthy])
    _wait(lambda: _notifications(paging.pager), timeout=15, what="ServiceUnhealthy notification")
    paging.alertmanager.post_alerts(
        [
            unhealthy,
            _alert("ComponentDegraded", job="atoms-mcp", component="database", severity="warning"),
            _alert("ComponentDegraded", job="atoms-mcp", component="cache", severity="warning"),
        ]
    )

    def states() -> dict[str, dict[str, Any]]:
        return {
            f"{a['labels']['alertname']}/{a['labels']['component']}": a["status"]
            for a in paging.alertmanager.alerts()
        }

    _wait(
        lambda: states().get("ComponentDegraded/database", {}).get("inhibitedBy"),
        timeout=10,
        what="ComponentDegraded/database inhibited",
    )

    def sent() -> set[str]:
        return {
            f"{a['labels']['alertname']}/{a['labels']['component']}"
            for note in _notifications(paging.pager)
            for a in note["alerts"]
        }

    _wait(lambda: "ComponentDegraded/cache" in sent(), timeout=15, what="ComponentDegraded/cache sent")
    assert "ComponentDegraded/database" not in sent()
    assert states()["ComponentDegraded/cache"]["state"] == "active"


def test_a_rule_firing_in_prometheus_reaches_the_pager_through_alertmanager(
    tmp_path: Path, paging: Paging
) -> None:
    """The service's rejected webhooks fire WebhookDeliveryFailures, and its failing trace exports
    the new AtomsOtelInternalErrors, in a real Prometheus (shipped rules and alerting section); the
    real Alertmanager delivers both, with their runbook and dashboard links, to the loopback pager."""
    refusing = Receiver()
    refusing.default = Reply(status=400)
    service = prometheus = None
    try:
        env = {
            **environment_without_otlp(),
            "ATOMS_OTEL_WEBHOOK_URL": refusing.url,
            "ATOMS_OTEL_LOG_LEVEL": "WARNING",
            # Traces to a port nobody listens on: contained export failures, counted in
            # atoms_otel_internal_errors_total, fire AtomsOtelInternalErrors.
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{free_port()}/v1/traces",
            "ATOMS_OTEL_EXPORT_TIMEOUT_S": "1",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        service, url = start_stack_service(tmp_path, env)
        config = load_yaml(PROMETHEUS_YML)
        config["global"].update(
            {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        )
        config["rule_files"] = [str(RULES)]
        config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [paging.alertmanager.address]}
        ]
        job = next(j for j in config["scrape_configs"] if j["job_name"] == SERVICE_JOB)
        job["static_configs"] = [{"targets": [url.removeprefix("http://")]}]
        config["scrape_configs"] = [job]
        prometheus = start_prometheus(tmp_path, config, extra_args=("--rules.alert.resend-delay=1s",))
        prometheus.wait_until_scraped(SERVICE_JOB)
        for _ in range(3):
            httpx.get(f"{url}/boom", timeout=10)  # an unhandled error: an error webhook, refused
        refusing.wait_for(1, timeout=15)

        def delivered(name: str) -> list[dict[str, Any]]:
            return [
                alert
                for note in _notifications(paging.pager)
                for alert in note["alerts"]
                if alert["labels"]["alertname"] == name
            ]

        alerts = _wait(
            lambda: delivered("WebhookDeliveryFailures"),
            timeout=45,
            what="WebhookDeliveryFailures at the pager",
            log=_logs(prometheus),
        )
        internal = _wait(
            lambda: delivered("AtomsOtelInternalErrors"),
            timeout=45,
            what="AtomsOtelInternalErrors at the pager",
            log=_logs(prometheus),
        )
    finally:
        if prometheus is not None:
            prometheus.stop()
        if service is not None:
            stop_process(service, timeout=10)
        refusing.stop()
    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["labels"]["job"] == SERVICE_JOB and alert["labels"]["outcome"] == "rejected"
    assert alert["annotations"]["runbook_url"].endswith("/docs/runbooks.md#webhookdeliveryfailures")
    assert alert["annotations"]["dashboard_url"].endswith(f"?var-job={SERVICE_JOB}")
    note = next(n for n in _notifications(paging.pager) if alert in n["alerts"])
    assert note["groupLabels"] == {"job": SERVICE_JOB} and note["receiver"] == "on-call"
    assert internal[0]["labels"]["component"] == "traces export"
    assert internal[0]["annotations"]["runbook_url"].endswith("#atomsotelinternalerrors")
