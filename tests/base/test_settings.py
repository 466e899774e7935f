"""The settings table: precedence, parsing, and one clear error naming each bad setting."""

from __future__ import annotations

import base64
import inspect
import logging

import pytest

import atoms_otel
from atoms_otel.base.environment import env_vars
from atoms_otel.base.settings import ARGUMENTS, PARAMS, ConfigurationError, resolve


def test_defaults_without_arguments_or_environment() -> None:
    """Nothing set: no export, JSON logs at INFO, the documented defaults."""
    settings = resolve({}, {})
    assert settings.service_name == "unknown_service"
    assert settings.otlp_endpoint is None and not settings.exporting
    assert settings.log_level == logging.INFO and settings.log_format == "json"
    assert settings.slow_request_ms == 1000.0
    assert settings.excluded_urls == ("/metrics", "/health*", "/observability", "/api/observability*")
    assert settings.otlp_protocol == "http/protobuf"
    assert settings.disabled is False and settings.serverless is False


def test_argument_beats_environment_beats_default() -> None:
    """An explicit argument wins; an environment variable beats the default; sources are recorded."""
    env = {"OTEL_SERVICE_NAME": "from-env", "ATOMS_OTEL_LOG_LEVEL": "debug"}
    settings = resolve({"service_name": "from-arg"}, env)
    assert settings.service_name == "from-arg" and settings.sources["service_name"] == "argument"
    assert settings.log_level == logging.DEBUG and settings.sources["log_level"] == "ATOMS_OTEL_LOG_LEVEL"
    assert settings.sources["log_format"] == "default"


def test_none_argument_means_not_given() -> None:
    """``None`` falls through to the environment instead of overriding it."""
    settings = resolve({"service_name": None}, {"OTEL_SERVICE_NAME": "svc"})
    assert settings.service_name == "svc"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"ATOMS_OTEL_LOG_LEVEL": "LOUDEST"},
            ["ATOMS_OTEL_LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR, CRITICAL"],
        ),
        ({"ATOMS_OTEL_LOG_FORMAT": "xml"}, ["ATOMS_OTEL_LOG_FORMAT", "json, console"]),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
            ["OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf, grpc"],
        ),
        ({"ATOMS_OTEL_SLOW_REQUEST_MS": "fast"}, ["ATOMS_OTEL_SLOW_REQUEST_MS", "expected a number"]),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, ["OTEL_TRACES_SAMPLER", "traceidratio"]),
        ({"OTEL_TRACES_SAMPLER_ARG": "2"}, ["OTEL_TRACES_SAMPLER_ARG", "between 0 and 1"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "gRPC only"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "absolute"]),
        ({"OTEL_SDK_DISABLED": "maybe"}, ["OTEL_SDK_DISABLED", "true or false"]),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, ["OTEL_EXPORTER_OTLP_HEADERS", "key=value"]),
        ({"ATOMS_OTEL_EXCLUDED_URLS": "metrics"}, ["ATOMS_OTEL_EXCLUDED_URLS", "start with '/'"]),
    ],
)
def test_invalid_environment_value_names_the_variable_and_accepted_values(
    env: dict[str, str], names: list[str]
) -> None:
    """Each invalid value produces an error naming the variable and what would be accepted."""
    with pytest.raises(ConfigurationError) as caught:
        resolve({}, env)
    for name in names:
        assert name in str(caught.value)


def test_invalid_argument_names_the_argument() -> None:
    """Arguments are parsed like environment values and named as ``name=``."""
    with pytest.raises(ConfigurationError, match=r"log_level='LOUDEST'"):
        resolve({"log_level": "LOUDEST"}, {})


def test_all_problems_are_reported_together() -> None:
    """Several bad settings give one error listing each of them."""
    with pytest.raises(ConfigurationError) as caught:
        resolve(
            {},
            {"ATOMS_OTEL_LOG_LEVEL": "x", "ATOMS_OTEL_LOG_FORMAT": "y", "OTEL_METRIC_EXPORT_INTERVAL": "z"},
        )
    message = str(caught.value)
    assert message.count("\n  - ") == 3


def test_secret_values_are_not_echoed_in_errors() -> None:
    """A malformed headers value (which holds credentials) is shown as hidden."""
    with pytest.raises(ConfigurationError) as caught:
        resolve({}, {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization Bearer abc123"})
    assert "abc123" not in str(caught.value) and "<hidden>" in str(caught.value)


def test_unknown_argument_is_a_type_error() -> None:
    """A misspelt option is not silently ignored."""
    with pytest.raises(TypeError, match="servce_name"):
        resolve({"servce_name": "x"}, {})


def test_resource_attributes_are_parsed_and_percent_decoded() -> None:
    """OTEL_RESOURCE_ATTRIBUTES supplies service name, version and environment when not set otherwise."""
    env = {
        "OTEL_RESOURCE_ATTRIBUTES": (
            "service.name=svc,service.version=1.2.3,team=a%20b,deployment.environment.name=prod"
        )
    }
    settings = resolve({}, env)
    assert settings.service_name == "svc" and settings.service_version == "1.2.3"
    assert settings.environment == "prod"
    assert settings.resource_attributes["team"] == "a b"


def test_otlp_signal_endpoints_follow_the_spec() -> None:
    """The base endpoint gets /v1/<signal> for HTTP; per-signal variables are used as they are."""
    settings = resolve(
        {},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:9999/custom",
        },
    )
    assert settings.otlp_signal_endpoint("traces") == "http://collector:4318/v1/traces"
    assert settings.otlp_signal_endpoint("metrics") == "http://collector:4318/v1/metrics"
    assert settings.otlp_signal_endpoint("logs") == "http://logs:9999/custom"
    grpc = resolve({"otlp_protocol": "grpc", "otlp_endpoint": "http://collector:4317"}, {})
    assert grpc.otlp_signal_endpoint("traces") == "http://collector:4317"


def test_headers_are_parsed_from_the_environment() -> None:
    """OTEL_EXPORTER_OTLP_HEADERS accepts comma-separated, percent-encoded pairs."""
    settings = resolve({}, {"OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,x-tenant=a%3Db"})
    assert settings.otlp_headers == {"api-key": "abc", "x-tenant": "a=b"}


def test_serverless_is_detected_from_the_platform() -> None:
    """VERCEL or AWS_LAMBDA_FUNCTION_NAME turn serverless mode on unless told otherwise."""
    assert resolve({}, {"VERCEL": "1"}).serverless is True
    assert resolve({}, {"AWS_LAMBDA_FUNCTION_NAME": "fn"}).serverless is True
    assert resolve({"serverless": False}, {"VERCEL": "1"}).serverless is False


def test_ratio_sampler_defaults_its_argument() -> None:
    """A ratio sampler without OTEL_TRACES_SAMPLER_ARG samples everything, as the spec says."""
    settings = resolve({}, {"OTEL_TRACES_SAMPLER": "traceidratio"})
    assert settings.trace_sampler_arg == 1.0
    assert (
        resolve(
            {}, {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
        ).trace_sampler_arg
        == 0.25
    )


def test_every_documented_variable_is_read() -> None:
    """The variables DESIGN.md names are all in the table."""
    documented = {
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "ATOMS_OTEL_LOG_LEVEL",
        "ATOMS_OTEL_LOG_FORMAT",
        "ATOMS_OTEL_SLOW_REQUEST_MS",
        "ATOMS_OTEL_EXCLUDED_URLS",
        "ATOMS_OTEL_WEBHOOK_URL",
        "ATOMS_OTEL_WEBHOOK_SECRET",
        "ATOMS_OTEL_API_TOKEN",
        "ATOMS_OTEL_ENVIRONMENT",
    }
    assert documented <= set(env_vars())


def test_configure_takes_exactly_the_table_settings_marked_as_arguments() -> None:
    """Every setting is spelled once in the table; configure()'s keyword arguments match it."""
    parameters = set(inspect.signature(atoms_otel.configure).parameters)
    options = {"app", "metrics", "scrubbing", "install_logging", "plugins", "advanced", "request_context"}
    assert parameters - options == set(ARGUMENTS)


def test_configure_documents_every_setting_from_the_table() -> None:
    """configure()'s docstring lists each argument with its environment variable, from the table."""
    doc = atoms_otel.configure.__doc__ or ""
    for row in PARAMS:
        if row.name in ARGUMENTS:
            assert f"{row.name}: " in doc and row.env[0] in doc, row.name


def test_repr_of_settings_hides_every_secret() -> None:
    """The API token, the webhook secret and the OTLP header values show as '***'."""
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    settings = resolve(
        {"api_token": "tok-123456", "webhook_secret": secret, "otlp_headers": "x-api-key=hunter2"}, {}
    )
    shown = repr(settings) + str(settings)
    for value in ("tok-123456", secret, "hunter2"):
        assert value not in shown
    assert "api_token='***'" in shown and "{'x-api-key': '***'}" in shown
    assert "webhook_secret='***'" in shown


def test_repr_of_settings_masks_the_password_in_an_endpoint_url() -> None:
    """user:password@ in an OTLP endpoint shows as [REDACTED]@ in repr()."""
    settings = resolve(
        {"otlp_endpoint": "https://bob:hunter2@collector:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://amy:pw-42@collector:4318/v1/traces"},
    )
    shown = repr(settings)
    assert "hunter2" not in shown and "pw-42" not in shown
    assert "otlp_endpoint='https://[REDACTED]@collector:4318'" in shown


def test_configuration_errors_mask_the_password_in_an_endpoint_url() -> None:
    """A ConfigurationError quoting a bad endpoint does not quote its password."""
    with pytest.raises(ConfigurationError) as raised:
        resolve({"otlp_endpoint": "ftp://bob:hunter2@collector"}, {})
    assert "hunter2" not in str(raised.value) and "[REDACTED]@" in str(raised.value)
