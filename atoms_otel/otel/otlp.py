"""The keyword arguments of one OTLP exporter, from its signal's :class:`~atoms_otel.base.otlp.OtlpExport`.

Everything is passed explicitly (nothing is left for the exporter to read from the environment), so
what ``python -m atoms_otel env`` shows is what the exporter uses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from atoms_otel.base.otlp import OtlpExport
from atoms_otel.base.parsers import has_scheme

__all__ = ["otlp_exporter_kwargs"]


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _grpc_kwargs(export: OtlpExport, endpoint: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    import grpc  # type: ignore[import-untyped]  # the optional gRPC extra; only reached when a signal's protocol is grpc

    kwargs["headers"] = tuple(kwargs.pop("headers", {}).items()) or None
    # The specification: an http:// endpoint is plaintext and an https:// one TLS, whatever
    # OTEL_EXPORTER_OTLP[_<SIGNAL>]_INSECURE says; it decides only for a host:port endpoint.
    if has_scheme(endpoint):
        kwargs["insecure"] = urlsplit(endpoint).scheme.lower() == "http"
    else:
        kwargs["insecure"] = bool(export.insecure)
    kwargs["compression"] = {
        "gzip": grpc.Compression.Gzip,
        "deflate": grpc.Compression.Deflate,
        "none": grpc.Compression.NoCompression,
    }[export.compression]
    if not kwargs["insecure"] and (export.certificate or export.client_key):
        kwargs["credentials"] = grpc.ssl_channel_credentials(
            root_certificates=_read(export.certificate),
            private_key=_read(export.client_key),
            certificate_chain=_read(export.client_certificate),
        )
    return kwargs


def _pinned_session(certificate: str) -> Any:
    """A requests session that verifies with ``certificate`` whatever the environment says.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's ``verify`` on every
    request, so with either set (common behind corporate proxies) the SDK's HTTP exporter silently
    ignores ``OTEL_EXPORTER_OTLP_CERTIFICATE``. Proxies and the rest of the environment still apply.
    """
    import requests  # the HTTP exporter's own dependency; only reached when a certificate is set

    class PinnedSession(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> Any:
            merged = super().merge_environment_settings(*args, **kwargs)
            merged["verify"] = certificate
            return merged

    session = PinnedSession()
    session.verify = certificate
    return session


def otlp_exporter_kwargs(export: OtlpExport, endpoint: str) -> dict[str, Any]:
    """What the OTLP exporter for ``export.signal`` is built with."""
    kwargs: dict[str, Any] = {"endpoint": endpoint, "timeout": export.timeout_s}
    kwargs["headers"] = dict(export.headers)
    if export.protocol == "grpc":
        return _grpc_kwargs(export, endpoint, kwargs)
    from opentelemetry.exporter.otlp.proto.http import Compression

    kwargs["compression"] = Compression(export.compression)
    if export.certificate:
        kwargs["certificate_file"] = export.certificate
        kwargs["session"] = _pinned_session(export.certificate)
    if export.client_key and export.client_certificate:
        kwargs["client_key_file"] = export.client_key
        kwargs["client_certificate_file"] = export.client_certificate
    return kwargs
