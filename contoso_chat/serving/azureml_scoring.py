"""The container's entry point on Azure ML (and in `docker run`): the HTTP service plus the endpoint's POST /score.

Azure ML routes the endpoint's scoring requests to `/score` and its probes to `/health` and
`/ready` (see contoso_chat.azure.endpoint). The endpoint's own key authenticates the calling
website, so the customer's sign-in token travels in the body:

    POST /score  {"question": ..., "chat_history": [...], "customer_token": ...}

`/score` is the service's POST /api/chat with the token moved into the Authorization header, so
validation, limits, status codes (4xx for bad input) and the error shape `{"error": {"field",
"message"}}` are the service's own. At start-up the app refuses to run without
CONTOSO_API_SECRET (each instance would otherwise sign with its own random key), and sends
traces to Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set. Content Safety is
checked by the assistant when AZURE_CONTENT_SAFETY_ENDPOINT is set.

    uvicorn contoso_chat.serving.azureml_scoring:app_from_environment --factory --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from fastapi import FastAPI

from contoso_chat.backends.settings import ConfigError, Settings, load_settings
from contoso_chat.serving.api import Limits, create_app, error_response

SCORE_PATH = "/score"
CHAT_PATH = "/api/chat"


def require_shared_secret(settings: Settings) -> None:
    """Stop at start-up when CONTOSO_API_SECRET is missing: a per-instance secret would reject other instances' tokens."""
    if not settings.secret("CONTOSO_API_SECRET"):
        raise ConfigError(
            "CONTOSO_API_SECRET is not set, so this instance cannot check the store's sign-in tokens. On Azure ML, "
            "provisioning stores it in the project connection 'contoso-api-secret' and the deployment injects it; "
            "for `docker run`, put it in the --env-file.")


def start_production_tracing(settings: Settings) -> str | None:
    """Azure Monitor tracing when APPLICATIONINSIGHTS_CONNECTION_STRING is set (no local trace service in a container)."""
    if settings.tracing != "azure":
        return None
    from contoso_chat.backends.tracing import start_tracing

    return start_tracing(settings)


@dataclass(frozen=True)
class Refusal:
    """A /score body refused before it reaches the service: status, message and the field at fault."""

    status: int
    message: str
    field: str


class ScoreRoute:
    """ASGI middleware: POST /score with `customer_token` in the body becomes POST /api/chat with a bearer token."""

    def __init__(self, app, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != SCORE_PATH:
            await self.app(scope, receive, send)
            return
        body, complete = await self._read(receive)
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"authorization", b"content-length")]
        if complete and scope["method"] == "POST":
            moved = self._token_to_header(body)
            if isinstance(moved, Refusal):
                response = error_response(moved.status, moved.message, moved.field)
                await response(scope, receive, send)
                return
            body, token = moved
            if token is not None:
                headers.append((b"authorization", f"Bearer {token}".encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        forwarded = {**scope, "path": CHAT_PATH, "raw_path": CHAT_PATH.encode(), "headers": headers}
        await self.app(forwarded, self._replay(body), send)

    async def _read(self, receive) -> tuple[bytes, bool]:
        """The body, read up to the size limit; `complete` is False when it was longer (the service answers 413)."""
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                return body, False
            if not message.get("more_body", False):
                return body, True

    @staticmethod
    def _token_to_header(body: bytes) -> tuple[bytes, str | None] | Refusal:
        """(body without the token, token), or the refusal of a body /score cannot take."""
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return body, None  # the service answers 400 with its own message
        if not isinstance(payload, dict):
            return Refusal(422, "The body must be a JSON object with 'question', 'chat_history' and 'customer_token'.",
                           "body")
        token = payload.pop("customer_token", None)
        if token is None:
            return Refusal(401, "Sign in first: send the customer's sign-in token as 'customer_token' in the body.",
                           "customer_token")
        if not isinstance(token, str) or not token.strip():
            return Refusal(422, "'customer_token' must be the sign-in token, as text.", "customer_token")
        return json.dumps(payload).encode(), token.strip()

    @staticmethod
    def _replay(body: bytes) -> Callable:
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return receive


def create_scoring_app(settings: Settings | None = None, assistant_factory: Callable[[], object] | None = None,
                       limits: Limits = Limits()) -> FastAPI:
    """The service with the /score route, after the start-up checks (shared secret, tracing)."""
    settings = settings or load_settings()
    require_shared_secret(settings)
    start_production_tracing(settings)
    app = create_app(assistant_factory, settings, limits)
    app.add_middleware(ScoreRoute, max_body_bytes=limits.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment (for `uvicorn --factory` in the container image)."""
    from contoso_chat.backends.environment import prepare_offline_environment

    prepare_offline_environment()
    return create_scoring_app()
