"""Azure OpenAI fine-tuning: data format, validation and cost, and the job sent by the real openai client to a
local fake HTTP transport (upload, job, events), then the deployment by the real management client."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import openai
import pytest

from contoso_chat.azure import model_deployments
from contoso_chat.backends.settings import ConfigError, resolve
from contoso_chat.finetuning import azure_openai_jobs as jobs

from azure_fakes import FakeAzureTransport, FakeCredential

SETTINGS = {"AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555", "PROVISION_AZURE": "true",
            "AZURE_OPENAI_ENDPOINT": "https://aoai-x.openai.azure.com/", "AZURE_OPENAI_API_KEY": "fake-aoai-key",
            "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini"}


def conversation(i: int) -> list[dict]:
    return [{"role": "system", "content": "You are the Contoso Outdoors assistant."},
            {"role": "user", "content": f"How heavy is item {i}?"},
            {"role": "assistant", "content": f"Item {i} weighs {i * 10} g [product-{i}]."}]


def test_jsonl_is_the_chat_fine_tuning_format():
    lines = jobs.to_jsonl([conversation(1), conversation(2)]).splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == {"messages": conversation(1)}


def test_validation_catches_format_errors_and_estimates_the_cost():
    good = jobs.validate([conversation(i) for i in range(12)], epochs=3)
    assert good.ok and good.examples == 12 and 20 < good.tokens / 12 < 80
    assert good.cost_usd == pytest.approx(good.tokens * 3 / 1000 * jobs.training_price_per_1k(), abs=1e-6)
    assert jobs.training_price_per_1k() == pytest.approx(0.0033)
    broken = [conversation(i) for i in range(12)]
    broken[3] = conversation(3)[:-1]  # ends with the user
    broken[5] = [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]
    broken[7] = [{"role": "user", "content": " "}, {"role": "assistant", "content": "x"}]
    report = jobs.validate(broken)
    assert not report.ok and len(report.errors) == 3
    assert any("example 4" in e and "assistant" in e for e in report.errors)
    assert any("example 6" in e and "robot" in e for e in report.errors)
    assert any("example 8" in e and "empty" in e for e in report.errors)
    assert not jobs.validate([conversation(1)] * 3).ok, "fewer than 10 examples"
    long = [[{"role": "user", "content": "tent " * 70_000}, {"role": "assistant", "content": "ok"}]] * 10
    assert any("token limit" in e for e in jobs.validate(long, price_per_1k=0.0).errors)


class FakeAzureOpenAI:
    """Answers the files and fine-tuning routes like Azure OpenAI, recording every request."""

    def __init__(self):
        self.requests: list[httpx.Request] = []
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/openai/files":
            return httpx.Response(200, json={"id": "file-1", "object": "file", "bytes": 10, "created_at": 1,
                                             "filename": "contoso-train.jsonl", "purpose": "fine-tune",
                                             "status": "pending"})
        if request.method == "GET" and path == "/openai/files/file-1":
            return httpx.Response(200, json={"id": "file-1", "object": "file", "bytes": 10, "created_at": 1,
                                             "filename": "contoso-train.jsonl", "purpose": "fine-tune",
                                             "status": "processed"})
        if request.method == "POST" and path == "/openai/fine_tuning/jobs":
            return httpx.Response(200, json=self.job("pending"))
        if path == "/openai/fine_tuning/jobs/ftjob-1/events":
            return httpx.Response(200, json={"object": "list", "has_more": False, "data": [
                {"id": f"ev-{n}", "object": "fine_tuning.job.event", "created_at": n, "level": "info",
                 "message": f"step {n}"} for n in range(self.polls + 1, 0, -1)]})
        if path == "/openai/fine_tuning/jobs/ftjob-1":
            self.polls += 1
            return httpx.Response(200, json=self.job("succeeded" if self.polls >= 2 else "running"))
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": path}})

    @staticmethod
    def job(status: str) -> dict:
        return {"id": "ftjob-1", "object": "fine_tuning.job", "created_at": 1, "model": "gpt-4o-mini-2024-07-18",
                "status": status, "training_file": "file-1", "hyperparameters": {"n_epochs": 3},
                "organization_id": "org", "result_files": [], "seed": 42,
                "fine_tuned_model": "gpt-4o-mini-2024-07-18.ft-abc123" if status == "succeeded" else None}


def test_the_job_is_uploaded_created_followed_and_deployed():
    settings = resolve(SETTINGS)
    fake = FakeAzureOpenAI()
    client = openai.AzureOpenAI(api_key="fake-aoai-key", azure_endpoint=SETTINGS["AZURE_OPENAI_ENDPOINT"],
                                api_version="2024-10-21", http_client=httpx.Client(transport=httpx.MockTransport(fake)))
    models = {"value": [{"kind": "OpenAI", "model": {"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18",
                                                     "skus": [{"name": "Standard"}],
                                                     "deprecation": {"inference": "2027-01-01"}}}]}

    def management(request):
        if request.method == "GET":
            return 200, models
        return 200, {**request.body, "properties": {**request.body["properties"], "provisioningState": "Succeeded"}}

    arm = FakeAzureTransport(management)
    cognitive = model_deployments.management_client(settings, FakeCredential(), transport=arm, polling_interval=0)
    logged = []
    result = jobs.run_fine_tuning(settings, [conversation(i) for i in range(12)], client=client,
                                  cognitive_client=cognitive, log=logged.append, sleep=lambda s: None)
    upload = fake.requests[0]
    assert upload.url.params["api-version"] == "2024-10-21" and upload.headers["api-key"] == "fake-aoai-key"
    assert b'name="purpose"' in upload.content and b"fine-tune" in upload.content
    assert b'{"messages": [{"role": "system"' in upload.content
    create = next(r for r in fake.requests if r.method == "POST" and r.url.path == "/openai/fine_tuning/jobs")
    body = json.loads(create.content)
    assert body == {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-1", "suffix": "contoso", "seed": 42,
                    "hyperparameters": {"n_epochs": 3}}
    assert [m for m in logged if m.endswith("step 1")] == ["1 step 1"], "each event is shown once"
    put = next(r for r in arm.sent if r.method == "PUT")
    assert put.path.endswith("/accounts/aoai-x/deployments/contoso-chat-ft")
    assert put.body["properties"]["model"] == {"format": "OpenAI", "name": "gpt-4o-mini-2024-07-18.ft-abc123",
                                               "version": "1"}
    assert put.body["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
    assert result == {"job": "ftjob-1", "model": "gpt-4o-mini-2024-07-18.ft-abc123", "deployment": "contoso-chat-ft",
                      "cost_usd": jobs.validate([conversation(i) for i in range(12)]).cost_usd}


def test_fine_tuning_is_opt_in_and_refuses_a_retired_base_model():
    with pytest.raises(ConfigError, match="PROVISION_AZURE=true"):
        jobs.run_fine_tuning(resolve({**SETTINGS, "PROVISION_AZURE": "false"}), [conversation(1)] * 12)
    from azure.mgmt.cognitiveservices.models import Model

    offered = [Model.deserialize({"model": {"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18",
                                            "skus": [{"name": "Standard"}], "deprecation": {"inference": "2025-01-01"}}})]
    with pytest.raises(ConfigError, match="fine-tune a newer version"):
        jobs.deploy_fine_tuned(object(), resolve(SETTINGS), "gpt-4o-mini-2024-07-18.ft-abc123", offered,
                               today=dt.date(2026, 1, 1))
