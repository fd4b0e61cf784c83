"""The quality gate: does a candidate answer as well as the stored baseline? Exit 1 if it does not.

    python -m contoso_chat.evaluation.gate build/eval/rag [--thresholds contoso_chat/evaluation/thresholds.yaml]

The gate reads the candidate's per-case rows (rows.jsonl) and the baseline's per-case results for the
same model (evaluation/baselines/<model>.jsonl; a model with no baseline of its own is compared with the
shipped app's), pairs them by case, and bootstraps the difference of each answer metric. A metric fails
when the lower end of the interval says the candidate is worse than the baseline by more than its margin,
or when the candidate misses the metric's floor (ceiling). A candidate with fewer than
`min_cases_per_category` cases in any category of the baseline fails: a handful of cases proves nothing.
Retrieval figures are reported, never gated: a worse model with intact retrieval must not pass on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from contoso_chat.backends.local_model import BUNDLED_MODEL_ALIAS
from contoso_chat.evaluation.intervals import paired_difference
from contoso_chat.evaluation.run import ANSWER_METRICS, baseline_path

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.yaml"
PER_CASE = {name: column.split(".", 1)[1] for column, name in ANSWER_METRICS.items()}


@dataclass(frozen=True)
class Verdict:
    """One metric of the candidate against the baseline and its bounds."""

    metric: str
    candidate: float | None
    baseline: float | None
    difference_low: float | None  # lower end of the bootstrap interval of (candidate - baseline), signed "better"
    bound: str
    passed: bool
    measured: bool = True  # False when the candidate has too few values for this metric to say anything


def per_case(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per case with the gated answer metrics under their figure names (and its paraphrase family)."""
    columns = {column: name for column, name in ANSWER_METRICS.items() if column in rows}
    kept = ["family"] if "family" in rows else []
    return rows[["id", *kept, *columns]].rename(columns=columns).set_index("id")


def check(candidate: pd.DataFrame, baseline: pd.DataFrame | None, thresholds: dict) -> list[Verdict]:
    """A verdict per gated metric; a metric with no values fails (nothing measured is not a pass)."""
    level = thresholds.get("level", 0.90)
    verdicts = []
    for metric, rule in thresholds["metrics"].items():
        higher = rule.get("higher_is_better", True)
        values = candidate[metric].dropna() if metric in candidate else pd.Series(dtype=float)
        mean = float(values.mean()) if len(values) else None
        reasons, low, base_mean = [], None, None
        if "min_values" in rule and len(values) < rule["min_values"]:
            verdicts.append(Verdict(metric, mean, None, None, f"not measured: {len(values)} values, fewer than "
                                    f"{rule['min_values']}", True, measured=False))
            continue
        if mean is None:
            reasons.append("no values")
        elif "floor" in rule and mean < rule["floor"]:
            reasons.append(f"below the floor {rule['floor']}")
        elif "ceiling" in rule and mean > rule["ceiling"]:
            reasons.append(f"above the ceiling {rule['ceiling']}")
        if baseline is not None and metric in baseline and mean is not None:
            paired = candidate[[metric]].join(baseline[[metric]], rsuffix="_baseline", how="inner").dropna()
            if len(paired):
                base_mean = float(paired[f"{metric}_baseline"].mean())
                sign = 1 if higher else -1
                groups = candidate.loc[paired.index, "family"].tolist() if "family" in candidate else None
                interval = paired_difference(sign * paired[metric], sign * paired[f"{metric}_baseline"], level=level,
                                             groups=groups)
                low = interval.low
                if low < -rule["margin"]:
                    reasons.append(f"worse than the baseline by more than {rule['margin']}")
        bound = (f"{'>=' if higher else '<='} {rule.get('floor', rule.get('ceiling'))}"
                 + (f", not worse than baseline by > {rule['margin']}" if baseline is not None else ""))
        verdicts.append(Verdict(metric, mean, base_mean, low, bound, not reasons))
    return verdicts


def check_case_counts(categories: pd.Series, baseline: pd.DataFrame | None, thresholds: dict) -> Verdict:
    """Enough cases in every category the baseline covers (every category seen when there is no baseline)."""
    minimum = int(thresholds.get("min_cases_per_category", 1))
    counts = categories.value_counts()
    wanted = sorted(set(baseline["category"]) if baseline is not None and "category" in baseline else set(counts.index))
    short = {c: int(counts.get(c, 0)) for c in wanted if counts.get(c, 0) < minimum}
    detail = ", ".join(f"{c} {n}" for c, n in short.items())
    return Verdict("cases per category", float(counts.min()) if len(counts) else 0.0, None, None,
                   f">= {minimum} in each of {len(wanted)} categories" + (f" (too few: {detail})" if short else ""),
                   not short and len(counts) > 0)


def check_fairness(results: dict, thresholds: dict) -> list[Verdict]:
    """Counterfactual fairness: a group gap fails only when even the low end of its interval is above the limit
    (a wide interval on few answers is reported, not taken for proof of unfairness)."""
    verdicts = []
    for metric, limit in thresholds.get("fairness", {}).items():
        gap = results.get(metric, {})
        passed = bool(gap) and gap["gap_low"] <= limit
        verdicts.append(Verdict(f"fairness {metric} gap", gap.get("gap"), None, gap.get("gap_low"),
                                f"interval low end <= {limit}", passed))
    return verdicts


SHIPPED_MODEL = BUNDLED_MODEL_ALIAS  # the model the shipped app's baseline was measured with


def load_baseline(model: str, fall_back: bool = False, folder: Path | None = None) -> pd.DataFrame | None:
    """The stored per-case baseline for this model; with `fall_back`, the shipped app's when it has none."""
    path = baseline_path(model, folder)
    if not path.exists() and fall_back:
        path = baseline_path(SHIPPED_MODEL, folder)
    if not path.exists():
        return None
    return pd.read_json(path, lines=True).set_index("id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fail when a candidate answers worse than the stored baseline.")
    parser.add_argument("run", type=Path, help="the folder of an evaluation run (with rows.jsonl and metrics.json)")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    parser.add_argument("--baselines", type=Path, default=None, help="folder of stored baselines (default: the package's)")
    args = parser.parse_args(argv)
    rows_file, metrics_file = args.run / "rows.jsonl", args.run / "metrics.json"
    if not rows_file.exists() or not metrics_file.exists():
        print(f"gate: {args.run} has no rows.jsonl and metrics.json; run `python -m contoso_chat.evaluation` first.")
        return 2
    summary = json.loads(metrics_file.read_text())
    thresholds = yaml.safe_load(args.thresholds.read_text())
    baseline = load_baseline(summary["model"], fall_back=True, folder=args.baselines)
    if baseline is None:
        print(f"gate: no stored baseline for {summary['model']} or {SHIPPED_MODEL}; checking the floors only. Store "
              "one from the shipped app with `python -m contoso_chat.evaluation --save-baseline`.")
    elif not baseline_path(summary["model"], args.baselines).exists():
        print(f"gate: no stored baseline for {summary['model']}; comparing with the shipped app's ({SHIPPED_MODEL}).")
    rows = pd.read_json(rows_file, lines=True)
    verdicts = [check_case_counts(rows["category"], baseline, thresholds), *check(per_case(rows), baseline, thresholds)]
    failed_runs = summary.get("failed_runs", 0)
    for v in verdicts:
        if not v.measured:
            print(f"n/a   {v.metric:<24} {v.bound}")
            continue
        if v.metric == "cases per category":
            print(f"{'PASS' if v.passed else 'FAIL'}  {v.metric:<24} {v.candidate:>7.0f}  (needs {v.bound})")
            continue
        shown = "missing" if v.candidate is None else f"{v.candidate:.3f}"
        versus = "" if v.baseline is None else f" vs baseline {v.baseline:.3f}, difference >= {v.difference_low:+.3f}"
        print(f"{'PASS' if v.passed else 'FAIL'}  {v.metric:<24} {shown:>7}{versus}  (needs {v.bound})")
    print(f"{'PASS' if not failed_runs else 'FAIL'}  {'failed_runs':<24} {failed_runs:>7}  (needs 0)")
    for name in thresholds.get("report_only", []):
        if summary.get(name) is not None:
            value = summary[name]
            print(f"info  {name:<24} {value:>7.3f}  (reported, not gated)" if isinstance(value, float) else
                  f"info  {name:<24} {value:>7}  (reported, not gated)")
    failed = [v.metric for v in verdicts if not v.passed] + (["failed_runs"] if failed_runs else [])
    label = summary.get("variant", args.run.name)
    if failed:
        print(f"gate: {label} FAILED on {', '.join(failed)}")
        return 1
    measured = [v for v in verdicts if v.measured]
    print(f"gate: {label} passed all {len(measured) + 1} checks it could measure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
