"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign, verify, make a secret.

A signed request carries ``webhook-id`` (the payload id, the same on every retry),
``webhook-timestamp`` (seconds since the epoch, fresh on every attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the
base64-decoded part of a ``whsec_<base64>`` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Final

from atoms_otel.base.parsers import WEBHOOK_SECRET_PREFIX
from atoms_otel.base.parsers import parse_webhook_secret as parse_secret

__all__ = ["generate_webhook_secret", "parse_secret", "sign", "signature_headers", "verify_signature"]

PREFIX: Final = WEBHOOK_SECRET_PREFIX


def generate_webhook_secret() -> str:
    """A new random secret in the ``whsec_<base64>`` form (32 bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(key: bytes, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = 300.0
) -> bool:
    """For receivers: True when ``body`` was signed with ``secret`` within ``tolerance_s``.

    ``headers`` may be any case-insensitive or lowercase mapping of the request headers. Any of
    several space-separated ``v1,`` signatures may match (secret rotation).
    """
    key = parse_secret(secret)
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp", "")
    offered = lowered.get("webhook-signature", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance_s:
        return False
    expected = sign(key, msg_id, int(stamp), body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered.split())
