"""Metrics, evaluators, judges, intervals and the gate: each fed answers it must catch and answers it must pass."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from contoso_chat.assistant import DECLINE_ANSWER, is_decline, read_model_reply
from contoso_chat import records
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
    ("90 m", "The beam reaches 90 m/s."),
    ("74 g", "The fly is 74 g/m² nylon."),
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


def test_a_case_without_key_facts_scores_one_and_recall_looks_at_the_first_k_sources():
    assert metrics.keyfact_score("Anything at all.", []) == 1.0
    assert metrics.context_recall(["product-3", "product-1"], ["product-1"], 1) == 0.0
    assert metrics.context_recall(["product-3", "product-1"], ["product-1"], 2) == 1.0


def test_keyfact_score_is_the_share_of_facts_stated():
    assert metrics.keyfact_score("It holds 27 kg; the other 18 kg.", ["27 kg", "18 kg"]) == 1.0
    assert metrics.keyfact_score("It holds 27 kg.", ["27 kg", "18 kg"]) == 0.5
    assert metrics.keyfact_score("It holds 127 kg and 118 kg.", ["27 kg", "18 kg"]) == 0.0


@pytest.mark.parametrize("answer, score", [
    ("It is not 2.1 kg.", 0.0),
    ("The Summit Dome 2 Tent doesn't weigh 2.1 kg when packed.", 0.0),
    ("No, it isn't 2.1 kg; it is about 3 kg.", 0.0),
    ("It never weighs 2.1 kg.", 0.0),
    ("No, it weighs 2.1 kg packed.", 1.0),  # the negation belongs to another clause
    ("It weighs 2.1 kg, not 3 kg.", 1.0),
    ("Do not load it with more than 2.1 kg.", 1.0),  # a limit, stated
    ("It should not exceed 2.1 kg.", 1.0),
    ("I can't say enough good things about this little tent that weighs 2.1 kg packed.", 1.0),  # the negation is far away
])
def test_a_negated_figure_is_not_a_stated_fact(answer, score):
    assert metrics.keyfact_score(answer, ["2.1 kg | 4 lb 10 oz"]) == score


def test_an_answer_listing_every_figure_gets_no_credit():
    dump = " ".join(p.description for p in records.products())
    cases = [c for c in records.qa_cases(split="test") if c.key_facts]
    assert all(metrics.keyfact_score(dump, c.key_facts) == 0.0 for c in cases)
    focused = "The Summit Dome 2 Tent weighs 2.1 kg (4 lb 10 oz) packed; minimum trail weight 1.85 kg (4 lb 1 oz)."
    assert metrics.keyfact_score(focused, ["2.1 kg | 4 lb 10 oz"]) == 1.0, "a related figure or two is no dump"
    assert metrics.extra_figures(focused, ["2.1 kg | 4 lb 10 oz"]) == ["1.85 kg", "1 oz"]


COMPARED = ["Featherlite Solo Tent", "Summit Dome 2 Tent"]
COMPARED_FACTS = ["890 g | 1 lb 15 oz", "2.1 kg | 4 lb 10 oz"]


@pytest.mark.parametrize("answer, score", [
    ("The Featherlite Solo Tent weighs 890 g and the Summit Dome 2 Tent weighs 2.1 kg.", 1.0),
    ("The Featherlite Solo Tent is lighter: 890 g versus 2.1 kg.", 1.0),
    ("At 2.1 kg, the Summit Dome 2 is heavier than the Featherlite (890 g).", 1.0),
    ("The Summit Dome 2 Tent at 2.1 kg is heavier than the Featherlite Solo Tent (890 g).", 1.0),  # both named
    ("The Featherlite Solo Tent weighs 2.1 kg and the Summit Dome 2 Tent weighs 890 g.", 0.0),  # swapped
    ("The Featherlite weighs 2.1 kg, while the Summit Dome weighs 890 g.", 0.0),
    ("The Summit Dome 2 Tent weighs 2.1 kg; the Summit Dome 2 Tent also weighs 890 g.", 0.5),
])
def test_figures_swapped_between_compared_products_do_not_count(answer, score):
    assert metrics.keyfact_score(answer, COMPARED_FACTS, COMPARED) == score


def test_the_evaluator_binds_comparison_facts_to_their_products():
    swapped = "The Featherlite Solo Tent weighs 2.1 kg and the Summit Dome 2 Tent weighs 890 g."
    right = "The Featherlite Solo Tent weighs 890 g and the Summit Dome 2 Tent weighs 2.1 kg."
    evaluate = KeyFactEvaluator()
    assert evaluate(response=swapped, key_facts=COMPARED_FACTS, category="comparison",
                    expected_sources=["product-3", "product-1"])["keyfact"] == 0.0
    assert evaluate(response=right, key_facts=COMPARED_FACTS, category="comparison",
                    expected_sources=["product-3", "product-1"])["keyfact"] == 1.0


@pytest.mark.parametrize("answer, claim", [
    ("It weighs two kilograms.", "2 kg"), ("It weighs three point two kilograms.", "3.2 kg"),
    ("It weighs 5 kilos.", "5 kg"), ("It costs 199 dollars.", "$199"), ("It costs USD 199.", "$199"),
    ("It costs €199.", "€199"), ("It costs 199 euros.", "€199"), ("It runs for twenty hours.", "20 hours"),
])
def test_number_and_currency_words_are_claims_too(answer, claim):
    assert metrics.unsupported_claims(answer, SHOWN) == [claim]
    assert metrics.unsupported_claims(answer, SHOWN + [f"a fact that says {claim}"]) == []


def test_spelled_figures_match_key_facts_and_other_words_are_left_alone():
    assert metrics.fact_found("2.1 kg", "It weighs two point one kilograms.")
    assert metrics.normalize("one of the lightest, for two people and a dog") == "one of the lightest, for 2 people and a dog"
    assert metrics.claims("It is one of our best tents.") == []


@pytest.mark.parametrize("answer", ["I'm sorry, I don't know.", "**I don't know.**", "I cannot help with that.",
                                    "Sorry, we don't carry that product.", "Unfortunately, I am unable to answer that."])
def test_a_decline_in_the_models_own_words_counts_as_a_decline(answer):
    assert metrics.reads_as_decline(answer)
    assert not metrics.refusal_correct(False, "product-fact", answer), "declining an answerable question is wrong"
    assert metrics.refusal_correct(False, "out-of-scope", answer)


@pytest.mark.parametrize("answer", ["I don't know the colour, but it weighs 2.1 kg.", "It weighs 2.1 kg.",
                                    "We do not sell gift wrap, but the tent weighs 2.1 kg.",
                                    "I don't recommend a washing machine: use a sponge and mild soap."])
def test_an_answer_that_states_facts_is_not_a_decline(answer):
    assert not metrics.reads_as_decline(answer)
    assert metrics.refusal_correct(False, "product-fact", answer)


def test_an_empty_answer_is_neither_a_decline_nor_an_answer():
    for category in ("product-fact", "out-of-scope"):
        assert not metrics.refusal_correct(False, category, "") and not metrics.refusal_correct(True, category, "  ")
    assert DeclineEvaluator()(declined=False, category="policy", response="")["refusal_correct"] == 0.0
    assert KeyFactEvaluator()(response="", key_facts=["2.1 kg"], category="product-fact")["keyfact"] == 0.0


FACTS_SHOWN = ["You are Contoso Chat.\nFacts:\n[product-1] Summit Dome 2 Tent packed weight: 2.1 kg (4 lb 10 oz)\n"
               "[product-1] Summit Dome 2 Tent price: $249.00\n[policy-returns] Base members pay a $7.95 fee.\n\n"
               "Customer: Amara, Gold member.", "How heavy is the Summit Dome 2?"]


@pytest.mark.parametrize("reply, unsupported", [
    ("It weighs 50 kg [product-1].", {"product-1"}),
    ("It weighs 2.1 kg [product-1]. Returns cost $7.95 [policy-returns].", set()),
    ("It weighs 2.1 kg [product-1]. Returns cost $9.95 [policy-returns].", {"policy-returns"}),
    ("It costs $249 [policy-returns].", {"policy-returns"}),  # the figure is real, but not in the source it cites
    ("It weighs 2.1 kg and costs $249 [product-1][policy-returns].", {"policy-returns"}),
    ('{"answer": "It weighs 50 kg.", "sources": ["product-1"]}', {"product-1"}),
])
def test_a_citation_whose_sentence_its_source_does_not_support_is_caught(reply, unsupported):
    assert metrics.unsupported_citations(reply, FACTS_SHOWN) == unsupported


def test_a_cited_sentence_may_repeat_a_figure_from_the_question():
    shown = FACTS_SHOWN[:1] + ["I am 188 cm tall: which length do I need?"]
    reply = "At 188 cm, take the Long size; the tent weighs 2.1 kg [product-1]."
    assert metrics.unsupported_citations(reply, shown, question=shown[1]) == set()
    assert metrics.unsupported_citations(reply, shown) == {"product-1"}


def test_citation_precision_counts_only_supported_expected_citations():
    evaluate = CitationEvaluator()
    wrong = evaluate(citations=["product-1"], expected_sources=["product-1"], model_reply="It weighs 50 kg [product-1].",
                     shown=FACTS_SHOWN)
    right = evaluate(citations=["product-1"], expected_sources=["product-1"],
                     model_reply="It weighs 2.1 kg [product-1].", shown=FACTS_SHOWN)
    assert wrong["citation_precision"] == 0.0 and right["citation_precision"] == 1.0


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


def test_bracketed_text_that_is_not_a_source_id_is_left_in_the_answer():
    reply = read_model_reply("It comes in sizes [XS-XXL] [product-8].", ["product-8"], "inline")
    assert reply.answer == "It comes in sizes [XS-XXL]." and reply.citations == ["product-8"]
    assert reply.invalid_citations == 0


def test_the_app_reads_its_decline_signal_in_bold_or_after_an_apology():
    assert is_decline("**I don't know.**") and is_decline("I'm sorry, I don't know.") and is_decline("Sorry, I don't know")
    assert not is_decline("I'm sorry, the tent weighs 2.1 kg.")


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
    picked = batch.select_cases("test", 14)
    assert len(picked) == 14 and {c.split for c in picked} == {"test"}
    assert pd.Series([c.category for c in picked]).value_counts().tolist() == [2] * 7


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


CATEGORIES = ("product-fact", "comparison", "order-history")


def _write_run(folder, keyfact, model="no-baseline-model", cases=30, unsupported=0.0):
    folder.mkdir(parents=True)
    rows = [{"id": f"qa-{i:03d}", "category": CATEGORIES[i % 3], "keyfact.keyfact": keyfact,
             "unsupported.unsupported": unsupported, "decline.refusal_correct": 1.0,
             "citation.citation_precision": 1.0} for i in range(cases)]
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "metrics.json").write_text(json.dumps({"model": model, "variant": folder.name, "failed_runs": 0,
                                                     "latency_p95_s": 1.7069999999999999}))


@pytest.fixture
def no_shipped_baseline(monkeypatch, tmp_path):
    """Baselines in an empty folder: in this process, and for the gate command through --baselines."""
    from contoso_chat.evaluation import run as evaluation

    folder = tmp_path / "baselines"
    folder.mkdir()
    monkeypatch.setattr(evaluation, "BASELINES", folder)
    return folder


def run_gate(folder, baselines) -> subprocess.CompletedProcess:
    return run("contoso_chat.evaluation.gate", str(folder), "--baselines", str(baselines))


def test_the_gate_command_exits_with_the_verdict(tmp_path, no_shipped_baseline):
    _write_run(tmp_path / "good", 1.0)
    _write_run(tmp_path / "bad", 0.0)
    good, bad = run_gate(tmp_path / "good", no_shipped_baseline), run_gate(tmp_path / "bad", no_shipped_baseline)
    assert good.returncode == 0, good.stdout
    assert "latency_p95_s              1.707  (reported, not gated)" in good.stdout, good.stdout
    assert bad.returncode == 1 and "FAIL  keyfact_accuracy" in bad.stdout and "FAILED on keyfact_accuracy" in bad.stdout


def test_a_candidate_with_a_handful_of_cases_fails_the_gate(tmp_path, no_shipped_baseline):
    _write_run(tmp_path / "one-case", 1.0, cases=1)
    one = run_gate(tmp_path / "one-case", no_shipped_baseline)
    assert one.returncode == 1 and "FAIL  cases per category" in one.stdout, one.stdout
    rows = pd.Series(["product-fact"] * 5 + ["policy"] * 2)
    baseline = pd.DataFrame({"category": ["product-fact", "policy", "out-of-scope"]})
    verdict = gate.check_case_counts(rows, baseline, {"min_cases_per_category": 3})
    assert not verdict.passed and "policy 2" in verdict.bound and "out-of-scope 0" in verdict.bound
    assert gate.check_case_counts(pd.Series(["policy"] * 3), None, {"min_cases_per_category": 3}).passed


def test_a_model_without_a_baseline_is_compared_with_the_shipped_apps(tmp_path, no_shipped_baseline):
    shipped = [{"id": f"qa-{i:03d}", "split": "test", "category": CATEGORIES[i % 3], "keyfact_accuracy": 1.0,
                "unsupported_claim_rate": 0.0, "refusal_accuracy": 1.0, "citation_precision": 1.0} for i in range(30)]
    (no_shipped_baseline / f"{gate.SHIPPED_MODEL}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shipped))
    _write_run(tmp_path / "new-model", 0.6, model="another-model")  # above the floor, far below the shipped app
    verdict = run_gate(tmp_path / "new-model", no_shipped_baseline)
    assert "comparing with the shipped app's" in verdict.stdout
    assert verdict.returncode == 1
    assert "FAIL  keyfact_accuracy" in verdict.stdout and "vs baseline 1.000" in verdict.stdout, verdict.stdout


def test_a_saved_baseline_keeps_every_gated_metric_and_blocks_a_worse_candidate(no_shipped_baseline):
    from contoso_chat.evaluation import run as evaluation

    table = pd.DataFrame({"id": [f"qa-{i:03d}" for i in range(40)], "split": "dev",
                          "category": [CATEGORIES[i % 3] for i in range(40)], "keyfact.keyfact": 0.8,
                          "unsupported.unsupported": 0.0, "decline.refusal_correct": 1.0,
                          "citation.citation_precision": 1.0, "citation.citation_recall": 1.0})
    path = evaluation.save_baseline(table, "saved-model")
    baseline = gate.load_baseline("saved-model")
    assert set(gate.PER_CASE) <= set(baseline.columns), "every gated metric is stored"
    inventing = gate.per_case(table.assign(**{"unsupported.unsupported": [1.0, 0.0] * 20}))
    verdicts = {v.metric: v for v in gate.check(inventing, baseline, THRESHOLDS)}
    assert not verdicts["unsupported_claim_rate"].passed, "the stored unsupported-claim column is compared"
    assert path.parent == no_shipped_baseline


def test_judge_reliability_compares_the_judge_with_the_deterministic_label():
    from contoso_chat.evaluation.run import judge_reliability

    labels = [0.0] * 15 + [1.0] * 15  # unsupported claims in the last 15 answers
    says_grounded = pd.DataFrame({"groundedness.groundedness": [5] * 30, "unsupported.unsupported": labels})
    agrees = pd.DataFrame({"groundedness.groundedness": [5] * 15 + [1] * 15, "unsupported.unsupported": labels})
    assert judge_reliability(says_grounded)["judge_agreement"]["agreement"]["mean"] == 0.5
    assert judge_reliability(agrees)["judge_agreement"]["agreement"]["mean"] == 1.0


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


def test_the_gates_floors_follow_from_the_shipped_apps_dev_figures():
    """Floors (ceilings) are the far end of the shipped app's 90% interval on dev, rounded to 0.05 (thresholds.yaml)."""
    import math

    import yaml

    thresholds = yaml.safe_load(gate.DEFAULT_THRESHOLDS.read_text())
    baseline = gate.load_baseline(gate.SHIPPED_MODEL)
    dev = baseline[baseline["split"] == "dev"]
    families = {c.id: c.family for c in records.qa_cases(split="dev")}
    assert set(dev.index) == set(families), "the baseline covers every dev case"
    for metric, rule in thresholds["metrics"].items():
        values = dev[metric].dropna()
        if len(values) < rule.get("min_values", 1):
            continue
        interval = bootstrap_interval(values.tolist(), level=0.90, groups=[families[i] for i in values.index])
        if "floor" in rule:
            assert rule["floor"] == pytest.approx(math.floor(interval.low * 20) / 20), metric
        else:
            assert rule["ceiling"] == pytest.approx(math.ceil(interval.high * 20) / 20), metric


def test_a_judge_reply_has_room_to_finish_its_json():
    """A reason of up to maxLength characters, each its own token (digits, punctuation), plus the JSON around it."""
    import inspect

    reason_chars = judges.SCHEMA["properties"]["reason"]["maxLength"]
    budget = inspect.signature(judges.judge_answer).parameters["max_tokens"].default
    longest = '{ "score" : 5, "reason" : "' + "1." * (reason_chars // 2) + '" }'
    assert budget >= reason_chars + len('{ "score" : 5, "reason" : "" }') // 2, budget
    assert judges.parse("groundedness", longest).score == 5


def test_every_stored_baseline_covers_every_dev_and_test_case_once():
    """The gate pairs a candidate's answers with its model's baseline case by case: a baseline that lacks cases (or
    holds a case twice) would leave answers unpaired. The base model's and the fine-tuned model's are both stored."""
    from contoso_chat.backends.local_model import FINETUNED_MODEL_ALIAS

    expected = {c.id for split in ("dev", "test") for c in records.qa_cases(split=split)}
    for model in (gate.SHIPPED_MODEL, FINETUNED_MODEL_ALIAS):
        baseline = gate.load_baseline(model)
        assert baseline is not None, f"no stored baseline for {model}"
        assert set(baseline.index) == expected and baseline.index.is_unique, model
