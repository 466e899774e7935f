"""Reading a request's headers once: the caller's correlation id and trace context.

The correlation id comes from ``X-Correlation-ID`` (or its alias ``X-Request-ID``) and is trusted
only when it is short and made of safe characters — otherwise a client could inject log lines,
headers or huge values — else a new one is generated. The W3C ``traceparent``/``tracestate`` and
``baggage`` headers continue the caller's trace through the globally configured propagators,
which are only invoked when one of their headers is present (most requests carry none).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Final

from opentelemetry import propagate
from opentelemetry.context import Context

__all__ = [
    "CORRELATION_HEADER",
    "ExcludedPaths",
    "IncomingHeaders",
    "new_request_id",
    "read_headers",
    "valid_correlation_id",
]

CORRELATION_HEADER: Final = b"x-correlation-id"
REQUEST_ID_HEADER: Final = b"x-request-id"
MAX_CORRELATION_ID_LENGTH: Final = 128
_SAFE_ID: Final = re.compile(rf"[A-Za-z0-9._:\-]{{1,{MAX_CORRELATION_ID_LENGTH}}}")


def valid_correlation_id(value: str) -> bool:
    """Letters, digits, ``-``, ``_``, ``.``, ``:``; 1 to 128 characters."""
    return _SAFE_ID.fullmatch(value) is not None


def new_request_id() -> str:
    """A fresh correlation id: 32 lowercase hex characters.

    Uses the process PRNG (re-seeded after fork) rather than ``uuid4``: ids need to be unique,
    not secret, and this is five times cheaper on the request path.
    """
    return f"{random.getrandbits(128):032x}"


class IncomingHeaders:
    """What the middleware needs from the request headers, read in one pass."""

    __slots__ = ("carrier", "correlation_id", "host", "user_agent", "via_request_id")

    def __init__(self) -> None:
        self.correlation_id: str | None = None
        self.via_request_id = False
        self.carrier: dict[str, str] | None = None
        self.host: bytes | None = None
        self.user_agent: bytes | None = None

    def parent_context(self) -> Context | None:
        """The caller's trace context and baggage, or ``None`` when the caller sent none."""
        if self.carrier is None:
            return None
        return propagate.extract(self.carrier)


_fields_cache: tuple[object, frozenset[bytes]] = (None, frozenset())


def _propagator_fields() -> frozenset[bytes]:
    """Header names the global propagators read (``traceparent``, ``tracestate``, ``baggage``)."""
    global _fields_cache
    textmap = propagate.get_global_textmap()
    cached_for, fields = _fields_cache
    if cached_for is not textmap:
        fields = frozenset(f.lower().encode("latin-1") for f in textmap.fields)
        _fields_cache = (textmap, fields)
    return fields


def read_headers(raw: Iterable[tuple[bytes, bytes]]) -> IncomingHeaders:
    """One pass over the raw ASGI headers."""
    found = IncomingHeaders()
    fields = _propagator_fields()
    request_id: bytes | None = None
    correlation: bytes | None = None
    for name, value in raw:
        if name == CORRELATION_HEADER:
            correlation = value
        elif name == REQUEST_ID_HEADER:
            request_id = value
        elif name == b"host":
            found.host = value
        elif name == b"user-agent":
            found.user_agent = value
        elif name in fields:
            if found.carrier is None:
                found.carrier = {}
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            previous = found.carrier.get(key)
            # Repeated baggage headers are one list (W3C); the propagator reads a single value.
            found.carrier[key] = f"{previous},{text}" if previous is not None else text
    chosen = correlation if correlation is not None else request_id
    if chosen is not None and len(chosen) <= MAX_CORRELATION_ID_LENGTH:
        text = chosen.decode("latin-1")
        if valid_correlation_id(text):
            found.correlation_id = text
            found.via_request_id = correlation is None
    return found


class ExcludedPaths:
    """Paths without spans: exact paths, or prefixes written with a trailing ``*``."""

    __slots__ = ("_exact", "_prefixes", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._exact = frozenset(p for p in self.patterns if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in self.patterns if p.endswith("*"))

    def __call__(self, path: str) -> bool:
        return path in self._exact or (bool(self._prefixes) and path.startswith(self._prefixes))
