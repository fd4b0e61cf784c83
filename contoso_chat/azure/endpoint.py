"""The Azure ML managed online endpoint for Contoso Chat, built offline with azure-ai-ml; `python -m` deploys it.

The deployment runs the repository's own container image (the `Dockerfile`, built by Azure ML in
the workspace's registry): the HTTP service plus the endpoint's `/score` route
(contoso_chat.serving.azureml_scoring). It signs in as the user-assigned identity that
provisioning created and granted its roles (AZURE_CLIENT_ID names it), holds no keys, and gets
the token signing secret injected from a workspace connection, the same value on every instance.
Probe and request settings come from measured figures (start-up time and answer latency).
"""

from __future__ import annotations

import copy
import math

from contoso_chat.azure import names
from contoso_chat.azure.opt_in import opted_in
from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.paths import REPO_ROOT

SERVICE_PORT = 8000
INSTANCE_TYPE = "Standard_DS3_v2"
CLOUD_SETTINGS = ("CHAT_BACKEND", "EMBEDDINGS_BACKEND", "SEARCH_BACKEND", "CUSTOMERS_BACKEND", "TRACING_BACKEND",
                  "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_CHAT_DEPLOYMENT",
                  "AZURE_OPENAI_EMBEDDING_DEPLOYMENT", "AZURE_SEARCH_ENDPOINT", "AZURE_SEARCH_INDEX", "COSMOS_ENDPOINT",
                  "COSMOS_DATABASE", "COSMOS_CONTAINER", "AZURE_CONTENT_SAFETY_ENDPOINT")
# secrets the deployment reads, each injected by Azure ML from a workspace connection of the project
SECRET_CONNECTIONS = {"CONTOSO_API_SECRET": names.SIGNING_SECRET_CONNECTION,
                      "APPLICATIONINSIGHTS_CONNECTION_STRING": "contoso-appinsights"}
CLIENT_ID_PLACEHOLDER = f"<client id of {names.IDENTITY_NAME}, read when deploying>"


def secret_reference(connection: str) -> str:
    """Azure ML's secret-injection reference to the key of a workspace connection."""
    return "${{azureml://connections/" + connection + "/credentials/key}}"


def injected_secrets(settings: Settings) -> dict[str, str]:
    """Environment variable -> secret reference: the signing secret always, the others when configured."""
    wanted = {"CONTOSO_API_SECRET"} | ({"APPLICATIONINSIGHTS_CONNECTION_STRING"}
                                       if settings.secret("APPLICATIONINSIGHTS_CONNECTION_STRING") else set())
    return {name: secret_reference(connection) for name, connection in SECRET_CONNECTIONS.items() if name in wanted}


def probe_settings(startup_s: float) -> dict:
    """Liveness and readiness probes: the first probe waits about twice the measured start-up."""
    initial = max(30, math.ceil(startup_s * 2 / 10) * 10)
    return {"initial_delay": initial, "period": 10, "timeout": 5, "success_threshold": 1, "failure_threshold": 6}


def request_settings(p95_s: float, max_queue: int = 3) -> dict:
    """Requests: one at a time per instance, and a timeout of three times the measured p95 (at most 90 s)."""
    timeout_ms = min(90_000, max(10_000, math.ceil(p95_s * 3) * 1000))
    return {"request_timeout_ms": timeout_ms, "max_concurrent_requests_per_instance": 1,
            "max_queue_wait_ms": min(60_000, timeout_ms * max_queue)}


def serving_environment():
    """The Azure ML environment: the repository's Dockerfile (requirements-serving.txt on a pinned Python
    image), with the platform's probes and scoring requests routed to the service's own routes."""
    from azure.ai.ml.entities import BuildContext, Environment

    route = {"port": SERVICE_PORT}
    return Environment(name="contoso-chat-serving", build=BuildContext(path=str(REPO_ROOT), dockerfile_path="Dockerfile"),
                       inference_config={"liveness_route": {**route, "path": "/health"},
                                         "readiness_route": {**route, "path": "/ready"},
                                         "scoring_route": {**route, "path": "/score"}},
                       tags={"app": "contoso-chat"})


def build_endpoint(settings: Settings, startup_s: float, p95_s: float, client_id: str = CLIENT_ID_PLACEHOLDER):
    """The endpoint and its 'blue' deployment as azure-ai-ml objects (nothing is sent to Azure)."""
    from azure.ai.ml.entities import (
        IdentityConfiguration, ManagedIdentityConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint,
        OnlineRequestSettings, ProbeSettings,
    )

    name = names.endpoint_name(settings)
    identity = IdentityConfiguration(type="user_assigned", user_assigned_identities=[
        ManagedIdentityConfiguration(resource_id=names.identity_id(settings))])
    endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key", identity=identity, tags={"app": "contoso-chat"},
                                     description="Contoso Chat support assistant")
    probes = probe_settings(startup_s)
    variables = {k: settings.get(k) for k in CLOUD_SETTINGS if settings.get(k)}
    variables.update(injected_secrets(settings), AZURE_CLIENT_ID=client_id, HF_HUB_OFFLINE="1")
    deployment = ManagedOnlineDeployment(
        name="blue", endpoint_name=name, instance_type=INSTANCE_TYPE, instance_count=1,
        environment=serving_environment(), environment_variables=variables,
        liveness_probe=ProbeSettings(**probes), readiness_probe=ProbeSettings(**probes),
        request_settings=OnlineRequestSettings(**request_settings(p95_s)),
    )
    return endpoint, deployment


def endpoint_document(endpoint, deployment) -> dict:
    """Both objects as the dictionaries `az ml online-endpoint/deployment create` would read.

    azure-ai-ml's schemas rewrite parts of an entity in place while dumping it (the identity schema turns
    `user_assigned_identities` into plain dicts), so copies are dumped and the objects stay sendable.
    """
    endpoint, deployment = copy.deepcopy(endpoint), copy.deepcopy(deployment)
    deployment_data = deployment._to_dict()
    environment = deployment_data.get("environment")
    if isinstance(environment, dict) and "build" in environment:
        environment["build"]["path"] = "."  # the repository root; .dockerignore keeps .venv, build and .env out
    return {"endpoint": endpoint._to_dict(), "deployment": deployment_data}


def endpoint_yaml(endpoint, deployment) -> str:
    """Both objects as YAML, secrets redacted (secret references stay visible: they are not secrets)."""
    from contoso_chat.azure.yaml_view import to_yaml

    return to_yaml(endpoint_document(endpoint, deployment))


def identity_client_id(settings: Settings, msi_client) -> str:
    """The client id of the endpoint's identity; a clear error when provisioning has not created it."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = msi_client.user_assigned_identities.get(settings.get("AZURE_RESOURCE_GROUP"), names.IDENTITY_NAME)
    except ResourceNotFoundError:
        raise ConfigError(f"The endpoint identity {names.IDENTITY_NAME} does not exist yet. Run provisioning first "
                          "(notebook 01 or `python -m contoso_chat.azure.provisioning` with PROVISION_AZURE=true).") \
            from None
    return found.client_id


# What the serving image leaves out (requirements-serving.txt): each resource here must be in the cloud to deploy.
NOT_IN_IMAGE = {"chat": "llama.cpp and the local model", "embeddings": "sentence-transformers and its model",
                "search": "LanceDB and the local index"}


def check_image_can_serve(settings: Settings) -> None:
    """Refuse, before anything is built or sent, a deployment whose image could not serve these settings."""
    from contoso_chat.backends.settings import SWITCH

    local = [resource for resource in NOT_IN_IMAGE if settings.backends[resource] == "local"]
    if local:
        missing = "; ".join(f"{r} ({NOT_IN_IMAGE[r]})" for r in local)
        raise ConfigError(f"The serving image has no local stack, but these are still local in .env: {missing}. "
                          f"Configure their Azure resources (or set {', '.join(SWITCH[r] for r in local)}=azure) "
                          "and provision them, then deploy.")


def deploy(settings: Settings, endpoint, deployment, log=print, ml_client=None, msi_client=None) -> None:
    """Create the endpoint and deployment in Azure, then route all traffic to it. Paid: opt-in only."""
    from contoso_chat.azure import clients

    if not (opted_in(settings) and settings.serving == "azure"):
        raise ConfigError("Deploying creates a paid endpoint; set SERVING_BACKEND=azure and PROVISION_AZURE=true.")
    check_image_can_serve(settings)
    client = ml_client or clients.ml_client(settings, workspace=settings.get("AZURE_AI_PROJECT_NAME"))
    deployment.environment_variables["AZURE_CLIENT_ID"] = identity_client_id(
        settings, msi_client or clients.msi_client(settings))
    log(f"Creating endpoint {endpoint.name} with identity {names.IDENTITY_NAME} ...")
    client.online_endpoints.begin_create_or_update(endpoint).result()
    log(f"Creating deployment {deployment.name}: the image build and start take 15-30 minutes ...")
    client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {deployment.name: 100}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    log(f"Endpoint {endpoint.name} answers on POST /score with all traffic on {deployment.name}.")


DEFAULT_STARTUP_S = 60.0
DEFAULT_P95_S = 10.0


def main() -> int:
    """Create the endpoint from measured figures: start-up and p95 from the last `make bench` (build/bench/service.json)."""
    import json

    from contoso_chat.backends.settings import load_settings
    from contoso_chat.paths import build_dir

    settings = load_settings()
    measured = build_dir() / "bench" / "service.json"
    figures = json.loads(measured.read_text()) if measured.exists() else {}
    endpoint, blue = build_endpoint(settings, figures.get("startup_s", DEFAULT_STARTUP_S),
                                    figures.get("p95_s", DEFAULT_P95_S))
    print(endpoint_yaml(endpoint, blue))
    try:
        deploy(settings, endpoint, blue)
    except ConfigError as error:
        print(f"Not deployed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
