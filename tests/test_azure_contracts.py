"""The contract checker every fake Azure transport applies: it passes what the services' published contracts
allow and catches each kind of break (a property the model does not have, a missing required one, a value
outside its enum, a wrong type, a read-only field sent, an operation or api-version no contract describes)."""

from __future__ import annotations

import pytest

from contoso_chat.azure import provisioning
from contoso_chat.backends.settings import resolve

from azure_contracts import SEARCH_SERVICE_UPDATE, ContractError, check_body, check_request, check_schema
from azure_fakes import FakeAzureTransport, FakeCredential

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-contoso-chat/providers"


def role_model():
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

    return RoleAssignmentCreateParameters


def endpoint_model():
    from azure.ai.ml._restclient.arm_ml_service.models import OnlineEndpoint

    return OnlineEndpoint


ROLE = {"properties": {"roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/"
                                           "roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
                       "principalId": "99999999-8888-7777-6666-555555555555", "principalType": "ServicePrincipal"}}
ENDPOINT = {"location": "swedencentral", "properties": {"authMode": "Key"},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {f"{GROUP}/x": {}}}}


def changed(body: dict, path: str, value) -> dict:
    """A deep copy of body with the value at a dotted path replaced (or removed when value is ...)."""
    import copy

    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize("model, good", [(role_model, ROLE), (endpoint_model, ENDPOINT)])
def test_a_body_that_keeps_the_generated_model_passes(model, good):
    assert check_body(model(), good) == []


@pytest.mark.parametrize("model, good, path, value, problem", [
    (role_model, ROLE, "properties.principalId", ..., "required"),
    (role_model, ROLE, "properties.principalType", "Robot", "not one of"),
    (role_model, ROLE, "properties.principalId", 42, "a string"),
    (role_model, ROLE, "properties.principalNmae", "typo", "no such property"),
    (endpoint_model, ENDPOINT, "properties.authMode", "Password", "not one of"),
    (endpoint_model, ENDPOINT, "properties.authMode", ..., "required"),
    (endpoint_model, ENDPOINT, "properties.scoringUri", "https://x", "read-only"),
    (endpoint_model, ENDPOINT, "identity.type", "Everyone", "not one of"),
    (endpoint_model, ENDPOINT, "properties.traffic", {"blue": "all"}, "an integer"),
    (endpoint_model, ENDPOINT, "identity.userAssignedIdentities", ["not", "a", "map"], "an object"),
])
def test_each_kind_of_break_is_caught(model, good, path, value, problem):
    problems = check_body(model(), changed(good, path, value))
    assert problems and any(problem in p for p in problems), problems


def test_our_own_contract_for_the_search_service_update():
    good = {"properties": {"disableLocalAuth": False,
                           "authOptions": {"aadOrApiKey": {"aadAuthFailureMode": "http401WithBearerChallenge"}}}}
    assert check_schema(SEARCH_SERVICE_UPDATE, good) == []
    assert check_schema(SEARCH_SERVICE_UPDATE, changed(good, "properties.authOptions.aadOrApiKey.aadAuthFailureMode",
                                                       "http500"))
    assert check_schema(SEARCH_SERVICE_UPDATE, changed(good, "properties.disableLocalAuth", "no"))
    assert check_schema(SEARCH_SERVICE_UPDATE, changed(good, "properties.authOption", {}))


def test_a_request_no_contract_describes_fails():
    search = f"{GROUP}/Microsoft.Search/searchServices/srch-x"
    check_request("PATCH", search, "2023-11-01", {"properties": {"disableLocalAuth": False}})
    with pytest.raises(ContractError, match="api-version 2020-08-01"):
        check_request("PATCH", search, "2020-08-01", {"properties": {}})
    with pytest.raises(ContractError, match="No contract describes DELETE"):
        check_request("DELETE", search, "2023-11-01", None)
    with pytest.raises(ContractError, match="a body where the operation takes none"):
        check_request("GET", f"{GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/id-x", "2024-11-30", {"x": 1})


def test_provisioning_sends_connections_the_ml_service_accepts():
    """Each connection of the plan, sent by the real MLClient: the Cosmos DB one used to carry the category
    AzureCosmosDb, which the generated ConnectionCategory does not have."""
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import AadCredentialConfiguration, WorkspaceConnection

    settings = resolve({"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION, "AZURE_OPENAI_ENDPOINT": "https://aoai-x.openai.azure.com/",
                        "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini",
                        "AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net",
                        "COSMOS_ENDPOINT": "https://cosmos-x.documents.azure.com:443/"})
    transport = FakeAzureTransport(lambda r: (200, {**r.body, "id": r.path, "name": r.path.rsplit("/", 1)[-1]}))
    client = MLClient(FakeCredential(), subscription_id=SUBSCRIPTION, resource_group_name="rg-contoso-chat",
                      workspace_name="contoso-chat-project", enable_telemetry=False, transport=transport)
    plan = provisioning.build_plan(settings)
    for connection in plan.connections:
        client.connections.create_or_update(connection)
    assert len([r for r in transport.sent if r.method == "PUT"]) == len(plan.connections)
    old = WorkspaceConnection(name="contoso-cosmos", type="azure_cosmos_db", target="https://cosmos-x.documents.azure.com/",
                              credentials=AadCredentialConfiguration())
    with pytest.raises(ContractError, match="'AzureCosmosDb' is not one of ConnectionCategory"):
        client.connections.create_or_update(old)


def test_the_registry_provisioning_creates_keeps_its_contract():
    settings = resolve({"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION})
    plan = provisioning.build_plan(settings)
    check_request("PUT", plan.registry["id"], provisioning.REGISTRY_API_VERSION, provisioning.registry_body(settings))
    with pytest.raises(ContractError, match="sku.name"):
        check_request("PUT", plan.registry["id"], provisioning.REGISTRY_API_VERSION,
                      {**provisioning.registry_body(settings), "sku": {"name": "Free"}})
