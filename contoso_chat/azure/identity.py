"""The endpoint's identity as code: a user-assigned managed identity and its least-privilege role assignments.

The online endpoint signs in as this identity (AZURE_CLIENT_ID on the deployment tells
DefaultAzureCredential which one). Each role is granted on the one resource that needs it, and
each assignment's name is a uuid5 of scope, principal and role, so rerunning provisioning finds
the same assignment instead of adding another. Cosmos DB's data plane has its own role system:
its reader role is a SQL role assignment on the account, not an Azure role.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

from contoso_chat.azure import names
from contoso_chat.backends.settings import ConfigError, Settings

COSMOS_DATA_READER = "00000000-0000-0000-0000-000000000001"  # Cosmos DB Built-in Data Reader (data plane)
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"  # Cosmos DB Built-in Data Contributor


@dataclass(frozen=True)
class Role:
    """A built-in Azure role: its name, its definition id, and why the endpoint needs it."""

    name: str
    definition_id: str
    why: str


OPENAI_USER = Role("Cognitive Services OpenAI User", "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
                   "call the chat and embedding deployments")
SEARCH_READER = Role("Search Index Data Reader", "1407120a-92aa-4202-b7e9-c0e197c71c8f", "query the product index")
ACR_PULL = Role("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d", "pull the serving image")
CONNECTION_SECRETS_READER = Role("Azure Machine Learning Workspace Connection Secrets Reader",
                                 "ea01e6af-a1c1-4350-9563-ad00f8c72ec5",
                                 "read the secrets injected into the deployment (token signing secret)")
COGNITIVE_USER = Role("Cognitive Services User", "a97b65f3-24c7-4388-baec-2e87135dc908",
                      "check questions and answers with Content Safety")
STORAGE_BLOB_READER = Role("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
                           "read the deployment's files from the workspace's default storage")
# Azure names the hub's default storage account when it creates the hub: plans show this placeholder until then.
HUB_STORAGE = "<named by Azure with the hub>"


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(p.lower() for p in parts)))


@dataclass(frozen=True)
class RoleAssignment:
    """An Azure role on one scope for the endpoint's identity."""

    role: Role
    scope: str

    def assignment_name(self, principal_id: str) -> str:
        """Deterministic, so a rerun updates the same assignment."""
        return _uuid(self.scope, principal_id, self.role.definition_id)

    def role_definition_id(self, subscription: str) -> str:
        return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{self.role.definition_id}"

    def arm_body(self, subscription: str, principal_id: str) -> dict:
        """The body of `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`."""
        return {"properties": {"roleDefinitionId": self.role_definition_id(subscription), "principalId": principal_id,
                               "principalType": "ServicePrincipal"}}


@dataclass(frozen=True)
class CosmosRoleAssignment:
    """A Cosmos DB data-plane (SQL) role on the account for the endpoint's identity."""

    account_id: str
    role_definition: str = COSMOS_DATA_READER

    @property
    def role_name(self) -> str:
        return "Cosmos DB Built-in Data Reader" if self.role_definition == COSMOS_DATA_READER else \
            "Cosmos DB Built-in Data Contributor"

    def assignment_name(self, principal_id: str) -> str:
        return _uuid(self.account_id, principal_id, self.role_definition)

    def arm_body(self, principal_id: str) -> dict:
        """The body of `PUT {account}/sqlRoleAssignments/{name}`."""
        return {"properties": {"roleDefinitionId": f"{self.account_id}/sqlRoleDefinitions/{self.role_definition}",
                               "scope": self.account_id, "principalId": principal_id}}


def endpoint_role_assignments(settings: Settings, hub_storage: str | None = None) -> list[RoleAssignment]:
    """The Azure roles the endpoint needs, each on the narrowest scope: only for the services configured.

    `hub_storage` is the resource id of the hub's default storage account (`Hub.storage_account` once created).
    """
    project = names.workspace_id(settings, settings.get("AZURE_AI_PROJECT_NAME"))
    assignments = [RoleAssignment(ACR_PULL, names.registry_id(settings)),
                   RoleAssignment(CONNECTION_SECRETS_READER, project),
                   RoleAssignment(STORAGE_BLOB_READER,
                                  hub_storage or names.resource_id(settings, "Microsoft.Storage/storageAccounts",
                                                                   HUB_STORAGE))]
    if settings.get("AZURE_OPENAI_ENDPOINT"):
        assignments.append(RoleAssignment(OPENAI_USER, names.openai_account_id(settings)))
    if settings.get("AZURE_SEARCH_ENDPOINT"):
        assignments.append(RoleAssignment(SEARCH_READER, names.search_service_id(settings)))
    if settings.get("AZURE_CONTENT_SAFETY_ENDPOINT"):
        assignments.append(RoleAssignment(COGNITIVE_USER, names.content_safety_account_id(settings)))
    return assignments


def endpoint_cosmos_assignments(settings: Settings) -> list[CosmosRoleAssignment]:
    """Cosmos DB Built-in Data Reader on the account, when Cosmos DB holds the customers."""
    return [CosmosRoleAssignment(names.cosmos_account_id(settings))] if settings.get("COSMOS_ENDPOINT") else []


def create_identity(msi_client, settings: Settings):
    """Create (or find again) the endpoint's user-assigned identity; returns it with client and principal ids."""
    from azure.mgmt.msi.models import Identity

    return msi_client.user_assigned_identities.create_or_update(
        settings.get("AZURE_RESOURCE_GROUP"), names.IDENTITY_NAME,
        Identity(location=settings.get("AZURE_LOCATION"), tags={"app": "contoso-chat"}))


def assign_roles(authorization_client, assignments: list[RoleAssignment], principal_id: str, subscription: str,
                 log: Callable[[str], None] = print) -> list[str]:
    """Create each role assignment under its deterministic name; one that already exists counts as done."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    unknown = [a.role.name for a in assignments if "<" in a.scope]
    if unknown:
        raise ConfigError(f"No resource to grant {', '.join(unknown)} on yet (the scope is a placeholder): set "
                          "AZURE_SUBSCRIPTION_ID, and pass the hub's default storage account (`storage_account` of "
                          "the created hub) as hub_storage.")
    created = []
    for assignment in assignments:
        name = assignment.assignment_name(principal_id)
        parameters = RoleAssignmentCreateParameters(role_definition_id=assignment.role_definition_id(subscription),
                                                    principal_id=principal_id, principal_type="ServicePrincipal")
        try:
            authorization_client.role_assignments.create(assignment.scope, name, parameters)
        except HttpResponseError as error:
            if getattr(error.error, "code", None) != "RoleAssignmentExists":
                raise
        log(f"{assignment.role.name} on {names.name_of(assignment.scope)}")
        created.append(name)
    return created


def assign_cosmos_roles(cosmos_client, assignments: list[CosmosRoleAssignment], principal_id: str,
                        resource_group: str, log: Callable[[str], None] = print) -> list[str]:
    """Create each Cosmos DB SQL role assignment under its deterministic name (idempotent)."""
    created = []
    for assignment in assignments:
        name = assignment.assignment_name(principal_id)
        cosmos_client.sql_resources.begin_create_update_sql_role_assignment(
            name, resource_group, names.name_of(assignment.account_id), assignment.arm_body(principal_id)).result()
        log(f"{assignment.role_name} on {names.name_of(assignment.account_id)}")
        created.append(name)
    return created
