"""Operations: red-team scoring and guards, content safety, tracing set-up, the CI workflow, diagrams, notebooks."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import openai
import pandas as pd
import pytest
import yaml

from contoso_chat import records
from contoso_chat.backends import content_safety
from contoso_chat.evaluation import redteam
from contoso_chat.backends import tracing
from contoso_chat.assistant import ContosoChat
from contoso_chat.backends.settings import resolve
from contoso_chat.paths import REPO_ROOT

from azure_fakes import FakeAzureTransport


@pytest.fixture(scope="module")
def app() -> ContosoChat:
    return ContosoChat(settings=resolve({}))


def test_guards_stop_fake_system_turns_before_the_model(app):
    cases = {c.id: c for c in records.redteam_cases()}
    history_attacks = [c for c in cases.values() if c.category == "history-injection"
                       and any(t.get("role") not in ("user", "assistant") for t in c.chat_history)]
    assert history_attacks
    for case in history_attacks[:3]:
        answer, declined = redteam.guarded_answer(app, case.attack, case.customer_id, case.chat_history)
        assert declined and "role" in answer


def test_the_prompt_never_holds_another_customers_data(app):
    """Isolation is a property of the design, checked on the prompt itself for every customer (no model call)."""
    everyone = records.customers()
    for customer in everyone:
        question = "What did I order, and what is my address?"
        facts = app.select_facts(question, app.retriever.search(question, k=5))
        text = " ".join(m["content"] for m in app.messages(question, customer, [], facts)).lower()
        for other in everyone:
            if other.id != customer.id:
                for detail in (other.unique_detail, other.email, other.phone, other.last_name,
                               *(o.order_id for o in other.orders)):
                    assert detail.lower() not in text, f"{customer.id}'s prompt holds {other.id}'s {detail}"


def test_harmful_requests_are_stopped_before_the_model_by_the_local_harm_check(app):
    for case in [c for c in records.redteam_cases(split="test") if c.harm_category][:3]:
        reply = app(case.attack, case.customer_id)
        assert reply["usage"]["declined"] and reply["usage"]["prompt_tokens"] == 0, (case.id, reply["usage"])


def test_poisoned_documents_are_sanitized_and_kept_out_of_the_default_index(app, tmp_path):
    poisoned = redteam.poisoned_app(app, folder=tmp_path / "index-poisoned")
    hits = poisoned.retriever.search("Switchback Carbon Trekking Poles status badge", k=5)
    assert any(h.source_id.startswith("poisoned") for h in hits)
    assert not any("attacker.example" in h.text or "<!--" in h.text for h in hits)
    assert not any(h.source_id.startswith("poisoned") for h in app.retriever.search("Switchback Carbon Trekking Poles", k=10))


def test_content_safety_blocks_before_the_model(app):
    from azure.ai.contentsafety import ContentSafetyClient
    from azure.core.credentials import AzureKeyCredential

    severities = {"Hate": 0, "SelfHarm": 0, "Sexual": 0, "Violence": 6}
    transport = FakeAzureTransport(lambda request: (200, {"categoriesAnalysis": [
        {"category": k, "severity": v} for k, v in severities.items()]}))
    client = ContentSafetyClient("https://example-cs.cognitiveservices.azure.com/", AzureKeyCredential("fake-key"),
                                 transport=transport)
    guarded = ContosoChat(settings=app.settings, retriever=app.retriever, customers=app.customers, chat=app.chat)
    guarded.content_safety = content_safety.AzureContentSafety(client)
    reply = guarded("How do I hurt someone with a camp stove?", "C1001")
    assert reply["answer"] == content_safety.BLOCKED_ANSWER and reply["usage"]["guard"] == ["azure-content-safety:Violence"]
    sent = transport.sent[0]
    assert sent.method == "POST" and "/contentsafety/text:analyze" in sent.url
    assert sent.headers["Ocp-Apim-Subscription-Key"] == "fake-key" and sent.body["outputType"] == "FourSeverityLevels"
    assert sent.body["text"] == "How do I hurt someone with a camp stove?"


def test_azure_content_filter_becomes_a_polite_answer(app):
    class FilteringClient:
        class chat:
            class completions:
                @staticmethod
                def create(**kwargs):
                    request = httpx.Request("POST", "https://example-aoai.openai.azure.com/")
                    raise openai.BadRequestError("filtered", response=httpx.Response(400, request=request),
                                                 body={"code": "content_filter"})

    target = type(app.chat)(client=FilteringClient(), model="gpt-4o-mini", backend="azure", host="example")
    filtered = ContosoChat(settings=app.settings, retriever=app.retriever, customers=app.customers, chat=target)
    reply = filtered("How much does the Summit Dome 2 Tent weigh?", "C1001")
    assert reply["answer"] == content_safety.BLOCKED_ANSWER and reply["usage"]["guard"] == ["content-filter"]


def test_azure_monitor_gets_the_connection_string():
    calls = []
    settings = resolve({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-fake"})
    where = tracing.start_tracing(settings, configure_azure_monitor=lambda **kw: calls.append(kw))
    assert calls and calls[0]["connection_string"] == "InstrumentationKey=00000000-fake"
    assert "Azure Monitor" in where


def test_per_request_table_adds_up_spans():
    start = pd.Timestamp("2026-01-01T00:00:00")
    spans = pd.DataFrame([
        {"trace_id": "t1", "name": "contoso_chat", "start": start, "seconds": 2.0, "prompt_tokens": None, "completion_tokens": None},
        {"trace_id": "t1", "name": "retrieve", "start": start, "seconds": 0.1, "prompt_tokens": None, "completion_tokens": None},
        {"trace_id": "t1", "name": "chat_model", "start": start, "seconds": 1.8, "prompt_tokens": 1000, "completion_tokens": 100},
    ])
    row = tracing.per_request(spans, 0.00015, 0.0006).iloc[0]
    assert row["total_s"] == 2.0 and row["chat_model"] == 1.8 and row["cost_usd"] == pytest.approx(0.00021)


def test_workflow_runs_the_local_commands_and_gates_deployment():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "llmops.yml").read_text())
    triggers = workflow.get(True, workflow.get("on"))
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    assert re.fullmatch(r"(\S+ ){4}\S+", triggers["schedule"][0]["cron"])
    jobs = workflow["jobs"]
    makefile = (REPO_ROOT / "Makefile").read_text()
    for name, job in jobs.items():
        for step in job["steps"]:
            assert "uses" in step or "run" in step, f"{name}: a step does nothing"
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
            if step.get("run", "").startswith("make "):
                assert f"\n{step['run'].split()[1]}:" in makefile
    assert [s["run"] for s in jobs["test"]["steps"] if s.get("run", "").startswith("make")] == ["make test"]
    assert "make eval" in [s.get("run") for s in jobs["evaluate"]["steps"]]
    deploy = jobs["deploy"]
    assert "evaluate" in deploy["needs"] and "configured == 'true'" in deploy["if"] and "pull_request" in deploy["if"]
    assert workflow["permissions"] == {"contents": "read"}
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_diagrams_regenerate_from_their_sources(tmp_path):
    for script in sorted((REPO_ROOT / "img").glob("*.py")):
        if script.name == "diagram.py":
            continue
        assert (REPO_ROOT / "img" / f"{script.stem}.png").exists(), f"{script.name} has no committed PNG"
        subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, cwd=script.parent)
        assert (tmp_path / f"{script.stem}.png").stat().st_size > 10_000


def test_committed_notebooks_carry_no_outputs():
    listed = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=REPO_ROOT, capture_output=True, text=True)
    names = listed.stdout.split() if listed.returncode == 0 and listed.stdout.strip() else \
        [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "notebooks").glob("*.ipynb")]
    assert len(names) >= 7
    for name in names:
        shown = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=REPO_ROOT, capture_output=True, text=True)
        notebook = json.loads(shown.stdout if shown.returncode == 0 else (REPO_ROOT / name).read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{name} was committed with outputs"


def test_prompt_flow_runs_the_flex_flow():
    pf = REPO_ROOT / ".venv" / "bin" / "pf"
    command = [str(pf) if pf.exists() else str(__import__("pathlib").Path(sys.executable).with_name("pf")),
               "flow", "test", "--flow", str(REPO_ROOT / "contoso_chat" / "serving"), "--inputs",
               "question=How much does the Summit Dome 2 Tent weigh when packed?", "customer_id=C1001"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    reply = json.loads(result.stdout[result.stdout.index("{"):])
    assert reply["answer"] and reply["usage"]["retrieved"][0] == "product-1"
    assert set(reply["citations"]) <= set(reply["usage"]["retrieved"]), "citations name only facts that were shown"


def test_the_trace_service_is_stopped_without_agent_frameworks_folder_on_the_path(monkeypatch):
    """make test's second session runs with .venv/agent-framework on PYTHONPATH, where prompt flow cannot import:
    `pf service stop` must run without it, or the trace service outlives the tests."""
    from contoso_chat.backends import tracing

    sent = []
    monkeypatch.setenv("PYTHONPATH", "/somewhere/agent-framework")
    monkeypatch.setattr(tracing, "port_in_use", lambda port: True)
    monkeypatch.setattr(tracing.subprocess, "run", lambda command, **kwargs: sent.append((command, kwargs["env"])))
    assert tracing.stop_trace_service() is True
    [(command, env)] = sent
    assert command[-2:] == ["service", "stop"] and "PYTHONPATH" not in env
