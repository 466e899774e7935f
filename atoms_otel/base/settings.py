"""Every setting, its environment variables, its parser and its default — in one table.

Precedence is implemented once, in :func:`resolve`: an explicit ``configure()`` argument wins over
the first environment variable that is set, which wins over the default. Arguments and environment
values go through the same parser, so ``log_level="LOUDEST"`` and ``ATOMS_OTEL_LOG_LEVEL=LOUDEST``
fail with the same message. All problems are collected and raised together as one
:class:`ConfigurationError`, before anything is built: configure() never half-configures.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit

__all__ = ["ConfigurationError", "Settings", "resolve"]


class ConfigurationError(ValueError):
    """Raised by ``configure()`` when a setting has an invalid value. Names the setting."""


class _Invalid(ValueError):
    """A parser's complaint; :func:`resolve` adds which setting and where the value came from."""


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. Built only by :func:`resolve`."""

    service_name: str
    service_version: str
    environment: str
    resource_attributes: Mapping[str, str]
    otlp_endpoint: str | None
    otlp_traces_endpoint: str | None
    otlp_metrics_endpoint: str | None
    otlp_logs_endpoint: str | None
    otlp_protocol: str
    otlp_headers: Mapping[str, str]
    otlp_timeout_s: float
    log_level: int
    log_format: str
    slow_request_ms: float
    excluded_urls: tuple[str, ...]
    webhook_url: str | None
    webhook_secret: str | None
    webhook_log_level: int | None
    api_token: str | None
    protect_metrics: bool
    trace_sampler: str
    trace_sampler_arg: float | None
    metric_export_interval_ms: int
    metric_cardinality_limit: int
    metric_exemplar_filter: str | None
    disabled: bool
    console_spans: bool
    serverless: bool
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each value came from: ``"argument"``, the environment variable's name, or ``"default"``."""

    def otlp_signal_endpoint(self, signal: str) -> str | None:
        """The OTLP endpoint for ``traces``, ``metrics`` or ``logs``, or ``None`` when not exporting."""
        specific = {
            "traces": self.otlp_traces_endpoint,
            "metrics": self.otlp_metrics_endpoint,
            "logs": self.otlp_logs_endpoint,
        }[signal]
        if specific:
            return specific
        if not self.otlp_endpoint:
            return None
        if self.otlp_protocol == "grpc":
            return self.otlp_endpoint
        return f"{self.otlp_endpoint.rstrip('/')}/v1/{signal}"

    @property
    def exporting(self) -> bool:
        """Whether any signal is sent by OTLP."""
        return any(self.otlp_signal_endpoint(s) for s in ("traces", "metrics", "logs"))


# ---------------------------------------------------------------------------------------------
# Parsers: (raw value) -> parsed value, raising _Invalid with the accepted values.

_LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
_SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off", ""})


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {type(value).__name__}")
    return value.strip()


def _nonempty(value: Any) -> str:
    text = _text(value)
    if not text:
        raise _Invalid("must not be empty")
    return text


def _optional_text(value: Any) -> str | None:
    return _text(value) or None


def _log_level(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in _LEVELS.values():
        return value
    if isinstance(value, str) and value.strip().upper() in _LEVELS:
        return _LEVELS[value.strip().upper()]
    raise _Invalid("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


def _optional_log_level(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
        return None
    return _log_level(value)


def _webhook_secret(value: Any) -> str | None:
    """A Standard Webhooks secret, ``whsec_<base64>`` (checked by the webhooks module)."""
    text = _optional_text(value)
    if text is None:
        return None
    from atoms_otel.plugins.webhooks._signing import parse_secret

    try:
        parse_secret(text)
    except ConfigurationError as exc:
        raise _Invalid(str(exc).removeprefix("secret: ")) from None
    return text


def _choice(*choices: str, lower: bool = True) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        text = text.lower() if lower else text
        if text not in choices:
            raise _Invalid(f"expected one of {', '.join(choices)}")
        return text

    return parse


def _protocol(value: Any) -> str:
    text = _text(value).lower()
    if text == "http/json":
        raise _Invalid(
            "http/json is not supported by the Python OTLP exporters; expected one of http/protobuf, grpc"
        )
    return _choice("http/protobuf", "grpc")(text)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid("expected true or false")


def _number(*, minimum: float, maximum: float | None = None) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise _Invalid("expected a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _Invalid("expected a number") from None
        if number != number or number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise _Invalid(f"expected a number {bound}")
        return number

    return parse


def _integer(*, minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise _Invalid("expected an integer")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise _Invalid("expected an integer") from None
        if number < minimum:
            raise _Invalid(f"expected an integer >= {minimum}")
        return number

    return parse


def _url(*, schemes: tuple[str, ...] = ("http", "https")) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        text = _text(value)
        if not text:
            return None
        try:
            parts = urlsplit(text)
        except ValueError:
            raise _Invalid("expected an absolute URL") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise _Invalid(f"expected an absolute {' or '.join(schemes)} URL")
        return text

    return parse


def _pairs(value: Any) -> dict[str, str]:
    """``key=value,key2=value2`` (percent-decoded, per the OTel spec) or a mapping."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    text = _text(value)
    result: dict[str, str] = {}
    for position, item in enumerate(filter(None, (part.strip() for part in text.split(","))), 1):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            # The item is not echoed: these values carry credentials (OTLP headers).
            raise _Invalid(f"expected comma-separated key=value pairs; item {position} has no '='")
        result[unquote(key.strip())] = unquote(val.strip())
    return result


def _paths(value: Any) -> tuple[str, ...]:
    """Comma-separated paths; a trailing ``*`` makes a prefix (``/health*``)."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        paths = tuple(str(item).strip() for item in items)
    except TypeError:
        raise _Invalid("expected comma-separated paths") from None
    paths = tuple(p for p in paths if p)
    for path in paths:
        if not path.startswith("/"):
            raise _Invalid(f"each path must start with '/'; got {path!r}")
    return paths


# ---------------------------------------------------------------------------------------------
# The table. Order matters only for the error message.


@dataclass(frozen=True)
class _Param:
    name: str
    env: tuple[str, ...]
    parse: Callable[[Any], Any]
    default: Any


# Our own endpoints: probes, scrapes and the live page poll constantly; spans for them are noise.
_DEFAULT_EXCLUDED: Final = ("/metrics", "/health*", "/observability", "/api/observability*")

_PARAMS: Final[tuple[_Param, ...]] = (
    _Param("service_name", ("OTEL_SERVICE_NAME",), _nonempty, None),  # None: see resolve()
    _Param("service_version", ("ATOMS_OTEL_SERVICE_VERSION",), _nonempty, None),
    _Param("environment", ("ATOMS_OTEL_ENVIRONMENT",), _nonempty, "development"),
    _Param("resource_attributes", ("OTEL_RESOURCE_ATTRIBUTES",), _pairs, {}),
    _Param("otlp_endpoint", ("OTEL_EXPORTER_OTLP_ENDPOINT",), _url(), None),
    _Param("otlp_traces_endpoint", ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",), _url(), None),
    _Param("otlp_metrics_endpoint", ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",), _url(), None),
    _Param("otlp_logs_endpoint", ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",), _url(), None),
    _Param("otlp_protocol", ("OTEL_EXPORTER_OTLP_PROTOCOL",), _protocol, "http/protobuf"),
    _Param("otlp_headers", ("OTEL_EXPORTER_OTLP_HEADERS",), _pairs, {}),
    _Param("otlp_timeout_s", ("ATOMS_OTEL_EXPORT_TIMEOUT_S",), _number(minimum=0.1, maximum=120), 5.0),
    _Param("log_level", ("ATOMS_OTEL_LOG_LEVEL",), _log_level, logging.INFO),
    _Param("log_format", ("ATOMS_OTEL_LOG_FORMAT",), _choice("json", "console"), "json"),
    _Param("slow_request_ms", ("ATOMS_OTEL_SLOW_REQUEST_MS",), _number(minimum=0), 1000.0),
    _Param("excluded_urls", ("ATOMS_OTEL_EXCLUDED_URLS",), _paths, _DEFAULT_EXCLUDED),
    _Param("webhook_url", ("ATOMS_OTEL_WEBHOOK_URL",), _url(), None),
    _Param("webhook_secret", ("ATOMS_OTEL_WEBHOOK_SECRET",), _webhook_secret, None),
    _Param("webhook_log_level", ("ATOMS_OTEL_WEBHOOK_LOG_LEVEL",), _optional_log_level, None),
    _Param("api_token", ("ATOMS_OTEL_API_TOKEN",), _optional_text, None),
    _Param("protect_metrics", ("ATOMS_OTEL_PROTECT_METRICS",), _boolean, False),
    _Param("trace_sampler", ("OTEL_TRACES_SAMPLER",), _choice(*_SAMPLERS), "parentbased_always_on"),
    _Param("trace_sampler_arg", ("OTEL_TRACES_SAMPLER_ARG",), _number(minimum=0, maximum=1), None),
    _Param("metric_export_interval_ms", ("OTEL_METRIC_EXPORT_INTERVAL",), _integer(minimum=100), 10_000),
    _Param(
        "metric_exemplar_filter",
        ("OTEL_METRICS_EXEMPLAR_FILTER",),
        _choice("trace_based", "always_on", "always_off"),
        None,  # None: trace_based when metrics leave the process by OTLP, else always_off
    ),
    _Param("metric_cardinality_limit", ("ATOMS_OTEL_METRIC_CARDINALITY_LIMIT",), _integer(minimum=10), 2000),
    _Param("disabled", ("OTEL_SDK_DISABLED",), _boolean, False),
    _Param("console_spans", ("ATOMS_OTEL_CONSOLE_SPANS",), _boolean, False),
    _Param("serverless", ("ATOMS_OTEL_SERVERLESS",), _boolean, None),  # None: detected, see resolve()
)

PARAM_NAMES: Final = frozenset(p.name for p in _PARAMS)
_SECRET_PARAMS: Final = frozenset({"webhook_secret", "api_token", "otlp_headers"})


def _show(name: str, value: Any) -> str:
    if name in _SECRET_PARAMS:
        return "<hidden>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def resolve(arguments: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Resolve every setting: argument (not ``None``) > environment > default."""
    unknown = set(arguments) - PARAM_NAMES
    if unknown:
        raise TypeError(f"configure() got unexpected settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    for param in _PARAMS:
        raw: Any = arguments.get(param.name)
        where = f"{param.name}="
        source = "argument"
        if raw is None:
            for var in param.env:
                if var in environ:
                    raw, where, source = environ[var], f"{var}=", var
                    break
        if raw is None:
            values[param.name], sources[param.name] = param.default, "default"
            continue
        try:
            values[param.name] = param.parse(raw)
            sources[param.name] = source
        except _Invalid as exc:
            problems.append(f"{where}{_show(param.name, raw)}: {exc}")
    if not problems and values["protect_metrics"] and not values["api_token"]:
        where = "protect_metrics" if sources["protect_metrics"] == "argument" else sources["protect_metrics"]
        problems.append(f"{where}=true: needs api_token (ATOMS_OTEL_API_TOKEN) to protect /metrics with")
    if problems:
        raise ConfigurationError("invalid atoms_otel configuration:\n  - " + "\n  - ".join(problems))

    resource = dict(values["resource_attributes"])
    if values["service_name"] is None:
        values["service_name"] = resource.get("service.name") or "unknown_service"
    if values["service_version"] is None:
        values["service_version"] = resource.get("service.version") or "0.0.0"
    if sources["environment"] == "default" and "deployment.environment.name" in resource:
        values["environment"] = resource["deployment.environment.name"]
    if values["serverless"] is None:
        values["serverless"] = bool(environ.get("VERCEL") or environ.get("AWS_LAMBDA_FUNCTION_NAME"))
        sources["serverless"] = "detected" if values["serverless"] else "default"
    if values["trace_sampler_arg"] is None and values["trace_sampler"].endswith("traceidratio"):
        values["trace_sampler_arg"] = 1.0
    values["excluded_urls"] = tuple(values["excluded_urls"])
    return Settings(**values, sources=sources)


_ENV_NAME = re.compile(r"^(OTEL|ATOMS_OTEL)_[A-Z0-9_]+$")


def env_vars() -> dict[str, str]:
    """Each environment variable we read, mapped to its setting (for docs and tests)."""
    return {var: p.name for p in _PARAMS for var in p.env if _ENV_NAME.match(var)}
