"""Evaluate an assistant variant on the evaluation set: batch run, evaluators, aggregate metrics.

    python -m contoso_chat.evaluation --variant rag            # all cases, no LLM judge
    python -m contoso_chat.evaluation --variant rag --judge 4  # plus LLM judges on 4 cases

Steps: a prompt flow batch run of the flex flow over the cases -> azure-ai-evaluation's
`evaluate()` with the project's code evaluators and the offline F1 / ROUGE evaluators on every
row -> optionally the LLM-judged quality evaluators (groundedness, relevance, coherence,
fluency) on a few rows -> per-case rows and aggregate metrics under build/eval/<variant>/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import statistics
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm.auto import tqdm

from contoso_chat import records
from contoso_chat.evaluation import metrics
from contoso_chat.backends.settings import Settings, load_settings
from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.paths import build_dir
from contoso_chat.serving.promptflow_adapter import FLOW_DIR

JUDGES = ("groundedness", "relevance", "coherence", "fluency")
JUDGE_PASS = 3  # azure-ai-evaluation's default threshold on its 1-5 scale


# ---------------------------------------------------------------- the project's own code evaluators
class KeyFactEvaluator:
    """Share of the case's key facts the response states (None for out-of-scope cases)."""

    def __call__(self, *, response: str, key_facts: list, category: str) -> dict:
        if category == "out-of-scope":
            return {"keyfact": None}
        return {"keyfact": metrics.keyfact_score(response, key_facts)}


class RefusalEvaluator:
    """1 when the response declines exactly when it should (out-of-scope) and answers otherwise."""

    def __call__(self, *, response: str, category: str) -> dict:
        return {"refusal_correct": float(metrics.refusal_correct(response, category)),
                "refused": float(metrics.is_refusal(response))}


class CitationEvaluator:
    """Precision and recall of the cited source ids against the expected sources."""

    def __call__(self, *, citations: list, expected_sources: list) -> dict:
        if not expected_sources:
            return {"citation_precision": None, "citation_recall": None}
        precision, recall = metrics.citation_scores(citations or [], expected_sources)
        return {"citation_precision": precision, "citation_recall": recall}


class RetrievalEvaluator:
    """hit@5 and reciprocal rank of the expected sources in what retrieval returned."""

    def __call__(self, *, retrieved: list, expected_sources: list) -> dict:
        if not expected_sources or not retrieved:
            return {"hit_at_5": None, "reciprocal_rank": None}
        return {"hit_at_5": float(metrics.recall_at_k(retrieved, expected_sources, 5) == 1.0),
                "reciprocal_rank": metrics.reciprocal_rank(retrieved, expected_sources)}


class UsageEvaluator:
    """Answer length, latency, tokens, and cost at the configured price per 1K tokens."""

    def __init__(self, input_per_1k: float, output_per_1k: float) -> None:
        self.input_per_1k = input_per_1k
        self.output_per_1k = output_per_1k

    def __call__(self, *, response: str, latency_s: float, prompt_tokens: int, completion_tokens: int) -> dict:
        cost = prompt_tokens / 1000 * self.input_per_1k + completion_tokens / 1000 * self.output_per_1k
        return {"answer_words": len(response.split()), "latency_s": latency_s, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens, "cost_usd": cost}


@contextlib.contextmanager
def quiet():
    """Silence evaluate()'s status tables and its batch engine's per-line log messages."""
    loggers = [logging.getLogger(name) for name in ("execution", "execution.bulk", "promptflow", "azure")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# ---------------------------------------------------------------- batch run with prompt flow
def cases_frame(cases: Sequence[records.QACase]) -> pd.DataFrame:
    """The cases as the table a batch run reads (chat history as plain dicts)."""
    return pd.DataFrame([{**c.model_dump(), "chat_history": [t.model_dump() for t in c.chat_history]} for c in cases])


def select_cases(limit: int | None = None) -> list[records.QACase]:
    """All cases, or `limit` of them spread evenly over the categories (same selection every time)."""
    cases = records.qa_cases()
    if not limit or limit >= len(cases):
        return cases
    by_category: dict[str, list[records.QACase]] = {}
    for case in cases:
        by_category.setdefault(case.category, []).append(case)
    picked: list[records.QACase] = []
    while len(picked) < limit:
        for group in by_category.values():
            if group and len(picked) < limit:
                picked.append(group.pop(0))
    return sorted(picked, key=lambda c: c.id)


def batch_run(variant: str, cases: Sequence[records.QACase], out_dir: Path) -> pd.DataFrame:
    """Run the flex flow over the cases with `pf run create` (prompt flow's batch engine); one row per case.

    The run goes through the `pf` command in its own process, as in CI; in the same process as
    azure-ai-evaluation's evaluate(), prompt flow's tracing set-up made evaluate() hang.
    """
    import subprocess
    import uuid

    from promptflow.client import PFClient

    prepare_offline_environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    table = cases_frame(cases)
    inputs = out_dir / "cases.jsonl"
    table.to_json(inputs, orient="records", lines=True, force_ascii=False)
    name = f"contoso_chat_{variant.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    environment = {**os.environ, "PF_WORKER_COUNT": "1",  # one local model answers one request at a time
                   "PF_BATCH_METHOD": "spawn"}  # torch and LanceDB do not survive a fork
    command = [str(Path(sys.executable).with_name("pf")), "run", "create", "--flow", str(FLOW_DIR),
               "--data", str(inputs), "--name", name, "--init", f"variant={variant}",
               "--column-mapping", "question=${data.question}", "customer_id=${data.customer_id}",
               "chat_history=${data.chat_history}"]
    with subprocess.Popen([*command, "--stream"], env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process, \
            tqdm(total=len(table), desc=f"batch run {variant}", unit="case") as progress:
        log_tail: list[str] = []
        for line in process.stdout:
            log_tail = (log_tail + [line.rstrip()])[-20:]
            finished = re.search(r"Finished (\d+) / (\d+) lines", line)
            if finished:
                progress.update(int(finished.group(1)) - progress.n)
    if process.returncode != 0:
        raise RuntimeError(f"pf run create failed for {variant}:\n" + "\n".join(log_tail))
    details = PFClient().get_details(name, all_results=True)
    outputs = pd.DataFrame({
        "response": details["outputs.answer"].fillna(""),
        "citations": details["outputs.citations"],
        "usage": details["outputs.usage"],
    })
    merged = pd.concat([table.reset_index(drop=True), outputs.reset_index(drop=True)], axis=1)
    merged["failed"] = ~merged["usage"].apply(lambda usage: isinstance(usage, dict))
    merged.attrs["run_name"] = name
    return merged


def flatten_usage(rows: pd.DataFrame) -> pd.DataFrame:
    """Columns from each row's usage dict, for the evaluators."""
    usage = rows["usage"].apply(lambda u: u if isinstance(u, dict) else {})
    rows = rows.copy()
    rows["citations"] = rows["citations"].apply(lambda c: c if isinstance(c, list) else [])
    rows["retrieved"] = usage.apply(lambda u: u.get("retrieved", []))
    for column in ("latency_s", "prompt_tokens", "completion_tokens"):
        rows[column] = usage.apply(lambda u, c=column: u.get(c, 0) or 0)
    return rows


# ---------------------------------------------------------------- evaluators through evaluate()
def price_of(model: str) -> tuple[float, float]:
    """Input and output price per 1K tokens from data/pricing.csv (0 when the model is not listed)."""
    for row in records.prices():
        if row.model == model:
            return row.input_per_1k, row.output_per_1k
    return 0.0, 0.0


def run_code_evaluators(rows: pd.DataFrame, out_dir: Path, model: str) -> pd.DataFrame:
    """The project's evaluators plus F1 and ROUGE-L, through azure-ai-evaluation's evaluate()."""
    from azure.ai.evaluation import F1ScoreEvaluator, RougeScoreEvaluator, RougeType, evaluate

    path = out_dir / "responses.jsonl"
    rows.drop(columns=["usage"]).to_json(path, orient="records", lines=True, force_ascii=False)
    evaluators = {
        "keyfact": KeyFactEvaluator(), "refusal": RefusalEvaluator(), "citation": CitationEvaluator(),
        "retrieval": RetrievalEvaluator(), "usage": UsageEvaluator(*price_of(model)),
        "f1": F1ScoreEvaluator(), "rouge": RougeScoreEvaluator(RougeType.ROUGE_L),
    }
    mapping = {name: f"${{data.{column}}}" for name, column in (
        ("response", "response"), ("ground_truth", "reference_answer"), ("key_facts", "key_facts"),
        ("category", "category"), ("citations", "citations"), ("expected_sources", "expected_sources"),
        ("retrieved", "retrieved"), ("latency_s", "latency_s"), ("prompt_tokens", "prompt_tokens"),
        ("completion_tokens", "completion_tokens"))}
    with quiet():
        result = evaluate(data=str(path), evaluators=evaluators,
                          evaluator_config={"default": {"column_mapping": mapping}},
                          output_path=str(out_dir / "code_evaluators.json"))
    return _outputs(result)


def judge_model_config(settings: Settings):
    """The model configuration the LLM judges use: the configured chat backend."""
    from azure.ai.evaluation import AzureOpenAIModelConfiguration, OpenAIModelConfiguration

    if settings.chat == "azure":
        config = AzureOpenAIModelConfiguration(
            azure_endpoint=settings.get("AZURE_OPENAI_ENDPOINT"), azure_deployment=settings.get("AZURE_OPENAI_CHAT_DEPLOYMENT"),
            api_version=settings.get("AZURE_OPENAI_API_VERSION"))
        if settings.secret("AZURE_OPENAI_API_KEY"):
            config["api_key"] = settings.secret("AZURE_OPENAI_API_KEY")
        return config
    if settings.chat == "openai":
        return OpenAIModelConfiguration(type="openai", api_key=settings.secret("OPENAI_API_KEY"),
                                        model=settings.get("OPENAI_CHAT_MODEL"))
    from contoso_chat.backends.chat import LOCAL_API_KEY
    from contoso_chat.backends.local_model import ensure_local_model

    server = ensure_local_model(settings, log=lambda *_: None)
    return OpenAIModelConfiguration(type="openai", api_key=LOCAL_API_KEY, base_url=server.base_url, model=server.alias)


def run_judges(rows: pd.DataFrame, out_dir: Path, settings: Settings) -> pd.DataFrame:
    """azure-ai-evaluation's LLM-judged groundedness, relevance, coherence and fluency on these rows."""
    from azure.ai.evaluation import CoherenceEvaluator, FluencyEvaluator, GroundednessEvaluator, RelevanceEvaluator, evaluate

    model_config = judge_model_config(settings)
    path = out_dir / "judge_inputs.jsonl"
    rows[["id", "question", "response", "context"]].to_json(path, orient="records", lines=True, force_ascii=False)
    evaluators = {"groundedness": GroundednessEvaluator(model_config), "relevance": RelevanceEvaluator(model_config),
                  "coherence": CoherenceEvaluator(model_config), "fluency": FluencyEvaluator(model_config)}
    mapping = {"query": "${data.question}", "response": "${data.response}", "context": "${data.context}"}
    with quiet():
        result = evaluate(data=str(path), evaluators=evaluators,
                          evaluator_config={"default": {"column_mapping": mapping}},
                          output_path=str(out_dir / "judges.json"))
    judged = _outputs(result)
    return judged[[c for c in judged.columns if c.split(".")[0] in JUDGES and c.endswith(tuple(JUDGES))
                   or c.endswith(("_score", "_reason"))]].assign(id=rows["id"].values)


def _outputs(result: dict) -> pd.DataFrame:
    """evaluate()'s rows as a table with columns named evaluator.metric (without the 'outputs.' prefix)."""
    table = pd.DataFrame(result["rows"])
    keep = {c: c.removeprefix("outputs.") for c in table.columns if c.startswith("outputs.")}
    return table[list(keep)].rename(columns=keep)


def context_for(assistant, rows: pd.DataFrame) -> list[str]:
    """The facts the assistant put in each prompt (retrieval is deterministic, so this repeats it)."""
    from contoso_chat.assistant import standalone_query

    contexts = []
    for _, row in rows.iterrows():
        query = standalone_query(row["question"], row["chat_history"])
        facts = assistant.select_facts(query, assistant.retriever.search(query, k=assistant.top_k))
        contexts.append("\n".join(f.text for f in facts) or "(no documents)")
    return contexts


# ---------------------------------------------------------------- aggregation
def _mean(values) -> float | None:
    clean = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(statistics.mean(clean), 4) if clean else None


def _quantile(values, q: float) -> float | None:
    clean = sorted(float(v) for v in values if v is not None)
    if not clean:
        return None
    return round(clean[min(len(clean) - 1, round(q * (len(clean) - 1)))], 3)


def aggregate(table: pd.DataFrame) -> dict:
    """The headline metrics of one evaluated variant."""
    answers = len(table)
    summary = {
        "cases": answers,
        "failed_runs": int(table.get("failed", pd.Series([False] * answers)).sum()),
        "keyfact_accuracy": _mean(table["keyfact.keyfact"]),
        "refusal_accuracy": _mean(table["refusal.refusal_correct"]),
        "citation_precision": _mean(table["citation.citation_precision"]),
        "citation_recall": _mean(table["citation.citation_recall"]),
        "retrieval_hit_at_5": _mean(table["retrieval.hit_at_5"]),
        "retrieval_mrr": _mean(table["retrieval.reciprocal_rank"]),
        "f1": _mean(table["f1.f1_score"]),
        "rouge_l": _mean(table["rouge.rouge"]),
        "answer_words_mean": _mean(table["usage.answer_words"]),
        "latency_p50_s": _quantile(table["usage.latency_s"], 0.5),
        "latency_p95_s": _quantile(table["usage.latency_s"], 0.95),
        "tokens_per_answer": _mean(table["usage.prompt_tokens"] + table["usage.completion_tokens"]),
        "cost_per_1k_answers_usd": round(1000 * (_mean(table["usage.cost_usd"]) or 0.0), 4),
    }
    judged = [j for j in JUDGES if f"{j}.{j}" in table.columns]
    if judged:
        judged_rows = table[table[f"{judged[0]}.{judged[0]}"].notna() | table.get("judged", False)]
        for name in judged:
            summary[f"{name}_mean"] = _mean(table[f"{name}.{name}"])
        summary.update(judge_reliability(table))
        summary["judged_cases"] = int(table.get("judged", pd.Series(dtype=bool)).sum()) or len(judged_rows)
    return summary


def judge_reliability(table: pd.DataFrame) -> dict:
    """How often the judges could be parsed, and how often they agree with the deterministic metrics."""
    judged = table[table.get("judged", False) == True]  # noqa: E712
    if judged.empty:
        return {}
    scores = judged[[f"{j}.{j}" for j in JUDGES if f"{j}.{j}" in judged.columns]]
    unparsed = int(scores.isna().sum().sum())
    agreement = []
    for _, row in judged.iterrows():
        truth = row["keyfact.keyfact"]
        judge = row.get("groundedness.groundedness")
        if truth is None or (isinstance(truth, float) and math.isnan(truth)) or judge is None or math.isnan(judge):
            continue
        agreement.append((judge >= JUDGE_PASS) == (truth >= 1.0))
    return {"judge_calls": int(scores.size), "judge_unparsed": unparsed,
            "judge_agreement": round(sum(agreement) / len(agreement), 4) if agreement else None}


def evaluate_variant(variant: str, limit: int | None = None, judge_cases: int = 0,
                     out_dir: Path | None = None, settings: Settings | None = None) -> tuple[pd.DataFrame, dict]:
    """Batch-run and evaluate one variant; write rows.jsonl and metrics.json; return both."""
    from contoso_chat.evaluation.variants import build_variant

    prepare_offline_environment()
    settings = settings or load_settings()
    out_dir = out_dir or build_dir() / "eval" / variant
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = select_cases(limit)
    rows = flatten_usage(batch_run(variant, cases, out_dir))
    assistant = build_variant(variant)
    model = assistant.chat.model
    table = pd.concat([rows.reset_index(drop=True), run_code_evaluators(rows, out_dir, model)], axis=1)
    table["judged"] = False
    if judge_cases:
        pick = judge_selection(table, judge_cases)
        judge_rows = table.loc[pick].copy()
        judge_rows["context"] = context_for(assistant, judge_rows)
        judged = run_judges(judge_rows, out_dir, settings).set_index(pd.Index(pick))
        table = table.join(judged.drop(columns=["id"]), how="left")
        table.loc[pick, "judged"] = True
    summary = {"variant": variant, "model": model, **aggregate(table)}
    table.drop(columns=["usage"]).to_json(out_dir / "rows.jsonl", orient="records", lines=True, force_ascii=False)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    return table, summary


def judge_selection(table: pd.DataFrame, count: int) -> list[int]:
    """Row positions for the LLM judges: answerable cases, spread over categories."""
    answerable = table[table["category"] != "out-of-scope"]
    picked: list[int] = []
    for _, group in answerable.groupby("category"):
        picked += list(group.index[:1])
    picked += [i for i in answerable.index if i not in picked]
    return sorted(picked[:count])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="rag", help="rag, no-rag or prompt-v1 (see contoso_chat.evaluation.variants)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate this many cases, spread over categories")
    parser.add_argument("--judge", type=int, default=0, help="run the LLM judges on this many cases")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/eval/<variant>)")
    args = parser.parse_args(argv)
    _, summary = evaluate_variant(args.variant, args.limit, args.judge, args.out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
