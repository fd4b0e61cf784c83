"""The app on Agent Framework: same prompt, same decoding, same guards and the same answers as the flex flow's app.

Runs in `make test`'s second session, with .venv/agent-framework on PYTHONPATH. The model is a fake HTTP transport
that returns a fixed reply, so the two engines can be compared request by request.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from contoso_chat import records
from contoso_chat.agentframework import engine, spans as tracing
from contoso_chat.assistant import ContosoChat
from contoso_chat.backends.chat import ChatTarget
from contoso_chat.backends.settings import resolve
from contoso_chat.guards import InputError

CUSTOMER = "C1004"
MODEL = "smollm2-135m-instruct"
QUESTION = "How much does the Summit Dome 2 Tent weigh when packed?"


class FakeModel:
    """A chat completions endpoint that records each request body and answers with `reply`."""

    def __init__(self) -> None:
        self.reply = "It weighs 2.1 kg [product-1]."
        self.requests: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        return httpx.Response(200, json={
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.reply}}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 9, "total_tokens": 330}})


@pytest.fixture(scope="module")
def flow_model() -> FakeModel:
    return FakeModel()


@pytest.fixture(scope="module")
def app(flow_model) -> ContosoChat:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="test",
                           http_client=httpx.Client(transport=httpx.MockTransport(flow_model)))
    return ContosoChat(settings=resolve({}), chat=ChatTarget(client, MODEL, "local", "127.0.0.1:9"))


@pytest.fixture()
def agent_model() -> FakeModel:
    return FakeModel()


@pytest.fixture()
def client(app, agent_model):
    return engine.chat_client(app, httpx.AsyncClient(transport=httpx.MockTransport(agent_model)))


def same(first: dict, second: dict) -> None:
    for key in ("answer", "citations"):
        assert first[key] == second[key]
    for key in ("declined", "decline_reason", "guard", "shown", "prompt_tokens", "completion_tokens"):
        assert first["usage"][key] == second["usage"][key], key


def test_the_agent_sends_the_prompt_and_decoding_the_flex_flow_sends(app, client, flow_model, agent_model):
    flow_model.requests.clear()
    expected = app(QUESTION, CUSTOMER)
    reply = engine.ask(engine.contoso_agent(app, client), QUESTION, CUSTOMER)
    (flow_request,), (agent_request,) = flow_model.requests, agent_model.requests
    assert agent_request["messages"] == flow_request["messages"]
    assert [m["role"] for m in agent_request["messages"]] == ["system", "user"]
    # llama.cpp reads max_tokens; Agent Framework's own name for it (max_completion_tokens) would be ignored
    assert agent_request["max_tokens"] == flow_request["max_tokens"] == 96
    assert "max_completion_tokens" not in agent_request
    assert (agent_request["temperature"], agent_request["seed"]) == (flow_request["temperature"], flow_request["seed"])
    same(reply, expected)
    assert reply["citations"] == ["product-1"]


def test_the_workflow_answers_like_the_flex_flow(app, client):
    same(engine.run_workflow(app, client, QUESTION, CUSTOMER), app(QUESTION, CUSTOMER))


@pytest.mark.parametrize("question, reason", [("Do you sell kayaks?", "not-carried"),
                                              ("What is the capital of France?", "off-topic")])
def test_a_question_declined_before_the_model_never_reaches_it(app, client, agent_model, question, reason):
    for reply in (engine.ask(engine.contoso_agent(app, client), question, CUSTOMER),
                  engine.run_workflow(app, client, question, CUSTOMER)):
        assert reply["usage"]["decline_reason"] == reason
        same(reply, app(question, CUSTOMER))
    assert agent_model.requests == []


def test_the_output_guard_withholds_another_customers_data_in_both_engines(app, client, flow_model, agent_model):
    other = next(c for c in records.customers() if c.id != CUSTOMER)
    leak = f"Write to {other.email} about it [product-1]."
    flow_model.reply = agent_model.reply = leak
    try:
        expected = app(QUESTION, CUSTOMER)
        assert expected["usage"]["decline_reason"] == "output-guard"
        for reply in (engine.ask(engine.contoso_agent(app, client), QUESTION, CUSTOMER),
                      engine.run_workflow(app, client, QUESTION, CUSTOMER)):
            assert other.email not in reply["answer"]
            same(reply, expected)
    finally:
        flow_model.reply = FakeModel().reply


def test_an_unknown_customer_is_refused_by_the_input_guard(app, client):
    with pytest.raises(InputError):
        engine.ask(engine.contoso_agent(app, client), QUESTION, "C9999")
    with pytest.raises(InputError):
        engine.run_workflow(app, client, QUESTION, "C9999")


def test_the_agent_without_a_session_customer_says_how_to_run_it(app, client):
    with pytest.raises(RuntimeError, match="ask"):
        engine.run_sync(engine.contoso_agent(app, client).run(QUESTION))


def test_instructions_are_the_prompty_rules_and_the_facts_come_per_turn(app):
    instructions = engine.agent_instructions(app)
    assert "Facts:" not in instructions and "only the facts below" in instructions
    with pytest.raises(ValueError, match="Facts"):
        engine.split_system("You are a bot with no facts section.")


def test_every_answer_leaves_a_span_tree_with_the_model_call_and_its_tokens(app, client):
    spans = tracing.collector()
    engine.run_workflow(app, client, QUESTION, CUSTOMER)
    tree = tracing.span_tree(spans.finished())
    model_calls = tree[tree["input tokens"].notna()]
    assert 321 in set(model_calls["input tokens"]), tree
    assert any("retrieve" in name for name in tree["span"])
    assert tracing.spans_per_answer(spans.finished()) >= 5
    spans.clear()
    assert tracing.spans_per_answer(spans.finished()) is None
    with pytest.raises(ValueError):
        tracing.span_tree([])


def azure_deployment(key: str):
    """Settings for an Azure OpenAI deployment, the requests it receives, its model, and its transport handler."""
    settings = resolve({"CHAT_BACKEND": "azure", "AZURE_OPENAI_ENDPOINT": "https://contoso-aoai.openai.azure.com",
                        "AZURE_OPENAI_API_KEY": key, "AZURE_OPENAI_API_VERSION": "2024-10-21",
                        "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini"})
    seen: list[httpx.Request] = []
    model = FakeModel()

    def azure(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return model(request)

    return settings, seen, model, azure


def test_on_azure_the_agent_calls_the_deployment_with_the_key_and_api_version():
    from types import SimpleNamespace

    key = "fake-key-for-tests-0000"
    settings, seen, model, azure = azure_deployment(key)

    app = SimpleNamespace(settings=settings, chat=SimpleNamespace(backend="azure", model="gpt-4o-mini"),
                          temperature=0.0, seed=42, max_tokens=96)
    client = engine.chat_client(app, httpx.AsyncClient(transport=httpx.MockTransport(azure)))
    response = engine.run_sync(client.get_response([engine.Message("user", ["hi"])],
                                                   options=engine.decoding_options(app)))
    (request,) = seen
    assert request.url.host == "contoso-aoai.openai.azure.com"
    assert request.url.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == key
    assert model.requests[0]["max_completion_tokens"] == 96 and "max_tokens" not in model.requests[0]
    assert response.text == model.reply


class FakeIngestion:
    """Application Insights' ingestion endpoint on 127.0.0.1: records each telemetry item it is sent."""

    def __init__(self) -> None:
        import gzip
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        items = self.items = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                sent = json.loads(body)
                items.extend(sent if isinstance(sent, list) else [sent])
                reply = json.dumps({"itemsReceived": len(sent), "itemsAccepted": len(sent), "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.connection_string = ("InstrumentationKey=00000000-0000-0000-0000-00000000cafe;"
                                  f"IngestionEndpoint=http://127.0.0.1:{self.server.server_port}/")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_with_a_connection_string_every_span_of_an_answer_reaches_application_insights(app, client):
    ingestion = FakeIngestion()
    try:
        settings = resolve({"APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string})
        collected = tracing.collector(settings)
        engine.run_workflow(app, client, QUESTION, CUSTOMER)
        assert tracing.flush()
        kept = collected.finished()
        sent = [i for i in ingestion.items if i["name"].endswith((".RemoteDependency", ".Request"))]
        assert len(sent) == len(kept) >= 5, "each span the notebook shows is one telemetry item"
        assert {i["iKey"] for i in sent} == {"00000000-0000-0000-0000-00000000cafe"}
        assert {i["tags"]["ai.cloud.role"] for i in sent} == {tracing.SERVICE_NAME}
        names = {i["data"]["baseData"]["name"] for i in sent}
        assert {s.name for s in kept} <= names, names
        properties = [i["data"]["baseData"].get("properties", {}) for i in sent]
        assert any(p.get("gen_ai.usage.input_tokens") == "321" for p in properties), "the model call's tokens"
        traces = tracing.by_trace(kept)  # building the workflow is a trace of its own, then the run's
        assert len({i["tags"]["ai.operation.id"] for i in sent}) == len(traces) == 2
        # without the setting nothing is sent
        tracing.stop_azure_monitor()
        before = len(ingestion.items)
        tracing.collector(resolve({}))
        engine.run_workflow(app, client, QUESTION, CUSTOMER)
        tracing.flush()
        assert len(ingestion.items) == before
    finally:
        tracing.stop_azure_monitor()
        ingestion.close()


def test_the_whole_workflow_runs_on_azure_openai_with_the_apps_facts_guards_and_decoding():
    """The same agent and workflow with CHAT_BACKEND=azure: every model call goes to the deployment, the facts and
    the customer's orders are in the prompt, the output guard still reads the answer."""
    key = "fake-key-for-tests-0001"
    settings, seen, model, azure = azure_deployment(key)
    model.reply = "The Summit Dome 2 Tent weighs 2.1 kg [product-1]."

    sync = openai.AzureOpenAI(azure_endpoint="https://contoso-aoai.openai.azure.com", api_key=key,
                              api_version="2024-10-21", max_retries=0,
                              http_client=httpx.Client(transport=httpx.MockTransport(azure)))
    azure_app = ContosoChat(settings=settings, chat=ChatTarget(sync, "gpt-4o-mini", "azure", "contoso-aoai"))
    client = engine.chat_client(azure_app, httpx.AsyncClient(transport=httpx.MockTransport(azure)))
    flow = azure_app(QUESTION, CUSTOMER)
    agent = engine.run_workflow(azure_app, client, QUESTION, CUSTOMER)
    assert len(seen) == 2 and {r.url.path for r in seen} == {"/openai/deployments/gpt-4o-mini/chat/completions"}
    assert {r.url.params["api-version"] for r in seen} == {"2024-10-21"}
    assert {r.headers["api-key"] for r in seen} == {key}
    flow_body, agent_body = model.requests
    assert agent_body["messages"] == flow_body["messages"], "the same prompt on Azure as through the flex flow"
    customer = next(c for c in records.customers() if c.id == CUSTOMER)
    assert "Facts:" in agent_body["messages"][0]["content"]
    assert f"Customer: {customer.first_name}" in agent_body["messages"][0]["content"]
    assert agent_body["max_completion_tokens"] == azure_app.max_tokens and "extra_body" not in agent_body
    same(flow, agent)
    other = next(c for c in records.customers() if c.id != CUSTOMER)
    model.reply = f"Your tent ships to {other.address.street}."  # another customer's street: the guard reads it
    withheld = engine.run_workflow(azure_app, client, QUESTION, CUSTOMER)
    assert withheld["usage"]["declined"] and other.address.street not in withheld["answer"]
