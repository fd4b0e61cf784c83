"""The endpoint identity, its role assignments and the model deployments, sent by the real management SDK
clients to a local fake transport: the REST paths, api-versions and bodies are what Azure would receive."""

from __future__ import annotations

import datetime as dt

import pytest

from contoso_chat.azure import identity, model_deployments, names, provisioning
from contoso_chat.backends.settings import ConfigError, resolve

from azure_fakes import FakeAzureTransport, FakeCredential

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
PRINCIPAL = "99999999-8888-7777-6666-555555555555"
GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-contoso-chat/providers"
STORAGE = f"{GROUP}/Microsoft.Storage/storageAccounts/stcontosochathub01"
FULL = {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION, "AZURE_OPENAI_ENDPOINT": "https://aoai-x.openai.azure.com/",
        "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini", "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "text-embedding-3-small",
        "AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net",
        "COSMOS_ENDPOINT": "https://cosmos-x.documents.azure.com:443/"}


def echo(status: int = 200):
    """Answer every request with its own body plus a finished provisioning state."""
    def handler(request):
        body = request.body if isinstance(request.body, dict) else {}
        properties = {**body.get("properties", {}), "provisioningState": "Succeeded"}
        return status, {**body, "id": request.path, "name": request.path.rsplit("/", 1)[-1], "properties": properties}
    return handler


def test_endpoint_gets_exactly_the_roles_it_needs_each_on_its_own_resource():
    settings = resolve(FULL)
    transport = FakeAzureTransport(echo(201))
    client = provisioning.authorization_client(settings, FakeCredential(), transport=transport)
    assignments = identity.endpoint_role_assignments(settings, STORAGE)
    identity.assign_roles(client, assignments, PRINCIPAL, SUBSCRIPTION, log=lambda *_: None)
    sent = {}
    for request in transport.sent:
        assert request.method == "PUT" and request.api_version == "2022-04-01"
        scope, _, name = request.path.partition("/providers/Microsoft.Authorization/roleAssignments/")
        role = request.body["properties"]["roleDefinitionId"].rsplit("/", 1)[-1]
        assert request.body["properties"]["principalId"] == PRINCIPAL
        assert request.body["properties"]["principalType"] == "ServicePrincipal"
        assert request.body["properties"]["roleDefinitionId"].startswith(f"/subscriptions/{SUBSCRIPTION}/providers/")
        sent[role] = (scope, name)
    assert {role: scope for role, (scope, _) in sent.items()} == {
        "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": f"{GROUP}/Microsoft.CognitiveServices/accounts/aoai-x",
        "1407120a-92aa-4202-b7e9-c0e197c71c8f": f"{GROUP}/Microsoft.Search/searchServices/srch-x",
        "7f951dda-4ed3-4680-a7ca-43fe172d538d": f"{GROUP}/Microsoft.ContainerRegistry/registries/"
                                                f"{names.registry_name(settings)}",
        "ea01e6af-a1c1-4350-9563-ad00f8c72ec5": f"{GROUP}/Microsoft.MachineLearningServices/workspaces/"
                                                "contoso-chat-project",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": STORAGE,
    }
    transport.sent.clear()
    identity.assign_roles(client, assignments, PRINCIPAL, SUBSCRIPTION, log=lambda *_: None)
    assert {r.path.rsplit("/", 1)[-1] for r in transport.sent} == {name for _, name in sent.values()}, \
        "a rerun must reuse the same assignment names"


def test_no_role_for_a_service_that_is_not_configured():
    roles = {a.role.name for a in identity.endpoint_role_assignments(resolve({"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}))}
    assert roles == {"AcrPull", "Azure Machine Learning Workspace Connection Secrets Reader", "Storage Blob Data Reader"}
    assert identity.endpoint_cosmos_assignments(resolve({"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION})) == []


def test_an_existing_assignment_counts_as_done_but_other_errors_stop():
    settings = resolve(FULL)
    exists = FakeAzureTransport(lambda r: (409, {"error": {"code": "RoleAssignmentExists", "message": "exists"}}))
    client = provisioning.authorization_client(settings, FakeCredential(), transport=exists)
    assert len(identity.assign_roles(client, identity.endpoint_role_assignments(settings, STORAGE), PRINCIPAL,
                                     SUBSCRIPTION, log=lambda *_: None)) == 5
    denied = FakeAzureTransport(lambda r: (403, {"error": {"code": "AuthorizationFailed", "message": "no"}}))
    client = provisioning.authorization_client(settings, FakeCredential(), transport=denied)
    with pytest.raises(Exception, match="no"):
        identity.assign_roles(client, identity.endpoint_role_assignments(settings, STORAGE), PRINCIPAL, SUBSCRIPTION)


def test_the_storage_role_waits_for_the_hubs_storage_account():
    """Azure names the hub's default storage account: until it exists nothing is sent, and the error says why."""
    settings = resolve(FULL)
    transport = FakeAzureTransport(echo(201))
    client = provisioning.authorization_client(settings, FakeCredential(), transport=transport)
    with pytest.raises(ConfigError, match="Storage Blob Data Reader.*placeholder.*storage account"):
        identity.assign_roles(client, identity.endpoint_role_assignments(settings), PRINCIPAL, SUBSCRIPTION)
    assert transport.sent == []


def test_cosmos_reader_is_a_data_plane_sql_role_on_the_account():
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    settings = resolve(FULL)
    transport = FakeAzureTransport(echo())
    client = CosmosDBManagementClient(FakeCredential(), SUBSCRIPTION, transport=transport, polling_interval=0)
    identity.assign_cosmos_roles(client, identity.endpoint_cosmos_assignments(settings), PRINCIPAL, "rg-contoso-chat",
                                 log=lambda *_: None)
    put = [r for r in transport.sent if r.method == "PUT"]
    account = f"{GROUP}/Microsoft.DocumentDB/databaseAccounts/cosmos-x"
    assert len(put) == 1 and put[0].path.startswith(f"{account}/sqlRoleAssignments/")
    assert put[0].body["properties"] == {"roleDefinitionId": f"{account}/sqlRoleDefinitions/"
                                                             "00000000-0000-0000-0000-000000000001",
                                         "scope": account, "principalId": PRINCIPAL}


def test_identity_is_created_in_the_resource_group_and_region():
    settings = resolve(FULL)
    transport = FakeAzureTransport(lambda r: (201, {**r.body, "id": r.path, "properties": {
        "clientId": "cid", "principalId": PRINCIPAL, "tenantId": "t"}}))
    created = identity.create_identity(provisioning.msi_client(settings, FakeCredential(), transport=transport),
                                       settings)
    request = transport.sent[0]
    assert request.method == "PUT" and request.path == f"{GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/" \
                                                       f"{names.IDENTITY_NAME}"
    assert request.body["location"] == "swedencentral" and created.principal_id == PRINCIPAL


def models_page(entries: list[dict], next_link: str | None = None) -> dict:
    return {"value": entries, **({"nextLink": next_link} if next_link else {})}


def model(name: str, version: str, sku: str, retires: str | None) -> dict:
    return {"kind": "OpenAI", "model": {"format": "OpenAI", "name": name, "version": version,
                                        "skus": [{"name": sku}],
                                        **({"deprecation": {"inference": retires}} if retires else {})}}


def cognitive_fake(retire_chat: str):
    """Two pages of models (the pinned chat model only on page 2); deployments echo their body."""
    page2 = "https://management.azure.com/subscriptions/x/providers/Microsoft.CognitiveServices/locations/" \
            "swedencentral/models?api-version=2024-10-01&$skipToken=2"

    def handler(request):
        if request.method == "GET" and "skipToken" in request.url:
            return 200, models_page([model("gpt-4o-mini", "2024-07-18", "GlobalStandard", retire_chat)])
        if request.method == "GET" and request.path.endswith("/models"):
            return 200, models_page([model("text-embedding-3-small", "1", "Standard", None)], page2)
        return echo()(request)
    return FakeAzureTransport(handler)


def test_model_deployments_follow_every_page_and_are_pinned():
    settings = resolve(FULL)
    transport = cognitive_fake("2027-03-31")
    client = model_deployments.management_client(settings, FakeCredential(), transport=transport, polling_interval=0)
    offered = model_deployments.offered_models(client, "swedencentral")
    assert len(offered) == 2, "the pager must follow nextLink"
    model_deployments.create_deployments(client, settings, model_deployments.DEPLOYMENTS, offered,
                                         today=dt.date(2026, 1, 1), log=lambda *_: None)
    puts = {r.path.rsplit("/", 1)[-1]: r for r in transport.sent if r.method == "PUT"}
    chat = puts["gpt-4o-mini"]
    assert chat.path == f"{GROUP}/Microsoft.CognitiveServices/accounts/aoai-x/deployments/gpt-4o-mini"
    assert chat.api_version and chat.body["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
    assert chat.body["properties"]["model"] == {"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18"}
    assert chat.body["sku"] == {"name": "GlobalStandard", "capacity": 30}


def test_a_retired_model_is_not_deployed():
    settings = resolve(FULL)
    transport = cognitive_fake("2025-12-01")
    client = model_deployments.management_client(settings, FakeCredential(), transport=transport, polling_interval=0)
    offered = model_deployments.offered_models(client, "swedencentral")
    with pytest.raises(ConfigError, match="retired on 2025-12-01"):
        model_deployments.create_deployments(client, settings, model_deployments.DEPLOYMENTS, offered,
                                             today=dt.date(2026, 1, 1), log=lambda *_: None)
    assert not [r for r in transport.sent if r.method == "PUT"]


def test_preflight_follows_next_link_and_reports_retirement():
    settings = resolve({"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION})
    pages = {
        "locations": {"value": [{"name": "swedencentral"}]},
        "models": models_page([model("text-embedding-3-small", "1", "Standard", None)], "https://next-page"),
        "next": models_page([model("gpt-4o-mini", "2024-07-18", "GlobalStandard", "2026-02-15")]),
        "usages": {"value": []},
    }

    def get(path, token):
        key = ("next" if path == "https://next-page" else "usages" if "/usages" in path
               else "models" if "/models" in path else "locations")
        return pages[key]

    checks = {c.check: c for c in provisioning.preflight(settings, get_token=lambda: "t", get=get, roles=lambda s: [],
                                                         today=dt.date(2026, 1, 1))}
    chat = checks["model gpt-4o-mini 2024-07-18 (GlobalStandard)"]
    assert chat.status == "ok" and "2026-02-15" in chat.detail and "soon" in chat.detail
    later = {c.check: c for c in provisioning.preflight(settings, get_token=lambda: "t", get=get, roles=lambda s: [],
                                                        today=dt.date(2026, 3, 1))}
    assert later["model gpt-4o-mini 2024-07-18 (GlobalStandard)"].status == "failed"
