"""Settings from the environment (and `.env`), and which backend serves each resource.

Every resource (chat model, embeddings, search, customers, tracing, serving) runs on the
embedded local stack unless the environment names a cloud service for it. A setting that is
half there (an endpoint without its key, say) is an error that names the missing variable
and the way back to the local stack, raised before any SDK call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from contoso_chat.paths import REPO_ROOT

ENV_FILE = REPO_ROOT / ".env"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which one and what to do."""


@dataclass(frozen=True)
class Setting:
    """One environment variable the project reads."""

    name: str
    default: str
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("CHAT_BACKEND", "", "local, azure or openai; empty = chosen from the settings below"),
    Setting("EMBEDDINGS_BACKEND", "", "local, azure or openai; empty = chosen from the settings below"),
    Setting("SEARCH_BACKEND", "", "local or azure; empty = azure when AZURE_SEARCH_ENDPOINT is set"),
    Setting("CUSTOMERS_BACKEND", "", "local or azure; empty = azure when COSMOS_ENDPOINT is set"),
    Setting("TRACING_BACKEND", "", "local or azure; empty = azure when APPLICATIONINSIGHTS_CONNECTION_STRING is set"),
    Setting("SERVING_BACKEND", "local", "local (uvicorn on 127.0.0.1) or azure (Azure ML online endpoint, opt-in)"),
    Setting("LOCAL_MODEL_PATH", "", "a GGUF file to serve instead of the bundled SmolLM2-135M-Instruct"),
    Setting("LOCAL_MODEL_SHA256", "", "expected sha256 of LOCAL_MODEL_PATH (checked when set)"),
    Setting("LOCAL_MODEL_PORT", "8391", "port of the local model server on 127.0.0.1"),
    Setting("LOCAL_MODEL_CONTEXT", "8192", "context window of the local model server, in tokens"),
    Setting("LOCAL_MODEL_THREADS", "", "CPU threads for the local model; empty = all cores"),
    Setting("AZURE_OPENAI_ENDPOINT", "", "https://<resource>.openai.azure.com/"),
    Setting("AZURE_OPENAI_API_KEY", "", "key of the Azure OpenAI resource; empty = Entra ID (az login)", secret=True),
    Setting("AZURE_OPENAI_API_VERSION", "2024-10-21", "Azure OpenAI REST API version"),
    Setting("AZURE_OPENAI_CHAT_DEPLOYMENT", "", "name of the chat model deployment, e.g. gpt-4o-mini"),
    Setting("AZURE_OPENAI_EMBEDDING_DEPLOYMENT", "", "name of the embedding deployment, e.g. text-embedding-3-small"),
    Setting("OPENAI_API_KEY", "", "key for api.openai.com", secret=True),
    Setting("OPENAI_CHAT_MODEL", "gpt-4o-mini", "OpenAI chat model"),
    Setting("OPENAI_EMBEDDING_MODEL", "", "OpenAI embedding model; empty = local embeddings"),
    Setting("AZURE_SEARCH_ENDPOINT", "", "https://<service>.search.windows.net"),
    Setting("AZURE_SEARCH_API_KEY", "", "admin key of the search service; empty = Entra ID", secret=True),
    Setting("AZURE_SEARCH_INDEX", "contoso-outdoors", "name of the search index the workshop creates"),
    Setting("COSMOS_ENDPOINT", "", "https://<account>.documents.azure.com:443/"),
    Setting("COSMOS_KEY", "", "key of the Cosmos DB account; empty = Entra ID", secret=True),
    Setting("COSMOS_DATABASE", "contoso-outdoors", "Cosmos DB database"),
    Setting("COSMOS_CONTAINER", "customers", "Cosmos DB container (partition key /id)"),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", "", "Azure Monitor connection string for traces", secret=True),
    Setting("AZURE_CONTENT_SAFETY_ENDPOINT", "", "https://<resource>.cognitiveservices.azure.com/ (optional input check)"),
    Setting("AZURE_CONTENT_SAFETY_KEY", "", "key of the Content Safety resource; empty = Entra ID", secret=True),
    Setting("AZURE_SUBSCRIPTION_ID", "", "subscription for provisioning and deployment"),
    Setting("AZURE_RESOURCE_GROUP", "rg-contoso-chat", "resource group for everything the workshop creates"),
    Setting("AZURE_LOCATION", "swedencentral", "Azure region"),
    Setting("AZURE_AI_HUB_NAME", "contoso-chat-hub", "Azure AI Foundry hub name"),
    Setting("AZURE_AI_PROJECT_NAME", "contoso-chat-project", "Azure AI Foundry project name"),
    Setting("PROVISION_AZURE", "false", "true = notebook 01 creates paid Azure resources (opt-in)"),
    Setting("CONTOSO_API_SECRET", "", "key that signs customer tokens for the HTTP service; empty = a local random one",
            secret=True),
)
KNOWN = {s.name: s for s in SETTINGS}
PLACEHOLDER_MARK = "your-"
SECRET_NAMES = frozenset(s.name for s in SETTINGS if s.secret)

BACKEND_CHOICES = {
    "chat": ("local", "azure", "openai"),
    "embeddings": ("local", "azure", "openai"),
    "search": ("local", "azure"),
    "customers": ("local", "azure"),
    "tracing": ("local", "azure"),
    "serving": ("local", "azure"),
}
REQUIRED = {
    ("chat", "azure"): ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_CHAT_DEPLOYMENT"),
    ("chat", "openai"): ("OPENAI_API_KEY",),
    ("embeddings", "azure"): ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_EMBEDDING_DEPLOYMENT"),
    ("embeddings", "openai"): ("OPENAI_API_KEY", "OPENAI_EMBEDDING_MODEL"),
    ("search", "azure"): ("AZURE_SEARCH_ENDPOINT",),
    ("customers", "azure"): ("COSMOS_ENDPOINT",),
    ("tracing", "azure"): ("APPLICATIONINSIGHTS_CONNECTION_STRING",),
    ("serving", "azure"): ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"),
}
SWITCH = {
    "chat": "CHAT_BACKEND",
    "embeddings": "EMBEDDINGS_BACKEND",
    "search": "SEARCH_BACKEND",
    "customers": "CUSTOMERS_BACKEND",
    "tracing": "TRACING_BACKEND",
    "serving": "SERVING_BACKEND",
}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration: raw values plus the backend chosen for each resource."""

    values: Mapping[str, str]
    backends: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        """The value of a known setting, or its default."""
        if name not in KNOWN:
            raise KeyError(f"{name} is not a setting this project knows; see .env.sample")
        return self.values.get(name) or KNOWN[name].default

    def redacted(self) -> dict[str, str]:
        """Every setting that has a value, secrets shown as ***."""
        return {
            s.name: ("***" if s.secret else self.get(s.name))
            for s in SETTINGS
            if self.get(s.name)
        }

    chat = property(lambda self: self.backends["chat"], doc="backend of the chat model")
    embeddings = property(lambda self: self.backends["embeddings"], doc="backend of the embeddings")
    search = property(lambda self: self.backends["search"], doc="backend of the search index")
    customers = property(lambda self: self.backends["customers"], doc="backend of the customer store")


def _choose(resource: str, values: Mapping[str, str]) -> str:
    explicit = values.get(SWITCH[resource], "").strip().lower()
    if explicit:
        if explicit not in BACKEND_CHOICES[resource]:
            raise ConfigError(
                f"{SWITCH[resource]}={explicit!r} is not one of {', '.join(BACKEND_CHOICES[resource])}; "
                f"fix it in .env or remove it to use the local stack."
            )
        return explicit
    has = lambda name: bool(values.get(name, "").strip())  # noqa: E731
    if resource == "chat":
        return "azure" if has("AZURE_OPENAI_ENDPOINT") else "openai" if has("OPENAI_API_KEY") else "local"
    if resource == "embeddings":
        if has("AZURE_OPENAI_EMBEDDING_DEPLOYMENT"):
            return "azure"
        return "openai" if has("OPENAI_EMBEDDING_MODEL") else "local"
    if resource == "search":
        return "azure" if has("AZURE_SEARCH_ENDPOINT") else "local"
    if resource == "customers":
        return "azure" if has("COSMOS_ENDPOINT") else "local"
    if resource == "tracing":
        return "azure" if has("APPLICATIONINSIGHTS_CONNECTION_STRING") else "local"
    return "local"


def resolve(values: Mapping[str, str]) -> Settings:
    """Choose a backend per resource from raw values and check each has what it needs."""
    clean = {k: v.strip() for k, v in values.items() if k in KNOWN and v is not None}
    placeholders = [k for k, v in clean.items() if PLACEHOLDER_MARK in v]
    if placeholders:
        raise ConfigError(
            f"{', '.join(sorted(placeholders))} still hold{'s' if len(placeholders) == 1 else ''} the placeholder "
            "from .env.sample. Put your own value in .env, or comment the line out to use the local stack."
        )
    backends = {resource: _choose(resource, clean) for resource in BACKEND_CHOICES}
    for resource, backend in backends.items():
        missing = [name for name in REQUIRED.get((resource, backend), ()) if not clean.get(name)]
        if missing:
            raise ConfigError(
                f"The {resource} backend is '{backend}' but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set. Add {'it' if len(missing) == 1 else 'them'} "
                f"to .env, or set {SWITCH[resource]}=local (or remove the {backend} settings) to use the local stack."
            )
    return Settings(values=clean, backends=backends)


def load_settings(environ: Mapping[str, str] | None = None, use_dotenv: bool = True) -> Settings:
    """Read `.env` (without overriding real environment variables) and resolve the settings."""
    if environ is None:
        if use_dotenv and ENV_FILE.exists():
            from dotenv import dotenv_values

            file_values = {k: v for k, v in dotenv_values(ENV_FILE).items() if v is not None}
            environ = {**file_values, **os.environ}
        else:
            environ = dict(os.environ)
    return resolve(environ)
