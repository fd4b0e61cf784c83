"""The project's code evaluators, run through azure-ai-evaluation's `evaluate()` beside its F1 and ROUGE.

Each evaluator is a plain class whose `__call__` takes named columns of one evaluated row and returns
scores; `evaluate()` runs them over a JSON Lines file. None means "does not apply to this case"
(for example key facts of an out-of-scope question), and such cases are left out of that average.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

import pandas as pd

from contoso_chat import records
from contoso_chat.evaluation import metrics


class KeyFactEvaluator:
    """Share of the case's key facts the answer states (None for out-of-scope cases); in a comparison, key fact i
    must sit beside the product of expected source i, not the other one."""

    def __call__(self, *, response: str, key_facts: list, category: str, expected_sources: list | None = None) -> dict:
        if category == "out-of-scope":
            return {"keyfact": None}
        return {"keyfact": metrics.keyfact_score(response, key_facts,
                                                 compared_products(category, key_facts, expected_sources))}


def compared_products(category: str, key_facts: list, expected_sources: list | None) -> list[str] | None:
    """The product each key fact belongs to, when the case compares one product per key fact (else None)."""
    products = [s for s in expected_sources or [] if s.startswith("product-")]
    if category != "comparison" or len(products) < 2 or len(products) != len(key_facts):
        return None
    return [records.product_by_id(int(s.split("-")[1])).name for s in products]


class UnsupportedClaimEvaluator:
    """1 when the answer states a number with a unit, or a price, found nowhere in what the model was shown."""

    def __call__(self, *, response: str, shown: list) -> dict:
        unsupported = metrics.unsupported_claims(response, shown or [])
        return {"unsupported": float(bool(unsupported)), "unsupported_claims": "; ".join(unsupported)}


class DeclineEvaluator:
    """1 when the app declined exactly the out-of-scope questions: its decline signal, or an answer that only says
    it cannot answer; an empty answer is never right."""

    def __call__(self, *, declined: bool, category: str, response: str | None = None) -> dict:
        return {"refusal_correct": float(metrics.refusal_correct(declined, category, response)),
                "declined": float(metrics.declined_answer(declined, response))}


class CitationEvaluator:
    """Precision and recall of the sources the model cited, against the expected sources; a citation whose sentence
    states a figure its source (as shown) does not contain is not a correct one."""

    def __call__(self, *, citations: list, expected_sources: list, model_reply: str | None = None,
                 shown: list | None = None, question: str = "") -> dict:
        if not expected_sources:
            return {"citation_precision": None, "citation_recall": None}
        unsupported = metrics.unsupported_citations(model_reply, shown or [], question) if model_reply else set()
        return {"citation_precision": metrics.citation_precision(citations or [], expected_sources, unsupported),
                "citation_recall": metrics.citation_recall(citations or [], expected_sources)}


class RetrievalEvaluator:
    """Context recall@5 and reciprocal rank of the expected sources in what retrieval returned."""

    def __call__(self, *, retrieved: list, expected_sources: list) -> dict:
        if not expected_sources or not retrieved:
            return {"context_recall": None, "reciprocal_rank": None}
        return {"context_recall": metrics.context_recall(retrieved, expected_sources, 5),
                "reciprocal_rank": metrics.reciprocal_rank(retrieved, expected_sources)}


class UsageEvaluator:
    """Answer length, latency, tokens, and cost at the given price per 1K tokens."""

    def __init__(self, input_per_1k: float, output_per_1k: float) -> None:
        self.input_per_1k = input_per_1k
        self.output_per_1k = output_per_1k

    def __call__(self, *, response: str, latency_s: float, prompt_tokens: int, completion_tokens: int) -> dict:
        cost = prompt_tokens / 1000 * self.input_per_1k + completion_tokens / 1000 * self.output_per_1k
        return {"answer_words": len(response.split()), "latency_s": latency_s, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens, "cost_usd": cost}


def score_answer(row: dict) -> dict:
    """The answer metrics of one answered case (a batch row: the case's fields plus response, citations, declined,
    shown and model_reply), with the same evaluators as `evaluate()` uses."""
    citation = CitationEvaluator()(citations=row.get("citations") or [], expected_sources=row["expected_sources"],
                                   model_reply=row.get("model_reply"), shown=row.get("shown"),
                                   question=row.get("question", ""))
    decline = DeclineEvaluator()(declined=bool(row.get("declined")), category=row["category"], response=row["response"])
    return {
        "keyfact": KeyFactEvaluator()(response=row["response"], key_facts=row["key_facts"], category=row["category"],
                                      expected_sources=row["expected_sources"])["keyfact"],
        "unsupported": UnsupportedClaimEvaluator()(response=row["response"], shown=row.get("shown"))["unsupported"],
        "refusal_correct": decline["refusal_correct"], "declined": decline["declined"],
        "cites": float(bool(row.get("citations"))), **citation,
    }


def price_of(model: str) -> tuple[float, float]:
    """Input and output price per 1K tokens from data/pricing.csv (0 when the model is not listed)."""
    for row in records.prices():
        if row.model == model:
            return row.input_per_1k, row.output_per_1k
    return 0.0, 0.0


@contextlib.contextmanager
def quiet():
    """Silence evaluate()'s status tables and its batch engine's per-line log messages (which prompt flow's
    loggers take their level for from PF_LOGGING_LEVEL each time they are created)."""
    loggers = [logging.getLogger(name) for name in ("execution", "execution.bulk", "promptflow", "azure")]
    levels = [logger.level for logger in loggers]
    previous = os.environ.get("PF_LOGGING_LEVEL")
    os.environ["PF_LOGGING_LEVEL"] = "ERROR"
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if previous is None:
            os.environ.pop("PF_LOGGING_LEVEL", None)
        else:
            os.environ["PF_LOGGING_LEVEL"] = previous


COLUMNS = ("response", "key_facts", "category", "citations", "expected_sources", "retrieved", "latency_s",
           "prompt_tokens", "completion_tokens", "shown", "declined", "model_reply", "question")


def run_code_evaluators(rows: pd.DataFrame, out_dir: Path, model: str) -> pd.DataFrame:
    """The project's evaluators plus F1 and ROUGE-L over every row, through azure-ai-evaluation's evaluate()."""
    from azure.ai.evaluation import F1ScoreEvaluator, RougeScoreEvaluator, RougeType, evaluate

    path = out_dir / "responses.jsonl"
    rows[["id", "reference_answer", *COLUMNS]].to_json(path, orient="records", lines=True, force_ascii=False)
    evaluators = {
        "keyfact": KeyFactEvaluator(), "unsupported": UnsupportedClaimEvaluator(), "decline": DeclineEvaluator(),
        "citation": CitationEvaluator(), "retrieval": RetrievalEvaluator(), "usage": UsageEvaluator(*price_of(model)),
        "f1": F1ScoreEvaluator(), "rouge": RougeScoreEvaluator(RougeType.ROUGE_L),
    }
    mapping = {name: f"${{data.{name}}}" for name in COLUMNS}
    mapping["ground_truth"] = "${data.reference_answer}"
    with quiet():
        result = evaluate(data=str(path), evaluators=evaluators, evaluator_config={"default": {"column_mapping": mapping}},
                          output_path=str(out_dir / "code_evaluators.json"))
    table = pd.DataFrame(result["rows"])
    keep = {c: c.removeprefix("outputs.") for c in table.columns if c.startswith("outputs.")}
    return table[list(keep)].rename(columns=keep)
