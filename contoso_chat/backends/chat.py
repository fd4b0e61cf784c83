"""The chat model for the configured backend, as an `openai` client, and what its errors mean.

Every model call in the project goes through the `openai` SDK, so the same code runs on the
local llama.cpp server, Azure OpenAI and OpenAI.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import openai

from contoso_chat.backends.azure_credentials import bearer_token_provider
from contoso_chat.backends.local_model import ensure_local_model
from contoso_chat.backends.settings import ConfigError, Settings

LOCAL_API_KEY = "local-no-key-needed"


@dataclass(frozen=True)
class ChatTarget:
    """An `openai` client plus the model (or deployment) name to pass to it."""

    client: openai.OpenAI
    model: str
    backend: str
    host: str


def azure_openai_client(settings: Settings) -> openai.AzureOpenAI:
    """An Azure OpenAI client: the key when AZURE_OPENAI_API_KEY is set, otherwise Entra ID."""
    key = settings.secret("AZURE_OPENAI_API_KEY")
    common = dict(
        azure_endpoint=settings.get("AZURE_OPENAI_ENDPOINT"),
        api_version=settings.get("AZURE_OPENAI_API_VERSION"),
        max_retries=2,
        timeout=60.0,
    )
    if key:
        return openai.AzureOpenAI(api_key=key, **common)
    provider = bearer_token_provider(managed_identity_client_id=settings.get("AZURE_CLIENT_ID"))
    return openai.AzureOpenAI(azure_ad_token_provider=provider, **common)


def chat_target(settings: Settings, log=print) -> ChatTarget:
    """The chat client and model for the configured backend (starts the local server if needed)."""
    if settings.chat == "azure":
        endpoint = settings.get("AZURE_OPENAI_ENDPOINT")
        return ChatTarget(azure_openai_client(settings), settings.get("AZURE_OPENAI_CHAT_DEPLOYMENT"), "azure",
                          urlparse(endpoint).hostname or endpoint)
    if settings.chat == "openai":
        return ChatTarget(openai.OpenAI(api_key=settings.secret("OPENAI_API_KEY"), max_retries=2, timeout=60.0),
                          settings.get("OPENAI_CHAT_MODEL"), "openai", "api.openai.com")
    server = ensure_local_model(settings, log=log)
    client = openai.OpenAI(base_url=server.base_url, api_key=LOCAL_API_KEY, max_retries=0, timeout=120.0)
    return ChatTarget(client, server.alias, "local", f"127.0.0.1:{server.port}")


def json_response_format(backend: str, schema: dict, name: str = "answer") -> dict:
    """`response_format` for JSON that matches a schema: a llama.cpp grammar locally, structured outputs in the cloud."""
    if backend == "local":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": _strict_schema(schema), "strict": True}}


def _strict_schema(schema):
    """The schema without the string-length keywords that structured outputs' strict mode does not accept."""
    if isinstance(schema, dict):
        return {k: _strict_schema(v) for k, v in schema.items() if k not in ("maxLength", "minLength")}
    if isinstance(schema, list):
        return [_strict_schema(v) for v in schema]
    return schema


def check_chat(target: ChatTarget) -> str:
    """Send a one-token request; raise a ConfigError naming the host and the fallback if it fails."""
    try:
        reply = target.client.chat.completions.create(
            model=target.model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=1, temperature=0
        )
    except openai.APIConnectionError:
        raise ConfigError(
            f"Cannot reach the {target.backend} chat endpoint at {target.host}. Check the endpoint setting and "
            "your network, or set CHAT_BACKEND=local in .env to use the local model."
        ) from None
    except openai.AuthenticationError:
        raise ConfigError(
            f"{target.host} refused the credentials. Check the API key (or `az login`), "
            "or set CHAT_BACKEND=local in .env to use the local model."
        ) from None
    except openai.NotFoundError:
        raise ConfigError(
            f"{target.host} has no model or deployment named {target.model!r}. Check the deployment name "
            "setting, or set CHAT_BACKEND=local in .env to use the local model."
        ) from None
    return reply.model


def explain_model_error(error: Exception) -> str:
    """One sentence that says what went wrong with a model call and what to do about it."""
    body = getattr(error, "body", None)
    code = getattr(error, "code", None) or (body.get("code") if isinstance(body, dict) else None)
    text = str(error).lower()
    if isinstance(error, openai.BadRequestError) and (code == "context_length_exceeded" or "context length" in text):
        return ("The prompt is longer than the model's context window. Send less: fewer or shorter documents, "
                "a shorter history, or a smaller max_tokens; or use a model with a larger window.")
    if is_content_filter_error(error):
        return ("The content filter blocked this request or its answer. Rephrase the question; the filter "
                "results say which category was triggered.")
    if isinstance(error, openai.RateLimitError):
        return "The model's rate limit or quota was reached. Wait a moment and retry, or raise the deployment's quota."
    if isinstance(error, openai.APITimeoutError):
        return "The model did not answer in time. Retry; if it keeps happening, lower max_tokens or the load."
    if isinstance(error, openai.APIConnectionError):
        return "The model endpoint cannot be reached. Check that it is running (make setup / make stop) or its URL."
    if isinstance(error, openai.AuthenticationError):
        return "The model endpoint refused the credentials. Check the API key or run `az login`."
    return f"The model call failed ({type(error).__name__}). See the server log or the provider's status page."


def is_content_filter_error(error: Exception) -> bool:
    """True for Azure OpenAI's refusal of a prompt by its content filter (a 400 with code 'content_filter')."""
    if not isinstance(error, openai.BadRequestError):
        return False
    body = getattr(error, "body", None)
    code = getattr(error, "code", None) or (body.get("code") if isinstance(body, dict) else None)
    return code == "content_filter" or "content management policy" in str(error).lower()
