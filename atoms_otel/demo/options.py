"""The demo's options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["CHECK_DURATION_S", "DEFAULT_PORT", "DEFAULT_RATE", "DemoOptions"]

DEFAULT_PORT: Final = 8000
DEFAULT_RATE: Final = 5.0
CHECK_DURATION_S: Final = 5.0


@dataclass(frozen=True)
class DemoOptions:
    port: int = DEFAULT_PORT
    """TCP port on 127.0.0.1; 0 picks a free one."""
    duration_s: float | None = None
    """Stop after this many seconds; ``None`` runs until Ctrl-C (``--check``: 5 s)."""
    rate: float = DEFAULT_RATE
    """Synthetic requests per second (at most 50)."""
    check: bool = False
    """Check every endpoint at the end and exit 1 if one misbehaves."""
    token: str | None = None
    """Protect the observability API and page with this bearer token."""
    log_level: str = "WARNING"
    """Level of the service's JSON logs (on stderr)."""
