"""The Azure ML managed online endpoint for Contoso Chat, built offline with azure-ai-ml; `python -m` creates it.

Probe and request settings come from measured figures (start-up time and answer latency), so
the platform neither kills a worker that is still loading nor times out a normal answer.
"""

from __future__ import annotations

import math
import re

from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.paths import REPO_ROOT

INFERENCE_IMAGE = "mcr.microsoft.com/azureml/minimal-py311-inference:latest"
CLOUD_SETTINGS = ("CHAT_BACKEND", "EMBEDDINGS_BACKEND", "SEARCH_BACKEND", "CUSTOMERS_BACKEND", "AZURE_OPENAI_ENDPOINT",
                  "AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_CHAT_DEPLOYMENT", "AZURE_OPENAI_EMBEDDING_DEPLOYMENT",
                  "AZURE_SEARCH_ENDPOINT", "AZURE_SEARCH_INDEX", "COSMOS_ENDPOINT", "COSMOS_DATABASE",
                  "COSMOS_CONTAINER")


def conda_environment() -> dict:
    """The conda specification: Python 3.11, the pinned requirements, the Azure ML inference server."""
    pins = [line.strip() for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
            if re.match(r"^[A-Za-z0-9_.\-\[\]]+==", line.strip())]
    return {"name": "contoso-chat", "channels": ["conda-forge"],
            "dependencies": ["python=3.11", "pip", {"pip": ["azureml-inference-server-http", *pins]}]}


def probe_settings(startup_s: float) -> dict:
    """Liveness and readiness probes: the first probe waits about twice the measured start-up."""
    initial = max(30, math.ceil(startup_s * 2 / 10) * 10)
    return {"initial_delay": initial, "period": 10, "timeout": 5, "success_threshold": 1, "failure_threshold": 6}


def request_settings(p95_s: float, max_queue: int = 3) -> dict:
    """Requests: one at a time per instance, and a timeout of three times the measured p95 (at most 90 s)."""
    timeout_ms = min(90_000, max(10_000, math.ceil(p95_s * 3) * 1000))
    return {"request_timeout_ms": timeout_ms, "max_concurrent_requests_per_instance": 1,
            "max_queue_wait_ms": min(60_000, timeout_ms * max_queue)}


def build_endpoint(settings: Settings, startup_s: float, p95_s: float, name: str = "contoso-chat"):
    """The endpoint and its 'blue' deployment as azure-ai-ml objects (nothing is sent to Azure)."""
    from azure.ai.ml.entities import (
        CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, OnlineRequestSettings,
        ProbeSettings,
    )

    endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key", description="Contoso Chat support assistant",
                                     tags={"app": "contoso-chat"})
    probes = probe_settings(startup_s)
    variables = {k: settings.get(k) for k in CLOUD_SETTINGS if settings.get(k)}
    variables["HF_HUB_OFFLINE"] = "1"
    deployment = ManagedOnlineDeployment(
        name="blue", endpoint_name=name, instance_type="Standard_DS3_v2", instance_count=1,
        code_configuration=CodeConfiguration(code=str(REPO_ROOT), scoring_script="contoso_chat/serving/azureml_scoring.py"),
        environment=Environment(name="contoso-chat-env", image=INFERENCE_IMAGE, conda_file=conda_environment()),
        environment_variables=variables,
        liveness_probe=ProbeSettings(**probes), readiness_probe=ProbeSettings(**probes),
        request_settings=OnlineRequestSettings(**request_settings(p95_s)),
    )
    return endpoint, deployment


def endpoint_yaml(endpoint, deployment) -> str:
    """Both objects as the YAML `az ml online-endpoint/deployment create` would read (no secrets in them)."""
    import yaml

    from contoso_chat.azure.provisioning import plain, redact

    def clean(entity) -> dict:
        data = redact(plain(entity._to_dict()))
        if "code_configuration" in data:
            data["code_configuration"]["code"] = "."  # the repository root; .gitignore keeps .venv and build out
        if "environment" in data and isinstance(data["environment"], dict):
            data["environment"]["conda_file"] = "<pinned requirements.txt + azureml-inference-server-http>"
        return data

    return yaml.safe_dump({"endpoint": clean(endpoint), "deployment": clean(deployment)}, sort_keys=False, width=110)


def deploy(settings: Settings, endpoint, deployment, log=print) -> None:
    """Create the endpoint and deployment in Azure, then route all traffic to it. Paid: opt-in only."""
    from contoso_chat.azure.provisioning import ml_client, opted_in

    if not (opted_in(settings) and settings.backends.get("serving") == "azure"):
        raise ConfigError("Deploying creates a paid endpoint; set SERVING_BACKEND=azure and PROVISION_AZURE=true.")
    client = ml_client(settings, workspace=settings.get("AZURE_AI_PROJECT_NAME"))
    log(f"Creating endpoint {endpoint.name} ...")
    client.online_endpoints.begin_create_or_update(endpoint).result()
    log(f"Creating deployment {deployment.name} (this takes 10-20 minutes) ...")
    client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {deployment.name: 100}
    client.online_endpoints.begin_create_or_update(endpoint).result()


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
    endpoint, blue = build_endpoint(settings, figures.get("startup_s", DEFAULT_STARTUP_S), figures.get("p95_s", DEFAULT_P95_S))
    print(endpoint_yaml(endpoint, blue))
    try:
        deploy(settings, endpoint, blue)
    except ConfigError as error:
        print(f"Not deployed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
