"""Offline checks of the deployment artefacts: Dockerfile, Azure ML endpoint objects, scoring script."""

from __future__ import annotations

import json
import re

from contoso_chat.serving import tokens as sign_in
from contoso_chat.backends.settings import resolve
from contoso_chat.azure import endpoint as azure_endpoint
from contoso_chat.serving import azureml_scoring as score
from contoso_chat.paths import REPO_ROOT


def test_dockerfile_is_pinned_non_root_and_health_checked():
    text = (REPO_ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "EXPOSE 8000" in text and "HEALTHCHECK" in text and "/health" in text
    assert "torch==2.13.0" in text and "download.pytorch.org/whl/cpu" in text
    assert "-r requirements.txt" in text
    assert not re.search(r"(?i)(api_key|secret|password)\s*=", text)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "build"} <= set(ignored)


def test_endpoint_settings_follow_the_measured_figures():
    settings = resolve({"AZURE_OPENAI_ENDPOINT": "https://example-aoai.openai.azure.com/",
                               "AZURE_OPENAI_API_KEY": "fake-key-never-shipped",
                               "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini"})
    endpoint, blue = azure_endpoint.build_endpoint(settings, startup_s=25.0, p95_s=4.2)
    assert endpoint.auth_mode == "key"
    assert blue.liveness_probe.initial_delay >= 50, "the first probe waits about twice the start-up time"
    assert blue.request_settings.request_timeout_ms >= 3 * 4.2 * 1000
    assert blue.request_settings.max_concurrent_requests_per_instance == 1
    assert blue.environment_variables["AZURE_OPENAI_ENDPOINT"] == "https://example-aoai.openai.azure.com/"
    assert "AZURE_OPENAI_API_KEY" not in blue.environment_variables
    text = azure_endpoint.endpoint_yaml(endpoint, blue)
    assert "fake-key-never-shipped" not in text, "keys never go into the deployment; it signs in with its identity"
    assert "example-aoai.openai.azure.com" in text and "azureml_scoring.py" in text


def test_conda_environment_pins_every_requirement():
    pip = azure_endpoint.conda_environment()["dependencies"][-1]["pip"]
    assert "azureml-inference-server-http" in pip
    assert any(p.startswith("openai==") for p in pip) and all("==" in p for p in pip[1:])


def test_scoring_script_answers_and_refuses_like_the_service():
    score.init()
    token = sign_in.issue_token("C1001", score.secret)
    reply = score.run(json.dumps({"question": "How much does the Summit Dome 2 Tent weigh when packed?",
                                  "customer_token": token}))
    assert set(reply) == {"answer", "citations"} and reply["citations"][0] == "product-1"
    assert score.run("{not json")["error"]["field"] == "body"
    assert score.run(json.dumps({"question": "hi", "customer_token": "v1.C1003.9999999999.forged"}))["error"][
        "field"] == "customer_token"
    assert score.run(json.dumps({"question": " ", "customer_token": token}))["error"]["field"] == "question"
