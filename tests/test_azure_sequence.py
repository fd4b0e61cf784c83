"""The learner's sequence, end to end: notebook 01's provisioning and notebook 06's deployment cells in their
order (plan, YAML shown, create, wait, invoke), sent by the real SDK clients (MLClient, the managed identity,
authorization, Cosmos DB and Cognitive Services management clients) to the fake Azure transport, which checks
every request against its service's contract. The fake keeps what was created, so a later step only finds what
an earlier one made: the endpoint gets its identity only if provisioning created it.

Not covered here, because no offline transport reaches it:
- creating the hub and the project: azure-ai-ml submits them as an ARM template deployment through a
  ResourceManagementClient it builds itself, without the caller's transport;
- uploading the Docker build context (the repository) to the workspace's blob storage: azure-ai-ml builds that
  azure-storage-blob client itself, without the transport too. The deployment here uses the project's environment
  with its build context already uploaded (a blob URL), so the environment is still registered through MLClient;
- the data load (embeddings and index upload), checked in tests/test_azure_search.py;
- calling provision() itself: it builds its clients from the signed-in credential (no transport to inject), so
  its SDK steps are run here in provision()'s order through the same module functions.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from contoso_chat.azure import endpoint as azure_endpoint
from contoso_chat.azure import identity, model_deployments, names, provisioning
from contoso_chat.azure.clients import arm_client
from contoso_chat.backends.settings import ConfigError, resolve
from contoso_chat.paths import REPO_ROOT
from contoso_chat.serving import tokens
from contoso_chat.serving.api import ChatRequest

from azure_fakes import FakeAzureTransport, FakeCredential
from test_azure_identity import FULL, SUBSCRIPTION, model, models_page
from test_deployment import AZURE_ALL

SECRETS = {"AZURE_OPENAI_API_KEY": "fake-key-never-shipped", "AZURE_SEARCH_API_KEY": "fake-search-key-never-shipped",
           "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=fake-never-shipped",
           "CONTOSO_API_SECRET": "fake-signing-secret-never-shipped"}
SETTINGS = {**FULL, **AZURE_ALL, **SECRETS, "SERVING_BACKEND": "azure", "PROVISION_AZURE": "true"}
LOCATION = "swedencentral"
GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-contoso-chat/providers"
HUB_STORAGE = f"{GROUP}/Microsoft.Storage/storageAccounts/stcontosochathub01"
WORKSPACE = re.compile(rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+")
# Where azure-ai-ml puts a build context it uploaded: LocalUpload/<hash>/ in the workspace's blob container.
UPLOADED_CONTEXT = "https://stcontosochathub01.blob.core.windows.net/azureml-blobstore-0000/LocalUpload/" \
                   "0123456789abcdef/contoso-chat/"
OPERATIONS = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/{LOCATION}/" \
             "mfeOperationsStatus/"
ANSWER = {"answer": "The Summit Dome 2 Tent weighs 2.1 kg packed.", "citations": ["product-1"]}
QUIET = {"log": lambda *_: None}


class HeaderTransport(FakeAzureTransport):
    """The fake transport, plus the response headers a handler may return as a third item (Azure-AsyncOperation,
    Retry-After), which a long-running operation needs for the SDK's poller to follow it."""

    def __init__(self, handler) -> None:
        self._headers: dict = {}
        self.slept: list[float] = []

        def answer(request):
            status, payload, *headers = handler(request)
            self._headers = headers[0] if headers else {}
            return status, payload

        super().__init__(answer)

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        response.headers.update(self._headers)
        return response

    def sleep(self, duration: float) -> None:
        """Pollers wait through their transport: the wait asked for is recorded, and a short pause taken instead,
        so that a create nobody waits for is still running when the next request goes out."""
        self.slept.append(duration)
        time.sleep(0.05)


class FakeAzure:
    """The learner's subscription as the fake answers it: resources kept by path, created only by a PUT.

    The identity gets its client and principal ids when created; the registry reports Creating on its first
    read; the endpoint and the deployment are created asynchronously (201 with an Azure-AsyncOperation URL that
    reports InProgress with a Retry-After, then Succeeded); a deployment on an endpoint still being created, or
    traffic to a deployment not yet succeeded, is refused (409); /score answers only when the endpoint routes
    traffic to a deployment that succeeded, as Azure's router does.
    """

    def __init__(self) -> None:
        self.resources: dict[str, dict] = {}
        self.operations: dict[str, tuple[str, list[str]]] = {}  # status URL -> (resource, states to report)
        self.client_id, self.principal_id = str(uuid.uuid4()), str(uuid.uuid4())

    def __call__(self, request):
        path, method = request.path, request.method
        if method == "GET" and path.startswith(OPERATIONS):
            return self.poll(path)
        if method == "POST" and path == "/score":
            return self.score(request)
        if method == "POST" and path.endswith("/listKeys"):
            return 200, {"primaryKey": "endpoint-key-1", "secondaryKey": "endpoint-key-2"}
        if method == "GET" and path.endswith("/models"):
            return 200, models_page([model("gpt-4o-mini", "2024-07-18", "GlobalStandard", None),
                                     model("text-embedding-3-small", "1", "Standard", None)])
        if method == "GET" and WORKSPACE.fullmatch(path):  # the project, created with the hub (not covered)
            return 200, {"id": path, "name": path.rsplit("/", 1)[-1], "location": LOCATION, "kind": "Project"}
        if method == "PUT":
            return self.create(request)
        if method == "GET" and path in self.resources:
            return 200, self.read(path)
        if method == "GET":
            return 404, {"error": {"code": "ResourceNotFound", "message": f"{path} was not found."}}
        raise AssertionError(f"the fake has no answer for {method} {path}")

    def state(self, path: str) -> str | None:
        return self.resources.get(path, {}).get("properties", {}).get("provisioningState")

    def read(self, path: str) -> dict:
        """A resource as stored; a registry finishes creating once it has been read."""
        found = json.loads(json.dumps(self.resources[path]))
        if "/registries/" in path:
            self.resources[path]["properties"]["provisioningState"] = "Succeeded"
        return found

    def poll(self, operation: str):
        """An Azure-AsyncOperation status: InProgress (with Retry-After) until the last state; Succeeded finishes
        the resource being created."""
        resource, states = self.operations[operation]
        status = states.pop(0) if len(states) > 1 else states[0]
        if status != "Succeeded":
            return 200, {"status": status}, {"Retry-After": "15"}
        self.resources[resource]["properties"]["provisioningState"] = "Succeeded"
        return 200, {"status": status}

    def too_early(self, path: str, body: dict) -> str | None:
        """Azure ML's refusal of a deployment on an endpoint still being created, or of traffic to a deployment
        that has not succeeded yet."""
        if "/deployments/" in path:
            endpoint = path.rsplit("/deployments/", 1)[0]
            return None if self.state(endpoint) == "Succeeded" else f"{endpoint} is still being created."
        late = [d for d, share in (body.get("properties") or {}).get("traffic", {}).items()
                if share and self.state(f"{path}/deployments/{d}") != "Succeeded"]
        return f"Traffic to {', '.join(late)}, which has not succeeded." if late else None

    def create(self, request):
        path, body = request.path, json.loads(json.dumps(request.body or {}))
        refused = self.too_early(path, body) if "/onlineEndpoints/" in path else None
        if refused:
            return 409, {"error": {"code": "Conflict", "message": refused}}
        properties = dict(body.get("properties") or {}, provisioningState="Succeeded")
        stored = {**body, "id": path, "name": path.rsplit("/", 1)[-1], "properties": properties}
        self.resources[path] = stored
        if "/userAssignedIdentities/" in path:
            properties.update(clientId=self.client_id, principalId=self.principal_id, tenantId=str(uuid.uuid4()))
        if "/registries/" in path:
            properties["provisioningState"] = "Creating"
        if "/onlineEndpoints/" in path and "/deployments/" in path:
            properties["scaleSettings"] = {"scaleType": "Default"}
        elif "/onlineEndpoints/" in path:
            properties["scoringUri"] = f"https://{stored['name']}.{LOCATION}.inference.ml.azure.com/score"
        if "/onlineEndpoints/" in path:
            properties["provisioningState"] = "Creating"
            operation = f"{OPERATIONS}{uuid.uuid4()}"
            self.operations[operation] = (path, ["InProgress", "Succeeded"])
            headers = {"Azure-AsyncOperation": f"https://management.azure.com{operation}"
                                               f"?api-version={request.api_version}"}
            return 201, stored, headers
        return 201 if "/roleAssignments/" in path else 200, stored

    def score(self, request):
        host = request.url.split("/")[2]
        [endpoint] = [r for p, r in self.resources.items() if p.endswith(f"/onlineEndpoints/{host.split('.')[0]}")]
        routed = [d for d, share in endpoint["properties"].get("traffic", {}).items()
                  if share and self.state(f"{endpoint['id']}/deployments/{d}") == "Succeeded"]
        if not routed:
            return 424, {"error": {"code": "NoDeployment", "message": "No valid deployments to route to."}}
        return 200, ANSWER


def seen(transport) -> list[tuple[str, str]]:
    """(method, the path's last two segments) of every request, in order; the pollers' status reads left out."""
    return [(r.method, "/".join(r.path.rsplit("/", 2)[-2:])) for r in transport.sent
            if not r.path.startswith(OPERATIONS)]


def ml_client(plan, transport):
    from azure.ai.ml import MLClient

    return MLClient(FakeCredential(), subscription_id=SUBSCRIPTION, resource_group_name=plan.resource_group,
                    workspace_name=plan.project.name, enable_telemetry=False, transport=transport)


def notebook_01(settings, transport):
    """Notebook 01 with PROVISION_AZURE=true: the plan and its YAML, then provisioning's steps in provision()'s
    order (registry, connections, secrets, model deployments, identity and roles), each on a real SDK client."""
    plan = provisioning.build_plan(settings)
    shown = provisioning.plan_yaml(plan)
    credential = FakeCredential()
    provisioning.put_and_wait(arm_client(credential, transport=transport), plan.registry["id"],
                              provisioning.REGISTRY_API_VERSION, provisioning.registry_body(settings), pause_s=0)
    project = ml_client(plan, transport)
    secret_connections = {s.connection for s in plan.secrets}
    for connection in plan.connections:
        if connection.name not in secret_connections:
            project.connections.create_or_update(connection)
    provisioning.ensure_secret_connections(project, plan, settings, **QUIET)
    cognitive = model_deployments.management_client(settings, credential, transport=transport, polling_interval=0)
    offered = model_deployments.offered_models(cognitive, plan.location)
    model_deployments.create_deployments(cognitive, settings, plan.deployments, offered, **QUIET)
    created = provisioning.create_endpoint_identity(plan, settings, HUB_STORAGE, credential, transport=transport,
                                                    polling_interval=0, **QUIET)
    return plan, shown, created


def with_uploaded_build_context(environment):
    """The project's serving environment as azure-ai-ml sends it once the build context is uploaded."""
    from azure.ai.ml.entities import BuildContext, Environment

    return Environment(name=environment.name, tags=environment.tags, inference_config=environment.inference_config,
                       build=BuildContext(path=UPLOADED_CONTEXT, dockerfile_path=environment.build.dockerfile_path))


def notebook_06(settings, transport, tmp_path):
    """Notebook 06: the plan from measured figures, the endpoint's YAML shown, then deploy() and a call to /score."""
    plan = provisioning.build_plan(settings, startup_s=25.0, p95_s=4.2)
    endpoint, blue = plan.endpoint, plan.endpoint_deployment
    shown = azure_endpoint.endpoint_yaml(endpoint, blue)
    assert transport.sent == [], "showing the plan sends nothing"
    assert endpoint.identity.type == "user_assigned" and "AZURE_CLIENT_ID" in blue.environment_variables
    assert blue.environment.build.path == str(REPO_ROOT), "the repository is the build context"
    blue.environment = with_uploaded_build_context(blue.environment)
    client = ml_client(plan, transport)
    msi = provisioning.msi_client(settings, FakeCredential(), transport=transport)
    azure_endpoint.deploy(settings, endpoint, blue, ml_client=client, msi_client=msi, **QUIET)
    question = tmp_path / "question.json"
    token = tokens.issue_token("C1001", tokens.signing_secret(settings))
    question.write_text(json.dumps({"question": "How much does the Summit Dome 2 Tent weigh?",
                                    "customer_token": token}))
    answer = client.online_endpoints.invoke(endpoint.name, request_file=str(question))
    return endpoint, shown, answer


def test_notebook_01_shows_the_plan_then_creates_the_identity_before_its_roles():
    """The plan hides every secret; provisioning sends registry, connections, model deployments, the identity,
    then each role (Azure roles and the Cosmos DB data-plane role) for that identity's principal, in that order."""
    settings = resolve(SETTINGS)
    azure = FakeAzure()
    transport = HeaderTransport(azure)
    plan, shown, created = notebook_01(settings, transport)
    assert not [name for name, value in SECRETS.items() if value in shown], "a secret leaked into the plan"
    assert plan.identity["id"] in shown and plan.endpoint.name in shown
    registry = names.registry_name(settings)
    roles = identity.endpoint_role_assignments(settings, HUB_STORAGE)
    cosmos = identity.endpoint_cosmos_assignments(settings)
    assert seen(transport) == [
        ("PUT", f"registries/{registry}"), ("GET", f"registries/{registry}"), ("GET", f"registries/{registry}"),
        *[("PUT", f"connections/{c.name}") for c in plan.connections],
        ("GET", f"{LOCATION}/models"),
        *[("PUT", f"deployments/{d.name}") for d in plan.deployments],
        ("PUT", f"userAssignedIdentities/{names.IDENTITY_NAME}"),
        *[("PUT", f"roleAssignments/{a.assignment_name(azure.principal_id)}") for a in roles],
        *[("PUT", f"sqlRoleAssignments/{a.assignment_name(azure.principal_id)}") for a in cosmos],
    ]
    grants = [r.body["properties"]["principalId"] for r in transport.sent if "oleAssignments/" in r.path]
    assert grants == [azure.principal_id] * (len(roles) + len(cosmos)), "every role goes to the identity created"
    assert created.id == plan.identity["id"] == plan.endpoint.identity.user_assigned_identities[0].resource_id, \
        "the identity created is the one the endpoint is planned with"
    assert created.client_id == azure.client_id


def test_notebook_06_deploys_with_the_provisioned_identity_waits_then_answers(tmp_path):
    """After notebook 01: the YAML is shown first (nothing sent), then deploy() reads the identity's client id,
    creates the endpoint with that identity, registers the environment, creates the deployment, and only then
    routes all traffic to it; each create is followed by the poller until Succeeded; /score then answers."""
    settings = resolve(SETTINGS)
    azure = FakeAzure()
    transport = HeaderTransport(azure)
    notebook_01(settings, transport)
    transport.sent.clear()
    endpoint, shown, answer = notebook_06(settings, transport, tmp_path)
    assert not [name for name, value in SECRETS.items() if value in shown], "a secret leaked into the YAML"
    name = endpoint.name
    project = ("GET", "workspaces/contoso-chat-project")  # azure-ai-ml reads the project's region before a PUT
    assert seen(transport) == [
        ("GET", f"userAssignedIdentities/{names.IDENTITY_NAME}"),
        project, ("PUT", f"onlineEndpoints/{name}"), ("GET", f"onlineEndpoints/{name}"),
        ("GET", f"onlineEndpoints/{name}"), ("GET", "environments/contoso-chat-serving"), ("PUT", "versions/1"),
        project, ("PUT", "deployments/blue"), ("GET", "deployments/blue"),
        project, ("PUT", f"onlineEndpoints/{name}"), ("GET", f"onlineEndpoints/{name}"),
        ("GET", f"onlineEndpoints/{name}"), ("POST", f"{name}/listKeys"), ("POST", "/score"),
    ]
    puts = [r for r in transport.sent if r.method == "PUT"]
    first, environment, blue, traffic = puts
    for sent in (first, traffic):
        assert sent.body["identity"]["type"] == "UserAssigned"
        assert list(sent.body["identity"]["userAssignedIdentities"]) == [names.identity_id(settings)]
    assert not first.body["properties"].get("traffic") and traffic.body["properties"]["traffic"] == {"blue": 100}
    assert environment.body["properties"]["build"] == {"contextUri": UPLOADED_CONTEXT, "dockerfilePath": "Dockerfile"}
    assert environment.body["properties"]["inferenceConfig"]["scoringRoute"] == {"port": 8000, "path": "/score"}
    assert blue.body["properties"]["environmentId"].endswith("/environments/contoso-chat-serving/versions/1")
    variables = blue.body["properties"]["environmentVariables"]
    assert variables["AZURE_CLIENT_ID"] == azure.client_id, "the deployment signs in as the identity provisioned"
    assert not [n for n, value in SECRETS.items() if value in json.dumps(blue.body)], "a secret in the deployment"
    assert variables["CONTOSO_API_SECRET"].startswith("${{azureml://connections/")
    assert json.loads(answer) == ANSWER, "/score answers once all traffic goes to blue"


def test_each_create_is_waited_for_and_the_call_reaches_score_with_the_endpoint_key(tmp_path):
    """The wait: the poller follows each create's Azure-AsyncOperation URL from InProgress to Succeeded, waiting
    as Retry-After says. The invoke: the endpoint's key in the header, the customer's token and question in the
    body (the service's ChatRequest once the token is taken out), the reply returned as /score gave it."""
    settings = resolve(SETTINGS)
    azure = FakeAzure()
    transport = HeaderTransport(azure)
    notebook_01(settings, transport)
    transport.sent.clear()
    endpoint, _, answer = notebook_06(settings, transport, tmp_path)
    polls = [r.path for r in transport.sent if r.path.startswith(OPERATIONS)]
    assert len(polls) == 6 and len(set(polls)) == 3, "each of the three creates is polled until it succeeded"
    assert all(azure.operations[p][1] == ["Succeeded"] for p in polls)
    writes = ["poll" if r.path.startswith(OPERATIONS) else r.path.rsplit("/", 2)[-2] for r in transport.sent
              if r.method == "PUT" or r.path.startswith(OPERATIONS)]
    assert writes == ["onlineEndpoints", "poll", "poll", "versions", "deployments", "poll", "poll",
                      "onlineEndpoints", "poll", "poll"], "each create is finished before the next one is sent"
    assert transport.slept == [15, 15, 15], "after InProgress, each poller waits as Retry-After says"
    [score] = [r for r in transport.sent if r.path == "/score"]
    assert score.url == f"https://{endpoint.name}.{LOCATION}.inference.ml.azure.com/score"
    assert score.headers["Authorization"] == "Bearer endpoint-key-1"
    body = dict(score.body)
    assert tokens.verify_token(body.pop("customer_token"), tokens.signing_secret(settings)) == "C1001"
    ChatRequest.model_validate(body)
    assert json.loads(answer) == ANSWER


def test_deploying_before_provisioning_stops_at_the_missing_identity(tmp_path):
    """Notebook 06 without notebook 01's identity: the clear ConfigError from identity_client_id, after one read,
    and nothing created (no PUT, no call to /score)."""
    settings = resolve(SETTINGS)
    transport = HeaderTransport(FakeAzure())
    with pytest.raises(ConfigError, match=f"{names.IDENTITY_NAME} does not exist yet. Run provisioning first"):
        notebook_06(settings, transport, tmp_path)
    assert seen(transport) == [("GET", f"userAssignedIdentities/{names.IDENTITY_NAME}")]
