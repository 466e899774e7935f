"""Local HTTP servers that behave like Supabase (PostgREST) and WorkOS AuthKit, for health checks.

A :class:`FakeService` listens on a free loopback port in a background thread and can be switched
between behaviours at any time: ``up``, ``slow`` (answers after ``delay_s``), ``error`` (HTTP 503),
``bad_json`` (200 with an HTML body), ``empty_jwks`` (a JWKS without keys). The REST endpoints
check the ``apikey`` header like Supabase's gateway does (401 when it is wrong).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUPABASE_KEY = "sb-anon-key-0123456789abcdef"


class FakeService:
    def __init__(self, *, api_key: str = SUPABASE_KEY) -> None:
        self.api_key = api_key
        self.mode = "up"
        self.delay_s = 0.0
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append({"path": path, "headers": headers})
        if self.mode == "slow":
            time.sleep(self.delay_s)
        if self.mode == "error":
            return 503, b'{"message": "upstream unavailable"}'
        if self.mode == "bad_json":
            return 200, b"<html><body>maintenance</body></html>"
        route = path.split("?", 1)[0]
        if route.startswith("/rest/v1/"):
            if headers.get("apikey") != self.api_key:
                return 401, b'{"message": "Invalid API key"}'
            body: Any = {"swagger": "2.0", "paths": {}} if route == "/rest/v1/" else []
            return 200, json.dumps(body).encode()
        if route == "/.well-known/openid-configuration":
            return 200, json.dumps({"issuer": self.url, "jwks_uri": f"{self.url}/oauth2/jwks"}).encode()
        if route.startswith("/sso/jwks/") or route == "/oauth2/jwks":
            keys = [] if self.mode == "empty_jwks" else [{"kty": "RSA", "kid": "k1", "e": "AQAB", "n": "xyz"}]
            return 200, json.dumps({"keys": keys}).encode()
        return 404, b'{"message": "not found"}'


def _handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = service.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_service(**options: Any) -> Iterator[FakeService]:
    service = FakeService(**options).start()
    try:
        yield service
    finally:
        service.stop()
