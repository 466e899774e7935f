"""Bearer-token checks for the observability API, ``/metrics`` and the live view.

They fail closed: once a configuration with ``api_token`` was installed, the protected endpoints
refuse every request after ``shutdown()`` (the token can no longer be checked), until a
configure() without a token says otherwise. Every refusal carries ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from atoms_otel.core.telemetry import Telemetry

__all__ = ["bearer", "metrics_token_check", "token_check", "token_matches", "unauthorized"]

bearer = HTTPBearer(auto_error=False, description="The api_token / ATOMS_OTEL_API_TOKEN setting.")


def token_matches(presented: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return hmac.compare_digest((presented or "").encode("utf-8", "replace"), token.encode("utf-8"))


def unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="missing or invalid bearer token",
        headers={"WWW-Authenticate": 'Bearer realm="atoms_otel"', "X-Content-Type-Options": "nosniff"},
    )


def _presented(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


def token_check(telemetry: Telemetry) -> Callable[..., None]:
    """A dependency enforcing the ``api_token`` setting; open when no token was ever set."""

    def require_api_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if not telemetry.configured:
            if telemetry.token_required:
                raise unauthorized()  # shut down after a token was set: fail closed
            return
        token = telemetry.settings.api_token
        if token and not token_matches(_presented(credentials), token):
            raise unauthorized()

    return require_api_token


def metrics_token_check(telemetry: Telemetry) -> Callable[..., None]:
    """A dependency enforcing the token on ``/metrics`` when ``protect_metrics`` is set."""

    def require_metrics_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if not telemetry.configured:
            if telemetry.metrics_token_required:
                raise unauthorized()
            return
        settings = telemetry.settings
        token = settings.api_token
        if settings.protect_metrics and token and not token_matches(_presented(credentials), token):
            raise unauthorized()

    return require_metrics_token
