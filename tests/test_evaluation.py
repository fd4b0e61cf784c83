"""Metrics, evaluators, judges, intervals and the gate: each fed answers it must catch and answers it must pass."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from contoso_chat.assistant import DECLINE_ANSWER, is_decline, read_model_reply
from contoso_chat.evaluation import batch, gate, judges, metrics
from contoso_chat.evaluation.evaluators import (
    CitationEvaluator, DeclineEvaluator, KeyFactEvaluator, RetrievalEvaluator, UnsupportedClaimEvaluator,
    UsageEvaluator,
)
from contoso_chat.evaluation.intervals import bootstrap_interval, paired_difference, percentile

NEAR_MISSES = [  # (key fact, answer): the answer states a different figure, so the fact must NOT be found
    ("74 g", "The stove weighs 174 g."),
    ("$75", "Shipping is free on orders over $750."),
    ("$75", "The price is $75.50."),
    ("2 years", "It is covered for 12 years."),
    ("2.1 kg", "The tent weighs 12.1 kg."),
    ("2.1 kg", "The tent weighs 2.15 kg."),
    ("2.1 kg | 4 lb 10 oz", "It weighs 4 lb 1 oz."),
    ("-7 °C | 20 °F", "Its lower limit is 7 °C."),
    ("-7 °C | 20 °F", "Its lower limit is -20 °F."),
    ("90 m", "The beam reaches 90 mm."),
    ("41-53 cm", "It fits torsos of 41-53 mm."),
    ("41-53 cm", "It fits torsos up to 53 cm."),
    ("$549", "You paid $1,549.00."),
    ("20000 mm", "It is rated 120000 mm."),
    ("60 days", "You have 160 days."),
    ("semi-automatic", "Use automatic crampons."),
    ("1-800-555-0142", "Call 1-800-555-01423."),
]
MATCHES = [  # the same figure written another way: the fact must be found
    ("74 g", "It weighs 74g."),
    ("74 g", "It weighs 74 grams."),
    ("$75", "Free over $75.00."),
    ("2.1 kg | 4 lb 10 oz", "It weighs 4 lb 10 oz when packed."),
    ("2.1 kg", "Packed, it is 2.10 kilograms."),
    ("-7 °C | 20 °F", "It goes down to minus 7 degrees Celsius."),
    ("-7 °C | 20 °F", "Lower limit: -7°C."),
    ("90 m", "The beam reaches 90 metres."),
    ("41-53 cm", "Torso lengths from 41 to 53 cm."),
    ("20000 mm", "A 20,000 mm rating."),
    ("$549", "You paid $549.00 for it."),
    ("XS-XXL", "Sizes XS–XXL."),
]


@pytest.mark.parametrize("fact, answer", NEAR_MISSES)
def test_key_facts_do_not_match_inside_other_numbers(fact, answer):
    assert not metrics.fact_found(fact, answer)


@pytest.mark.parametrize("fact, answer", MATCHES)
def test_key_facts_match_the_same_figure_written_another_way(fact, answer):
    assert metrics.fact_found(fact, answer)


def test_keyfact_score_is_the_share_of_facts_stated():
    assert metrics.keyfact_score("It holds 27 kg; the other 18 kg.", ["27 kg", "18 kg"]) == 1.0
    assert metrics.keyfact_score("It holds 27 kg.", ["27 kg", "18 kg"]) == 0.5
    assert metrics.keyfact_score("It holds 127 kg and 118 kg.", ["27 kg", "18 kg"]) == 0.0


SHOWN = ["Summit Dome 2 Tent packed weight: 2.1 kg (4 lb 10 oz)", "Summit Dome 2 Tent price $249.00",
         "How much does the Summit Dome 2 Tent weigh?"]


@pytest.mark.parametrize("answer, unsupported", [
    ("The Summit Dome 2 Tent weighs 2.1 kg (4 lb 10 oz).", []),
    ("It costs $249 and weighs 2.1 kg.", []),
    ("It weighs 460 pounds (213 kg).", ["460 lb", "213 kg"]),
    ("It weighs 1.5 kg and costs $49.99.", ["1.5 kg", "$49.99"]),
    ("It weighs 12.1 kg.", ["12.1 kg"]),
    ("It sleeps 2 people.", ["2 people"]),
    ("I'm sorry, I couldn't find that.", []),
])
def test_unsupported_claims_are_numbers_with_units_found_in_no_fact_shown(answer, unsupported):
    assert metrics.unsupported_claims(answer, SHOWN) == unsupported


def test_citations_are_scored_against_the_expected_sources():
    assert metrics.citation_precision(["product-1", "policy-returns"], ["product-1"]) == 0.5
    assert metrics.citation_precision([], ["product-1"]) is None
    assert metrics.citation_recall(["product-3"], ["product-1"]) == 0.0
    assert metrics.citation_recall(["product-1"], ["product-1", "product-3"]) == 0.5


def test_a_decline_is_a_signal_not_a_phrase():
    assert metrics.refusal_correct(True, "out-of-scope") and not metrics.refusal_correct(False, "out-of-scope")
    assert metrics.refusal_correct(False, "product-fact") and not metrics.refusal_correct(True, "product-fact")
    assert is_decline("I don't know.") and is_decline("I do not know [product-1].")
    assert not is_decline("I do not know the colour, but it weighs 2.1 kg.")
    assert not is_decline(DECLINE_ANSWER + " It weighs 2.1 kg.")


def test_only_cited_ids_among_the_facts_shown_are_kept_and_the_rest_counted():
    reply = read_model_reply("It weighs 2.1 kg [product-1]. It is great [product-99] [policy-returns].",
                             ["product-1", "product-3"], "inline")
    assert reply.answer == "It weighs 2.1 kg. It is great."
    assert reply.citations == ["product-1"] and reply.invalid_citations == 2 and not reply.declined
    as_json = read_model_reply('{"answer": "It weighs 2.1 kg.", "sources": ["product-3", "product-7"]}',
                               ["product-1", "product-3"], "json")
    assert as_json.citations == ["product-3"] and as_json.invalid_citations == 1
    assert read_model_reply('{"answer": "I don\'t know", "sources": []}', ["product-1"], "json").declined


def test_code_evaluators_score_what_they_claim():
    assert KeyFactEvaluator()(response="It weighs 2.1kg.", key_facts=["2.1 kg"], category="product-fact") == {"keyfact": 1.0}
    assert KeyFactEvaluator()(response="No idea", key_facts=[], category="out-of-scope") == {"keyfact": None}
    assert UnsupportedClaimEvaluator()(response="It weighs 213 kg.", shown=SHOWN)["unsupported"] == 1.0
    assert UnsupportedClaimEvaluator()(response="It weighs 2.1 kg.", shown=SHOWN)["unsupported"] == 0.0
    assert DeclineEvaluator()(declined=True, category="out-of-scope")["refusal_correct"] == 1.0
    assert DeclineEvaluator()(declined=True, category="policy")["refusal_correct"] == 0.0
    assert CitationEvaluator()(citations=["product-1", "policy-returns"], expected_sources=["product-1"]) == \
        {"citation_precision": 0.5, "citation_recall": 1.0}
    assert RetrievalEvaluator()(retrieved=["product-3", "product-1"], expected_sources=["product-1"]) == \
        {"context_recall": 1.0, "reciprocal_rank": 0.5}
    usage = UsageEvaluator(0.00015, 0.0006)(response="a b c", latency_s=1.0, prompt_tokens=1000, completion_tokens=100)
    assert usage["answer_words"] == 3 and usage["cost_usd"] == pytest.approx(0.00021)


def test_cases_are_spread_over_categories_within_a_split():
    picked = batch.select_cases("test", 12)
    assert len(picked) == 12 and {c.split for c in picked} == {"test"}
    assert pd.Series([c.category for c in picked]).value_counts().tolist() == [2] * 6


def test_intervals_and_percentiles():
    interval = bootstrap_interval([1.0] * 20 + [0.0] * 20)
    assert interval.mean == 0.5 and 0.3 < interval.low < 0.5 < interval.high < 0.7 and interval.n == 40
    assert bootstrap_interval([1.0] * 10).low == 1.0
    assert paired_difference([1, 1, 1, 1], [0, 0, 0, 0]).low == 1.0
    assert percentile([1, 2, 3, 4, 100], 0.5) == 3 and percentile([], 0.5) is None


@pytest.mark.parametrize("reply, score", [
    ('{"score": 4, "reason": "supported"}', 4), ('{"score": 9, "reason": "x"}', None), ("Score: 5", None),
    ('{"score": true, "reason": "x"}', None), ('{"reason": "no score"}', None),
])
def test_judge_replies_are_parsed_strictly(reply, score):
    assert judges.parse("groundedness", reply).score == score


def test_judge_agreement_is_measured_against_the_label_and_the_always_pass_judge():
    labels = [True] * 15 + [False] * 15
    perfect = judges.agreement([5] * 15 + [1] * 15, labels)
    constant = judges.agreement([5] * 30, labels)
    assert perfect["agreement"]["mean"] == 1.0 and perfect["agreement"]["low"] == 1.0
    assert constant["agreement"]["mean"] == 0.5 == constant["always_pass_agreement"]
    assert constant["agreement"]["low"] < 0.5 < constant["agreement"]["high"]


def _rows(keyfact, unsupported, refusal, precision):
    n = len(keyfact)
    return pd.DataFrame({"keyfact_accuracy": keyfact, "unsupported_claim_rate": unsupported,
                         "refusal_accuracy": refusal, "citation_precision": precision},
                        index=[f"qa-{i:03d}" for i in range(n)])


THRESHOLDS = {"level": 0.90, "metrics": {
    "keyfact_accuracy": {"higher_is_better": True, "margin": 0.10, "floor": 0.30},
    "unsupported_claim_rate": {"higher_is_better": False, "margin": 0.10, "ceiling": 0.50},
    "refusal_accuracy": {"higher_is_better": True, "margin": 0.10, "floor": 0.70},
    "citation_precision": {"higher_is_better": True, "margin": 0.15, "floor": 0.50}}}


def test_the_gate_passes_a_candidate_like_the_baseline_and_blocks_a_worse_one():
    rng = np.random.default_rng(0)
    baseline = _rows(rng.choice([0.0, 1.0], 40, p=[0.4, 0.6]), rng.choice([0.0, 1.0], 40, p=[0.8, 0.2]),
                     np.ones(40), np.ones(40))
    same = gate.check(baseline, baseline, THRESHOLDS)
    assert all(v.passed for v in same), same
    worse = baseline.copy()
    worse["keyfact_accuracy"] = np.where(rng.random(40) < 0.6, 0.0, worse["keyfact_accuracy"])  # forgets the facts
    worse["unsupported_claim_rate"] = np.where(rng.random(40) < 0.5, 1.0, worse["unsupported_claim_rate"])
    verdicts = {v.metric: v for v in gate.check(worse, baseline, THRESHOLDS)}
    assert not verdicts["keyfact_accuracy"].passed and not verdicts["unsupported_claim_rate"].passed
    assert verdicts["refusal_accuracy"].passed and verdicts["citation_precision"].passed


def test_the_gate_fails_a_metric_with_no_values_and_checks_floors_without_a_baseline():
    candidate = _rows([0.2] * 30, [0.0] * 30, [1.0] * 30, [None] * 30)
    verdicts = {v.metric: v for v in gate.check(candidate, None, THRESHOLDS)}
    assert not verdicts["keyfact_accuracy"].passed, "below the floor"
    assert not verdicts["citation_precision"].passed, "nothing measured is not a pass"
    assert verdicts["refusal_accuracy"].passed


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=1500)


def test_the_gate_command_exits_with_the_verdict(tmp_path):
    for name, keyfact in (("good", 1.0), ("bad", 0.0)):
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"id": f"qa-{i:03d}", "keyfact.keyfact": keyfact, "unsupported.unsupported": 0.0,
                 "decline.refusal_correct": 1.0, "citation.citation_precision": 1.0} for i in range(30)]
        (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "metrics.json").write_text(json.dumps({"model": "no-baseline-model", "variant": name,
                                                         "failed_runs": 0, "latency_p95_s": 1.7069999999999999}))
    good, bad = run("contoso_chat.evaluation.gate", str(tmp_path / "good")), run("contoso_chat.evaluation.gate",
                                                                                 str(tmp_path / "bad"))
    assert good.returncode == 0, good.stdout
    assert "latency_p95_s              1.707  (reported, not gated)" in good.stdout, good.stdout
    assert bad.returncode == 1 and "FAIL  keyfact_accuracy" in bad.stdout and "FAILED on keyfact_accuracy" in bad.stdout


def test_a_metric_with_too_few_values_is_reported_as_not_measured():
    thresholds = {"metrics": {"citation_precision": {"higher_is_better": True, "margin": 0.15, "floor": 0.5,
                                                     "min_values": 5}}}
    few = _rows([0.5] * 30, [0.0] * 30, [1.0] * 30, [1.0, 0.0] + [None] * 28)
    verdict = gate.check(few, None, thresholds)[0]
    assert verdict.passed and not verdict.measured
    many = _rows([0.5] * 30, [0.0] * 30, [1.0] * 30, [0.0] * 10 + [None] * 20)
    verdict = gate.check(many, None, thresholds)[0]
    assert verdict.measured and not verdict.passed, "measured and below the floor"


def test_the_fairness_gate_fails_a_confident_gap_and_passes_a_wide_one():
    thresholds = {"fairness": {"keyfact": 0.20}}
    confident = {"keyfact": {"gap": 0.5, "gap_low": 0.35, "gap_high": 0.65}}
    wide = {"keyfact": {"gap": 0.3, "gap_low": 0.05, "gap_high": 0.6}}
    assert not gate.check_fairness(confident, thresholds)[0].passed
    assert gate.check_fairness(wide, thresholds)[0].passed
    assert not gate.check_fairness({}, thresholds)[0].passed, "no fairness result is not a pass"


def test_a_judge_reply_with_a_raw_newline_in_its_reason_still_parses():
    assert judges.parse("groundedness", '{ "score": 2, "reason" : "line one\nline two" }').score == 2
