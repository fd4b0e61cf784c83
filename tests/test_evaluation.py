"""Evaluators, aggregation and the quality gate, including a real batch run of a good and a bad variant."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from contoso_chat.evaluation import run as evaluation
from contoso_chat.evaluation import gate


def test_code_evaluators_score_what_they_claim():
    assert evaluation.KeyFactEvaluator()(response="It weighs 2.1kg.", key_facts=["2.1 kg"], category="product-fact") == {"keyfact": 1.0}
    assert evaluation.KeyFactEvaluator()(response="No idea", key_facts=[], category="out-of-scope") == {"keyfact": None}
    refusal = evaluation.RefusalEvaluator()
    assert refusal(response="I can only help with Contoso Outdoors.", category="out-of-scope")["refusal_correct"] == 1.0
    assert refusal(response="I'm sorry for any confusion, it weighs 2.1 kg.", category="product-fact")["refusal_correct"] == 1.0
    citations = evaluation.CitationEvaluator()(citations=["product-1", "policy-returns"], expected_sources=["product-1"])
    assert citations == {"citation_precision": 0.5, "citation_recall": 1.0}
    retrieval = evaluation.RetrievalEvaluator()(retrieved=["product-3", "product-1"], expected_sources=["product-1"])
    assert retrieval == {"hit_at_5": 1.0, "reciprocal_rank": 0.5}
    usage = evaluation.UsageEvaluator(0.00015, 0.0006)(response="a b c", latency_s=1.0, prompt_tokens=1000,
                                                       completion_tokens=100)
    assert usage["answer_words"] == 3 and usage["cost_usd"] == pytest.approx(0.00021)


def test_cases_are_spread_over_categories():
    picked = evaluation.select_cases(12)
    assert len(picked) == 12
    assert pd.Series([c.category for c in picked]).value_counts().tolist() == [2] * 6


def test_gate_names_each_failing_metric():
    thresholds = {"keyfact_accuracy": {"min": 0.4}, "latency_p95_s": {"max": 10}, "citation_recall": {"min": 0.8}}
    verdicts = gate.check({"keyfact_accuracy": 0.2, "latency_p95_s": 3.0}, thresholds)
    assert [(v.metric, v.passed) for v in verdicts] == [("keyfact_accuracy", False), ("latency_p95_s", True),
                                                        ("citation_recall", False)]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    for variant in ("rag", "no-rag"):
        result = run("contoso_chat.evaluation", "--variant", variant, "--limit", "12", "--out", str(folder / variant))
        assert result.returncode == 0, result.stderr[-2000:]
    return folder


def test_batch_run_writes_rows_and_metrics(evaluated):
    metrics = json.loads((evaluated / "rag" / "metrics.json").read_text())
    rows = pd.read_json(evaluated / "rag" / "rows.jsonl", lines=True)
    assert metrics["cases"] == len(rows) == 12 and metrics["failed_runs"] == 0
    assert {"keyfact.keyfact", "f1.f1_score", "rouge.rouge", "citation.citation_recall"} <= set(rows.columns)
    assert rows["response"].str.len().min() > 0


def test_gate_passes_the_app_and_fails_the_variant_without_retrieval(evaluated):
    good = run("contoso_chat.evaluation.gate", str(evaluated / "rag" / "metrics.json"))
    bad = run("contoso_chat.evaluation.gate", str(evaluated / "no-rag" / "metrics.json"))
    assert good.returncode == 0, good.stdout
    assert bad.returncode == 1 and "FAIL  keyfact_accuracy" in bad.stdout and "FAILED on" in bad.stdout
