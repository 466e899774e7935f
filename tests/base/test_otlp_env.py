"""The OTEL_* contract as resolved: per-signal OTLP options, the SDK's own variables, and the env listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoms_otel.base.environment import all_variables, describe_environment
from atoms_otel.base.otlp import EXPORT_OPTIONS, SIGNALS
from atoms_otel.base.settings import ConfigurationError, resolve

BASE = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


def test_a_signal_variable_beats_the_general_one_and_an_argument_beats_both() -> None:
    env = {
        **BASE,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-general=g",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x-logs=l",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "4000",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1500",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
    }
    settings = resolve({}, env)
    traces, metrics, logs = (settings.otlp_export(s) for s in SIGNALS)
    assert (traces.protocol, metrics.protocol) == ("grpc", "http/protobuf")
    assert logs.headers == {"x-logs": "l"} and metrics.headers == {"x-general": "g"}
    assert (traces.timeout_s, metrics.timeout_s) == (4.0, 1.5)
    assert (traces.compression, logs.compression) == ("none", "gzip")
    assert traces.sources["protocol"] == "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    assert metrics.sources["headers"] == "OTEL_EXPORTER_OTLP_HEADERS"
    # A gRPC signal keeps the base endpoint; an HTTP one gets its /v1/<signal> path.
    assert settings.otlp_signal_endpoint("traces") == "http://collector:4318"
    assert settings.otlp_signal_endpoint("logs") == "http://collector:4318/v1/logs"

    argued = resolve({"otlp_headers": {"x-arg": "a"}, "otlp_protocol": "http/protobuf"}, env)
    assert all(argued.otlp_export(s).headers == {"x-arg": "a"} for s in SIGNALS)
    assert argued.otlp_export("traces").protocol == "http/protobuf"
    assert argued.otlp_export("logs").sources["headers"] == "argument"


def test_the_atoms_timeout_sits_between_the_signal_and_the_general_variable() -> None:
    env = {**BASE, "OTEL_EXPORTER_OTLP_TIMEOUT": "9000", "ATOMS_OTEL_EXPORT_TIMEOUT_S": "2"}
    env["OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"] = "700"
    settings = resolve({}, env)
    assert settings.otlp_export("traces").timeout_s == 2.0
    assert settings.otlp_export("logs").timeout_s == 0.7


def test_bad_values_fail_naming_the_variable_and_hide_secrets(tmp_path: Path) -> None:
    readable = tmp_path / "key.pem"
    readable.write_text("not really a key")
    env = {
        **BASE,
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "brotli",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "soon",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "authorization Bearer s3cr3t",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(tmp_path / "missing.pem"),
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": str(readable),
    }
    with pytest.raises(ConfigurationError) as failure:
        resolve({}, env)
    message = str(failure.value)
    for variable in (
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ):
        assert variable in message
    assert "s3cr3t" not in message and "No such file" in message
    with pytest.raises(ConfigurationError, match="mTLS for traces needs both"):
        resolve({}, {**BASE, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": str(readable)})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "OTEL_BSP_MAX_QUEUE_SIZE='lots': expected an integer"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "0", "OTEL_BLRP_SCHEDULE_DELAY='0': expected an integer >= 1"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096", "must not exceed OTEL_BSP_MAX_QUEUE_SIZE"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1", "expected an integer >= 0"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "many", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "5", "expected an integer >= 100"),
        ("OTEL_PROPAGATORS", "tracecontext,b3multi", "unknown propagator b3multi"),
    ],
)
def test_the_sdk_variables_are_checked_before_anything_is_built(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as failure:
        resolve({}, {variable: value})
    assert expected in str(failure.value)


def test_valid_sdk_variables_are_kept_and_empty_means_unset() -> None:
    env = {
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "",
        "OTEL_PROPAGATORS": "tracecontext,baggage",
    }
    settings = resolve({}, env)
    assert settings.sdk_environment["OTEL_BSP_MAX_QUEUE_SIZE"] == 100
    assert settings.sdk_environment["OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"] is None
    assert settings.sdk_environment["OTEL_PROPAGATORS"] == ("tracecontext", "baggage")


def test_env_lists_every_variable_with_value_and_source_and_masks_secrets() -> None:
    env = {**BASE, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=hunter2", "OTEL_BSP_MAX_QUEUE_SIZE": "64"}
    lines = describe_environment(env)
    listed = {line.split()[0] for line in lines}
    assert listed == set(all_variables())
    assert len(listed) >= 3 * len(EXPORT_OPTIONS)
    headers = next(line for line in lines if line.startswith("OTEL_EXPORTER_OTLP_TRACES_HEADERS "))
    assert "'***'" in headers and "hunter2" not in "\n".join(lines)
    assert headers.split()[-1] == "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
    queue = next(line for line in lines if line.startswith("OTEL_BSP_MAX_QUEUE_SIZE "))
    assert "64" in queue and queue.split()[-1] == "OTEL_BSP_MAX_QUEUE_SIZE"
    failed = describe_environment({"OTEL_BSP_MAX_QUEUE_SIZE": "x"})
    assert failed[0].startswith("invalid atoms_otel configuration")
