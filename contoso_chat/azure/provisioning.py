"""Provisioning as code: the Azure AI Foundry hub, project, connections and model deployments.

`build_plan()` creates the `azure-ai-ml` objects offline from settings; `plan_yaml()` shows them
with secrets redacted; `preflight()` checks sign-in, region, model availability and quota where
the APIs allow; `provision()` and `teardown()` act on Azure only when PROVISION_AZURE=true.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from contoso_chat.backends.settings import ConfigError, Settings

ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
COGNITIVE_API_VERSION = "2024-10-01"
SECRET_KEYS = re.compile(r"(?i)(key|secret|password|token|connection_string)")


@dataclass(frozen=True)
class ModelDeployment:
    """An Azure OpenAI model deployment the app needs, pinned to a model version."""

    name: str
    model: str
    version: str
    sku: str
    capacity: int  # thousands of tokens per minute
    purpose: str

    def arm_body(self) -> dict:
        """The request body of `PUT .../accounts/{account}/deployments/{name}`."""
        return {
            "sku": {"name": self.sku, "capacity": self.capacity},
            "properties": {"model": {"format": "OpenAI", "name": self.model, "version": self.version},
                           "versionUpgradeOption": "NoAutoUpgrade"},
        }


DEPLOYMENTS = (
    ModelDeployment("gpt-4o-mini", "gpt-4o-mini", "2024-07-18", "GlobalStandard", 30, "chat and LLM-judge evaluators"),
    ModelDeployment("text-embedding-3-small", "text-embedding-3-small", "1", "Standard", 30, "embeddings for search"),
)


@dataclass
class Plan:
    """Everything provisioning would create, as SDK objects and request bodies."""

    subscription_id: str
    resource_group: str
    location: str
    hub: Any
    project: Any
    connections: list = field(default_factory=list)
    deployments: tuple[ModelDeployment, ...] = ()


def _placeholder(value: str, fallback: str) -> str:
    return value or fallback


def build_plan(settings: Settings) -> Plan:
    """The hub, project and connections as `azure-ai-ml` objects (no network calls)."""
    from azure.ai.ml.entities import (
        ApiKeyConfiguration, AzureAISearchConnection, AzureOpenAIConnection, Hub, Project, WorkspaceConnection,
    )

    subscription = _placeholder(settings.get("AZURE_SUBSCRIPTION_ID"), "<subscription-id>")
    group, location = settings.get("AZURE_RESOURCE_GROUP"), settings.get("AZURE_LOCATION")
    hub_name, project_name = settings.get("AZURE_AI_HUB_NAME"), settings.get("AZURE_AI_PROJECT_NAME")
    hub = Hub(name=hub_name, location=location, resource_group=group, display_name="Contoso Chat hub",
              description="Shared resources for the Contoso Chat assistant", tags={"app": "contoso-chat"})
    hub_id = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
              f"Microsoft.MachineLearningServices/workspaces/{hub_name}")
    project = Project(name=project_name, hub_id=hub_id, location=location, resource_group=group,
                      display_name="Contoso Chat", description="The Contoso Chat support assistant",
                      tags={"app": "contoso-chat"})
    connections = [
        AzureOpenAIConnection(
            name="contoso-aoai",
            azure_endpoint=_placeholder(settings.get("AZURE_OPENAI_ENDPOINT"), "https://<resource>.openai.azure.com/"),
            api_key=settings.secret("AZURE_OPENAI_API_KEY") or None,
            api_version=settings.get("AZURE_OPENAI_API_VERSION"),
        ),
        AzureAISearchConnection(
            name="contoso-search",
            endpoint=_placeholder(settings.get("AZURE_SEARCH_ENDPOINT"), "https://<service>.search.windows.net"),
            api_key=settings.secret("AZURE_SEARCH_API_KEY") or None,
        ),
        WorkspaceConnection(
            name="contoso-cosmos", type="custom",
            target=_placeholder(settings.get("COSMOS_ENDPOINT"), "https://<account>.documents.azure.com:443/"),
            credentials=ApiKeyConfiguration(key=settings.secret("COSMOS_KEY") or "<from Entra ID>"),
            metadata={"kind": "azure_cosmos_db", "database": settings.get("COSMOS_DATABASE"), "container": settings.get("COSMOS_CONTAINER")},
        ),
    ]
    return Plan(subscription, group, location, hub, project, connections, tuple(DEPLOYMENTS))


def redact(value: Any) -> Any:
    """A copy with every secret-looking field's value replaced by ***."""
    if isinstance(value, dict):
        return {k: ("***" if SECRET_KEYS.search(str(k)) and v not in (None, "", {}) and not isinstance(v, dict)
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """OrderedDicts and tuples as plain dicts and lists, for YAML."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def plan_yaml(plan: Plan) -> str:
    """The whole plan as YAML with secrets redacted (azure-ai-ml dumps keys in plain text)."""
    document = {
        "resource_group": plan.resource_group,
        "location": plan.location,
        "hub": plan.hub._to_dict(),
        "project": plan.project._to_dict(),
        "connections": [c._to_dict() for c in plan.connections],
        "model_deployments": [{"name": d.name, **d.arm_body()} for d in plan.deployments],
    }
    return yaml.safe_dump(redact(plain(document)), sort_keys=False, width=110)


@dataclass(frozen=True)
class Check:
    """One pre-flight check."""

    check: str
    status: str  # ok, failed, skipped
    detail: str


def arm_get(path: str, token: str, timeout: float = 20.0) -> dict:
    """GET an Azure Resource Manager path with a bearer token."""
    import requests

    response = requests.get(ARM + path, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def _arm_token() -> str | None:
    try:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(exclude_interactive_browser_credential=True).get_token(ARM_SCOPE).token
    except Exception:  # no sign-in of any kind: the checks report it instead of failing
        return None


def preflight(settings: Settings, get_token: Callable[[], str | None] = _arm_token,
              get: Callable[[str, str], dict] = arm_get) -> list[Check]:
    """Sign-in, region, model availability and quota, each checked where the APIs allow."""
    subscription, location = settings.get("AZURE_SUBSCRIPTION_ID"), settings.get("AZURE_LOCATION")
    checks = []
    if not subscription or set(subscription) <= {"0", "-"}:
        return [Check("subscription", "skipped", "AZURE_SUBSCRIPTION_ID is not set: nothing to check in Azure; "
                                                  "the local stack is used.")]
    token = get_token()
    if token is None:
        return [Check("sign-in", "failed", "No Azure sign-in found. Run `az login` (or set a service principal), "
                                           "then rerun this cell.")]
    checks.append(Check("sign-in", "ok", "Azure sign-in found"))
    locations = {loc["name"] for loc in get(f"/subscriptions/{subscription}/locations?api-version=2022-12-01", token)
                 .get("value", [])}
    checks.append(Check("region", "ok" if location in locations else "failed",
                        f"{location} {'is' if location in locations else 'is not'} available to this subscription"))
    base = f"/subscriptions/{subscription}/providers/Microsoft.CognitiveServices/locations/{location}"
    models = get(f"{base}/models?api-version={COGNITIVE_API_VERSION}", token).get("value", [])
    offered = {(m["model"]["name"], m["model"]["version"], sku["name"])
               for m in models for sku in m["model"].get("skus", [])}
    usages = {u["name"]["value"]: u for u in get(f"{base}/usages?api-version={COGNITIVE_API_VERSION}", token)
              .get("value", [])}
    for d in DEPLOYMENTS:
        available = (d.model, d.version, d.sku) in offered
        checks.append(Check(f"model {d.model} {d.version} ({d.sku})", "ok" if available else "failed",
                            f"{'offered' if available else 'not offered'} in {location}"))
        usage = usages.get(f"OpenAI.{d.sku}.{d.model}")
        if usage:
            free = usage["limit"] - usage["currentValue"]
            checks.append(Check(f"quota {d.model}", "ok" if free >= d.capacity else "failed",
                                f"{free:.0f}K TPM free, {d.capacity}K needed"))
        else:
            checks.append(Check(f"quota {d.model}", "skipped", "no usage entry returned for this model and SKU"))
    return checks


def opted_in(settings: Settings) -> bool:
    """True only when the learner set PROVISION_AZURE=true."""
    return settings.get("PROVISION_AZURE").strip().lower() == "true"


def ml_client(settings: Settings, workspace: str | None = None):
    """An MLClient with telemetry off."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(exclude_interactive_browser_credential=True),
                    subscription_id=settings.get("AZURE_SUBSCRIPTION_ID"),
                    resource_group_name=settings.get("AZURE_RESOURCE_GROUP"),
                    workspace_name=workspace, enable_telemetry=False)


def provision(plan: Plan, settings: Settings, log=print) -> None:
    """Create the hub, project and connections in Azure. Paid resources: runs only when opted in."""
    if not opted_in(settings):
        raise ConfigError("Provisioning creates paid Azure resources; set PROVISION_AZURE=true in .env to opt in.")
    client = ml_client(settings)
    log(f"Creating hub {plan.hub.name} ...")
    client.workspaces.begin_create(plan.hub).result()
    log(f"Creating project {plan.project.name} ...")
    client.workspaces.begin_create(plan.project).result()
    project_client = ml_client(settings, workspace=plan.project.name)
    for connection in plan.connections:
        log(f"Creating connection {connection.name} ...")
        project_client.connections.create_or_update(connection)
    log("Model deployments: create them on your Azure OpenAI resource with the bodies shown in the plan "
        "(PUT .../accounts/<account>/deployments/<name>).")


def teardown(settings: Settings, log=print) -> None:
    """Delete the whole resource group, and with it everything provisioning created. Opt-in only."""
    if not opted_in(settings):
        raise ConfigError("Teardown deletes Azure resources; set PROVISION_AZURE=true in .env to opt in.")
    from azure.identity import DefaultAzureCredential
    import requests

    token = DefaultAzureCredential(exclude_interactive_browser_credential=True).get_token(ARM_SCOPE).token
    path = (f"/subscriptions/{settings.get('AZURE_SUBSCRIPTION_ID')}/resourcegroups/"
            f"{settings.get('AZURE_RESOURCE_GROUP')}?api-version=2021-04-01")
    response = requests.delete(ARM + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    log(f"Deletion of resource group {settings.get('AZURE_RESOURCE_GROUP')} started.")
