"""Option groups: MetricsOptions chooses the pre-configured histograms' buckets, validated at configure()."""

from __future__ import annotations

import pytest

import atoms_otel
from atoms_otel import ConfigurationError, Histogram, MetricsOptions, get_telemetry
from atoms_otel.testing import CapturedTelemetry


def test_duration_buckets_of_the_preconfigured_histograms_are_configurable(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """MetricsOptions(http_/tool_/database_duration_buckets) reach /metrics as those bucket bounds."""
    capture_telemetry.reconfigure(
        metrics=MetricsOptions(
            http_duration_buckets=[0.1, 0.3, 1.5],
            tool_duration_buckets=(2, 20),
            database_duration_buckets=[0.002],
        )
    )
    atoms_otel.record_http_request("GET", "/a", 200, 0.2)
    atoms_otel.record_tool_execution("search", 5.0)
    atoms_otel.record_database_query("select", 0.001, table="users")
    text = capture_telemetry.prometheus_text()
    assert 'http_request_duration_seconds_bucket{le="0.3",method="GET",path="/a"} 1.0' in text
    assert 'http_request_duration_seconds_bucket{le="0.1",method="GET",path="/a"} 0.0' in text
    assert 'tool_execution_duration_seconds_bucket{le="20.0",status="success",tool="search"} 1.0' in text
    assert 'database_query_duration_seconds_bucket{le="0.002",operation="select",table="users"} 1.0' in text
    assert 'le="0.005",method="GET"' not in text  # the default buckets are gone for that histogram


@pytest.mark.parametrize("bad", [[1.0, 0.5], [], ["fast"], [0.1, 0.1]])
def test_bad_buckets_fail_configure_naming_the_option(bad: list[object]) -> None:
    """Unsorted, empty, non-numeric or repeated bounds: one ConfigurationError, nothing changed."""
    with pytest.raises(ConfigurationError, match=r"MetricsOptions\.http_duration_buckets="):
        atoms_otel.configure(metrics=MetricsOptions(http_duration_buckets=bad))  # type: ignore[arg-type]
    assert get_telemetry() is None


def test_a_histogram_named_in_seconds_gets_seconds_buckets(capture_telemetry: CapturedTelemetry) -> None:
    """Histogram("job_duration_seconds") without unit= still gets buckets in seconds, not the SDK's ms."""
    jobs = Histogram("job_duration_seconds", "Job duration", labels=("job",))
    jobs.observe(0.2, {"job": "sync"})
    text = capture_telemetry.prometheus_text()
    assert 'job_duration_seconds_bucket{job="sync",le="0.25"} 1.0' in text
    assert jobs.buckets is not None and jobs.buckets[0] == 0.005
