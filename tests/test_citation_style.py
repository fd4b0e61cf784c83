"""The citation-style comparison: scored with the evaluation's evaluators, compared in pairs, and a rule
that keeps the style costing less answer quality only when the interval says so."""

from __future__ import annotations

import pandas as pd
import pytest

from contoso_chat.evaluation import citation_style

SHOWN = ["Facts:\n[product-1] Summit Dome 2 Tent packed weight: 2.1 kg"]


def _row(case: str, response: str, citations: list[str], declined: bool = False, category: str = "product-fact") -> dict:
    return {"id": case, "category": category, "question": "How heavy is the tent?", "response": response,
            "citations": citations, "declined": declined, "invalid_citations": 0, "failed": False, "latency_s": 1.0,
            "completion_tokens": 10, "key_facts": ["2.1 kg"] if category != "out-of-scope" else [],
            "expected_sources": ["product-1"] if category != "out-of-scope" else [], "shown": SHOWN}


def test_answers_are_scored_with_the_evaluations_own_definitions():
    rows = pd.DataFrame([
        _row("a", "It weighs 2.1 kg.", ["product-1"]),
        _row("b", "It weighs 12.1 kg.", []),  # a near miss and a figure shown nowhere
        _row("c", "I can only help with Contoso Outdoors.", [], declined=True, category="out-of-scope"),
        _row("d", "I can only help with Contoso Outdoors.", [], declined=True),  # declined an answerable question
    ])
    scored = citation_style.score(rows).set_index("id")
    assert scored.loc["a", ["keyfact", "unsupported", "refusal_correct", "cites", "citation_precision"]].tolist() == \
        [1.0, 0.0, 1.0, 1.0, 1.0]
    assert scored.loc["b", "keyfact"] == 0.0 and scored.loc["b", "unsupported"] == 1.0
    assert pd.isna(scored.loc["b", "citation_precision"]), "precision exists only for answers that cite"
    assert pd.isna(scored.loc["c", "keyfact"]) and scored.loc["c", "refusal_correct"] == 1.0
    assert scored.loc["d", "refusal_correct"] == 0.0


def _per_case(inline_keyfacts, json_keyfacts, inline_unsupported=None, json_unsupported=None) -> pd.DataFrame:
    rows = []
    for style, keyfacts, unsupported in (("inline", inline_keyfacts, inline_unsupported),
                                         ("json", json_keyfacts, json_unsupported)):
        for i, value in enumerate(keyfacts):
            rows.append({"id": f"q{i:02d}", "style": style, "keyfact": value,
                         "unsupported": 0.0 if unsupported is None else unsupported[i], "refusal_correct": 1.0,
                         "cites": float(style == "json"), "citation_precision": 1.0 if style == "json" else None})
    return pd.DataFrame(rows)


def test_a_style_that_loses_key_facts_beyond_the_interval_is_not_kept():
    worse_json = _per_case([1.0] * 30, [1.0] * 15 + [0.0] * 15)
    comparison = citation_style.compare(worse_json)
    row = comparison.loc["key-fact accuracy"]
    assert row["json - inline"] == -0.5 and row["high"] < 0 and row["cases"] == 30
    assert citation_style.choose(comparison).style == "inline"
    better_json = _per_case([1.0] * 15 + [0.0] * 15, [1.0] * 30)
    assert citation_style.choose(citation_style.compare(better_json)).style == "json"


def test_a_difference_within_noise_keeps_inline_and_says_so():
    noisy = _per_case([1.0, 0.0] * 10, [0.0, 1.0] * 9 + [1.0, 1.0])  # json ahead by one case in twenty
    choice = citation_style.choose(citation_style.compare(noisy))
    assert choice.style == "inline" and "no answer metric differs" in choice.reason


def test_unsupported_claims_decide_when_key_facts_do_not():
    same_facts = [1.0] * 30
    fewer_inventions = _per_case(same_facts, same_facts, inline_unsupported=[1.0] * 15 + [0.0] * 15,
                                 json_unsupported=[0.0] * 30)
    choice = citation_style.choose(citation_style.compare(fewer_inventions))
    assert choice.style == "json" and choice.reason.startswith("unsupported-claim rate")


def test_the_command_refuses_a_limit_below_one(capsys):
    with pytest.raises(SystemExit) as stop:
        citation_style.main(["--limit", "0"])
    assert stop.value.code == 2 and "--limit must be at least 1" in capsys.readouterr().err
