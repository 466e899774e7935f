"""The errors and value parsers behind the settings table.

A parser takes a raw value — a ``configure()`` argument or an environment variable's text — and
returns the parsed value or raises :class:`Invalid` saying what is accepted. The settings table
(:mod:`atoms_otel.base.settings`) names the setting and where the value came from.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from atoms_otel.base.scrubbing import mask_url

__all__ = [
    "ConfigurationError",
    "Invalid",
    "parse_webhook_secret",
]


class ConfigurationError(ValueError):
    """Raised by ``configure()`` when a setting has an invalid value. Names the setting."""


class Invalid(ValueError):
    """A parser's complaint; the settings table adds which setting and where the value came from."""


LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off", ""})

WEBHOOK_SECRET_PREFIX: Final = "whsec_"
_MIN_KEY_BYTES: Final = 24
_MAX_KEY_BYTES: Final = 64


def parse_webhook_secret(secret: str, setting: str = "secret") -> bytes:
    """The HMAC key inside a Standard Webhooks ``whsec_<base64>`` secret; a
    :class:`ConfigurationError` naming ``setting`` otherwise (the secret itself is never shown)."""
    if not isinstance(secret, str) or not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ConfigurationError(
            f"{setting}: expected a Standard Webhooks secret 'whsec_<base64>' "
            "(make one with atoms_otel.webhooks.generate_webhook_secret())"
        )
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{setting}: the part after 'whsec_' is not valid base64") from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise ConfigurationError(
            f"{setting}: the key must be {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} bytes (got {len(key)})"
        )
    return key


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type(value).__name__}")
    return value.strip()


def nonempty(value: Any) -> str:
    result = text(value)
    if not result:
        raise Invalid("must not be empty")
    return result


def optional_text(value: Any) -> str | None:
    return text(value) or None


def log_level(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in LEVELS.values():
        return value
    if isinstance(value, str) and value.strip().upper() in LEVELS:
        return LEVELS[value.strip().upper()]
    raise Invalid("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


def optional_log_level(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
        return None
    return log_level(value)


def webhook_secret(value: Any) -> str | None:
    """A Standard Webhooks secret, ``whsec_<base64>``."""
    secret = optional_text(value)
    if secret is None:
        return None
    try:
        parse_webhook_secret(secret)
    except ConfigurationError as exc:
        raise Invalid(str(exc).removeprefix("secret: ")) from None
    return secret


def choice(*choices: str, lower: bool = True) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        result = text(value)
        result = result.lower() if lower else result
        if result not in choices:
            raise Invalid(f"expected one of {', '.join(choices)}")
        return result

    return parse


def protocol(value: Any) -> str:
    result = text(value).lower()
    if result == "http/json":
        raise Invalid(
            "http/json is not supported by the Python OTLP exporters; expected one of http/protobuf, grpc"
        )
    return choice("http/protobuf", "grpc")(result)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise Invalid("expected true or false")


def number(*, minimum: float, maximum: float | None = None) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise Invalid("expected a number")
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise Invalid("expected a number") from None
        if result != result or result < minimum or (maximum is not None and result > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise Invalid(f"expected a number {bound}")
        return result

    return parse


def integer(*, minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid("expected an integer")
        try:
            result = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise Invalid("expected an integer") from None
        if result < minimum:
            raise Invalid(f"expected an integer >= {minimum}")
        return result

    return parse


def url(*, schemes: tuple[str, ...] = ("http", "https")) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        raw = text(value)
        if not raw:
            return None
        try:
            parts = urlsplit(raw)
        except ValueError:
            raise Invalid("expected an absolute URL") from None
        if parts.scheme not in schemes or not parts.hostname:
            raise Invalid(f"expected an absolute {' or '.join(schemes)} URL")
        return raw

    return parse


def endpoint() -> Callable[[Any], str | None]:
    """An OTLP endpoint: an absolute http(s) URL, or ``host:port`` without a scheme, which only
    OTLP/gRPC accepts (TLS unless ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_INSECURE=true``, per the spec)."""
    absolute = url()

    def parse(value: Any) -> str | None:
        raw = text(value)
        if raw and "://" not in raw:
            host, separator, port = raw.rpartition(":")
            if separator and host and port.isdigit() and "/" not in raw:
                return raw
            raise Invalid("expected an absolute http or https URL, or host:port (gRPC only)")
        return absolute(raw)

    return parse


def has_scheme(endpoint: str) -> bool:
    """Whether an endpoint :func:`endpoint` accepted is a URL (else ``host:port``)."""
    return "://" in endpoint


def url_template(placeholder: str) -> Callable[[Any], str | None]:
    """An absolute http(s) URL containing ``placeholder`` (e.g. ``{trace_id}``), replaced later."""
    absolute = url()

    def parse(value: Any) -> str | None:
        raw = text(value)
        if raw and placeholder not in raw:
            raise Invalid(f"expected a URL containing {placeholder}")
        return absolute(raw.replace(placeholder, "0")) and raw

    return parse


def pairs(value: Any) -> dict[str, str]:
    """``key=value,key2=value2`` (percent-decoded, per the OTel spec) or a mapping."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    result: dict[str, str] = {}
    for position, item in enumerate(filter(None, (part.strip() for part in text(value).split(","))), 1):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            # The item is not echoed: these values carry credentials (OTLP headers).
            raise Invalid(f"expected comma-separated key=value pairs; item {position} has no '='")
        result[unquote(key.strip())] = unquote(val.strip())
    return result


def paths(value: Any) -> tuple[str, ...]:
    """Comma-separated paths; a trailing ``*`` makes a prefix (``/health*``)."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        found = tuple(str(item).strip() for item in items)
    except TypeError:
        raise Invalid("expected comma-separated paths") from None
    found = tuple(p for p in found if p)
    for path in found:
        if not path.startswith("/"):
            raise Invalid(f"each path must start with '/'; got {path!r}")
    return found


def exporters(*allowed: str) -> Callable[[Any], tuple[str, ...]]:
    """``OTEL_*_EXPORTER``: a comma-separated list of exporter names; ``none`` alone means none."""

    def parse(value: Any) -> tuple[str, ...]:
        names = tuple(n.strip().lower() for n in text(value).split(",") if n.strip())
        unknown = [n for n in names if n not in (*allowed, "none")]
        if unknown or not names:
            raise Invalid(f"expected a comma-separated list of {', '.join((*allowed, 'none'))}")
        if "none" in names and len(names) > 1:
            raise Invalid("'none' cannot be combined with other exporters")
        return () if names == ("none",) else names

    return parse


def shown_raw(value: Any, *, secret: bool) -> str:
    """A raw value as an error message quotes it: hidden if secret, credentials in URLs masked,
    cut at 60 characters."""
    if secret:
        return "<hidden>"
    text = repr(mask_url(value) if isinstance(value, str) else value)
    return text if len(text) <= 60 else text[:57] + "...'"


def readable_file(value: Any) -> str | None:
    """A path to a file this process can read (TLS certificates and keys); empty means unset."""
    raw = text(value)
    if not raw:
        return None
    try:
        with open(raw, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise Invalid(f"cannot read the file: {exc.strerror or exc}") from None
    return raw


def unsupported(reason: str) -> Callable[[Any], None]:
    """A variable atoms_otel cannot honour: set, it fails configure() with ``reason``."""

    def parse(value: Any) -> None:
        if text(value):
            raise Invalid(reason)

    return parse


def patterns(value: Any) -> tuple[str, ...]:
    """Comma-separated regular expressions (``OTEL_PYTHON_EXCLUDED_URLS``, the captured-header
    lists), split as ``opentelemetry-util-http`` splits them; each must compile."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        found = tuple(p for p in (str(item).strip() for item in items) if p)
    except TypeError:
        raise Invalid("expected comma-separated regular expressions") from None
    for pattern in found:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Invalid(f"{pattern!r} is not a regular expression: {exc}") from None
    return found
