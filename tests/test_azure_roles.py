"""Your roles, checked against what the signed-in principal has: Resource Manager's permissions API and
Cosmos DB's SQL role assignments, read by the real SDK clients from a local fake transport."""

from __future__ import annotations

import jwt
import pytest

from contoso_chat.azure import roles
from contoso_chat.backends.settings import resolve

from azure_fakes import FakeAzureTransport, FakeCredential

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
ME = "abababab-1111-2222-3333-444444444444"
GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-contoso-chat"
FULL = {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION, "AZURE_RESOURCE_GROUP": "rg-contoso-chat",
        "AZURE_OPENAI_ENDPOINT": "https://aoai-x.openai.azure.com/",
        "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini", "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "text-embedding-3-small",
        "AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net",
        "COSMOS_ENDPOINT": "https://cosmos-x.documents.azure.com:443/",
        "AZURE_CONTENT_SAFETY_ENDPOINT": "https://safety-x.cognitiveservices.azure.com/"}

# Built-in roles' permissions as Azure returns them (the parts the checks read).
OWNER = {"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}
CONTRIBUTOR = {"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                                                "Microsoft.Authorization/elevateAccess/Action"],
               "dataActions": [], "notDataActions": []}
READER = {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}
OPENAI_USER = {"actions": ["Microsoft.CognitiveServices/*/read"], "notActions": [],
               "dataActions": ["Microsoft.CognitiveServices/accounts/OpenAI/*/read",
                               "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action",
                               "Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action"],
               "notDataActions": []}
OPENAI_CONTRIBUTOR = {"actions": ["Microsoft.CognitiveServices/*/read"], "notActions": [],
                      "dataActions": ["Microsoft.CognitiveServices/accounts/OpenAI/*"], "notDataActions": []}
INDEX_CONTRIBUTOR = {"actions": [], "notActions": [],
                     "dataActions": ["Microsoft.Search/searchServices/indexes/documents/*"], "notDataActions": []}
INDEX_READER = {"actions": [], "notActions": [],
                "dataActions": ["Microsoft.Search/searchServices/indexes/documents/read"], "notDataActions": []}
DATA_SCIENTIST = {"actions": ["Microsoft.MachineLearningServices/workspaces/*/read",
                              "Microsoft.MachineLearningServices/workspaces/*/action",
                              "Microsoft.MachineLearningServices/workspaces/*/delete",
                              "Microsoft.MachineLearningServices/workspaces/*/write"],
                  "notActions": ["Microsoft.MachineLearningServices/workspaces/delete",
                                 "Microsoft.MachineLearningServices/workspaces/write",
                                 "Microsoft.MachineLearningServices/workspaces/connections/listsecrets/action"],
                  "dataActions": [], "notDataActions": []}
SECRETS_READER = {"actions": ["Microsoft.MachineLearningServices/workspaces/connections/listsecrets/action"],
                  "notActions": [], "dataActions": [], "notDataActions": []}
IDENTITY_OPERATOR = {"actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                                 "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"],
                     "notActions": [], "dataActions": [], "notDataActions": []}
BLOB_CONTRIBUTOR = {"actions": [], "notActions": [],
                    "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
                    "notDataActions": []}
COGNITIVE_USER = {"actions": ["Microsoft.CognitiveServices/*/read"], "notActions": [],
                  "dataActions": ["Microsoft.CognitiveServices/*"], "notDataActions": []}


def azure(group: list[dict] | None, resources: dict[str, list[dict]], cosmos: list[dict] | None = None):
    """A fake Resource Manager: the caller's permissions per scope; None for a group that does not exist."""
    def handler(request):
        path = request.path
        if path.endswith("/sqlRoleAssignments"):
            return 200, {"value": cosmos or []}
        assert path.endswith("/providers/Microsoft.Authorization/permissions"), path
        for name, permissions in resources.items():
            if f"/{name}/providers/Microsoft.Authorization" in path:
                # a resource's permissions include what the caller holds on its group
                return 200, {"value": permissions + (group or [])}
        if "/resourcegroups/rg-contoso-chat/providers/Microsoft.Authorization" not in path:
            return 404, {"error": {"code": "ResourceNotFound", "message": "not found"}}
        if group is None:
            return 404, {"error": {"code": "ResourceGroupNotFound", "message": "not found"}}
        return 200, {"value": group}
    return handler


def check(settings, transport, purpose="provision", kind="User"):
    found = roles.role_checks(settings, purpose, FakeCredential(), roles.Principal(ME, kind), transport=transport)
    return {c.check: c for c in found}


def cosmos_assignment(definition: str) -> dict:
    account = f"{GROUP}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-x"
    return {"id": f"{account}/sqlRoleAssignments/x", "name": "x",
            "properties": {"roleDefinitionId": f"{account}/sqlRoleDefinitions/{definition}", "scope": account,
                           "principalId": ME}}


@pytest.mark.parametrize("action, permissions, data, expected", [
    ("Microsoft.MachineLearningServices/workspaces/write", [OWNER], False, True),
    ("Microsoft.MachineLearningServices/workspaces/write", [READER], False, False),
    ("Microsoft.Authorization/roleAssignments/write", [CONTRIBUTOR], False, False),  # notActions, any case
    ("Microsoft.Authorization/roleAssignments/write", [CONTRIBUTOR, OWNER], False, True),  # another role grants it
    ("Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action", [OWNER], True, False),
    ("Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action", [OPENAI_USER], True, True),
    ("Microsoft.CognitiveServices/accounts/OpenAI/fine-tunes/write", [OPENAI_USER], True, False),
    ("Microsoft.CognitiveServices/accounts/OpenAI/fine-tunes/write", [OPENAI_CONTRIBUTOR], True, True),
    ("Microsoft.Search/searchServices/indexes/documents/write", [INDEX_READER], True, False),
    ("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", [IDENTITY_OPERATOR], False, True),
    ("Microsoft.ManagedIdentity/userAssignedIdentities/write", [IDENTITY_OPERATOR], False, False),
])
def test_a_role_allows_an_action_only_when_it_grants_it_and_does_not_exclude_it(action, permissions, data, expected):
    class Permission:
        def __init__(self, wire):
            self.actions, self.not_actions = wire["actions"], wire["notActions"]
            self.data_actions, self.not_data_actions = wire["dataActions"], wire["notDataActions"]

    assert roles.allows([Permission(p) for p in permissions], action, data) is expected


def test_an_owner_without_data_roles_is_told_which_roles_to_add_and_how():
    settings = resolve(FULL)
    transport = FakeAzureTransport(azure([OWNER], {}))
    checks = check(settings, transport)
    assert checks["role Contributor (provision)"].status == "ok"
    assert checks["role Role Based Access Control Administrator (provision)"].status == "ok"
    assert checks["role Search Service Contributor (provision)"].status == "ok", "Owner manages the search service"
    for role in ("Cognitive Services OpenAI User", "Search Index Data Contributor",
                 "Cosmos DB Built-in Data Contributor"):
        assert checks[f"role {role} (provision)"].status == "failed", role
    openai = checks["role Cognitive Services OpenAI User (provision)"].detail
    assert "deployments/embeddings/action" in openai and "embed the chunks" in openai
    assert (f'az role assignment create --assignee-object-id {ME} --assignee-principal-type User '
            f'--role "Cognitive Services OpenAI User" --scope {GROUP}/providers/Microsoft.CognitiveServices/'
            'accounts/aoai-x') in openai
    cosmos = checks["role Cosmos DB Built-in Data Contributor (provision)"].detail
    assert (f"az cosmosdb sql role assignment create --account-name cosmos-x --resource-group rg-contoso-chat "
            f"--scope / --principal-id {ME} --role-definition-id 00000000-0000-0000-0000-000000000002") in cosmos
    asked = {r.path for r in transport.sent}
    assert f"{GROUP}/providers/Microsoft.CognitiveServices/accounts/aoai-x/providers/Microsoft.Authorization/" \
           "permissions" in {p.replace("//", "/").replace("resourcegroups", "resourceGroups") for p in asked}
    assert all(r.method == "GET" for r in transport.sent)


def test_a_contributor_cannot_grant_the_endpoint_its_roles():
    settings = resolve(FULL)
    checks = check(settings, FakeAzureTransport(azure([CONTRIBUTOR], {})))
    assert checks["role Contributor (provision)"].status == "ok"
    rbac = checks["role Role Based Access Control Administrator (provision)"]
    assert rbac.status == "failed" and "Microsoft.Authorization/roleAssignments/write" in rbac.detail


def test_every_role_in_place_passes_and_keys_replace_the_data_roles():
    settings = resolve(FULL)
    resources = {"aoai-x": [OPENAI_USER], "srch-x": [INDEX_CONTRIBUTOR]}
    checks = check(settings, FakeAzureTransport(azure([OWNER], resources, [cosmos_assignment(
        "00000000-0000-0000-0000-000000000002")])))
    assert {c.status for c in checks.values()} == {"ok"}, checks
    with_keys = resolve({**FULL, "AZURE_OPENAI_API_KEY": "k" * 32, "AZURE_SEARCH_API_KEY": "s" * 32,
                         "COSMOS_KEY": "c" * 32})
    named = set(check(with_keys, FakeAzureTransport(azure([OWNER], {}))))
    assert named == {"role Contributor (provision)", "role Role Based Access Control Administrator (provision)",
                     "role Search Service Contributor (provision)"}, "a key in .env needs no data role"


def test_a_reader_role_or_another_principal_in_cosmos_db_does_not_count():
    settings = resolve(FULL)
    reader = cosmos_assignment("00000000-0000-0000-0000-000000000001")
    someone = cosmos_assignment("00000000-0000-0000-0000-000000000002")
    someone["properties"]["principalId"] = "00000000-1111-2222-3333-444444444444"
    for given in ([reader], [someone]):
        checks = check(settings, FakeAzureTransport(azure([OWNER], {}, given)))
        assert checks["role Cosmos DB Built-in Data Contributor (provision)"].status == "failed"


def test_a_resource_not_created_yet_is_checked_on_its_group_and_a_missing_group_is_said():
    settings = resolve(FULL)
    checks = check(settings, FakeAzureTransport(azure([OPENAI_CONTRIBUTOR, OWNER], {})), "fine-tune")
    assert checks["role Cognitive Services OpenAI Contributor (fine-tune)"].status == "ok"
    assert "does not exist yet" in checks["role Cognitive Services OpenAI Contributor (fine-tune)"].detail
    missing = check(settings, FakeAzureTransport(azure(None, {})))
    assert missing["role Contributor (provision)"].status == "skipped"
    assert "rg-contoso-chat" in missing["role Contributor (provision)"].detail


def test_fine_tuning_needs_more_than_the_user_role():
    settings = resolve(FULL)
    checks = check(settings, FakeAzureTransport(azure([OWNER], {"aoai-x": [OPENAI_USER]})), "fine-tune")
    tune = checks["role Cognitive Services OpenAI Contributor (fine-tune)"]
    assert tune.status == "failed" and "fine-tunes/write" in tune.detail and "files/import/action" in tune.detail


def test_ci_principal_needs_the_reader_roles_of_the_endpoint():
    settings = resolve(FULL)
    checks = check(settings, FakeAzureTransport(azure([READER], {"aoai-x": [OPENAI_USER], "srch-x": [INDEX_READER]},
                                                      [cosmos_assignment("00000000-0000-0000-0000-000000000001")])),
                   "evaluate", kind="ServicePrincipal")
    assert checks["role Cognitive Services OpenAI User (evaluate)"].status == "ok"
    assert checks["role Search Index Data Reader (evaluate)"].status == "ok"
    assert checks["role Cosmos DB Built-in Data Reader (evaluate)"].status == "ok"
    safety = checks["role Cognitive Services User (evaluate)"]
    assert safety.status == "failed" and "--assignee-principal-type ServicePrincipal" in safety.detail
    checks = check(settings, FakeAzureTransport(azure([READER], {"safety-x": [COGNITIVE_USER]})), "evaluate")
    assert checks["role Cognitive Services User (evaluate)"].status == "ok"
    assert checks["role Search Index Data Reader (evaluate)"].status == "failed"


def test_the_signed_in_principal_is_read_from_the_token():
    user = jwt.encode({"oid": ME, "idtyp": "user"}, "a-test-signing-key-of-32-bytes-or-more", algorithm="HS256")
    app = jwt.encode({"oid": ME, "idtyp": "app"}, "a-test-signing-key-of-32-bytes-or-more", algorithm="HS256")
    assert roles.principal_from_token(user) == roles.Principal(ME, "User")
    assert roles.principal_from_token(app) == roles.Principal(ME, "ServicePrincipal")
    settings = resolve(FULL)
    not_signed_in = roles.role_checks(settings, "provision", FakeCredential(), transport=FakeAzureTransport(
        azure([OWNER], {})))
    assert [(c.check, c.status) for c in not_signed_in] == [("sign-in", "failed")], "fake-token is no JWT"


def test_local_settings_need_no_role_and_an_unknown_purpose_is_refused():
    assert [c.status for c in roles.role_checks(resolve({}), "evaluate", FakeCredential(), roles.Principal(ME))] == \
        ["skipped"]
    with pytest.raises(ValueError, match="use one of provision, fine-tune, evaluate"):
        roles.requirements(resolve(FULL), "teardown")
    assert roles.main(["teardown"], log=lambda *_: None) == 2


def test_ci_deploy_principal_needs_the_project_identity_and_storage_roles():
    settings = resolve(FULL)
    storage = f"{GROUP}/providers/Microsoft.Storage/storageAccounts/sthub01"
    resources = {"contoso-chat-project": [DATA_SCIENTIST, SECRETS_READER], "id-contoso-chat-endpoint":
                 [IDENTITY_OPERATOR], "sthub01": [BLOB_CONTRIBUTOR]}
    found = roles.role_checks(settings, "deploy", FakeCredential(), roles.Principal(ME, "ServicePrincipal"),
                              hub_storage=storage, transport=FakeAzureTransport(azure([READER], resources)))
    assert {c.check: c.status for c in found} == {
        "role Reader (deploy)": "ok", "role AzureML Data Scientist (deploy)": "ok",
        "role Azure Machine Learning Workspace Connection Secrets Reader (deploy)": "ok",
        "role Managed Identity Operator (deploy)": "ok", "role Storage Blob Data Contributor (deploy)": "ok"}
    resources["contoso-chat-project"] = [DATA_SCIENTIST]
    found = {c.check: c for c in roles.role_checks(settings, "deploy", FakeCredential(), roles.Principal(ME),
                                                   transport=FakeAzureTransport(azure([READER], resources)))}
    secrets = found["role Azure Machine Learning Workspace Connection Secrets Reader (deploy)"]
    assert secrets.status == "failed" and "listsecrets/action" in secrets.detail
    assert found["role Storage Blob Data Contributor (deploy)"].status == "skipped", "no hub storage known yet"
