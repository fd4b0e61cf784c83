"""Provisioning as code: registry, hub, project, connections, secrets, model deployments, identity and roles.

`build_plan()` builds every object and request body offline from settings; `plan_yaml()` shows them
with secrets redacted; `preflight()` checks sign-in, region, model availability, retirement and
quota; `provision()` creates everything in order, idempotently, and loads the data, but only when
PROVISION_AZURE=true; `teardown()` deletes the resource group. `python -m` runs `provision()`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from contoso_chat.azure import data_load, identity, names
from contoso_chat.azure.clients import ARM, ARM_SCOPE, arm_client, authorization_client, ml_client, msi_client
from contoso_chat.azure.opt_in import opted_in, require_opt_in
from contoso_chat.azure.roles import Check, role_checks
from contoso_chat.azure.endpoint import DEFAULT_P95_S, DEFAULT_STARTUP_S, build_endpoint, endpoint_document
from contoso_chat.azure.model_deployments import DEPLOYMENTS, ModelDeployment, availability
from contoso_chat.azure.yaml_view import plain, redact, to_yaml
from contoso_chat.backends.settings import ConfigError, Settings

COGNITIVE_API_VERSION = "2024-10-01"
REGISTRY_API_VERSION = "2023-07-01"
PROVIDERS_API_VERSION = "2021-04-01"
# Resource providers a subscription must have registered for what provisioning creates (a new subscription
# registers some only on first use from the portal, and a create through the API then fails).
RESOURCE_PROVIDERS = ("Microsoft.MachineLearningServices", "Microsoft.ContainerRegistry", "Microsoft.Storage",
                      "Microsoft.KeyVault", "Microsoft.CognitiveServices", "Microsoft.ManagedIdentity",
                      "Microsoft.Insights")
GENERATED_SECRET = "<generated once by provisioning, kept in the connection>"

__all__ = ["ModelDeployment", "DEPLOYMENTS", "Plan", "build_plan", "plan_yaml", "preflight", "provision", "teardown",
           "opted_in", "redact", "plain"]


@dataclass(frozen=True)
class SecretPlan:
    """A secret the deployment reads: which setting, which workspace connection holds it, how it is injected."""

    setting: str
    connection: str
    reference: str
    source: str


@dataclass
class Plan:
    """Everything provisioning creates, as SDK objects and request bodies."""

    subscription_id: str
    resource_group: str
    location: str
    hub: Any
    project: Any
    connections: list = field(default_factory=list)
    deployments: tuple[ModelDeployment, ...] = ()
    registry: dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    role_assignments: list = field(default_factory=list)
    cosmos_role_assignments: list = field(default_factory=list)
    secrets: list = field(default_factory=list)
    data_load: list = field(default_factory=list)
    endpoint: Any = None
    endpoint_deployment: Any = None


def _placeholder(value: str, fallback: str) -> str:
    return value or fallback


def registry_body(settings: Settings) -> dict:
    """The container registry for the serving image: Basic SKU, no admin user (pulls use Entra ID roles)."""
    return {"location": settings.get("AZURE_LOCATION"), "sku": {"name": "Basic"},
            "properties": {"adminUserEnabled": False}, "tags": {"app": "contoso-chat"}}


def cosmos_connection(settings: Settings):
    """The project's Cosmos DB connection: category CosmosDb (the service's name) with Entra ID (AAD) auth, never a key."""
    from azure.ai.ml.entities import AadCredentialConfiguration, WorkspaceConnection

    return WorkspaceConnection(
        name="contoso-cosmos", type="cosmos_db",
        target=_placeholder(settings.get("COSMOS_ENDPOINT"), "https://<account>.documents.azure.com:443/"),
        credentials=AadCredentialConfiguration(),
        metadata={"ResourceId": names.cosmos_account_id(settings), "database": settings.get("COSMOS_DATABASE"),
                  "container": settings.get("COSMOS_CONTAINER")})


def secret_connection(name: str, value: str):
    """A custom workspace connection that holds one secret under `credentials.key`."""
    from azure.ai.ml.entities import ApiKeyConfiguration, WorkspaceConnection

    return WorkspaceConnection(name=name, type="custom", target="_", credentials=ApiKeyConfiguration(key=value),
                               metadata={"app": "contoso-chat"})


def secret_plans(settings: Settings) -> list[SecretPlan]:
    """The secrets the deployment gets injected, and where each value comes from."""
    from contoso_chat.azure.endpoint import SECRET_CONNECTIONS, injected_secrets

    plans = []
    for setting, reference in injected_secrets(settings).items():
        given = settings.secret(setting)
        source = "from .env" if given else "generated once if the connection does not exist yet"
        plans.append(SecretPlan(setting, SECRET_CONNECTIONS[setting], reference, source))
    return plans


def data_load_steps(settings: Settings) -> list[str]:
    """What loading the data does, in order (run by provisioning, never by the app)."""
    return data_load.steps(settings)


def build_plan(settings: Settings, startup_s: float = DEFAULT_STARTUP_S, p95_s: float = DEFAULT_P95_S) -> Plan:
    """Every resource and request as objects and bodies (no network calls)."""
    from azure.ai.ml.entities import AzureAISearchConnection, AzureOpenAIConnection, Hub, Project

    group, location = settings.get("AZURE_RESOURCE_GROUP"), settings.get("AZURE_LOCATION")
    hub_name, project_name = settings.get("AZURE_AI_HUB_NAME"), settings.get("AZURE_AI_PROJECT_NAME")
    hub = Hub(name=hub_name, location=location, resource_group=group, display_name="Contoso Chat hub",
              container_registry=names.registry_id(settings),
              description="Shared resources for the Contoso Chat assistant", tags={"app": "contoso-chat"})
    project = Project(name=project_name, hub_id=names.workspace_id(settings, hub_name), location=location,
                      resource_group=group, display_name="Contoso Chat",
                      description="The Contoso Chat support assistant", tags={"app": "contoso-chat"})
    connections = [
        AzureOpenAIConnection(
            name="contoso-aoai",
            azure_endpoint=_placeholder(settings.get("AZURE_OPENAI_ENDPOINT"), "https://<resource>.openai.azure.com/"),
            api_key=settings.secret("AZURE_OPENAI_API_KEY") or None, api_version=settings.get("AZURE_OPENAI_API_VERSION"),
            open_ai_resource_id=names.openai_account_id(settings)),
        AzureAISearchConnection(
            name="contoso-search",
            endpoint=_placeholder(settings.get("AZURE_SEARCH_ENDPOINT"), "https://<service>.search.windows.net"),
            api_key=settings.secret("AZURE_SEARCH_API_KEY") or None),
        cosmos_connection(settings),
    ]
    secret_list = secret_plans(settings)
    connections += [secret_connection(s.connection, settings.secret(s.setting) or GENERATED_SECRET)
                    for s in secret_list]
    endpoint, deployment = build_endpoint(settings, startup_s, p95_s)
    return Plan(
        subscription_id=names.subscription(settings), resource_group=group, location=location, hub=hub,
        project=project, connections=connections, deployments=tuple(DEPLOYMENTS),
        registry={"id": names.registry_id(settings), **registry_body(settings)},
        identity={"id": names.identity_id(settings), "location": location, "used_by": endpoint.name},
        role_assignments=identity.endpoint_role_assignments(settings),
        cosmos_role_assignments=identity.endpoint_cosmos_assignments(settings),
        secrets=secret_list, data_load=data_load_steps(settings), endpoint=endpoint, endpoint_deployment=deployment)


def plan_yaml(plan: Plan) -> str:
    """The whole plan as YAML with secrets redacted (azure-ai-ml dumps keys in plain text)."""
    principal = f"<principal id of {names.IDENTITY_NAME}>"
    document = {
        "resource_group": plan.resource_group,
        "location": plan.location,
        "container_registry": plan.registry,
        "hub": plan.hub._to_dict(),
        "project": plan.project._to_dict(),
        "connections": [{"name": c.name, **c._to_rest_object().as_dict()} for c in plan.connections],
        "model_deployments": [{"name": d.name, **d.arm_body()} for d in plan.deployments],
        "endpoint_identity": plan.identity,
        "role_assignments": [{"role": a.role.name, "why": a.role.why, "scope": a.scope,
                              "name": "uuid5(scope, principal, role)",
                              **a.arm_body(plan.subscription_id, principal)} for a in plan.role_assignments],
        "cosmos_data_plane_role_assignments": [{"role": a.role_name, **a.arm_body(principal)}
                                               for a in plan.cosmos_role_assignments],
        "secrets": [s.__dict__ for s in plan.secrets],
        "data_load": plan.data_load,
        **(endpoint_document(plan.endpoint, plan.endpoint_deployment) if plan.endpoint is not None else {}),
    }
    return to_yaml(document)


def arm_get(path: str, token: str, timeout: float = 20.0) -> dict:
    """GET an Azure Resource Manager path (or a full nextLink URL) with a bearer token."""
    import requests

    url = path if path.startswith("https://") else ARM + path
    response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def _arm_token() -> str | None:
    try:
        from contoso_chat.backends.azure_credentials import azure_credential

        return azure_credential().get_token(ARM_SCOPE).token
    except Exception:  # no sign-in of any kind: the checks report it instead of failing
        return None


def get_all(get: Callable[[str, str], dict], path: str, token: str) -> list[dict]:
    """Every item of a paged ARM list, following nextLink."""
    items: list[dict] = []
    next_path: str | None = path
    while next_path:
        page = get(next_path, token)
        items.extend(page.get("value", []))
        next_path = page.get("nextLink")
    return items


def _your_roles(settings: Settings) -> list[Check]:
    try:
        return role_checks(settings, "provision")
    except Exception as error:  # a check that cannot run is reported, never a crash of the pre-flight table
        return [Check("roles", "failed", f"could not read your permissions ({type(error).__name__}); "
                                         "run `python -m contoso_chat.azure.roles` to see why")]


def preflight(settings: Settings, get_token: Callable[[], str | None] = _arm_token,
              get: Callable[[str, str], dict] = arm_get, today: dt.date | None = None,
              roles: Callable[[Settings], list[Check]] = _your_roles) -> list[Check]:
    """Sign-in, region, resource providers, model availability and retirement, quota, and your roles
    (contoso_chat.azure.roles), each checked where the APIs allow."""
    from azure.mgmt.cognitiveservices.models import Model

    subscription, location = settings.get("AZURE_SUBSCRIPTION_ID"), settings.get("AZURE_LOCATION")
    today = today or dt.date.today()
    checks = []
    if not subscription or set(subscription) <= {"0", "-"}:
        return [Check("subscription", "skipped", "AZURE_SUBSCRIPTION_ID is not set: nothing to check in Azure; "
                                                  "the local stack is used.")]
    token = get_token()
    if token is None:
        return [Check("sign-in", "failed", "No Azure sign-in found. Run `az login` (or set a service principal), "
                                           "then rerun this cell.")]
    checks.append(Check("sign-in", "ok", "Azure sign-in found"))
    locations = {loc["name"] for loc in get_all(get, f"/subscriptions/{subscription}/locations?api-version=2022-12-01",
                                                token)}
    checks.append(Check("region", "ok" if location in locations else "failed",
                        f"{location} {'is' if location in locations else 'is not'} available to this subscription"))
    for namespace in RESOURCE_PROVIDERS:
        state = get(f"/subscriptions/{subscription}/providers/{namespace}?api-version={PROVIDERS_API_VERSION}",
                    token).get("registrationState", "unknown")
        checks.append(Check(f"provider {namespace}", "ok" if state == "Registered" else "failed",
                            "registered" if state == "Registered" else
                            f"{state}: run `az provider register --namespace {namespace}` (once per subscription)"))
    base = f"/subscriptions/{subscription}/providers/Microsoft.CognitiveServices/locations/{location}"
    models = [Model.deserialize(m) for m in get_all(get, f"{base}/models?api-version={COGNITIVE_API_VERSION}", token)]
    usages = {u["name"]["value"]: u for u in get_all(get, f"{base}/usages?api-version={COGNITIVE_API_VERSION}", token)}
    for d in DEPLOYMENTS:
        found = availability(models, d, today)
        checks.append(Check(f"model {d.model} {d.version} ({d.sku})", "ok" if found.deployable(today) else "failed",
                            f"{found.detail} in {location}"))
        usage = usages.get(f"OpenAI.{d.sku}.{d.model}")
        if usage:
            free = usage["limit"] - usage["currentValue"]
            checks.append(Check(f"quota {d.model}", "ok" if free >= d.capacity else "failed",
                                f"{free:.0f}K TPM free, {d.capacity}K needed"))
        else:
            checks.append(Check(f"quota {d.model}", "skipped", "no usage entry returned for this model and SKU"))
    return checks + roles(settings)


def put_and_wait(client, resource: str, api_version: str, body: dict, attempts: int = 60, pause_s: float = 5.0) -> dict:
    """PUT a resource, then read it until its provisioning state is final."""
    from azure.core.rest import HttpRequest

    url = f"{ARM}{resource}?api-version={api_version}"
    response = client.send_request(HttpRequest("PUT", url, json=body))
    response.raise_for_status()
    for _ in range(attempts):
        state = client.send_request(HttpRequest("GET", url))
        state.raise_for_status()
        status = state.json().get("properties", {}).get("provisioningState", "Succeeded")
        if status in ("Succeeded", "Failed", "Canceled"):
            if status != "Succeeded":
                raise RuntimeError(f"Creating {names.name_of(resource)} ended as {status}; see the activity log.")
            return state.json()
        time.sleep(pause_s)
    raise TimeoutError(f"{names.name_of(resource)} was still being created after {attempts * pause_s:.0f} s.")


def ensure_secret_connections(project_client, plan: Plan, settings: Settings, log=print) -> None:
    """Create each secret's connection; a generated secret is made once and kept when the connection exists."""
    from azure.core.exceptions import ResourceNotFoundError

    for secret in plan.secrets:
        given = settings.secret(secret.setting)
        if not given:
            try:
                project_client.connections.get(secret.connection)
                log(f"Secret {secret.setting}: kept (connection {secret.connection} exists)")
                continue
            except ResourceNotFoundError:
                given = secrets.token_urlsafe(32)
        project_client.connections.create_or_update(secret_connection(secret.connection, given))
        log(f"Secret {secret.setting}: stored in connection {secret.connection}")


def create_endpoint_identity(plan: Plan, settings: Settings, hub_storage: str, credential=None, log=print,
                             **options):
    """The user-assigned identity, its Azure roles and its Cosmos DB data-plane role (all idempotent).

    `hub_storage` is the hub's default storage account, which Azure names when it creates the hub.
    """
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    from contoso_chat.backends.azure_credentials import azure_credential

    credential = credential or azure_credential()
    created = identity.create_identity(msi_client(settings, credential, **options), settings)
    log(f"Identity {names.IDENTITY_NAME}: client id {created.client_id}")
    identity.assign_roles(authorization_client(settings, credential, **options),
                          identity.endpoint_role_assignments(settings, hub_storage),
                          created.principal_id, plan.subscription_id, log)
    if plan.cosmos_role_assignments:
        cosmos = CosmosDBManagementClient(credential, plan.subscription_id, **options)
        identity.assign_cosmos_roles(cosmos, plan.cosmos_role_assignments, created.principal_id, plan.resource_group,
                                     log)
    return created


def provision(plan: Plan, settings: Settings, log=print) -> None:
    """Create everything in order, then load the data. Paid resources: runs only when opted in."""
    from contoso_chat.azure import model_deployments
    from contoso_chat.backends.azure_credentials import azure_credential

    require_opt_in(settings, "Provisioning")
    credential = azure_credential()
    log(f"Creating container registry {names.name_of(plan.registry['id'])} ...")
    put_and_wait(arm_client(credential), plan.registry["id"], REGISTRY_API_VERSION, registry_body(settings))
    client = ml_client(settings)
    log(f"Creating hub {plan.hub.name} (several minutes) ...")
    hub = client.workspaces.begin_create(plan.hub).result()
    log(f"Creating project {plan.project.name} ...")
    client.workspaces.begin_create(plan.project).result()
    project_client = ml_client(settings, workspace=plan.project.name)
    secret_names = {s.connection for s in plan.secrets}
    for connection in plan.connections:
        if connection.name not in secret_names:
            log(f"Creating connection {connection.name} ...")
            project_client.connections.create_or_update(connection)
    ensure_secret_connections(project_client, plan, settings, log)
    if settings.get("AZURE_OPENAI_ENDPOINT"):
        cognitive = model_deployments.management_client(settings, credential)
        offered = model_deployments.offered_models(cognitive, plan.location)
        model_deployments.create_deployments(cognitive, settings, plan.deployments, offered, log=log)
    create_endpoint_identity(plan, settings, hub.storage_account, credential, log)
    data_load.load_data(settings, log=log)


def teardown(settings: Settings, log=print) -> None:
    """Delete the whole resource group, and with it everything provisioning created. Opt-in only."""
    from azure.core.rest import HttpRequest

    require_opt_in(settings, "Teardown")
    response = arm_client().send_request(HttpRequest("DELETE", f"{ARM}{names.resource_group_id(settings)}"
                                                               "?api-version=2021-04-01"))
    response.raise_for_status()
    log(f"Deletion of resource group {settings.get('AZURE_RESOURCE_GROUP')} started. Key vaults and Azure AI "
        "accounts stay soft-deleted for a while: purge them in the portal to reuse their names at once.")


def main() -> int:
    """Show the plan, then provision when PROVISION_AZURE=true."""
    from contoso_chat.backends.settings import load_settings

    settings = load_settings()
    plan = build_plan(settings)
    print(plan_yaml(plan))
    try:
        provision(plan, settings)
    except ConfigError as error:
        print(f"Not provisioned: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
