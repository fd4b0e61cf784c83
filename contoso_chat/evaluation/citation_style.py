"""Inline citation marks or a JSON reply? The same cases answered both ways, compared case by case.

    python -m contoso_chat.evaluation.citation_style [--split dev] [--limit N]

The app asks the model to cite the facts it used, in one of two styles:
- "inline": `[source-id]` marks after the sentences (any chat model can do it, and the answer streams);
- "json": a reply `{"answer": ..., "sources": [...]}` held to a JSON schema (llama.cpp's grammar
  locally, `response_format` on Azure OpenAI), where a source can only be one of the ids shown.

Which one to ship is a tuning decision, so it is made on the dev split. Every case is answered in both
styles, scored with the evaluation's own evaluators, and each answer metric's difference (json - inline)
is bootstrapped over the pairs. The rule: keep the style that costs less answer quality. JSON wins only
when its key-fact difference, or failing a clear answer there its unsupported-claim difference, is better
beyond the interval; otherwise inline stays, as it needs no constrained decoding.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from contoso_chat import records
from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.evaluation.batch import direct_batch, select_cases
from contoso_chat.evaluation.evaluators import score_answer
from contoso_chat.evaluation.intervals import paired_difference, percentile
from contoso_chat.paths import build_dir

STYLES = ("inline", "json")
VARIANT_OF = {"inline": "rag", "json": "json-citations"}
# metric: (per-case column, True when higher is better)
METRICS = {"key-fact accuracy": ("keyfact", True), "unsupported-claim rate": ("unsupported", False),
           "refusal accuracy": ("refusal_correct", True), "answers that cite": ("cites", True)}


@dataclass(frozen=True)
class Choice:
    """The style to keep and why, in a sentence the notebook and the command print."""

    style: str
    reason: str


def score(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-case answer metrics of a batch (direct_batch's rows), with the evaluation's own evaluators."""
    scored = [{k: v for k, v in score_answer(row).items() if k not in ("declined", "citation_recall")}
              for row in rows.to_dict("records")]
    keep = ["id", "family", "category", "question", "response", "citations", "declined", "invalid_citations", "failed",
            "latency_s", "completion_tokens", "shown"]  # shown: what the model read, for a reading of each answer
    keep = [column for column in keep if column in rows]
    return pd.concat([rows[keep].reset_index(drop=True), pd.DataFrame(scored, dtype=float)], axis=1)


def answer_both(cases: Sequence[records.QACase], base=None) -> pd.DataFrame:
    """Every case answered in both styles (sharing `base`'s index, store and model client when given)."""
    from contoso_chat.evaluation.variants import build_variant

    inline = build_variant(VARIANT_OF["inline"], base)
    apps = {"inline": inline, "json": build_variant(VARIANT_OF["json"], inline)}
    tables = [score(direct_batch(app, cases, desc=f"answering ({style} citations)")).assign(style=style)
              for style, app in apps.items()]
    return pd.concat(tables, ignore_index=True)


def compare(per_case: pd.DataFrame) -> pd.DataFrame:
    """One row per answer metric: each style's mean, and json - inline over the paired cases with a 95% interval."""
    wide = per_case.pivot(index="id", columns="style")
    families = wide[("family", "inline")] if "family" in per_case else pd.Series(wide.index, index=wide.index)
    rows = []
    for name, (column, _) in METRICS.items():
        inline, json_style = wide[(column, "inline")].astype(float), wide[(column, "json")].astype(float)
        paired = inline.notna() & json_style.notna()
        if not paired.any():
            continue
        difference = paired_difference(json_style[paired].tolist(), inline[paired].tolist(), level=0.95,
                                       groups=families[paired].tolist())
        rows.append({"metric": name, "inline": round(float(inline[paired].mean()), 3),
                     "json": round(float(json_style[paired].mean()), 3),
                     "json - inline": round(difference.mean, 3), "low": round(difference.low, 3),
                     "high": round(difference.high, 3), "cases": difference.n})
    for style in STYLES:  # not paired: precision exists only where that style cited
        precision = per_case.loc[per_case["style"] == style, "citation_precision"].dropna()
        rows.append({"metric": f"citation precision ({style} answers that cite)", style: (
            round(float(precision.mean()), 3) if len(precision) else None), "cases": int(len(precision))})
    return pd.DataFrame(rows).set_index("metric")


def choose(comparison: pd.DataFrame) -> Choice:
    """Keep the style that costs less answer quality, judged by the paired intervals, not by the means alone."""
    for metric in ("key-fact accuracy", "unsupported-claim rate"):
        if metric not in comparison.index:
            continue
        row = comparison.loc[metric]
        better_if_higher = METRICS[metric][1]
        json_better = row["low"] > 0 if better_if_higher else row["high"] < 0
        inline_better = row["high"] < 0 if better_if_higher else row["low"] > 0
        if json_better or inline_better:
            winner = "json" if json_better else "inline"
            return Choice(winner, f"{metric}: json - inline = {row['json - inline']:+.3f} "
                                  f"[{row['low']:+.3f}, {row['high']:+.3f}] over {int(row['cases'])} cases, "
                                  f"so {winner} costs less")
    return Choice("inline", "no answer metric differs beyond its interval, so inline stays: it needs no "
                            "constrained decoding and works with any chat model")


def latency(per_case: pd.DataFrame) -> dict:
    """Median seconds per answer of each style (the model's time is most of it)."""
    return {style: percentile(per_case.loc[per_case["style"] == style, "latency_s"].tolist(), 0.5) for style in STYLES}


def run(split: records.Split | None = "dev", limit: int | None = None, out_dir: Path | None = None,
        base=None) -> tuple[pd.DataFrame, pd.DataFrame, Choice]:
    """Answer, score and compare; write per_case.jsonl and comparison.json into `out_dir`."""
    out_dir = out_dir or build_dir() / "eval" / "citation-style"
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = select_cases(split, limit)
    per_case = answer_both(cases, base)
    comparison = compare(per_case)
    choice = choose(comparison)
    per_case.drop(columns=["shown"], errors="ignore").to_json(out_dir / "per_case.jsonl", orient="records", lines=True,
                                                              force_ascii=False)
    summary = {"split": split or "all", "cases": len(cases), "chosen": choice.style, "reason": choice.reason,
               "latency_p50_s": latency(per_case),
               "comparison": json.loads(comparison.replace({np.nan: None}).to_json(orient="index"))}
    (out_dir / "comparison.json").write_text(json.dumps(summary, indent=2))
    return per_case, comparison, choice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=["dev", "test", "all"],
                        help="which cases (default dev: a tuning decision is made on dev)")
    parser.add_argument("--limit", type=int, default=None, help="this many cases, spread over categories")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/eval/citation-style)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    prepare_offline_environment()
    _, comparison, choice = run(None if args.split == "all" else args.split, args.limit, args.out)
    with pd.option_context("display.width", 160, "display.max_columns", 10):
        print(comparison.fillna("").to_string())
    print(f"\nkeep: {choice.style} ({choice.reason})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
