"""The parity figures and verdict catch an engine that answers worse, declines differently or guards differently."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from contoso_chat.agentframework import parity


def answers(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keyfact = rng.integers(0, 2, n).astype(float)
    return pd.DataFrame({
        "id": [f"test-{i:03d}" for i in range(n)], "family": [f"f{i // 3}" for i in range(n)],
        "question": [f"question {i}" for i in range(n)], "response": [f"answer {i}" for i in range(n)],
        "declined": [i % 10 == 0 for i in range(n)], "decline_reason": [None] * n,
        "latency_s": rng.uniform(1, 3, n), "prompt_tokens": [400] * n, "completion_tokens": [40] * n,
        "keyfact.keyfact": keyfact, "unsupported.unsupported": rng.integers(0, 2, n).astype(float),
        "decline.refusal_correct": np.ones(n)})


def report(promptflow: pd.DataFrame, agent: pd.DataFrame, guard_agreement: float = 1.0) -> dict:
    figures = parity.compare(promptflow, agent)
    figures["guards"] = {"agreement": guard_agreement, "cases": 20}
    return figures


def test_the_same_answers_are_on_a_par():
    figures = report(answers(), answers())
    assert parity.verdict(figures) == {"parity": True, "checks": {"keyfact_diff": True, "decline_agreement": True,
                                                                   "guard_agreement": True}}
    assert figures["keyfact"]["diff"] == 0 and figures["same_answer"] == 1.0 and figures["differing"] == []


def test_an_engine_that_loses_key_facts_is_not_on_a_par():
    agent = answers()
    right = agent.index[agent["keyfact.keyfact"] == 1]
    agent.loc[right[: len(right) // 2], "keyfact.keyfact"] = 0.0
    agent.loc[right[: len(right) // 2], "response"] = "a worse answer"
    figures = report(answers(), agent)
    assert figures["keyfact"]["diff"] < -0.05 and figures["keyfact"]["high"] < 0
    verdict = parity.verdict(figures)
    assert not verdict["parity"] and not verdict["checks"]["keyfact_diff"]
    assert len(figures["differing"]) == len(right) // 2


def test_a_small_key_fact_difference_whose_interval_excludes_zero_is_not_parity():
    promptflow, agent = answers(200), answers(200)
    promptflow["keyfact.keyfact"], agent["keyfact.keyfact"] = 0.5, 0.5
    agent.loc[agent.index % 16 == 0, "keyfact.keyfact"] = 0.0  # 13 cases in 13 families lose half a point: -0.03
    assert not parity.verdict(report(promptflow, agent))["checks"]["keyfact_diff"]


def test_declining_differently_on_one_case_in_ten_is_not_parity():
    agent = answers()
    agent.loc[agent.index % 10 == 5, "declined"] = True
    figures = report(answers(), agent)
    assert figures["decline_agreement"] == pytest.approx(0.9)
    assert not parity.verdict(figures)["checks"]["decline_agreement"]


def test_one_red_team_case_guarded_differently_breaks_parity():
    assert not parity.verdict(report(answers(), answers(), guard_agreement=0.99))["parity"]


def test_tables_without_shared_cases_are_refused():
    other = answers()
    other["id"] = "dev-" + other["id"]
    with pytest.raises(ValueError, match="same cases"):
        parity.compare(answers(), other)


def test_guard_outcomes_compare_decline_reason_and_findings():
    def reply(reason, guard):
        return lambda: {"answer": "x", "usage": {"decline_reason": reason, "guard": guard}}
    assert parity.guard_outcome(reply(None, []))["outcome"] == "answered|"
    assert parity.guard_outcome(reply("output-guard", ["pii"]))["outcome"] != \
        parity.guard_outcome(reply("output-guard", ["rules"]))["outcome"]


def test_the_prompt_flow_side_runs_without_agent_frameworks_folder():
    folder = os.path.join(".venv", "agent-framework")
    clean = parity.without_agent_framework({"PYTHONPATH": os.pathsep.join([folder, "/opt/other"]), "HOME": "/root"})
    assert clean == {"PYTHONPATH": "/opt/other", "HOME": "/root"}
    assert "PYTHONPATH" not in parity.without_agent_framework({"PYTHONPATH": folder})


def test_agent_frameworks_evaluation_api_counts_what_the_project_metrics_say():
    rows = answers(6)
    rows["keyfact.keyfact"] = [1.0, 0.0, None, 1.0, 1.0, 0.0]
    rows["unsupported.unsupported"] = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    rows["decline.refusal_correct"] = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    summary = parity.agent_framework_evaluation(None, rows)
    assert summary["items"] == 6
    assert summary["pass_rate"] == {"key facts stated": 0.6, "no unsupported figure": round(5 / 6, 4),
                                    "declined when it should": round(5 / 6, 4)}


def test_one_engine_answers_every_red_team_case_before_the_other_and_differences_keep_both_answers():
    from contoso_chat import records

    cases = records.redteam_cases()[:3]
    calls = []

    def engine_reply(name, leak_on=None):
        def reply(question, customer, history):
            calls.append(name)
            withheld = question == leak_on
            return {"answer": "withheld" if withheld else "fine",
                    "usage": {"decline_reason": "output-guard" if withheld else None, "guard": []}}
        return reply

    result = parity.guard_agreement(engine_reply("flow"), engine_reply("agent", leak_on=cases[1].attack), cases,
                                    before_each=lambda: calls.append("settle"))
    assert calls == ["settle", "flow"] * 3 + ["settle", "agent"] * 3
    assert result["agreement"] == round(2 / 3, 4)
    (differing,) = result["differing"]
    assert differing["id"] == cases[1].id and (differing["answer_pf"], differing["answer_af"]) == ("fine", "withheld")
