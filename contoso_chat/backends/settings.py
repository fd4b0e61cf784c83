"""Settings from the environment (and `.env`), and which backend serves each resource.

Every resource (chat model, embeddings, search, customers, tracing, serving) runs on the
embedded local stack unless the environment names a cloud service for it. A setting that is
half there (an endpoint without its deployment, say) is an error that names the missing
variable and the way back to the local stack, raised before any SDK call. Secrets are
`SecretStr`: they print as `**********` and are read only through `Settings.secret(name)`.
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contoso_chat.paths import REPO_ROOT

ENV_FILE = REPO_ROOT / ".env"
PLACEHOLDER_MARK = "your-"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which one and what to do."""


BACKEND_CHOICES = {
    "chat": ("local", "azure", "openai"),
    "embeddings": ("local", "azure", "openai"),
    "search": ("local", "azure"),
    "customers": ("local", "azure"),
    "tracing": ("local", "azure"),
    "serving": ("local", "azure"),
}
MODEL_VARIANTS = ("base", "fine-tuned")
SWITCH = {resource: f"{resource.upper()}_BACKEND" for resource in BACKEND_CHOICES}
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
# which setting, when present, moves a resource to the cloud when its switch is empty
AUTOMATIC = {
    "chat": (("AZURE_OPENAI_ENDPOINT", "azure"), ("OPENAI_API_KEY", "openai")),
    "embeddings": (("AZURE_OPENAI_EMBEDDING_DEPLOYMENT", "azure"), ("OPENAI_EMBEDDING_MODEL", "openai")),
    "search": (("AZURE_SEARCH_ENDPOINT", "azure"),),
    "customers": (("COSMOS_ENDPOINT", "azure"),),
    "tracing": (("APPLICATIONINSIGHTS_CONNECTION_STRING", "azure"),),
    "serving": (),
}


SERVICE_ENGINES = ("app", "agent-framework")


def _secret(help_text: str) -> Any:
    return Field(default=SecretStr(""), description=help_text)


class Settings(BaseSettings):
    """The resolved configuration: one field per environment variable, plus the backend of each resource."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=True, validate_default=True)

    CHAT_BACKEND: str = Field("", description="local, azure or openai; empty = chosen from the settings below")
    EMBEDDINGS_BACKEND: str = Field("", description="local, azure or openai; empty = chosen from the settings below")
    SEARCH_BACKEND: str = Field("", description="local or azure; empty = azure when AZURE_SEARCH_ENDPOINT is set")
    CUSTOMERS_BACKEND: str = Field("", description="local or azure; empty = azure when COSMOS_ENDPOINT is set")
    TRACING_BACKEND: str = Field(
        "", description="local or azure; empty = azure when APPLICATIONINSIGHTS_CONNECTION_STRING is set")
    SERVING_BACKEND: str = Field(
        "local", description="local (uvicorn on 127.0.0.1) or azure (Azure ML online endpoint, opt-in)")
    SERVICE_ENGINE: str = Field(
        "app", description="what runs each turn in the HTTP service: app (the app's own steps, as the flex flow runs "
                           "them) or agent-framework (the same steps as an Agent Framework agent)")
    LOCAL_MODEL_VARIANT: str = Field(
        "base", description="base (the bundled SmolLM2-135M-Instruct) or fine-tuned (what `make finetune` exports)")
    LOCAL_MODEL_PATH: str = Field("", description="a GGUF file to serve instead of the bundled SmolLM2-135M-Instruct")
    LOCAL_MODEL_SHA256: str = Field("", description="expected sha256 of LOCAL_MODEL_PATH (checked when set)")
    LOCAL_MODEL_PORT: str = Field("8391", description="port of the local model server on 127.0.0.1")
    LOCAL_MODEL_CONTEXT: str = Field("8192", description="context window of the local model server, in tokens")
    LOCAL_MODEL_THREADS: str = Field("", description="CPU threads for the local model; empty = all cores")
    AZURE_OPENAI_ENDPOINT: str = Field("", description="https://<resource>.openai.azure.com/")
    AZURE_OPENAI_API_KEY: SecretStr = _secret("key of the Azure OpenAI resource; empty = Entra ID (az login)")
    AZURE_OPENAI_API_VERSION: str = Field("2024-10-21", description="Azure OpenAI REST API version")
    AZURE_OPENAI_CHAT_DEPLOYMENT: str = Field("", description="name of the chat model deployment, e.g. gpt-4o-mini")
    AZURE_OPENAI_EMBEDDING_DEPLOYMENT: str = Field(
        "", description="name of the embedding deployment, e.g. text-embedding-3-small")
    OPENAI_API_KEY: SecretStr = _secret("key for api.openai.com")
    OPENAI_CHAT_MODEL: str = Field("gpt-4o-mini", description="OpenAI chat model")
    OPENAI_EMBEDDING_MODEL: str = Field("", description="OpenAI embedding model; empty = local embeddings")
    AZURE_SEARCH_ENDPOINT: str = Field("", description="https://<service>.search.windows.net")
    AZURE_SEARCH_API_KEY: SecretStr = _secret("admin key of the search service; empty = Entra ID")
    AZURE_SEARCH_INDEX: str = Field("contoso-outdoors", description="name of the search index the workshop creates")
    COSMOS_ENDPOINT: str = Field("", description="https://<account>.documents.azure.com:443/")
    COSMOS_KEY: SecretStr = _secret("key of the Cosmos DB account; empty = Entra ID")
    COSMOS_DATABASE: str = Field("contoso-outdoors", description="Cosmos DB database")
    COSMOS_CONTAINER: str = Field("customers", description="Cosmos DB container (partition key /id)")
    APPLICATIONINSIGHTS_CONNECTION_STRING: SecretStr = _secret("Azure Monitor connection string for traces")
    AZURE_CONTENT_SAFETY_ENDPOINT: str = Field(
        "", description="https://<resource>.cognitiveservices.azure.com/ (optional input and output check)")
    AZURE_CONTENT_SAFETY_KEY: SecretStr = _secret("key of the Content Safety resource; empty = Entra ID")
    AZURE_CLIENT_ID: str = Field(
        "", description="client id of a user-assigned managed identity (set on the Azure ML deployment)")
    AZURE_SUBSCRIPTION_ID: str = Field("", description="subscription for provisioning and deployment")
    AZURE_RESOURCE_GROUP: str = Field("rg-contoso-chat", description="resource group for everything the workshop creates")
    AZURE_LOCATION: str = Field("swedencentral", description="Azure region")
    AZURE_AI_HUB_NAME: str = Field("contoso-chat-hub", description="Azure AI Foundry hub name")
    AZURE_AI_PROJECT_NAME: str = Field("contoso-chat-project", description="Azure AI Foundry project name")
    AZURE_ENDPOINT_NAME: str = Field(
        "", description="Azure ML endpoint name; empty = derived from the subscription and resource group")
    PROVISION_AZURE: str = Field("false", description="true = notebook 01 creates paid Azure resources (opt-in)")
    CONTOSO_API_SECRET: SecretStr = _secret(
        "key that signs customer tokens for the HTTP service; empty = a local random one (never on Azure)")

    _backends: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value.strip() if isinstance(value, str) else ("" if value is None else value)

    @field_validator("SERVICE_ENGINE")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        engine = value.lower() or "app"
        if engine not in SERVICE_ENGINES:
            raise ValueError(f"SERVICE_ENGINE={value!r} is not one of {', '.join(SERVICE_ENGINES)}; fix it in .env.")
        return engine

    @field_validator("LOCAL_MODEL_VARIANT")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        variant = value.lower() or "base"
        if variant not in MODEL_VARIANTS:
            raise ValueError(f"LOCAL_MODEL_VARIANT={value!r} is not one of {', '.join(MODEL_VARIANTS)}; fix it in .env "
                             "(fine-tuned serves the model `make finetune` exports).")
        return variant

    @model_validator(mode="after")
    def _resolve_backends(self) -> "Settings":
        placeholders = sorted(name for name in type(self).model_fields if PLACEHOLDER_MARK in self._raw(name))
        if placeholders:
            raise ValueError(
                f"{', '.join(placeholders)} still hold{'s' if len(placeholders) == 1 else ''} the placeholder "
                "from .env.sample. Put your own value in .env, or comment the line out to use the local stack.")
        self._backends = {resource: self._choose(resource) for resource in BACKEND_CHOICES}
        for resource, backend in self._backends.items():
            missing = [name for name in REQUIRED.get((resource, backend), ()) if not self._raw(name)]
            if missing:
                one = len(missing) == 1
                raise ValueError(
                    f"The {resource} backend is '{backend}' but {', '.join(missing)} {'is' if one else 'are'} not set. "
                    f"Add {'it' if one else 'them'} to .env, or set {SWITCH[resource]}=local (or remove the "
                    f"{backend} settings) to use the local stack.")
        return self

    def _raw(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def _choose(self, resource: str) -> str:
        explicit = self._raw(SWITCH[resource]).lower()
        if explicit:
            if explicit not in BACKEND_CHOICES[resource]:
                raise ValueError(f"{SWITCH[resource]}={explicit!r} is not one of {', '.join(BACKEND_CHOICES[resource])}; "
                                 "fix it in .env or remove it to use the local stack.")
            return explicit
        for name, backend in AUTOMATIC[resource]:
            if self._raw(name):
                return backend
        return "local"

    @property
    def backends(self) -> dict[str, str]:
        """The backend chosen for each resource."""
        return dict(self._backends)

    chat = property(lambda self: self._backends["chat"], doc="backend of the chat model")
    embeddings = property(lambda self: self._backends["embeddings"], doc="backend of the embeddings")
    search = property(lambda self: self._backends["search"], doc="backend of the search index")
    customers = property(lambda self: self._backends["customers"], doc="backend of the customer store")
    tracing = property(lambda self: self._backends["tracing"], doc="backend of tracing")
    serving = property(lambda self: self._backends["serving"], doc="backend of serving")

    def get(self, name: str) -> str:
        """The value of a known, non-secret setting (its default when unset)."""
        if name not in type(self).model_fields:
            raise KeyError(f"{name} is not a setting this project knows; see .env.sample")
        if name in secret_names():
            raise KeyError(f"{name} is a secret; read it with settings.secret({name!r}), and never print it")
        return self._raw(name)

    def secret(self, name: str) -> str:
        """The value of a secret setting, for passing to an SDK client (never print it)."""
        if name not in secret_names():
            raise KeyError(f"{name} is not a secret setting")
        return self._raw(name)

    def redacted(self) -> dict[str, str]:
        """Every setting that has a value, secrets shown as ***."""
        return {name: ("***" if name in secret_names() else self._raw(name))
                for name in type(self).model_fields if self._raw(name)}

    def fingerprint(self) -> tuple:
        """A hashable summary of every value (secrets included), to tell two configurations apart."""
        return tuple((name, self._raw(name)) for name in type(self).model_fields)


class _GivenValues(Settings):
    """Settings from a mapping only: no environment, no .env (for tests and `resolve`)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **other_sources):
        return (init_settings,)


def secret_names() -> frozenset[str]:
    """The settings that hold secrets."""
    return frozenset(name for name, info in Settings.model_fields.items() if info.annotation is SecretStr)


def setting_names() -> tuple[str, ...]:
    """Every setting this project reads, in .env.sample's order."""
    return tuple(Settings.model_fields)


def _config_error(error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    return ConfigError(str(cause) if cause else f"{'.'.join(map(str, first['loc']))}: {first['msg']}")


def resolve(values: Mapping[str, str | None]) -> Settings:
    """Settings from a mapping of raw values alone (unknown names are ignored)."""
    try:
        return _GivenValues(**{k: v for k, v in values.items() if k in Settings.model_fields})
    except ValidationError as error:
        raise _config_error(error) from None


def load_settings() -> Settings:
    """Read the environment and `.env` (real environment variables win) and resolve the settings."""
    try:
        return Settings()
    except ValidationError as error:
        raise _config_error(error) from None
