"""The HTTP service with Agent Framework answering each turn (SERVICE_ENGINE=agent-framework): the same API, the
same bad-input table, the same mapping of model errors as with the app's own engine.

The model is a fake HTTP transport (see test_engine.FakeModel); the service runs in-process (FastAPI's TestClient).
"""

from __future__ import annotations

import os

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from contoso_chat.agentframework import engine
from contoso_chat.agentframework.service import AgentEngine
from contoso_chat.assistant import ContosoChat
from contoso_chat.backends import content_safety
from contoso_chat.backends.chat import ChatTarget
from contoso_chat.backends.settings import ConfigError, resolve
from contoso_chat.evaluation.loadtest import bad_requests
from contoso_chat.serving import local_service, tokens as sign_in
from contoso_chat.serving.api import create_app, service_engine

from test_engine import MODEL, QUESTION, FakeIngestion, FakeModel

SECRET = {"CONTOSO_API_SECRET": "a-test-signing-secret-of-enough-length"}


class FailingModel(FakeModel):
    """A chat completions endpoint that answers every request with an error status and body."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__()
        self.status, self.body = status, body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        super().__call__(request)
        return httpx.Response(self.status, json=self.body)


def local_app(model) -> ContosoChat:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="test", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(model)))
    return ContosoChat(settings=resolve(SECRET), chat=ChatTarget(client, MODEL, "local", "127.0.0.1:9"))


def service(app: ContosoChat, agent_model=None) -> TestClient:
    """The service in-process: the app's own engine, or (with `agent_model`) Agent Framework on that model."""
    factory = (lambda: AgentEngine(app, engine.chat_client(app, httpx.AsyncClient(
        transport=httpx.MockTransport(agent_model))))) if agent_model is not None else (lambda: app)
    return TestClient(create_app(assistant_factory=factory, settings=resolve(SECRET),
                                 readiness=lambda: {"assistant": True}), raise_server_exceptions=False)


def ask(client: TestClient, question: str = QUESTION) -> httpx.Response:
    token = sign_in.issue_token("C1004", sign_in.signing_secret(resolve(SECRET)))
    return client.post("/api/chat", json={"question": question}, headers={"Authorization": f"Bearer {token}"})


def test_the_setting_picks_the_engine_and_a_wrong_value_says_what_to_write():
    app = local_app(FakeModel())
    assert service_engine(resolve({"SERVICE_ENGINE": "app"}), app) is app
    chosen = service_engine(resolve({"SERVICE_ENGINE": "agent-framework"}), app)
    assert isinstance(chosen, AgentEngine) and chosen.app is app and chosen.retriever is app.retriever
    with pytest.raises(ConfigError, match="SERVICE_ENGINE='langchain' is not one of app, agent-framework"):
        resolve({"SERVICE_ENGINE": "langchain"})


def test_both_engines_answer_alike_through_the_service_and_the_agent_calls_the_model():
    flow_model, agent_model = FakeModel(), FakeModel()
    app = local_app(flow_model)
    with service(app) as direct, service(app, agent_model) as agent:
        first, second = ask(direct), ask(agent)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() and set(second.json()) == {"answer", "citations"}
    assert len(flow_model.requests) == 1 and len(agent_model.requests) == 1
    assert agent_model.requests[0]["messages"] == flow_model.requests[0]["messages"]


def test_every_bad_input_gets_the_same_4xx_from_the_agent_framework_engine():
    app, agent_model = local_app(FakeModel()), FakeModel()
    stranger = sign_in.issue_token("C9999", sign_in.signing_secret(resolve(SECRET)))
    token = sign_in.issue_token("C1001", sign_in.signing_secret(resolve(SECRET)))
    with service(app) as direct, service(app, agent_model) as agent:
        for bad in bad_requests(token, stranger):
            got = [c.request(bad.method, bad.path, headers=bad.headers, content=bad.body) for c in (direct, agent)]
            assert [r.status_code for r in got] == [bad.status, bad.status], f"{bad.name}: {[r.text for r in got]}"
            assert got[0].json()["error"]["message"] == got[1].json()["error"]["message"], bad.name
    assert agent_model.requests == [], "no bad input reaches the model"


@pytest.mark.parametrize("status, body, expected", [
    (500, {"error": {"message": "model crashed"}}, 503),
    (400, {"error": {"message": "filtered", "code": "content_filter"}}, 200),
])
def test_model_errors_keep_their_meaning_through_agent_framework(status, body, expected):
    flow_model, agent_model = FailingModel(status, body), FailingModel(status, body)
    app = local_app(flow_model)
    with service(app) as direct, service(app, agent_model) as agent:
        first, second = ask(direct), ask(agent)
    assert first.status_code == second.status_code == expected, (first.text, second.text)
    assert "model crashed" not in second.text and "Traceback" not in second.text
    if expected == 503:
        assert second.headers["Retry-After"]
    else:
        assert first.json()["answer"] == second.json()["answer"] == content_safety.BLOCKED_ANSWER


def test_the_local_service_starts_with_agent_frameworks_folder_in_front():
    env = local_service.service_environment("agent-framework")
    assert env["SERVICE_ENGINE"] == "agent-framework"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(local_service.AGENT_FRAMEWORK_DIR)
    assert (local_service.AGENT_FRAMEWORK_DIR / "agent_framework").is_dir()
    assert local_service.service_environment(None).get("PYTHONPATH") == os.environ.get("PYTHONPATH") or \
        os.environ.get("SERVICE_ENGINE") == "agent-framework"


def test_the_service_on_agent_framework_sends_its_spans_to_application_insights_when_configured():
    from contoso_chat.agentframework import spans

    ingestion = FakeIngestion()
    try:
        app = local_app(FakeModel())
        app.settings = resolve({**SECRET, "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string})
        with service(app, FakeModel()) as client:
            assert ask(client).status_code == 200
        assert spans.flush()
        names = {i["data"]["baseData"].get("name") for i in ingestion.items}
        assert "invoke_agent contoso-chat" in names and "retrieve" in names, names
    finally:
        spans.stop_azure_monitor()
        ingestion.close()
    quiet = local_app(FakeModel())
    assert AgentEngine(quiet, engine.chat_client(quiet)).tracing is None, "no connection string, nothing sent"
