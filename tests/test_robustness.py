"""Figures by phrasing, paraphrase consistency, audit minus test, and intervals that resample families together."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from contoso_chat.evaluation import batch, robustness
from contoso_chat.evaluation.intervals import bootstrap_interval, difference_interval, paired_difference


def _rows(keyfacts, phrasings=("catalog", "customer", "situation"), unsupported=None, category="product-fact"):
    """One row per case; families of three, the phrasings in turn."""
    n = len(keyfacts)
    return pd.DataFrame({"id": [f"t-{i:03d}" for i in range(n)], "family": [f"f{i // 3}" for i in range(n)],
                         "phrasing": [phrasings[i % 3] for i in range(n)], "topic": "spec", "category": category,
                         "keyfact.keyfact": keyfacts, "unsupported.unsupported": unsupported or [0.0] * n,
                         "decline.refusal_correct": [1.0] * n})


def test_key_facts_are_read_by_phrasing():
    figures = robustness.robustness(_rows([1.0, 0.0, 0.0] * 20))
    by = figures["keyfact_by_phrasing"]
    assert by["catalog"]["mean"] == 1.0 and by["customer"]["mean"] == 0.0 and by["situation"]["mean"] == 0.0
    assert by["catalog"]["n"] == 20


def test_paraphrase_consistency_needs_every_phrasing_right():
    all_right = robustness.robustness(_rows([1.0] * 60))
    one_wrong = robustness.robustness(_rows([1.0, 1.0, 0.5] * 20))
    unsupported = robustness.robustness(_rows([1.0] * 60, unsupported=[0.0, 0.0, 1.0] * 20))
    assert all_right["paraphrase_consistency"]["mean"] == 1.0 and all_right["paraphrase_families"] == 20
    assert one_wrong["paraphrase_consistency"]["mean"] == 0.0, "a family with one phrasing missing a fact is not right"
    assert unsupported["paraphrase_consistency"]["mean"] == 0.0, "an invented figure makes an answer wrong"


def test_an_out_of_scope_family_is_right_when_every_phrasing_is_declined():
    rows = _rows([None] * 6, category="out-of-scope")
    rows["decline.refusal_correct"] = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    assert robustness.robustness(rows)["paraphrase_consistency"]["mean"] == 0.5


def test_incomplete_families_are_left_out_of_consistency():
    rows = _rows([1.0] * 6)
    rows.loc[5, "phrasing"] = "customer"  # the second family has no situation phrasing
    figures = robustness.robustness(rows)
    assert figures["paraphrase_families"] == 1


def test_audit_minus_test_is_negative_when_the_audit_scores_lower():
    test, audit = _rows([1.0, 1.0, 0.0] * 20), _rows([0.0, 0.0, 1.0] * 10)
    gap = robustness.compare_sets(audit, test)
    assert gap["mean"] == pytest.approx(1 / 3 - 2 / 3, abs=1e-3) and gap["low"] <= gap["mean"] <= gap["high"] < 0
    varied = _rows([1.0, 1.0, 0.0] * 10 + [0.0] * 15 + [1.0] * 15)
    same = robustness.compare_sets(varied, varied)
    assert same["low"] < 0 < same["high"]


def test_an_interval_contains_its_own_estimate_and_families_widen_it():
    values = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] * 10  # each family of three all right or all wrong
    families = [i // 3 for i in range(60)]
    alone, together = bootstrap_interval(values), bootstrap_interval(values, groups=families)
    for interval in (alone, together):
        assert interval.low <= interval.mean <= interval.high
    assert together.high - together.low > alone.high - alone.low, "20 independent needs, not 60"
    paired = paired_difference([1.0] * 30, [0.0] * 15 + [1.0] * 15, groups=[i // 3 for i in range(30)])
    assert paired.low <= paired.mean == 0.5 <= paired.high
    by_case = paired_difference([1.0] * 30, [0.0] * 15 + [1.0] * 15)
    assert paired.high - paired.low > by_case.high - by_case.low, "pairs of one family are resampled together"
    rng = np.random.default_rng(0)
    first, second = rng.random(40), rng.random(30)
    difference = difference_interval(first, second)
    assert difference.low <= first.mean() - second.mean() <= difference.high


def test_a_sample_spreads_over_needs_products_and_phrasings():
    picked = batch.select_cases("test", 42)
    everything = batch.select_cases("test")
    for category in {c.category for c in picked}:
        chosen = [c for c in picked if c.category == category]
        available = {c.family for c in everything if c.category == category}
        assert len({c.family for c in chosen}) == min(len(chosen), len(available)), f"a {category} need asked twice"
    product_facts = [c for c in picked if c.category == "product-fact"]
    assert len({tuple(sorted(c.products)) for c in product_facts}) == len(product_facts), "one need per product first"
    assert {c.phrasing for c in picked} >= {"catalog", "customer", "situation"}
    assert batch.select_cases("test", 42) == picked, "the same sample every time"


def test_the_command_writes_the_figures_and_says_what_is_missing(tmp_path):
    for name, keyfacts in (("rag", [1.0, 0.0, 0.0] * 20), ("rag-audit", [0.0] * 30)):
        (tmp_path / name).mkdir()
        _rows(keyfacts).to_json(tmp_path / name / "rows.jsonl", orient="records", lines=True)
    command = [sys.executable, "-m", "contoso_chat.evaluation.robustness", str(tmp_path / "rag"), str(tmp_path / "rag-audit")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads((tmp_path / "robustness.json").read_text())
    assert figures["audit_minus_test"]["mean"] == pytest.approx(-1 / 3, abs=1e-3) and "audit minus test" in done.stdout
    missing = subprocess.run(command[:-1] + [str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no rows.jsonl" in missing.stdout
