"""Serverless mode: every request's spans, logs and metrics are exported before its response ends.

On Vercel and AWS Lambda the platform freezes (or discards) the process as soon as the response is
delivered. Whatever is still waiting in a batch buffer is then sent minutes later, when the
instance happens to thaw, or never. And a pull-based ``/metrics`` endpoint is meaningless there:
each scrape reaches whichever short-lived instance answers, which holds only the few requests it
served itself, and its counters vanish with it — so counters restart at random and rates are
nonsense. On serverless, OTLP push to a Collector is the path for metrics as well as for traces
and logs; ``sum by (...)`` over the Collector's series adds up every instance.

``configure(app=app)`` installs :class:`ServerlessFlushMiddleware` when serverless mode is on
(automatically when ``VERCEL`` or ``AWS_LAMBDA_FUNCTION_NAME`` is set, or with
``configure(serverless=True)`` / ``ATOMS_OTEL_SERVERLESS=true``). It holds back the final chunk
of each HTTP response until the application has returned — so the request's server span and
everything it logged have ended — then flushes every signal, bounded by a deadline, and only then
lets the final chunk go. The status line, headers and earlier chunks of a streamed body are never
held. A flush that fails or overruns the deadline is logged once and counted; the response goes
out regardless.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoms_otel.base import guard as _guard
from atoms_otel.core.telemetry import Telemetry

__all__ = ["DEFAULT_FLUSH_TIMEOUT_S", "ServerlessFlushMiddleware"]

DEFAULT_FLUSH_TIMEOUT_S = 2.0
"""How long a response may wait for the flush. Well under the platforms' function timeouts; an
export still running at the deadline goes on in the background, unawaited."""


class ServerlessFlushMiddleware:
    """Pure ASGI middleware: flush telemetry before each HTTP response completes.

    Installed by ``configure(app=app)`` in serverless mode; add it yourself with
    ``app.add_middleware(ServerlessFlushMiddleware)`` (outermost, so it runs after every other
    middleware has finished its span). Lifespan and WebSocket traffic pass straight through.
    """

    def __init__(
        self, app: ASGIApp, *, telemetry: Telemetry, flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S
    ) -> None:
        if flush_timeout_s <= 0:
            raise ValueError("flush_timeout_s must be positive")
        self.app = app
        self.telemetry = telemetry
        self.flush_timeout_s = flush_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        final: list[Message] = []

        async def hold_final_chunk(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                final.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_final_chunk)
        except Exception:
            # The user's exception goes on unchanged; the response it produced still completes.
            await self._flush()
            if final:
                with _guard.guard("serverless response release"):
                    await send(final[0])
            raise
        await self._flush()
        if final:
            await send(final[0])

    async def _flush(self) -> None:
        telemetry = self.telemetry
        if not telemetry.enabled:
            return
        flushed = False
        try:
            # force_flush blocks on network I/O: off the event loop, abandoned at the deadline.
            with anyio.move_on_after(self.flush_timeout_s + 0.25):
                flushed = await anyio.to_thread.run_sync(
                    telemetry.force_flush, self.flush_timeout_s, abandon_on_cancel=True
                )
        except Exception as exc:
            _guard.report_internal_error("serverless flush", exc)
            return
        if not flushed:
            _guard.warn_once(
                "serverless flush",
                f"telemetry was not exported within {self.flush_timeout_s:g} s before the response "
                "ended; the collector is slow or unreachable, and data buffered for this request "
                "may be lost when the platform freezes the process",
            )
