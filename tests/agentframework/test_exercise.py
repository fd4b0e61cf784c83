"""Notebook 08's worked solution passes its check, and the check refuses lazy or mismatched input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import exercises

SOLUTION = Path(__file__).parents[2] / "notebooks" / "solutions" / "08_agent_framework.py"


def reply(answer: str, engine: str | None, declined: str | None = None, shown=("system", "user")) -> dict:
    usage = {"shown": list(shown), "decline_reason": declined, "declined": declined is not None,
             "model_reply": "" if declined else answer}
    if engine:
        usage["engine"] = engine
    return {"answer": answer, "usage": usage}


def test_the_solution_passes_its_check():
    spec = importlib.util.spec_from_file_location("solution_08", SOLUTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.exercise_1() is True


def test_the_check_refuses_the_same_reply_twice_a_difference_and_only_answered_questions():
    answered = (reply("It is warm.", None), reply("It is warm.", "agent-framework"))
    declined = (reply("We do not sell it.", None, "not-carried", ()), reply("We do not sell it.", "agent-framework",
                                                                           "not-carried", ()))
    assert exercises.check("08-1", [answered, declined]) is True
    assert exercises.check("08-1", [answered]) is False
    assert exercises.check("08-1", [(answered[0], answered[0]), declined]) is False
    assert exercises.check("08-1", [answered, answered]) is False
    different = (answered[0], reply("It is cold.", "agent-framework"))
    assert exercises.check("08-1", [different, declined]) is False
    other_prompt = (answered[0], reply("It is warm.", "agent-framework", shown=("system 2", "user")))
    assert exercises.check("08-1", [other_prompt, declined]) is False
