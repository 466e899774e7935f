"""Every setting, in one table: its ``Settings`` field, environment variables, parser, default and doc.

Each field of :class:`Settings` carries its row of the table (:func:`setting`); the table drives
precedence, validation, ``python -m atoms_otel env`` and the documentation of ``configure()``.
Precedence is implemented once, in :func:`resolve`: an explicit ``configure()`` argument wins over
the first environment variable that is set, which wins over the default. Arguments and environment
values go through the same parser, so ``log_level="LOUDEST"`` and ``ATOMS_OTEL_LOG_LEVEL=LOUDEST``
fail with the same message. All problems are collected and raised together as one
:class:`ConfigurationError`, before anything is built: configure() never half-configures.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from atoms_otel.base import parsers as p
from atoms_otel.base.otlp import OtlpExport, resolve_exports
from atoms_otel.base.parsers import ConfigurationError, Invalid
from atoms_otel.base.scrubbing import mask_url
from atoms_otel.base.sdk_env import check_sdk_environment

__all__ = [
    "PARAMS",
    "SECRET",
    "ConfigurationError",
    "Param",
    "Settings",
    "resolve",
    "shown",
]

SECRET: Final = "'***'"
"""What a repr shows instead of a secret value."""

# Our own endpoints: probes, scrapes and the live page poll constantly; spans for them are noise.
DEFAULT_EXCLUDED: Final = ("/metrics", "/health*", "/observability", "/api/observability*")


@dataclass(frozen=True)
class Param:
    """One row of the settings table."""

    name: str
    env: tuple[str, ...]
    parse: Callable[[Any], Any]
    default: Any
    doc: str
    argument: bool
    """Whether ``configure()`` takes it as a keyword argument of the same name."""
    secret: bool


def setting(
    *env: str,
    parse: Callable[[Any], Any],
    default: Any,
    doc: str,
    argument: bool = True,
    secret: bool = False,
) -> Any:
    """A :class:`Settings` field and its row of the table."""
    row = {"env": env, "parse": parse, "default": default, "doc": doc, "argument": argument, "secret": secret}
    return dataclasses.field(metadata={"atoms_otel": row})


@dataclass(frozen=True, repr=False)
class Settings:
    """The resolved configuration. Built only by :func:`resolve`; its ``repr`` hides secrets."""

    service_name: str = setting(
        "OTEL_SERVICE_NAME", parse=p.nonempty, default=None,
        doc="``service.name``; default: ``service.name`` in OTEL_RESOURCE_ATTRIBUTES, else unknown_service",
    )  # fmt: skip
    service_version: str = setting(
        "ATOMS_OTEL_SERVICE_VERSION", parse=p.nonempty, default=None,
        doc="``service.version``; default: ``service.version`` in OTEL_RESOURCE_ATTRIBUTES, else 0.0.0",
    )  # fmt: skip
    environment: str = setting(
        "ATOMS_OTEL_ENVIRONMENT", parse=p.nonempty, default="development",
        doc="``deployment.environment.name``",
    )  # fmt: skip
    resource_attributes: Mapping[str, str] = setting(
        "OTEL_RESOURCE_ATTRIBUTES", parse=p.pairs, default={},
        doc="extra resource attributes, ``k=v,k2=v2`` (percent-decoded)",
    )  # fmt: skip
    otlp_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT", parse=p.endpoint(), default=None,
        doc="OTLP collector base URL (``/v1/<signal>`` appended for HTTP), or ``host:port`` for gRPC",
    )  # fmt: skip
    otlp_traces_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", parse=p.endpoint(), default=None, argument=False,
        doc="the traces endpoint, used as given",
    )  # fmt: skip
    otlp_metrics_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", parse=p.endpoint(), default=None, argument=False,
        doc="the metrics endpoint, used as given",
    )  # fmt: skip
    otlp_logs_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", parse=p.endpoint(), default=None, argument=False,
        doc="the logs endpoint, used as given",
    )  # fmt: skip
    otlp_protocol: str = setting(
        "OTEL_EXPORTER_OTLP_PROTOCOL", parse=p.protocol, default="http/protobuf",
        doc="``http/protobuf`` or ``grpc`` (``pip install 'atoms-otel[grpc]'``)",
    )  # fmt: skip
    otlp_headers: Mapping[str, str] = setting(
        "OTEL_EXPORTER_OTLP_HEADERS", parse=p.pairs, default={}, secret=True,
        doc="headers sent with every export, e.g. an API key for a hosted collector",
    )  # fmt: skip
    otlp_timeout_s: float = setting(
        "ATOMS_OTEL_EXPORT_TIMEOUT_S", parse=p.number(minimum=0.1, maximum=120), default=5.0,
        argument=False, doc="seconds per export attempt chain",
    )  # fmt: skip
    otlp_timeout_ms: int | None = setting(
        "OTEL_EXPORTER_OTLP_TIMEOUT", parse=p.integer(minimum=100), default=None, argument=False,
        doc="the OTel spec's export timeout in milliseconds (ATOMS_OTEL_EXPORT_TIMEOUT_S wins if set)",
    )  # fmt: skip
    traces_exporter: tuple[str, ...] | None = setting(
        "OTEL_TRACES_EXPORTER", parse=p.exporters("otlp", "console"), default=None, argument=False,
        doc="otlp (default when an endpoint is set), console, or none",
    )  # fmt: skip
    metrics_exporter: tuple[str, ...] | None = setting(
        "OTEL_METRICS_EXPORTER", parse=p.exporters("otlp", "console", "prometheus"), default=None,
        argument=False, doc="otlp (default with an endpoint), console, prometheus (/metrics only), or none",
    )  # fmt: skip
    logs_exporter: tuple[str, ...] | None = setting(
        "OTEL_LOGS_EXPORTER", parse=p.exporters("otlp", "console"), default=None, argument=False,
        doc="otlp (default when an endpoint is set), console, or none",
    )  # fmt: skip
    config_file: None = setting(
        "OTEL_CONFIG_FILE",
        parse=p.unsupported(
            "declarative configuration files are not supported by atoms_otel (it builds its pipeline "
            "from configure() and the OTEL_* variables); unset OTEL_CONFIG_FILE"
        ),
        default=None, argument=False, doc="refused: atoms_otel does not read declarative configuration files",
    )  # fmt: skip
    log_level: int = setting(
        "ATOMS_OTEL_LOG_LEVEL", parse=p.log_level, default=logging.INFO,
        doc="``DEBUG``..``CRITICAL``",
    )  # fmt: skip
    log_format: str = setting(
        "ATOMS_OTEL_LOG_FORMAT", parse=p.choice("json", "console"), default="json",
        doc="``json``, or ``console`` for development",
    )  # fmt: skip
    slow_request_ms: float = setting(
        "ATOMS_OTEL_SLOW_REQUEST_MS", parse=p.number(minimum=0), default=1000.0,
        doc="requests slower than this log a warning",
    )  # fmt: skip
    excluded_urls: tuple[str, ...] = setting(
        "ATOMS_OTEL_EXCLUDED_URLS", parse=p.paths, default=DEFAULT_EXCLUDED,
        doc="paths without spans (still counted); a trailing ``*`` makes a prefix",
    )  # fmt: skip
    otel_excluded_urls: tuple[str, ...] = setting(
        "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS", parse=p.patterns, default=(),
        argument=False, doc="also no span: regexes searched in ``scheme://host/path``")  # fmt: skip
    capture_request_headers: tuple[str, ...] = setting(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", parse=p.patterns, default=(),
        argument=False, doc="request headers as ``http.request.header.<name>`` (regexes)")  # fmt: skip
    capture_response_headers: tuple[str, ...] = setting(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", parse=p.patterns, default=(),
        argument=False, doc="response headers as ``http.response.header.<name>`` (regexes)")  # fmt: skip
    capture_sanitize_fields: tuple[str, ...] = setting(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", parse=p.patterns, default=(),
        argument=False, doc="captured headers recorded as ``[REDACTED]`` (regexes)")  # fmt: skip
    http_semconv_metrics: bool = setting(
        "ATOMS_OTEL_HTTP_SEMCONV_METRICS", parse=p.boolean, default=True, argument=False,
        doc="``http.server.request.duration``, ``.active_requests`` when metrics are exported")  # fmt: skip
    gc_freeze: bool = setting(
        "ATOMS_OTEL_GC_FREEZE", parse=p.boolean, default=True, argument=False,
        doc="``gc.freeze()`` the startup heap after the first request: short full collections")  # fmt: skip
    webhook_url: str | None = setting(
        "ATOMS_OTEL_WEBHOOK_URL", parse=p.url(), default=None,
        doc="a webhook registered at startup",
    )  # fmt: skip
    webhook_secret: str | None = setting(
        "ATOMS_OTEL_WEBHOOK_SECRET", parse=p.webhook_secret, default=None, secret=True,
        doc="its Standard Webhooks ``whsec_<base64>`` signing key",
    )  # fmt: skip
    webhook_log_level: int | None = setting(
        "ATOMS_OTEL_WEBHOOK_LOG_LEVEL", parse=p.optional_log_level, default=None,
        doc="also alert on log records at or above this level, e.g. ``ERROR`` (default off)",
    )  # fmt: skip
    api_token: str | None = setting(
        "ATOMS_OTEL_API_TOKEN", parse=p.optional_text, default=None, secret=True,
        doc="bearer token protecting ``/api/observability/*`` and ``/observability``",
    )  # fmt: skip
    protect_metrics: bool = setting(
        "ATOMS_OTEL_PROTECT_METRICS", parse=p.boolean, default=False,
        doc="require that token on ``/metrics`` too (needs ``api_token``)",
    )  # fmt: skip
    trace_sampler: str = setting(
        "OTEL_TRACES_SAMPLER", parse=p.choice(*p.SAMPLERS), default="parentbased_always_on",
        doc="one of the OpenTelemetry spec's six samplers",
    )  # fmt: skip
    trace_sampler_arg: float | None = setting(
        "OTEL_TRACES_SAMPLER_ARG", parse=p.number(minimum=0, maximum=1), default=None,
        doc="the ratio of the ``traceidratio`` samplers (default 1.0)",
    )  # fmt: skip
    metric_export_interval_ms: int = setting(
        "OTEL_METRIC_EXPORT_INTERVAL", parse=p.integer(minimum=100), default=10_000, argument=False,
        doc="how often metrics are pushed by OTLP (``MetricsOptions.export_interval_ms``)",
    )  # fmt: skip
    metric_exemplar_filter: str | None = setting(
        "OTEL_METRICS_EXEMPLAR_FILTER", parse=p.choice("trace_based", "always_on", "always_off"),
        default=None, argument=False,
        doc="which measurements may become exemplars (default trace_based: those in a sampled span)",
    )  # fmt: skip
    metric_cardinality_limit: int = setting(
        "ATOMS_OTEL_METRIC_CARDINALITY_LIMIT", parse=p.integer(minimum=10), default=2000, argument=False,
        doc="label sets kept per metric before folding into ``otel_metric_overflow`` "
        "(``MetricsOptions.cardinality_limit``)",
    )  # fmt: skip
    db_client_metrics: bool = setting(
        "ATOMS_OTEL_DB_CLIENT_METRICS", parse=p.boolean, default=True, argument=False,
        doc="with OTLP metrics on, ``track_database_operation`` also records the semconv "
        "``db.client.operation.duration``; ``false`` opts out",
    )  # fmt: skip
    disabled: bool = setting(
        "OTEL_SDK_DISABLED", parse=p.boolean, default=False,
        doc="no-op telemetry; the app runs unchanged",
    )  # fmt: skip
    console_spans: bool = setting(
        "ATOMS_OTEL_CONSOLE_SPANS", parse=p.boolean, default=False,
        doc="also print finished spans to stdout",
    )  # fmt: skip
    serverless: bool = setting(
        "ATOMS_OTEL_SERVERLESS", parse=p.boolean, default=None,
        doc="flush before each response ends; default: on when VERCEL or AWS_LAMBDA_FUNCTION_NAME is set",
    )  # fmt: skip
    explorer: bool = setting(
        "ATOMS_OTEL_EXPLORER", parse=p.boolean, default=True, argument=False,
        doc="keep recent traces and log lines in memory for the live view's explorer "
        "(bounded; always off in serverless mode)",
    )  # fmt: skip
    trace_url_template: str | None = setting(
        "ATOMS_OTEL_TRACE_URL_TEMPLATE", parse=p.url_template("{trace_id}"), default=None,
        argument=False, doc="a link per trace in the live view, e.g. a Grafana Explore/Tempo URL "
        "with ``{trace_id}``",
    )  # fmt: skip
    endpoints: bool = setting(
        "ATOMS_OTEL_ENDPOINTS", parse=p.boolean, default=False, argument=False,
        doc="zero-code start (opentelemetry-instrument): also add /metrics, the probes, the API and page",
    )  # fmt: skip
    vercel_deployment_id: str | None = setting(
        "VERCEL_DEPLOYMENT_ID", parse=p.optional_text, default=None, argument=False,
        doc="set by Vercel: the first configure() of a deployment sends one deployment_completed alert",
    )  # fmt: skip
    vercel_env: str | None = setting(
        "VERCEL_ENV", parse=p.optional_text, default=None, argument=False, doc="set by Vercel",
    )  # fmt: skip
    vercel_url: str | None = setting(
        "VERCEL_URL", parse=p.optional_text, default=None, argument=False, doc="set by Vercel",
    )  # fmt: skip
    vercel_git_commit_sha: str | None = setting(
        "VERCEL_GIT_COMMIT_SHA", parse=p.optional_text, default=None, argument=False, doc="set by Vercel",
    )  # fmt: skip
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)
    """Where each value came from: ``"argument"``, the environment variable's name, or ``"default"``."""
    otlp_exports: Mapping[str, OtlpExport] = dataclasses.field(default_factory=dict, compare=False)
    """Per signal: protocol, headers, timeout, compression and TLS files (:mod:`atoms_otel.base.otlp`)."""
    sdk_environment: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    """The SDK's own variables that are set, validated (:mod:`atoms_otel.base.sdk_env`)."""

    def otlp_export(self, signal: str) -> OtlpExport:
        """How ``signal``'s OTLP exporter is built."""
        return self.otlp_exports.get(signal) or OtlpExport(
            signal, self.otlp_protocol, self.otlp_headers, self.otlp_timeout_s
        )

    def otlp_signal_endpoint(self, signal: str) -> str | None:
        """The OTLP endpoint for ``traces``, ``metrics`` or ``logs``, or ``None`` when not exporting."""
        specific = {
            "traces": self.otlp_traces_endpoint,
            "metrics": self.otlp_metrics_endpoint,
            "logs": self.otlp_logs_endpoint,
        }[signal]
        chosen = {
            "traces": self.traces_exporter,
            "metrics": self.metrics_exporter,
            "logs": self.logs_exporter,
        }
        if chosen[signal] is not None and "otlp" not in chosen[signal]:  # type: ignore[operator]
            return None
        if specific:
            return specific
        if not self.otlp_endpoint:
            return None
        if self.otlp_export(signal).protocol == "grpc":
            return self.otlp_endpoint
        return f"{self.otlp_endpoint.rstrip('/')}/v1/{signal}"

    @property
    def exporting(self) -> bool:
        """Whether any signal is sent by OTLP."""
        return any(self.otlp_signal_endpoint(s) for s in ("traces", "metrics", "logs"))

    def __repr__(self) -> str:
        fields = ", ".join(f"{row.name}={shown(row, getattr(self, row.name))}" for row in PARAMS)
        return f"Settings({fields})"


def _rows() -> tuple[Param, ...]:
    rows = []
    for f in dataclasses.fields(Settings):
        row = f.metadata.get("atoms_otel")
        if row is not None:
            rows.append(Param(name=f.name, **row))
    return tuple(rows)


PARAMS: Final = _rows()
PARAM_NAMES: Final = frozenset(row.name for row in PARAMS)
ARGUMENTS: Final = tuple(row.name for row in PARAMS if row.argument)
"""The settings ``configure()`` takes as keyword arguments, in table order."""


def shown(row: Param, value: Any) -> str:
    if row.secret and value:
        if isinstance(value, Mapping):
            return "{" + ", ".join(f"{k!r}: {SECRET}" for k in value) + "}"
        return SECRET
    return repr(mask_url(value) if isinstance(value, str) else value)


def _read(row: Param, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[Any, str, str]:
    """The raw value, where it came from (for messages) and its source name."""
    raw = arguments.get(row.name)
    if raw is not None:
        return raw, f"{row.name}=", "argument"
    for var in row.env:
        if var in environ:
            return environ[var], f"{var}=", var
    return None, "", "default"


def resolve(arguments: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Resolve every setting: argument (not ``None``) > environment > default."""
    unknown = set(arguments) - PARAM_NAMES
    if unknown:
        raise TypeError(f"configure() got unexpected settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    for row in PARAMS:
        raw, where, source = _read(row, arguments, environ)
        if raw is None:
            values[row.name], sources[row.name] = row.default, "default"
            continue
        try:
            values[row.name], sources[row.name] = row.parse(raw), source
        except Invalid as exc:
            problems.append(f"{where}{p.shown_raw(raw, secret=row.secret)}: {exc}")
    if not problems and values["protect_metrics"] and not values["api_token"]:
        where = "protect_metrics" if sources["protect_metrics"] == "argument" else sources["protect_metrics"]
        problems.append(f"{where}=true: needs api_token (ATOMS_OTEL_API_TOKEN) to protect /metrics with")
    if not problems:
        _derive(values, sources, environ)
        exports, export_problems = resolve_exports(values, sources, environ)
        problems += export_problems
    sdk_environment, sdk_problems = check_sdk_environment(environ)
    problems += sdk_problems
    if problems:
        raise ConfigurationError("invalid atoms_otel configuration:\n  - " + "\n  - ".join(problems))
    return Settings(**values, sources=sources, otlp_exports=exports, sdk_environment=sdk_environment)


def _derive(values: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]) -> None:
    """The defaults that depend on other settings or on the platform."""
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
    if values["otlp_timeout_ms"] is not None and sources["otlp_timeout_s"] == "default":
        values["otlp_timeout_s"] = min(values["otlp_timeout_ms"] / 1000.0, 120.0)
        sources["otlp_timeout_s"] = "OTEL_EXPORTER_OTLP_TIMEOUT"
