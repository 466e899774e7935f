"""The live view at ``GET /observability``: one self-contained HTML page and its security headers.

The page is static. It embeds no data and never the token: its own script polls
``/api/observability/dashboard`` every 3 s and renders every value with ``textContent`` (route
names and error messages come from clients). There is no CDN, no build step and no third-party
code: hand-written JavaScript and inline SVG charts, in ``static/observability.html``.

Security headers, on every response of the page:

- a Content-Security-Policy that allows only this response's own ``<script>`` and ``<style>``
  (a fresh nonce each time), ``fetch`` to the same origin, and nothing else — no external
  sources, no inline event handlers, no framing — and enforces Trusted Types, so an HTML string
  assigned to ``innerHTML`` throws instead of rendering;
- ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` (the URL may carry the token
  once; see below), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``.

With an ``api_token`` set, the page needs it like the API does: as ``Authorization: Bearer``
(curl, or a proxy that adds the header), posted by the page's own form, or as ``?token=`` in a
link. The page's script keeps the token in ``sessionStorage`` (this tab only), removes it from the
address bar and sends it as ``Authorization: Bearer`` on its API calls. Without a valid token a
browser gets a 401 with a small form that asks for it and *posts* it; after a reload in the same
tab the form posts the stored token again by itself, so the token is never put back in a URL
(where access logs, history and referrers would keep it).
"""

from __future__ import annotations

import functools
import secrets
from importlib.resources import files
from typing import Final

__all__ = ["content_security_policy", "new_nonce", "render_login", "render_page", "security_headers"]

_NONCE_MARK: Final = "{{nonce}}"
_REJECTED_MARK: Final = "{{rejected}}"


@functools.cache
def _template(name: str) -> str:
    return (files("atoms_otel.endpoints") / "static" / name).read_text(encoding="utf-8")


def new_nonce() -> str:
    """A fresh CSP nonce (128 bits, URL-safe base64: safe inside an HTML attribute)."""
    return secrets.token_urlsafe(16)


def content_security_policy(nonce: str) -> str:
    """Only this response's own script and style, same-origin fetches and an empty ``data:`` favicon
    (so browsers do not ask for ``/favicon.ico``); nothing else."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'nonce-{nonce}'",
            "connect-src 'self'",
            "img-src data:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        )
    )


def security_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def render_page(nonce: str) -> str:
    """The live view's HTML, with ``nonce`` on its script and style."""
    return _template("observability.html").replace(_NONCE_MARK, nonce)


def render_login(nonce: str, *, rejected: bool = False) -> str:
    """The 401 page for browsers: a form that asks for the API token (saying so when one was refused)."""
    return (
        _template("login.html")
        .replace(_NONCE_MARK, nonce)
        .replace(_REJECTED_MARK, "" if rejected else "hidden")
    )
