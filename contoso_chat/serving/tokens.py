"""Customer identity for the HTTP service: short-lived tokens signed by the store's sign-in.

A token is `v1.<customer id>.<expiry unix time>.<HMAC-SHA256 signature>`. The store's own sign-in
(outside this app) issues it after the customer logs in; the service only verifies it and takes
the customer id from it. A client cannot pick a customer by writing an id into the request body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.paths import build_dir

TOKEN_VERSION = "v1"
DEFAULT_TTL_S = 8 * 3600


class AuthError(ValueError):
    """The token is missing, malformed, forged or expired."""


def signing_secret(settings: Settings) -> bytes:
    """CONTOSO_API_SECRET, or a random secret kept in build/service/secret for local use (never for a deployment)."""
    configured = settings.secret("CONTOSO_API_SECRET")
    if configured:
        return configured.encode()
    if settings.serving == "azure":
        raise ConfigError("CONTOSO_API_SECRET is not set. A deployment's instances must share one signing key, or "
                          "each rejects the tokens the others accept: set it in .env (provisioning stores it for Azure).")
    path = build_dir() / "service" / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        os.chmod(path, 0o600)
    return path.read_text().strip().encode()


def _signature(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue_token(customer_id: str, secret: bytes, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    """A signed token for one customer (what the store's sign-in would hand to the browser)."""
    expiry = int((now or time.time()) + ttl_s)
    payload = f"{TOKEN_VERSION}.{customer_id}.{expiry}"
    return f"{payload}.{_signature(secret, payload)}"


def verify_token(token: str, secret: bytes, now: float | None = None) -> str:
    """The customer id in a valid token; AuthError otherwise."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_VERSION:
        raise AuthError("The token is malformed; sign in again.")
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3], _signature(secret, payload)):
        raise AuthError("The token's signature is not valid; sign in again.")
    if not parts[2].isdigit() or int(parts[2]) < (now or time.time()):
        raise AuthError("The token has expired; sign in again.")
    return parts[1]


def bearer_token(header: str | None) -> str:
    """The token in an `Authorization: Bearer <token>` header; AuthError if absent or of another scheme."""
    if not header:
        raise AuthError("Sign in first: send an 'Authorization: Bearer <token>' header.")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("Use 'Authorization: Bearer <token>'.")
    return value.strip()


def demo_tokens(settings: Settings, customer_ids: list[str]) -> dict[str, str]:
    """Tokens for local demos and tests, one per customer, as the store's sign-in would issue them."""
    secret = signing_secret(settings)
    return {cid: issue_token(cid, secret) for cid in customer_ids}


def secret_file() -> Path:
    """Where the local signing secret lives (git-ignored, under build/)."""
    return build_dir() / "service" / "secret"
