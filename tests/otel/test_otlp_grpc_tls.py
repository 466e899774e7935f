"""OTLP/gRPC over TLS and mutual TLS against a real gRPC receiver, configured the way a user does:
``OTEL_EXPORTER_OTLP_*`` variables, configure(), and the real export pipeline."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import atoms_otel
from atoms_otel import AdvancedOptions, Counter, get_logger
from atoms_otel.base import guard as _guard
from atoms_otel.otel.exporters import exporter_diagnostics
from tests.support.otlp_grpc import OtlpGrpcReceiver, Pki, make_ca, make_pki

pytestmark = pytest.mark.real

CLIENT_SUBJECT = "CN=otlp-client,O=atoms tests"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the receiver presents."""
    return make_ca(tmp_path_factory.mktemp("wrong-ca"), "some other CA")[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No OTEL_* / ATOMS_OTEL_* variable but the test's own; atoms_otel shut down afterwards."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "ATOMS_OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")  # a refused export gives up quickly
    try:
        yield monkeypatch
    finally:
        atoms_otel.shutdown()


@pytest.fixture
def tls_receiver(pki: Pki) -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver(pki)
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def mtls_receiver(pki: Pki) -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver(pki, require_client_cert=True)
    try:
        yield receiver
    finally:
        receiver.stop()


def _app(env: pytest.MonkeyPatch, variables: dict[str, str]) -> io.StringIO:
    """Configure as a service would, do some work, flush; return what atoms_otel logged.
    The work itself must be untouched by how the export goes."""
    _guard.raise_internal_errors = False
    for name, value in variables.items():
        env.setenv(name, value)
    stream = io.StringIO()
    atoms_otel.configure(
        service_name="tls-service", advanced=AdvancedOptions(log_stream=stream, shutdown_timeout_s=3)
    )
    started = time.perf_counter()
    with atoms_otel.span("checkout", step="pay"):
        get_logger("tls.app").warning("paid")
    Counter("tls_orders_total", "Orders", labels=()).inc()
    assert time.perf_counter() - started < 0.5  # exports happen off the request path
    atoms_otel.force_flush(timeout_s=3)
    return stream


def _failing(stream: io.StringIO, signal: str, endpoint: str) -> list[str]:
    """atoms_otel's one report that ``signal``'s export is failing (as for any other outage)."""
    return [
        line
        for line in stream.getvalue().splitlines()
        if f"OTLP {signal} export to {endpoint} is failing" in line
        and "your application is unaffected" in line
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_server_tls_with_the_ca_delivers_every_signal(
    clean_env: pytest.MonkeyPatch, tls_receiver: OtlpGrpcReceiver, pki: Pki, host: str
) -> None:
    """OTEL_EXPORTER_OTLP_CERTIFICATE verifies the receiver (by IP or DNS name); all three signals arrive."""
    endpoint = f"https://{host}:{tls_receiver.port}"
    stream = _app(
        clean_env, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki.ca)}
    )
    spans = tls_receiver.wait_for("traces", "checkout")
    logs = tls_receiver.wait_for("logs", "paid")
    metrics = tls_receiver.wait_for("metrics", "tls_orders_total")
    for received in (spans, logs, metrics):
        assert received.resource("service.name") == "tls-service"
        assert received.client_subject is None
    assert "is failing" not in stream.getvalue()


def test_mutual_tls_presents_the_client_certificate(
    clean_env: pytest.MonkeyPatch, mtls_receiver: OtlpGrpcReceiver, pki: Pki
) -> None:
    """With the client key and certificate set, the receiver that requires one sees its subject."""
    stream = _app(
        clean_env,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": mtls_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki.ca),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(pki.client_key),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki.client_cert),
        },
    )
    spans = mtls_receiver.wait_for("traces", "checkout")
    assert spans.client_subject == CLIENT_SUBJECT
    assert spans.resource("service.name") == "tls-service"
    assert mtls_receiver.wait_for("logs", "paid").client_subject == CLIENT_SUBJECT
    assert "is failing" not in stream.getvalue()


def test_mutual_tls_without_a_client_certificate_is_refused_and_reported(
    clean_env: pytest.MonkeyPatch, mtls_receiver: OtlpGrpcReceiver, pki: Pki
) -> None:
    """No client certificate: the handshake fails, nothing arrives, one report per signal."""
    endpoint = mtls_receiver.endpoint
    stream = _app(
        clean_env, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki.ca)}
    )
    atoms_otel.shutdown()
    assert mtls_receiver.received() == []
    for signal in ("traces", "metrics", "logs"):
        assert len(_failing(stream, signal, endpoint)) == 1, stream.getvalue()
    assert _guard.internal_error_counts().get("traces export", 0) >= 1
    assert "Traceback" not in stream.getvalue()


def test_per_signal_certificate_wins_over_the_general_one(
    clean_env: pytest.MonkeyPatch, tls_receiver: OtlpGrpcReceiver, pki: Pki, wrong_ca: Path
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE verifies traces; the other signals keep the general CA."""
    endpoint = tls_receiver.endpoint
    stream = _app(
        clean_env,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(wrong_ca),
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": str(pki.ca),
        },
    )
    assert tls_receiver.wait_for("traces", "checkout").resource("service.name") == "tls-service"
    atoms_otel.shutdown()
    assert tls_receiver.received("logs") == [] and tls_receiver.received("metrics") == []
    assert len(_failing(stream, "logs", endpoint)) == 1, stream.getvalue()
    assert _failing(stream, "traces", endpoint) == []


def test_each_tls_option_resolves_on_its_own(
    clean_env: pytest.MonkeyPatch, mtls_receiver: OtlpGrpcReceiver, pki: Pki, wrong_ca: Path
) -> None:
    """A per-signal CA combines with the general client key and certificate (the SDK exporter alone
    reads the client pair only from the variables of the level its CA came from)."""
    stream = _app(
        clean_env,
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": mtls_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(wrong_ca),
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": str(pki.ca),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(pki.client_key),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki.client_cert),
        },
    )
    assert mtls_receiver.wait_for("traces", "checkout").client_subject == CLIENT_SUBJECT
    assert "is failing" not in stream.getvalue()


def test_a_wrong_ca_is_refused_and_reported(
    clean_env: pytest.MonkeyPatch, tls_receiver: OtlpGrpcReceiver, wrong_ca: Path
) -> None:
    """A CA that did not sign the receiver's certificate: nothing is sent, the failure is reported."""
    endpoint = tls_receiver.endpoint
    stream = _app(
        clean_env, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(wrong_ca)}
    )
    atoms_otel.shutdown()
    assert tls_receiver.received() == []
    assert len(_failing(stream, "traces", endpoint)) == 1, stream.getvalue()
    assert _guard.internal_error_counts().get("traces export", 0) >= 1


def test_an_https_endpoint_is_tls_whatever_insecure_says(
    clean_env: pytest.MonkeyPatch, tls_receiver: OtlpGrpcReceiver, pki: Pki
) -> None:
    """The spec: the https scheme takes precedence over OTEL_EXPORTER_OTLP_INSECURE=true, and the
    signal's own CA still verifies the receiver."""
    stream = _app(
        clean_env,
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": tls_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": str(pki.ca),
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        },
    )
    assert tls_receiver.wait_for("traces", "checkout").resource("service.name") == "tls-service"
    assert "is failing" not in stream.getvalue()


def test_an_http_endpoint_is_plaintext_whatever_insecure_says(clean_env: pytest.MonkeyPatch) -> None:
    """The spec: the http scheme takes precedence over OTEL_EXPORTER_OTLP_INSECURE=false."""
    receiver = OtlpGrpcReceiver()
    try:
        stream = _app(
            clean_env,
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "false"},
        )
        assert receiver.wait_for("traces", "checkout").resource("service.name") == "tls-service"
        assert "is failing" not in stream.getvalue()
    finally:
        receiver.stop()


def test_a_host_port_endpoint_is_tls_unless_insecure_says_otherwise(
    clean_env: pytest.MonkeyPatch, tls_receiver: OtlpGrpcReceiver, pki: Pki
) -> None:
    """The spec: for an endpoint without a scheme, OTEL_EXPORTER_OTLP_INSECURE decides. Unset, it
    is TLS (verified with the CA); true, plaintext to a plaintext receiver; false against that
    receiver, the handshake fails and is reported."""
    host_port = f"127.0.0.1:{tls_receiver.port}"
    stream = _app(
        clean_env, {"OTEL_EXPORTER_OTLP_ENDPOINT": host_port, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki.ca)}
    )
    assert tls_receiver.wait_for("traces", "checkout").resource("service.name") == "tls-service"
    assert "is failing" not in stream.getvalue()
    atoms_otel.shutdown()
    plain = OtlpGrpcReceiver()
    try:
        stream = _app(
            clean_env,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": f"127.0.0.1:{plain.port}", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
        )
        assert plain.wait_for("traces", "checkout").resource("service.name") == "tls-service"
        assert "is failing" not in stream.getvalue()
        atoms_otel.shutdown()
        stream = _app(
            clean_env,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"127.0.0.1:{plain.port}",
                "OTEL_EXPORTER_OTLP_INSECURE": "false",
            },
        )
        assert _failing(stream, "traces", f"127.0.0.1:{plain.port}")
    finally:
        plain.stop()


def test_a_host_port_endpoint_is_refused_for_http_protobuf(clean_env: pytest.MonkeyPatch) -> None:
    """OTLP/HTTP needs a URL: configure() fails naming the variable and the signal's protocol."""
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317")
    clean_env.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf")
    with pytest.raises(atoms_otel.ConfigurationError) as raised:
        atoms_otel.configure(service_name="tls-service", advanced=AdvancedOptions(log_stream=io.StringIO()))
    message = str(raised.value)
    assert (
        "OTEL_EXPORTER_OTLP_ENDPOINT='127.0.0.1:4317'" in message
        and "logs are exported with http/protobuf" in message
    )
    assert "traces are exported" not in message  # gRPC signals take it


def test_a_traces_failure_report_quotes_the_grpc_reason_of_this_pipeline(
    clean_env: pytest.MonkeyPatch, tls_receiver: OtlpGrpcReceiver, pki: Pki, wrong_ca: Path
) -> None:
    """The gRPC exporter says "Failed to export traces ..., error code: ..." and the report carries
    that reason; a later pipeline's report never quotes the earlier pipeline's endpoint."""
    exporter_diagnostics.forget("traces")
    variables = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": tls_receiver.endpoint,
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(wrong_ca),
    }
    stream = _app(clean_env, variables)
    (report,) = _failing(stream, "traces", tls_receiver.endpoint)
    assert "error code: StatusCode.UNAVAILABLE" in report and "export failed" not in report
    atoms_otel.shutdown()
    assert exporter_diagnostics.last("traces")  # kept until something replaces the pipeline
    atoms_otel.configure(service_name="next", advanced=AdvancedOptions(log_stream=io.StringIO()))
    assert exporter_diagnostics.last("traces") == ""
