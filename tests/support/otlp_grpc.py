"""A real OTLP/gRPC receiver on loopback, with TLS (and optionally mTLS), and the openssl-made
certificates it needs.

:class:`OtlpGrpcReceiver` is a grpcio server running the trace, metrics and logs services from
``opentelemetry-proto``; it records every export request it accepts, with the subject of the
client certificate the peer presented (mTLS). :func:`make_pki` signs a server and a client
certificate with a fresh CA, using the ``openssl`` binary the way an operator would.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

from tests.support.net import require_binary

__all__ = ["OtlpGrpcReceiver", "Pki", "Received", "make_ca", "make_pki"]


@dataclass(frozen=True)
class Pki:
    """A CA and the server and client certificates it signed (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    openssl = require_binary("openssl", "the openssl binary")
    subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "atoms test CA") -> tuple[Path, Path]:
    """A self-signed CA in ``directory``: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", f"/CN={name}")  # fmt: skip
    return cert, key


def _issue(ca: tuple[Path, Path], directory: Path, stem: str, subject: str, extensions: str) -> Path:
    """A certificate for ``subject`` signed by ``ca``; its key is ``{stem}.key`` next to it."""
    key, csr, cert, ext = (directory / f"{stem}.{suffix}" for suffix in ("key", "csr", "pem", "ext"))
    ext.write_text(extensions)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return cert


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 / localhost and a client certificate, all signed by it."""
    ca = make_ca(directory)
    server = _issue(ca, directory, "server", "/CN=127.0.0.1",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    client = _issue(ca, directory, "client", "/O=atoms tests/CN=otlp-client",
                    "extendedKeyUsage=clientAuth\n")  # fmt: skip
    return Pki(ca[0], server, directory / "server.key", client, directory / "client.key")


@dataclass(frozen=True)
class Received:
    """One export request the receiver accepted."""

    signal: str
    """``traces``, ``metrics`` or ``logs``."""
    request: Any
    """The decoded ``Export{Trace,Metrics,Logs}ServiceRequest``."""
    client_subject: str | None
    """The subject of the client certificate the peer presented (mTLS), else ``None``."""

    def resource(self, key: str) -> Any:
        """The first resource's attribute ``key`` (its string value)."""
        resources = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}
        first = getattr(self.request, resources[self.signal])[0].resource
        return next(a.value.string_value for a in first.attributes if a.key == key)

    def names(self) -> list[str]:
        """Span names, metric names or log bodies, in the order they came."""
        if self.signal == "traces":
            return [s.name for rs in self.request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        if self.signal == "metrics":
            found = self.request.resource_metrics
            return [m.name for rm in found for sm in rm.scope_metrics for m in sm.metrics]
        found = self.request.resource_logs
        return [r.body.string_value for rl in found for sl in rl.scope_logs for r in sl.log_records]


class OtlpGrpcReceiver:
    """An OTLP/gRPC server on ``127.0.0.1`` (a free port): plaintext without ``pki``, TLS with it,
    and mutual TLS when ``require_client_cert`` is set. Call :meth:`stop` when done."""

    def __init__(self, pki: Pki | None = None, *, require_client_cert: bool = False) -> None:
        self._received: list[Received] = []
        self._lock = threading.Condition()
        self._executor = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc")
        self._server = grpc.server(self._executor)
        services: tuple[tuple[Callable[[Any, Any], None], type[Any], str, Callable[[], Any]], ...] = (
            (trace_grpc.add_TraceServiceServicer_to_server, trace_grpc.TraceServiceServicer,
             "traces", trace_pb2.ExportTraceServiceResponse),
            (metrics_grpc.add_MetricsServiceServicer_to_server, metrics_grpc.MetricsServiceServicer,
             "metrics", metrics_pb2.ExportMetricsServiceResponse),
            (logs_grpc.add_LogsServiceServicer_to_server, logs_grpc.LogsServiceServicer,
             "logs", logs_pb2.ExportLogsServiceResponse),
        )  # fmt: skip
        for add, base, signal, response in services:
            add(self._servicer(base, signal, response), self._server)
        if pki is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            credentials = grpc.ssl_server_credentials(
                [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
                root_certificates=pki.ca.read_bytes() if require_client_cert else None,
                require_client_auth=require_client_cert,
            )
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.endpoint = f"{'https' if pki else 'http'}://127.0.0.1:{self.port}"
        self._server.start()

    def _servicer(self, base: type[Any], signal: str, response: Callable[[], Any]) -> Any:
        receiver = self

        class Servicer(base):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:  # the service's method name
                receiver._record(Received(signal, request, _client_subject(context)))
                return response()

        return Servicer()

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()

    def received(self, signal: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if signal is None or r.signal == signal]

    def wait_for(self, signal: str, name: str, timeout: float = 5.0) -> Received:
        """The first ``signal`` request carrying ``name`` (see :meth:`Received.names`); fails the test
        with what did arrive when none does within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self._received if r.signal == signal and name in r.names()]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r.signal, r.names()) for r in self._received]
                    raise AssertionError(f"no {signal} request with {name!r} within {timeout}s; got {seen}")
                self._lock.wait(remaining)

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)
        self._executor.shutdown(wait=True, cancel_futures=True)  # grpc.server leaves its pool running


def _client_subject(context: Any) -> str | None:
    """The peer's client-certificate subject, from gRPC's auth context (mTLS only)."""
    auth = context.auth_context()
    subject = auth.get("x509_subject") or auth.get("x509_common_name")
    return subject[0].decode() if subject else None
