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


OWN_QUESTIONS = [{"question": f"my own question number {n} about the summit dome's weight?", "key_facts": ["2.1 kg"],
                  "expected_sources": ["product-1"]} for n in range(5)]
REPLIES = [{"answer": "It weighs 2.1 kg.", "citations": [], "usage": {"retrieved": ["product-1"]}}] * 5


@pytest.mark.parametrize("name, bad_input", [
    ("00-1", ("  ",)),
    ("00-2", (_table([{"model": "gpt-4o", "per_conversation_usd": 0.0, "per_month_usd": 0.0}]), 4000)),
    ("00-2", (_table([{"model": "gpt-4o", "per_conversation_usd": 0.0, "per_month_usd": 0.0}]), 1500)),
    ("01-1", ("location: eastus\nname: contoso-project",)),
    ("01-2", (SimpleNamespace(deployments=[SimpleNamespace(name="chat")]), 1.0, 1.0)),
    ("02-1", ({"bare": 0.5, "mine": 0.5}, "mine")),
    ("02-2", (0, 10)),
    ("03-1", ({6: 0.5},)),
    ("03-2", ({"usage": {"best_similarity": None, "declined": False}}, 0.4)),
    ("04-1", ([SimpleNamespace(messages=[{"content": "How heavy is the Summit Dome 2 Tent?"}])], ["Summit Dome 2 Tent"])),
    ("04-1", ([], ["Summit Dome 2 Tent"])),
    ("04-2", ("It weighs a lot.", "It weighs 2.1 kg.", ["2.1 kg"])),
    ("05-1", ({"keyfact_accuracy": 0.5}, {"keyfact_accuracy": 0.4})),
    ("05-1", (_table([{"metric": "key-fact accuracy", "json - inline": 0.5, "low": 0.0, "high": 1.0, "cases": 2}]
                     ).set_index("metric"), SimpleNamespace(style="json"))),
    ("05-2", (2,)),
    ("05-3", ("74 g", "It weighs 74 g.")),
    ("05-4", (OWN_QUESTIONS[:4], REPLIES[:4])),  # four questions
    ("05-4", (OWN_QUESTIONS, REPLIES[:4])),  # a reply missing
    ("05-4", ([{**OWN_QUESTIONS[0], "key_facts": ["3.1 kg"]}] + OWN_QUESTIONS[1:], REPLIES)),  # fact not in source
    ("05-4", ([{**OWN_QUESTIONS[0], "expected_sources": ["product-2"]}] + OWN_QUESTIONS[1:], REPLIES)),  # a dev product
    ("05-4", ([{**OWN_QUESTIONS[0], "question": "How much does the Summit Dome 2 Tent weigh when packed?"}]
              + OWN_QUESTIONS[1:], REPLIES)),  # already in the evaluation set
    ("05-4", (OWN_QUESTIONS, ["It weighs 2.1 kg."] * 5)),  # not the app's replies
    ("06-1", ([200, 422],)),
    ("06-2", ({"initial_delay": 30}, 40.0)),
    ("07-1", ([],)),
    ("07-2", ({},)),
])
def test_every_check_can_say_not_yet(name, bad_input):
    import exercises

    assert exercises.check(name, *bad_input) is False


def test_checks_without_a_model_can_say_yes():
    import exercises

    assert exercises.check("05-3", "74 g", "It weighs 174 g.") is True
    assert exercises.check("05-4", OWN_QUESTIONS, REPLIES) is True
    assert exercises.check("06-1", [401, 413, 422]) is True
    assert exercises.check("06-2", {"initial_delay": 80}, 40.0) is True
    assert exercises.check("04-2", "It weighs 2.1 kg.", "It weighs a lot.", ["2.1 kg"]) is True
