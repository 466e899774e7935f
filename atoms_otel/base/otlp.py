"""Per-signal OTLP export options: the spec's ``OTEL_EXPORTER_OTLP_{SIGNAL}_*`` variables.

For each of ``traces``, ``metrics`` and ``logs`` an :class:`OtlpExport` says how the exporter is
built: protocol, headers, timeout, compression, TLS files. Each option is resolved once, here, with
the OpenTelemetry specification's precedence, extended by configure()'s arguments on top:

    configure() argument > ``OTEL_EXPORTER_OTLP_{SIGNAL}_{OPTION}`` > the general variable > default

(for the timeout, ``ATOMS_OTEL_EXPORT_TIMEOUT_S`` sits above ``OTEL_EXPORTER_OTLP_TIMEOUT``).
Values are checked with the same parsers as the settings table, so a bad value fails configure()
with a message naming the variable, and a certificate path that cannot be read fails before any
exporter exists, instead of at the first export.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from atoms_otel.base import parsers as p
from atoms_otel.base.parsers import Invalid

__all__ = ["EXPORT_OPTIONS", "SIGNALS", "ExportOption", "OtlpExport", "export_variables", "resolve_exports"]

SIGNALS: Final = ("traces", "metrics", "logs")


@dataclass(frozen=True)
class ExportOption:
    """One option every signal has: ``OTEL_EXPORTER_OTLP_{SIGNAL}_{suffix}`` over ``general``."""

    name: str
    suffix: str
    parse: Callable[[Any], Any]
    doc: str
    general: str | None = None
    """The general variable read here; ``None`` when the settings table already resolved it."""
    setting: str | None = None
    """The Settings field holding the general value (configure() argument or environment)."""
    secret: bool = False
    default: Any = None


def _milliseconds(value: Any) -> float:
    return p.integer(minimum=100)(value) / 1000.0


EXPORT_OPTIONS: Final = (
    ExportOption("protocol", "PROTOCOL", p.protocol, "http/protobuf or grpc", setting="otlp_protocol"),
    ExportOption("headers", "HEADERS", p.pairs, "headers sent with each export", setting="otlp_headers",
                 secret=True),
    ExportOption("timeout_s", "TIMEOUT", _milliseconds, "export timeout in milliseconds",
                 setting="otlp_timeout_s"),
    ExportOption("compression", "COMPRESSION", p.choice("gzip", "deflate", "none"), "gzip, deflate or none",
                 general="OTEL_EXPORTER_OTLP_COMPRESSION", default="none"),
    ExportOption("certificate", "CERTIFICATE", p.readable_file, "CA bundle to verify the collector with",
                 general="OTEL_EXPORTER_OTLP_CERTIFICATE"),
    ExportOption("client_key", "CLIENT_KEY", p.readable_file, "mTLS client private key",
                 general="OTEL_EXPORTER_OTLP_CLIENT_KEY"),
    ExportOption("client_certificate", "CLIENT_CERTIFICATE", p.readable_file, "mTLS client certificate",
                 general="OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
    ExportOption("insecure", "INSECURE", p.boolean,
                 "gRPC without TLS, for an endpoint without a scheme (http:// or https:// decides over it)",
                 general="OTEL_EXPORTER_OTLP_INSECURE"),
)  # fmt: skip


@dataclass(frozen=True)
class OtlpExport:
    """How one signal's OTLP exporter is built."""

    signal: str
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    compression: str = "none"
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None
    insecure: bool | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each option came from: ``argument``, a variable's name, or ``default``."""


def signal_variable(signal: str, option: ExportOption) -> str:
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{option.suffix}"


def export_variables() -> dict[str, tuple[str, ExportOption]]:
    """Every variable read here, mapped to (signal or ``"all"``, option)."""
    found: dict[str, tuple[str, ExportOption]] = {}
    for option in EXPORT_OPTIONS:
        if option.general is not None:
            found[option.general] = ("all", option)
        for signal in SIGNALS:
            found[signal_variable(signal, option)] = (signal, option)
    return found


def _one(
    signal: str,
    option: ExportOption,
    values: Mapping[str, Any],
    sources: Mapping[str, str],
    environ: Mapping[str, str],
) -> tuple[Any, str]:
    """The value of ``option`` for ``signal`` and its source (raises Invalid naming the variable)."""
    if option.setting is not None and sources.get(option.setting) == "argument":
        return values[option.setting], "argument"
    candidates = [signal_variable(signal, option)]
    if option.general is not None:
        candidates.append(option.general)
    for variable in candidates:
        if variable in environ:
            try:
                return option.parse(environ[variable]), variable
            except Invalid as exc:
                shown = p.shown_raw(environ[variable], secret=option.secret)
                raise Invalid(f"{variable}={shown}: {exc}") from None
    if option.setting is not None:
        return values[option.setting], sources.get(option.setting, "default")
    return option.default, "default"


def _schemeless_problems(
    values: Mapping[str, Any], sources: Mapping[str, str], exports: Mapping[str, OtlpExport]
) -> list[str]:
    """A ``host:port`` endpoint (no scheme) serves only signals exported by gRPC."""
    problems = []
    for signal, export in exports.items():
        name = f"otlp_{signal}_endpoint" if values.get(f"otlp_{signal}_endpoint") else "otlp_endpoint"
        endpoint = values.get(name)
        if endpoint and not p.has_scheme(endpoint) and export.protocol != "grpc":
            where = sources.get(name, name)
            problems.append(
                f"{where}={endpoint!r}: an endpoint without http:// or https:// is for OTLP/gRPC only; "
                f"{signal} are exported with {export.protocol}"
            )
    return problems


def resolve_exports(
    values: Mapping[str, Any], sources: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, OtlpExport], list[str]]:
    """Each signal's :class:`OtlpExport` from the resolved general settings and the environment,
    plus the problems found (each naming its variable)."""
    exports: dict[str, OtlpExport] = {}
    problems: list[str] = []
    half_tls: list[str] = []
    for signal in SIGNALS:
        chosen: dict[str, Any] = {}
        where: dict[str, str] = {}
        for option in EXPORT_OPTIONS:
            try:
                chosen[option.name], where[option.name] = _one(signal, option, values, sources, environ)
            except Invalid as exc:
                problems.append(str(exc))
        if len(chosen) < len(EXPORT_OPTIONS):
            continue
        if (chosen["client_key"] is None) != (chosen["client_certificate"] is None):
            half_tls.append(signal)
        exports[signal] = OtlpExport(signal=signal, **chosen, sources=where)
    problems += _schemeless_problems(values, sources, exports)
    if half_tls:
        problems.append(
            f"mTLS for {', '.join(half_tls)} needs both OTEL_EXPORTER_OTLP[_<SIGNAL>]_CLIENT_KEY "
            "and OTEL_EXPORTER_OTLP[_<SIGNAL>]_CLIENT_CERTIFICATE"
        )
    return exports, sorted(set(problems))
