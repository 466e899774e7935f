"""ServiceAbsent on a real Prometheus: a service that stops reporting starts the alert.

The example service is scraped with the shipped rules; when it stops, its target_info goes stale
and ServiceAbsent goes pending for its job (it fires after its ``for: 1m``, which the promtool
unit test covers for pushed series expiring from the Collector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.net import stop_process
from tests.support.prometheus import start_prometheus
from tests.support.stack import (
    PROMETHEUS_YML,
    RULES,
    SERVICE_JOB,
    environment_without_otlp,
    load_yaml,
    start_stack_service,
)

pytestmark = pytest.mark.real


def test_a_service_that_stops_reporting_puts_service_absent_in_pending(tmp_path: Path) -> None:
    """Reporting: no ServiceAbsent. Stopped: ServiceAbsent pending for its job, value 1 process."""
    service, url = start_stack_service(tmp_path, environment_without_otlp())
    prometheus = None
    try:
        config = load_yaml(PROMETHEUS_YML)
        config["global"].update(
            {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        )
        config["rule_files"] = [str(RULES)]
        config.pop("alerting")
        job = next(j for j in config["scrape_configs"] if j["job_name"] == SERVICE_JOB)
        job["static_configs"] = [{"targets": [url.removeprefix("http://")]}]
        config["scrape_configs"] = [job]
        prometheus = start_prometheus(tmp_path, config)
        prometheus.wait_until_scraped(SERVICE_JOB)
        prometheus.wait_for(
            lambda: prometheus.query(f'target_info{{job="{SERVICE_JOB}"}}'), timeout=10, what="target_info"
        )

        def absent() -> list[dict[str, Any]]:
            alerts = prometheus.api("alerts")["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "ServiceAbsent"]

        assert absent() == []
        stop_process(service, timeout=10)
        alerts = prometheus.wait_for(absent, timeout=20, what="ServiceAbsent pending")
        assert alerts[0]["labels"]["job"] == SERVICE_JOB
        assert alerts[0]["state"] == "pending" and float(alerts[0]["value"]) == 1
    finally:
        if prometheus is not None:
            prometheus.stop()
        stop_process(service, timeout=10)
