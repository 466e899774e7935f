"""Alert coalescing: at most one alert per fingerprint per window, and a count of the rest.

The first alert with a fingerprint goes out at once and opens a window. Identical alerts inside the
window are held back and counted; when the window closes, if any were held back, the latest of them
goes out once more with ``data["repeated"]`` (how many were held back) and ``data["window_s"]``,
and a new window opens. So a storm produces one alert per window, and no occurrence goes uncounted.
At most ``max_keys`` fingerprints are tracked; beyond that, alerts with new fingerprints are not
coalesced (they are sent) until windows close.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Hashable
from dataclasses import dataclass

from atoms_otel.plugins.webhooks._model import WebhookPayload

__all__ = ["Coalescer"]


@dataclass
class _Window:
    closes_at: float
    held: int = 0
    latest: WebhookPayload | None = None


class Coalescer:
    """Thread-safe; the caller supplies the monotonic clock reading."""

    def __init__(self, window_s: float, *, max_keys: int = 1000) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, key: Hashable, payload: WebhookPayload, now: float) -> bool:
        """True: send ``payload`` now. False: it was held back and counted."""
        if self.window_s <= 0:
            return True
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.closes_at:
                if window is None and len(self._windows) >= self.max_keys:
                    return True
                if window is not None and window.held:
                    return self._hold(window, payload)  # expire() has not run yet: keep counting
                self._windows[key] = _Window(closes_at=now + self.window_s)
                return True
            return self._hold(window, payload)

    @staticmethod
    def _hold(window: _Window, payload: WebhookPayload) -> bool:
        window.held += 1
        window.latest = payload
        return False

    def next_deadline(self) -> float | None:
        """When the earliest window closes (monotonic), or ``None``."""
        with self._lock:
            return min((w.closes_at for w in self._windows.values()), default=None)

    def expire(self, now: float, *, all_windows: bool = False) -> list[WebhookPayload]:
        """Close the windows that are due (or every window) and return the summaries to send."""
        summaries: list[WebhookPayload] = []
        with self._lock:
            for key, window in list(self._windows.items()):
                if not all_windows and now < window.closes_at:
                    continue
                if window.held and window.latest is not None:
                    summaries.append(self._summary(window.latest, window.held))
                    if not all_windows:
                        self._windows[key] = _Window(closes_at=now + self.window_s)
                        continue
                del self._windows[key]
        return summaries

    def _summary(self, latest: WebhookPayload, held: int) -> WebhookPayload:
        data = {**latest.data, "repeated": held, "window_s": self.window_s}
        message = f"{latest.message} (repeated {held} more time{'s' if held != 1 else ''})"
        return dataclasses.replace(latest, data=data, message=message)
