"""Per-signal OTLP options and the SDK's variables, against real receivers: a real collector (rotel)
taking traces by gRPC and the rest by HTTP, and a loopback HTTPS OTLP receiver with its own CA that
records what each export request carried."""

from __future__ import annotations

import gzip
import os
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.collector import Collector

pytestmark = pytest.mark.real

SCRIPT = textwrap.dedent(
    """
    import atoms_otel
    from atoms_otel import Counter, get_logger

    atoms_otel.configure(service_name="per-signal")
    for number in range(int(__import__("sys").argv[1])):
        with atoms_otel.span(f"work {number}", detail="x" * 50):
            get_logger("per.signal").warning("log %d", number)
    Counter("per_signal_total", "A count", labels=()).inc()
    atoms_otel.shutdown()
    """
)


def _run(tmp_path: Path, env: dict[str, str], spans: int = 1) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "service.py"
    script.write_text(SCRIPT)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_"))}
    return subprocess.run(
        [sys.executable, str(script), str(spans)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_signal_takes_its_own_protocol_and_compression(collector: Collector, tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.http_endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip",
            "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "3000",
        },
    )
    assert result.returncode == 0, result.stderr
    assert collector.wait_for(lambda c: [s for s in c.spans() if s["name"] == "work 0"])
    assert collector.wait_for(lambda c: [r for r in c.logs() if r["body"] == "log 0"])
    assert collector.wait_for(lambda c: [m for m in c.metrics() if m["name"] == "per_signal_total"])
    assert "export" not in result.stderr.lower()


@dataclass
class Recorder:
    """What each OTLP/HTTP request carried: path, headers, body size."""

    requests: list[tuple[str, dict[str, str], int]] = field(default_factory=list)

    def of(self, path: str) -> list[tuple[str, dict[str, str], int]]:
        return [r for r in self.requests if r[0] == path]


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl, as an operator would)."""
    names = ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    ca_key, ca, key, csr, cert = (directory / name for name in names)
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "2", "-subj", "/CN=atoms test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


@pytest.fixture
def https_receiver(tmp_path: Path) -> Iterator[tuple[str, Path, Recorder]]:
    ca, cert, key = _certificates(tmp_path)
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.requests.append((self.path, headers, len(body)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca, recorder
    finally:
        server.shutdown()
        server.server_close()


def test_certificate_headers_and_compression_reach_the_receiver(
    https_receiver: tuple[str, Path, Recorder], tmp_path: Path
) -> None:
    endpoint, ca, recorder = https_receiver
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca),
        "OTEL_EXPORTER_OTLP_HEADERS": "x-general=g",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=t1",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
    }
    result = _run(tmp_path, env, spans=6)
    assert result.returncode == 0, result.stderr
    traces, logs = recorder.of("/v1/traces"), recorder.of("/v1/logs")
    assert traces and logs and recorder.of("/v1/metrics")
    for _, headers, _ in traces:
        assert headers["x-tenant"] == "t1" and "x-general" not in headers
        assert headers["content-encoding"] == "gzip"
    assert all(h["x-general"] == "g" and "content-encoding" not in h for _, h, _ in logs)
    # OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2 reached the SDK's batch processor: 6 spans, 3 requests.
    assert len(traces) == 3


def test_without_the_ca_the_export_is_refused_and_reported(
    https_receiver: tuple[str, Path, Recorder], tmp_path: Path
) -> None:
    endpoint, _, recorder = https_receiver
    result = _run(tmp_path, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces",
                             "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2000"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert recorder.of("/v1/traces") == []
    assert "certificate" in (result.stdout + result.stderr).lower()


def test_span_limits_from_the_environment_apply(tmp_path: Path) -> None:
    script = tmp_path / "limits.py"
    script.write_text(
        textwrap.dedent(
            """
            import io, atoms_otel
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
            from atoms_otel import AdvancedOptions
            spans = InMemorySpanExporter()
            atoms_otel.configure(advanced=AdvancedOptions(span_exporters=[spans], log_stream=io.StringIO()))
            with atoms_otel.span("limited", note="abcdefghijklmnop"):
                pass
            atoms_otel.shutdown()
            print(spans.get_finished_spans()[0].attributes["note"])
            """
        )
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ATOMS_OTEL_"))}
    result = subprocess.run(
        [sys.executable, str(script)],
        env={**clean, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "abcde"
