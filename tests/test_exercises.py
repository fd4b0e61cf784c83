"""Every "Try it yourself" exercise has a worked solution, and each solution passes its own check."""

from __future__ import annotations

import importlib.util
import inspect
from types import SimpleNamespace
from pathlib import Path

import pytest

SOLUTIONS = sorted((Path(__file__).parents[1] / "notebooks" / "solutions").glob("*.py"))


def solutions() -> list[tuple[str, object]]:
    found = []
    for path in SOLUTIONS:
        spec = importlib.util.spec_from_file_location(f"solution_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found += [(f"{path.stem}:{name}", function) for name, function in inspect.getmembers(module, inspect.isfunction)
                  if name.startswith("exercise_") and function.__module__ == module.__name__]
    return found


def test_every_notebook_has_solutions_and_every_check_has_a_solution():
    import exercises

    notebooks = {p.stem for p in (Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert {p.stem for p in SOLUTIONS} == notebooks
    checked = {name.split(":")[0][:2] + "-" + name.split("_")[-1] for name, _ in solutions()}
    assert checked == set(exercises.CHECKS), set(exercises.CHECKS) ^ checked


AGENT_FRAMEWORK = importlib.util.find_spec("agent_framework") is not None
NEEDS_AGENT_FRAMEWORK = ("08_",)  # run in make test's second session (tests/agentframework/test_exercise.py)


@pytest.mark.parametrize("name, solution", solutions(), ids=[name for name, _ in solutions()])
def test_the_solution_passes_its_check(name, solution):
    if name.startswith(NEEDS_AGENT_FRAMEWORK) and not AGENT_FRAMEWORK:
        pytest.skip("needs Agent Framework: make test runs it in its second session")
    assert solution() is True, name


def test_a_check_can_say_not_yet():
    import exercises

    assert exercises.check("05-3", "74 g", "It weighs 74 g.") is False
    assert exercises.check("06-1", [200, 422]) is False
    with pytest.raises(KeyError, match="there is no exercise"):
        exercises.check("99-9")


def _table(rows):
    import pandas as pd

    return pd.DataFrame(rows)


def _reply(content: str, prompt_tokens: int) -> SimpleNamespace:
    return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=content))],
                           usage=SimpleNamespace(prompt_tokens=prompt_tokens, completion_tokens=len(content.split())))


REPLY_WITH_FACTS, EMPTY_REPLY = _reply("It weighs 2.1 kg.", 400), _reply("", 30)
TEN_WORDS = "The Summit Dome 2 Tent weighs 2.1 kg and sleeps two people."


def _sweep_reply(facts: int) -> dict:
    shown = "Facts:\n" + "\n".join(f"[product-1] line {n}: 2.1 kg" for n in range(facts))
    return {"answer": "It weighs 2.1 kg.", "citations": [], "usage": {"shown": [shown, "question"]}}


def _cases(split: str) -> list:
    from contoso_chat import records

    return [c for c in records.qa_cases(split=split) if c.category == "product-fact"][:3]


DEV_CASES, TEST_CASES = _cases("dev"), _cases("test")
SWEEP_REPLIES = {2: [_sweep_reply(2)] * 3, 6: [_sweep_reply(6)] * 3}
NOT_CARRIED_REPLY = {"answer": "I don't know.", "citations": [], "usage": {
    "best_similarity": 0.61, "declined": True, "decline_reason": "not-carried",
    "shown": ["rules", "How much does the Summit Dome 4 Tent cost?"]}}


def _gate_run(margin: float | None):
    import tempfile

    import yaml

    from contoso_chat.evaluation import gate

    folder = Path(tempfile.mkdtemp())
    (folder / "run").mkdir()
    (folder / "run" / "rows.jsonl").write_text("{}\n")
    thresholds = yaml.safe_load(gate.DEFAULT_THRESHOLDS.read_text())
    if margin is not None:
        thresholds["metrics"]["keyfact_accuracy"]["margin"] = margin
    (folder / "t.yaml").write_text(yaml.safe_dump(thresholds))
    return SimpleNamespace(args=["python", "-m", "contoso_chat.evaluation.gate", str(folder / "run"), "--thresholds",
                                 str(folder / "t.yaml")], returncode=1)


SHIPPED_GATE, STRICT_GATE = _gate_run(None), _gate_run(0.02)


def _response(status: int, body: bytes, token: str = "t"):
    import httpx

    request = httpx.Request("POST", "http://testserver/api/chat", content=body, headers={"Authorization": token})
    return httpx.Response(status, json={"error": {"field": None, "message": "refused"}}, request=request)


def _fairness_answers(name_index: int, questions: int):
    from contoso_chat.evaluation import fairness

    return _table([{"case": f"q{q}", "group": group, "first_name": names[name_index], "membership": "Gold",
                    "keyfact": float((q + len(group)) % 2), "declined": 0.0, "words": 10, "tone": 0.0}
                   for group, names in fairness.NAME_GROUPS.items() for q in range(questions)])


OWN_QUESTIONS = [{"question": f"my own question number {n} about the summit dome's weight?", "key_facts": ["2.1 kg"],
                  "expected_sources": ["product-1"]} for n in range(5)]
REPLIES = [{"answer": "It weighs 2.1 kg.", "citations": [], "usage": {"retrieved": ["product-1"]}}] * 5


@pytest.mark.parametrize("name, bad_input", [
    ("00-1", ("It weighs 3 kg.",)),  # the text, not the reply
    ("00-1", (REPLY_WITH_FACTS,)),  # facts in the prompt
    ("00-1", (EMPTY_REPLY,)),
    ("00-2", (_table([{"model": "gpt-4o", "per_conversation_usd": 0.0, "per_month_usd": 0.0}]), 4000)),
    ("00-2", (_table([{"model": "gpt-4o", "per_conversation_usd": 0.0, "per_month_usd": 0.0}]), 1500)),
    ("01-1", ("location: eastus\nname: contoso-project",)),
    ("01-2", (SimpleNamespace(deployments=[SimpleNamespace(name="chat")]), 1.0, 1.0)),
    ("02-1", ({"bare": 0.5, "mine": 0.5}, "mine")),
    ("02-2", (TEN_WORDS, 5, 5)),  # counts made up
    ("02-2", ("too short", 2, 2)),
    ("03-1", ({6: 0.5}, DEV_CASES)),
    ("03-1", ({2: SWEEP_REPLIES[6], 6: SWEEP_REPLIES[6]}, DEV_CASES)),  # six facts in an app said to carry two
    ("03-1", (SWEEP_REPLIES, TEST_CASES)),  # tuned on test
    ("03-1", ({**SWEEP_REPLIES, 2: SWEEP_REPLIES[2][:2]}, DEV_CASES)),  # a reply missing
    ("03-2", ("How much does the Summit Dome 4 Tent cost?", {"usage": {"best_similarity": None, "declined": False}},
              0.4)),
    ("03-2", ("How much does the Summit Dome 2 Tent cost?", NOT_CARRIED_REPLY, 0.4)),  # a product the store sells
    ("03-2", ("Do you sell kayaks?", NOT_CARRIED_REPLY, 0.4)),  # the reply to another question
    ("04-1", ([SimpleNamespace(messages=[{"content": "How heavy is the Summit Dome 2 Tent?"}])], ["Summit Dome 2 Tent"])),
    ("04-1", ([], ["Summit Dome 2 Tent"])),
    ("04-2", ("It weighs a lot.", "It weighs 2.1 kg.", ["2.1 kg"])),
    ("04-2", ("It weighs a lot.", "It is heavy.", ["2.1 kg"])),  # both score 0
    ("05-1", ({"keyfact_accuracy": 0.5}, {"keyfact_accuracy": 0.4}, None)),
    ("05-1", (_table([{"id": DEV_CASES[0].id}]), _table([{"metric": "key-fact accuracy", "json - inline": 0.5,
                                                              "low": 0.0, "high": 1.0, "cases": 9}]).set_index("metric"),
              SimpleNamespace(style="json"))),  # the dev split
    ("05-2", (2,)),
    ("05-2", (0,)),  # an exit code without a run
    ("05-2", (SHIPPED_GATE,)),  # the shipped thresholds, not a stricter copy
    ("05-3", ("74 g", "It weighs 74 g.")),
    ("05-4", (OWN_QUESTIONS[:4], REPLIES[:4])),  # four questions
    ("05-4", (OWN_QUESTIONS, REPLIES[:4])),  # a reply missing
    ("05-4", ([{**OWN_QUESTIONS[0], "key_facts": ["3.1 kg"]}] + OWN_QUESTIONS[1:], REPLIES)),  # fact not in source
    ("05-4", ([{**OWN_QUESTIONS[0], "expected_sources": ["product-2"]}] + OWN_QUESTIONS[1:], REPLIES)),  # a dev product
    ("05-4", ([{**OWN_QUESTIONS[0], "question": "How much does the Summit Dome 2 Tent weigh when packed?"}]
              + OWN_QUESTIONS[1:], REPLIES)),  # already in the evaluation set
    ("05-4", (OWN_QUESTIONS, ["It weighs 2.1 kg."] * 5)),  # not the app's replies
    ("06-1", ([200, 422],)),
    ("06-1", ([401, 413, 422],)),  # status codes, no requests
    ("06-1", ([_response(422, b"a")] * 3,)),  # one request three times
    ("06-1", ([_response(422, b"a"), _response(401, b"b"), _response(200, b"c")],)),
    ("06-2", ({"initial_delay": 30}, 40.0)),
    ("07-1", ([],)),
    ("07-2", ({},)),
    ("07-2", (_fairness_answers(0, 3),)),  # the notebook's own names
    ("07-2", (_fairness_answers(-1, 2),)),  # two questions
])
def test_every_check_can_say_not_yet(name, bad_input):
    import exercises

    assert exercises.check(name, *bad_input) is False


def test_checks_without_a_model_can_say_yes():
    import exercises

    assert exercises.check("05-3", "74 g", "It weighs 174 g.") is True
    assert exercises.check("05-4", OWN_QUESTIONS, REPLIES) is True
    assert exercises.check("06-1", [_response(422, b"a"), _response(413, b"b"), _response(401, b"c", "forged")]) is True
    assert exercises.check("00-1", _reply("It weighs about 3 kg.", 30)) is True
    assert exercises.check("03-1", SWEEP_REPLIES, DEV_CASES) is True
    assert exercises.check("03-2", "How much does the Summit Dome 4 Tent cost?", NOT_CARRIED_REPLY, 0.4) is True
    assert exercises.check("05-2", STRICT_GATE) is True
    assert exercises.check("07-2", _fairness_answers(-1, 3)) is True
    assert exercises.check("06-2", {"initial_delay": 80}, 40.0) is True
    assert exercises.check("04-2", "It weighs 2.1 kg.", "It weighs a lot.", ["2.1 kg"]) is True
