"""The roles you (or CI's principal) need, checked against what the signed-in principal actually has.

Azure answers "what may I do here?" for the caller itself: Resource Manager's permissions API
returns the actions and data actions of every role the signed-in principal holds on a scope
(through groups too). Each requirement below names one role and the actions the workshop's
code performs with it; it is met when one of the caller's roles allows every action and does not
exclude it. Cosmos DB's data plane has its own roles, read from the account's SQL role
assignments (direct assignments only: one through a group is not seen there).

A missing role comes with the command that grants it, for you or whoever owns the subscription:

    python -m contoso_chat.azure.roles                 # provisioning and the data load (you)
    python -m contoso_chat.azure.roles fine-tune        # fine-tuning on Azure OpenAI
    python -m contoso_chat.azure.roles evaluate         # CI's evaluate-azure principal
    python -m contoso_chat.azure.roles deploy           # CI's deploy principal
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Callable

from contoso_chat.azure import identity, names
from contoso_chat.backends.settings import Settings

PURPOSES = ("provision", "fine-tune", "evaluate", "deploy")


@dataclass(frozen=True)
class Check:
    """One pre-flight check (provisioning's pre-flight table uses the same rows)."""

    check: str
    status: str  # ok, failed, skipped
    detail: str


@dataclass(frozen=True)
class Requirement:
    """One role on one resource, and the actions the workshop needs from it."""

    purpose: str
    role: str
    scope: str  # a resource id (or the resource group's)
    why: str
    actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class CosmosRequirement:
    """A Cosmos DB data-plane role on the account (accepted: any of `definitions`)."""

    purpose: str
    role: str
    account_id: str
    definitions: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Principal:
    """Who is signed in: object id and kind (User or ServicePrincipal), read from the access token's claims."""

    object_id: str
    kind: str = "User"


OPENAI_DATA = "Microsoft.CognitiveServices/accounts/OpenAI"


def requirements(settings: Settings, purpose: str = "provision",
                 hub_storage: str | None = None) -> list[Requirement | CosmosRequirement]:
    """What `purpose` needs for these settings: only the services configured, only where no key replaces a role.

    `hub_storage` is the hub's default storage account (Azure names it with the hub); without it the deploy
    principal's Storage Blob Data Contributor is not checked.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"Unknown purpose {purpose!r}: use one of {', '.join(PURPOSES)}.")
    group = names.resource_group_id(settings)
    openai, search = names.openai_account_id(settings), names.search_service_id(settings)
    needs: list[Requirement | CosmosRequirement] = []
    on_azure = {"openai": bool(settings.get("AZURE_OPENAI_ENDPOINT")), "search": settings.search == "azure",
                "cosmos": settings.customers == "azure",
                "safety": bool(settings.get("AZURE_CONTENT_SAFETY_ENDPOINT"))}
    if purpose == "provision":
        needs += [
            Requirement(purpose, "Contributor", group, "create the registry, hub, project, identity and endpoint",
                        actions=("Microsoft.MachineLearningServices/workspaces/write",
                                 "Microsoft.ManagedIdentity/userAssignedIdentities/write",
                                 "Microsoft.ContainerRegistry/registries/write")),
            Requirement(purpose, "Role Based Access Control Administrator", group,
                        "grant the endpoint's identity its roles", actions=("Microsoft.Authorization/roleAssignments/write",)),
        ]
        if on_azure["openai"] and on_azure["search"] and not settings.secret("AZURE_OPENAI_API_KEY"):
            needs.append(Requirement(purpose, identity.OPENAI_USER.name, openai, "embed the chunks (data load)",
                                     data_actions=(f"{OPENAI_DATA}/deployments/embeddings/action",)))
        if on_azure["search"]:
            needs.append(Requirement(purpose, "Search Service Contributor", search,
                                     "switch on role-based access and create the index (data load)",
                                     actions=("Microsoft.Search/searchServices/write",
                                              "Microsoft.Search/searchServices/indexes/write")))
            if not settings.secret("AZURE_SEARCH_API_KEY"):
                needs.append(Requirement(purpose, "Search Index Data Contributor", search,
                                         "upload the chunks (data load)",
                                         data_actions=("Microsoft.Search/searchServices/indexes/documents/write",)))
        if on_azure["cosmos"] and not settings.secret("COSMOS_KEY"):
            needs.append(CosmosRequirement(purpose, "Cosmos DB Built-in Data Contributor",
                                           names.cosmos_account_id(settings), (identity.COSMOS_DATA_CONTRIBUTOR,),
                                           "upsert the customers (data load)"))
    elif purpose == "fine-tune" and on_azure["openai"]:
        needs.append(Requirement(purpose, "Cognitive Services OpenAI Contributor", openai,
                                 "upload the training file and start the fine-tuning job",
                                 data_actions=(f"{OPENAI_DATA}/files/import/action", f"{OPENAI_DATA}/fine-tunes/write")))
    elif purpose == "evaluate":
        if on_azure["openai"]:
            needs.append(Requirement(purpose, identity.OPENAI_USER.name, openai, "answer and embed questions",
                                     data_actions=(f"{OPENAI_DATA}/deployments/chat/completions/action",
                                                   f"{OPENAI_DATA}/deployments/embeddings/action")))
        if on_azure["search"]:
            needs.append(Requirement(purpose, identity.SEARCH_READER.name, search, "query the product index",
                                     data_actions=("Microsoft.Search/searchServices/indexes/documents/read",)))
        if on_azure["cosmos"]:
            needs.append(CosmosRequirement(purpose, "Cosmos DB Built-in Data Reader", names.cosmos_account_id(settings),
                                           (identity.COSMOS_DATA_READER, identity.COSMOS_DATA_CONTRIBUTOR),
                                           "read the customer's orders"))
        if on_azure["safety"]:
            needs.append(Requirement(purpose, identity.COGNITIVE_USER.name, names.content_safety_account_id(settings),
                                     "check questions and answers with Content Safety",
                                     data_actions=("Microsoft.CognitiveServices/accounts/ContentSafety/text:analyze/action",)))
    elif purpose == "deploy":
        project = names.workspace_id(settings, settings.get("AZURE_AI_PROJECT_NAME"))
        needs += [
            Requirement(purpose, "Reader", group, "read the resource group", actions=(
                "Microsoft.Resources/subscriptions/resourceGroups/read",)),
            Requirement(purpose, "AzureML Data Scientist", project, "create the endpoint, environment and deployment",
                        actions=("Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write",
                                 "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write")),
            Requirement(purpose, identity.CONNECTION_SECRETS_READER.name, project,
                        "read the token signing secret's connection",
                        actions=("Microsoft.MachineLearningServices/workspaces/connections/listsecrets/action",)),
            Requirement(purpose, "Managed Identity Operator", names.identity_id(settings),
                        "attach the endpoint's identity", actions=(
                            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",)),
        ]
        if hub_storage:
            needs.append(Requirement(purpose, "Storage Blob Data Contributor", hub_storage,
                                     "upload the image's build context", data_actions=(
                                         "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",)))
    return needs


def matches(action: str, pattern: str) -> bool:
    """Azure's action wildcards, in any case: `*` stands for any text, and a `/*/` segment for none too
    (Managed Identity Operator's `userAssignedIdentities/*/assign/action` grants `userAssignedIdentities/assign/action`)."""
    regex = re.escape(pattern.lower()).replace("/\\*/", "/(?:.*/)?").replace("\\*", ".*")
    return re.fullmatch(regex, action.lower()) is not None


def allows(permissions, action: str, data: bool = False) -> bool:
    """Whether one of the roles' permissions grants `action` without excluding it."""
    for permission in permissions:
        granted = (permission.data_actions if data else permission.actions) or []
        excluded = (permission.not_data_actions if data else permission.not_actions) or []
        if any(matches(action, g) for g in granted) and not any(matches(action, e) for e in excluded):
            return True
    return False


def principal_from_token(token: str) -> Principal:
    """The signed-in principal in an Entra ID access token (its claims only; Azure verified the token already)."""
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    return Principal(claims["oid"], "ServicePrincipal" if claims.get("idtyp") == "app" else "User")


def grant_command(requirement: Requirement | CosmosRequirement, principal: Principal) -> str:
    """The Azure CLI command that grants a missing role (run by someone allowed to assign roles)."""
    from azure.mgmt.core.tools import parse_resource_id

    if isinstance(requirement, CosmosRequirement):
        account = parse_resource_id(requirement.account_id)
        return (f"az cosmosdb sql role assignment create --account-name {account['name']} "
                f"--resource-group {account['resource_group']} "
                f"--scope / --principal-id {principal.object_id} --role-definition-id {requirement.definitions[0]}")
    return (f'az role assignment create --assignee-object-id {principal.object_id} --assignee-principal-type '
            f'{principal.kind} --role "{requirement.role}" --scope {requirement.scope}')


def _permissions(client, scope: str):
    """The caller's permissions on a resource, or on the resource group while the resource does not exist yet."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.core.tools import parse_resource_id

    parts = parse_resource_id(scope)
    if parts.get("name"):
        try:
            return list(client.permissions.list_for_resource(parts["resource_group"], parts["namespace"], "",
                                                            parts["type"], parts["name"])), ""
        except ResourceNotFoundError:
            pass
        where = f" ({parts['name']} does not exist yet: checked on resource group {parts['resource_group']})"
    else:
        where = ""
    return list(client.permissions.list_for_resource_group(parts["resource_group"])), where


def _cosmos_has(cosmos_client, requirement: CosmosRequirement, principal: Principal) -> bool:
    from azure.mgmt.core.tools import parse_resource_id

    parts = parse_resource_id(requirement.account_id)
    for assignment in cosmos_client.sql_resources.list_sql_role_assignments(parts["resource_group"], parts["name"]):
        if assignment.principal_id == principal.object_id and \
                names.name_of(assignment.role_definition_id or "") in requirement.definitions:
            return True
    return False


def role_checks(settings: Settings, purpose: str = "provision", credential=None, principal: Principal | None = None,
                hub_storage: str | None = None, **options) -> list:
    """One check per requirement: ok, or failed with the missing actions and the command that grants the role."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    from contoso_chat.azure.clients import ARM_SCOPE, authorization_client
    from contoso_chat.backends.azure_credentials import azure_credential

    needs = requirements(settings, purpose, hub_storage)
    if not needs:
        return [Check(f"roles for {purpose}", "skipped", "nothing configured on Azure needs a role for this")]
    credential = credential or azure_credential()
    if principal is None:
        try:
            principal = principal_from_token(credential.get_token(ARM_SCOPE).token)
        except Exception:  # no sign-in of any kind, or a token without an object id: say what to do
            return [Check("sign-in", "failed", "No Azure sign-in found to check roles with. Run `az login` (or set "
                                               "a service principal), then rerun.")]
    authorization = authorization_client(settings, credential, **options)
    read: dict[str, tuple] = {}  # scope -> the caller's permissions there, asked once
    checks = []
    for need in needs:
        name = f"role {need.role} ({purpose})"
        target = names.name_of(need.account_id if isinstance(need, CosmosRequirement) else need.scope)
        try:
            if isinstance(need, CosmosRequirement):
                from azure.mgmt.cosmosdb import CosmosDBManagementClient

                cosmos = CosmosDBManagementClient(credential, names.subscription(settings), **options)
                granted, where = _cosmos_has(cosmos, need, principal), ""
                missing = [] if granted else [f"a {need.role} assignment (direct, not through a group)"]
            else:
                if need.scope not in read:
                    read[need.scope] = _permissions(authorization, need.scope)
                permissions, where = read[need.scope]
                missing = [a for a in need.actions if not allows(permissions, a)] + \
                          [a for a in need.data_actions if not allows(permissions, a, data=True)]
        except ResourceNotFoundError:
            checks.append(Check(name, "skipped", f"{target} or its resource group does not exist yet: create the "
                                                 f"resource group ({settings.get('AZURE_RESOURCE_GROUP')}) first"))
            continue
        except HttpResponseError as error:
            checks.append(Check(name, "failed", f"could not read your permissions on {target} "
                                                f"({error.status_code}, {getattr(error.error, 'code', None)})"))
            continue
        if missing:
            checks.append(Check(name, "failed", f"missing on {target}{where}: {', '.join(missing)}; needed to "
                                                f"{need.why}. Grant it: `{grant_command(need, principal)}`"))
        else:
            checks.append(Check(name, "ok", f"granted on {target}{where}: {need.why}"))
    if purpose == "deploy" and not hub_storage:
        checks.append(Check("role Storage Blob Data Contributor (deploy)", "skipped",
                            "the hub's default storage account is named by Azure when the hub is created: "
                            "run this check again after provisioning (it reads the hub), or check the role "
                            "on that account in the portal"))
    return checks


def hub_storage_account(settings: Settings) -> str | None:
    """The hub's default storage account, read from Azure ML; None when the hub cannot be read (yet)."""
    try:
        from contoso_chat.azure.clients import ml_client

        return ml_client(settings).workspaces.get(settings.get("AZURE_AI_HUB_NAME")).storage_account
    except Exception:  # no hub yet, or no permission to read it: the storage check is then skipped and says so
        return None


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> int:
    """Print each requirement's check; exit 1 when a role is missing."""
    from contoso_chat.backends.settings import ConfigError, load_settings

    purposes = (argv if argv is not None else sys.argv[1:]) or ["provision"]
    unknown = [p for p in purposes if p not in PURPOSES]
    if unknown:
        log(f"Unknown purpose {', '.join(unknown)}: use {', '.join(PURPOSES)}.")
        return 2
    settings = load_settings()
    if not settings.get("AZURE_SUBSCRIPTION_ID"):
        log("AZURE_SUBSCRIPTION_ID is not set: the local stack needs no Azure roles.")
        return 0
    failed = 0
    for purpose in purposes:
        try:
            storage = hub_storage_account(settings) if purpose == "deploy" else None
            checks = role_checks(settings, purpose, hub_storage=storage)
        except ConfigError as error:
            log(f"{purpose}: {error}")
            return 1
        for check in checks:
            log(f"[{check.status}] {check.check}: {check.detail}")
            failed += check.status == "failed"
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
