"""Evaluate an assistant variant on a split of the evaluation set: batch run, evaluators, judges, figures.

    python -m contoso_chat.evaluation --variant rag                       # the test split, no judges
    python -m contoso_chat.evaluation --variant rag --judge 30            # plus LLM judges on 30 cases
    python -m contoso_chat.evaluation --variant rag --split dev           # the split thresholds are tuned on
    python -m contoso_chat.evaluation --variant rag --save-baseline       # store per-case results for the gate
    python -m contoso_chat.evaluation --variant rag --split audit         # the audit set: fresh questions, never tuned on
    python -m contoso_chat.evaluation --variant rag --set templated       # the first, template-written questions

Steps: a batch run of the flex flow over the cases (prompt flow's `pf run`, or in process) ->
azure-ai-evaluation's `evaluate()` with the project's code evaluators and F1 / ROUGE on every row ->
optionally LLM judges (constrained local judges, or azure-ai-evaluation's on Azure) on some rows ->
per-case rows and figures with bootstrap intervals under build/eval/<variant>/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm  # the text bar: its last state stays in a saved notebook (a widget shows 0% there)

from contoso_chat import records
from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.backends.settings import Settings, load_settings
from contoso_chat.evaluation import batch, judges
from contoso_chat.evaluation.evaluators import run_code_evaluators
from contoso_chat.evaluation.intervals import percentile
from contoso_chat.evaluation.robustness import family_interval, robustness
from contoso_chat.paths import build_dir

# per-case column -> the figure it averages to (the gate reads these names)
ANSWER_METRICS = {
    "keyfact.keyfact": "keyfact_accuracy",
    "unsupported.unsupported": "unsupported_claim_rate",
    "decline.refusal_correct": "refusal_accuracy",
    "citation.citation_precision": "citation_precision",
    "citation.citation_recall": "citation_recall",
}
RETRIEVAL_METRICS = {"retrieval.context_recall": "context_recall_at_5", "retrieval.reciprocal_rank": "mrr"}
BASELINES = Path(__file__).resolve().parent / "baselines"


def _values(series: pd.Series) -> list[float]:
    return [float(v) for v in series if v is not None and not (isinstance(v, float) and np.isnan(v))]


def aggregate(table: pd.DataFrame) -> dict:
    """The headline figures of one evaluated variant, each answer metric with its 95% bootstrap interval (paraphrase
    families resampled together: three wordings of one need are not three independent cases)."""
    summary: dict = {"cases": len(table), "failed_runs": int(table["failed"].sum()),
                     "invalid_citations": int(table["invalid_citations"].sum()), "intervals": {}}
    for column, name in {**ANSWER_METRICS, **RETRIEVAL_METRICS}.items():
        values = _values(table[column]) if column in table else []
        summary[name] = round(float(np.mean(values)), 4) if values else None
        if values and column in ANSWER_METRICS:
            summary["intervals"][name] = family_interval(table, column).as_dict()
    summary.update({
        "f1": _mean(table.get("f1.f1_score")), "rouge_l": _mean(table.get("rouge.rouge")),
        "answer_words_mean": _mean(table["usage.answer_words"]),
        "latency_p50_s": percentile(table["usage.latency_s"].tolist(), 0.5),
        "latency_p95_s": percentile(table["usage.latency_s"].tolist(), 0.95),
        "tokens_per_answer": _mean(table["usage.prompt_tokens"] + table["usage.completion_tokens"]),
        "cost_per_1k_answers_usd": round(1000 * (_mean(table["usage.cost_usd"]) or 0.0), 4),
        **robustness(table),
    })
    return summary


def _mean(series) -> float | None:
    if series is None:
        return None
    values = _values(series)
    return round(float(np.mean(values)), 4) if values else None


def judge_rows(table: pd.DataFrame, settings: Settings, names: tuple[str, ...] = judges.JUDGES,
               cases: int | None = None) -> pd.DataFrame:
    """Judge scores for the first `cases` rows (all when None): one column per judge, plus its reason."""
    from contoso_chat.backends.chat import chat_target

    picked = table if cases is None else table.head(cases)
    if settings.chat != "local":
        return azure_judge_rows(picked, settings, names)
    target = chat_target(settings, log=lambda *_: None)
    rows = []
    for _, row in tqdm(list(picked.iterrows()), desc="judging", unit="case"):
        facts = facts_shown(row["shown"])
        verdicts = {name: judges.judge_answer(target, name, row["question"], row["response"], facts) for name in names}
        rows.append({"id": row["id"], **{f"{n}.{n}": v.score for n, v in verdicts.items()},
                     **{f"{n}.{n}_reason": v.reason for n, v in verdicts.items()}})
    return pd.DataFrame(rows)


def facts_shown(shown: list) -> str:
    """The facts and customer lines of the prompt (its system message from 'Facts:' on), for a judge to read."""
    system = shown[0] if shown else ""
    return system[system.find("Facts:"):] if "Facts:" in system else system


def azure_judge_rows(rows: pd.DataFrame, settings: Settings, names: tuple[str, ...]) -> pd.DataFrame:
    """azure-ai-evaluation's built-in quality evaluators on a cloud chat model (replies may fail to parse)."""
    from azure.ai.evaluation import (
        AzureOpenAIModelConfiguration, CoherenceEvaluator, FluencyEvaluator, GroundednessEvaluator,
        OpenAIModelConfiguration, RelevanceEvaluator, evaluate,
    )

    from contoso_chat.evaluation.evaluators import quiet

    if settings.chat == "azure":
        config = AzureOpenAIModelConfiguration(azure_endpoint=settings.get("AZURE_OPENAI_ENDPOINT"),
                                               azure_deployment=settings.get("AZURE_OPENAI_CHAT_DEPLOYMENT"),
                                               api_version=settings.get("AZURE_OPENAI_API_VERSION"))
        if settings.secret("AZURE_OPENAI_API_KEY"):
            config["api_key"] = settings.secret("AZURE_OPENAI_API_KEY")
    else:
        config = OpenAIModelConfiguration(type="openai", api_key=settings.secret("OPENAI_API_KEY"),
                                          model=settings.get("OPENAI_CHAT_MODEL"))
    classes = {"groundedness": GroundednessEvaluator, "relevance": RelevanceEvaluator, "coherence": CoherenceEvaluator,
               "fluency": FluencyEvaluator}
    out_dir = build_dir() / "eval" / "judges"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "judge_inputs.jsonl"
    data = rows.assign(context=rows["shown"].apply(facts_shown))
    data[["id", "question", "response", "context"]].to_json(path, orient="records", lines=True, force_ascii=False)
    mapping = {"query": "${data.question}", "response": "${data.response}", "context": "${data.context}"}
    with quiet():
        result = evaluate(data=str(path), evaluators={n: classes[n](config) for n in names},
                          evaluator_config={"default": {"column_mapping": mapping}})
    table = pd.DataFrame(result["rows"])
    judged = pd.DataFrame({"id": rows["id"].values})
    for name in names:
        judged[f"{name}.{name}"] = pd.to_numeric(table.get(f"outputs.{name}.{name}"), errors="coerce").values
        judged[f"{name}.{name}_reason"] = table.get(f"outputs.{name}.{name}_reason", "").values
    return judged


def judge_reliability(table: pd.DataFrame) -> dict:
    """Unparsed replies, and the groundedness judge's agreement with the unsupported-claim label."""
    judged = [c for c in table.columns if c.split(".")[0] in judges.JUDGES and c.split(".")[1] in judges.JUDGES]
    if not judged:
        return {}
    scores = table[judged]
    calls, unparsed = int(scores.size), int(scores.isna().sum().sum())
    result = {"judge_calls": calls, "judge_unparsed": unparsed,
              "judge_unparsed_share": round(unparsed / calls, 4) if calls else None}
    if "groundedness.groundedness" in table:
        scores_g = [None if pd.isna(s) else int(s) for s in table["groundedness.groundedness"]]
        labels = [not bool(u) for u in table["unsupported.unsupported"]]
        result["judge_agreement"] = judges.agreement(scores_g, labels)
    return result


def evaluate_variant(variant: str, split: records.CaseSplit | None = "test", limit: int | None = None,
                     judge_cases: int = 0, judge_names: tuple[str, ...] = judges.JUDGES, engine: str = "promptflow",
                     out_dir: Path | None = None, settings: Settings | None = None,
                     assistant=None, collection: records.EvalSet = "customers") -> tuple[pd.DataFrame, dict]:
    """Batch-run and evaluate one variant; write rows.jsonl and metrics.json; return both.

    `engine` is "promptflow" (a `pf run`, as CI does) or "direct" (in this process, faster to start);
    `assistant` lets a caller pass an already built variant to the direct engine.
    """
    from contoso_chat.evaluation.variants import build_variant

    prepare_offline_environment()
    settings = settings or load_settings()
    out_dir = out_dir or build_dir() / "eval" / variant
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = batch.select_cases(split, limit, collection)
    if engine == "promptflow":
        rows = batch.promptflow_batch(variant, cases, out_dir)
    else:
        assistant = assistant or build_variant(variant)
        rows = batch.direct_batch(assistant, cases, desc=f"answering ({variant})")
    model = next((u["model"] for u in rows["usage"] if isinstance(u, dict)), "unknown")
    table = pd.concat([rows.reset_index(drop=True), run_code_evaluators(rows, out_dir, model)], axis=1)
    table["judged"] = False
    if judge_cases:
        judged = judge_rows(table, settings, judge_names, judge_cases)
        table = table.merge(judged, on="id", how="left")
        table["judged"] = table["id"].isin(judged["id"])
    summary = {"variant": variant, "model": model, "split": split or "all", "set": collection, **aggregate(table),
               **judge_reliability(table[table["judged"]])}
    table.drop(columns=["usage", "shown"]).to_json(out_dir / "rows.jsonl", orient="records", lines=True,
                                                   force_ascii=False)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    return table, summary


def baseline_path(model: str, folder: Path | None = None) -> Path:
    """Where the stored per-case results of the shipped app on `model` live (committed with the code)."""
    return (folder or BASELINES) / f"{model.replace('/', '_')}.jsonl"


def save_baseline(table: pd.DataFrame, model: str) -> Path:
    """Store the per-case answer metrics of this run as the baseline the gate compares against (merged by id)."""
    path = baseline_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {"id": "id", "split": "split", "category": "category", **ANSWER_METRICS}
    fresh = table[list(columns)].rename(columns=columns)
    if path.exists():
        kept = pd.read_json(path, lines=True)
        fresh = pd.concat([kept[~kept["id"].isin(fresh["id"])], fresh]).sort_values("id")
    fresh.to_json(path, orient="records", lines=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="rag", help="rag, no-rag, prompt-v1, ignores-facts or json-citations")
    parser.add_argument("--split", default="test", choices=["dev", "test", "audit", "all"],
                        help="which cases (default test; audit: the fresh questions written after tuning)")
    parser.add_argument("--set", default="customers", choices=["customers", "templated"], dest="collection",
                        help="customers: questions in customers' words (default); templated: the first, template-written set")
    parser.add_argument("--limit", type=int, default=None, help="evaluate this many cases, spread over categories")
    parser.add_argument("--judge", type=int, default=0, help="run the LLM judges on this many cases")
    parser.add_argument("--engine", default="promptflow", choices=["promptflow", "direct"])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/eval/<variant>)")
    parser.add_argument("--save-baseline", action="store_true", help="store the per-case results as the gate's baseline")
    args = parser.parse_args(argv)
    split = None if args.split == "all" else args.split
    table, summary = evaluate_variant(args.variant, split, args.limit, args.judge, engine=args.engine, out_dir=args.out,
                                      collection=args.collection)
    if args.save_baseline and (split == "audit" or args.collection != "customers"):
        parser.error("--save-baseline stores dev and test cases of the customers' set only (the audit set is never "
                     "a baseline, so it stays unseen by tuning)")
    if args.save_baseline:
        print(f"baseline stored in {save_baseline(table, summary['model'])}")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
