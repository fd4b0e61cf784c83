"""Names and Azure resource ids of what the workshop creates or uses, derived from the settings.

Endpoint and registry names must be unique (per region, or worldwide), so in a class of 50 people
they are derived from a short hash of the subscription, resource group and project instead of fixed.
The Azure OpenAI, AI Search and Cosmos DB accounts are the ones in AZURE_RESOURCE_GROUP whose names
are the first label of their endpoint's host name.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlparse

from contoso_chat.backends.settings import ConfigError, Settings

ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")  # Azure ML: 3-32 chars, letter first
IDENTITY_NAME = "id-contoso-chat-endpoint"
SIGNING_SECRET_CONNECTION = "contoso-api-secret"
SUBSCRIPTION_PLACEHOLDER = "<subscription-id>"


def subscription(settings: Settings) -> str:
    """The subscription id, or a placeholder for plans built without one."""
    return settings.get("AZURE_SUBSCRIPTION_ID") or SUBSCRIPTION_PLACEHOLDER


def short_hash(settings: Settings, length: int = 8) -> str:
    """A stable hex digest of subscription, resource group and project: the same learner gets the same names."""
    key = "/".join(settings.get(n).lower() for n in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP",
                                                      "AZURE_AI_PROJECT_NAME"))
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def endpoint_name(settings: Settings) -> str:
    """AZURE_ENDPOINT_NAME when set (checked against Azure ML's rules), else `contoso-chat-<hash>`."""
    name = settings.get("AZURE_ENDPOINT_NAME") or f"contoso-chat-{short_hash(settings)}"
    if not ENDPOINT_NAME.match(name):
        raise ConfigError(f"AZURE_ENDPOINT_NAME={name!r} is not a valid endpoint name: use 3-32 letters, digits and "
                          "hyphens, starting with a letter and not ending with a hyphen (or leave it empty).")
    return name


def registry_name(settings: Settings) -> str:
    """The container registry's name: 5-50 letters and digits, unique worldwide."""
    return f"crcontosochat{short_hash(settings, 10)}"


def resource_group_id(settings: Settings) -> str:
    return f"/subscriptions/{subscription(settings)}/resourceGroups/{settings.get('AZURE_RESOURCE_GROUP')}"


def resource_id(settings: Settings, provider_type: str, name: str) -> str:
    """`/subscriptions/.../resourceGroups/<group>/providers/<provider_type>/<name>`."""
    return f"{resource_group_id(settings)}/providers/{provider_type}/{name}"


def account_from_endpoint(url: str, placeholder: str) -> str:
    """The account name in an endpoint URL (`https://<name>.openai.azure.com/` -> `<name>`)."""
    host = urlparse(url).hostname or ""
    return host.split(".")[0] if host else placeholder


def workspace_id(settings: Settings, name: str) -> str:
    return resource_id(settings, "Microsoft.MachineLearningServices/workspaces", name)


def openai_account_id(settings: Settings) -> str:
    name = account_from_endpoint(settings.get("AZURE_OPENAI_ENDPOINT"), "<openai-account>")
    return resource_id(settings, "Microsoft.CognitiveServices/accounts", name)


def content_safety_account_id(settings: Settings) -> str:
    name = account_from_endpoint(settings.get("AZURE_CONTENT_SAFETY_ENDPOINT"), "<content-safety-account>")
    return resource_id(settings, "Microsoft.CognitiveServices/accounts", name)


def search_service_id(settings: Settings) -> str:
    name = account_from_endpoint(settings.get("AZURE_SEARCH_ENDPOINT"), "<search-service>")
    return resource_id(settings, "Microsoft.Search/searchServices", name)


def cosmos_account_id(settings: Settings) -> str:
    name = account_from_endpoint(settings.get("COSMOS_ENDPOINT"), "<cosmos-account>")
    return resource_id(settings, "Microsoft.DocumentDB/databaseAccounts", name)


def registry_id(settings: Settings) -> str:
    return resource_id(settings, "Microsoft.ContainerRegistry/registries", registry_name(settings))


def identity_id(settings: Settings) -> str:
    return resource_id(settings, "Microsoft.ManagedIdentity/userAssignedIdentities", IDENTITY_NAME)


def name_of(resource: str) -> str:
    """The last segment of a resource id."""
    return resource.rstrip("/").rsplit("/", 1)[-1]
