"""The quality gate: does a candidate answer as well as the stored baseline? Exit 1 if it does not.

    python -m contoso_chat.evaluation.gate build/eval/rag [--thresholds contoso_chat/evaluation/thresholds.yaml]

The gate reads the candidate's per-case rows (rows.jsonl) and the baseline's per-case results for the
same model (evaluation/baselines/<model>.jsonl), pairs them by case, and bootstraps the difference of
each answer metric. A metric fails when the lower end of the interval says the candidate is worse
than the baseline by more than its margin, or when the candidate misses the metric's floor (ceiling).
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
    """One row per case with the gated answer metrics under their figure names."""
    columns = {column: name for column, name in ANSWER_METRICS.items() if column in rows}
    return rows[["id", *columns]].rename(columns=columns).set_index("id")


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
                interval = paired_difference(sign * paired[metric], sign * paired[f"{metric}_baseline"], level=level)
                low = interval.low
                if low < -rule["margin"]:
                    reasons.append(f"worse than the baseline by more than {rule['margin']}")
        bound = (f"{'>=' if higher else '<='} {rule.get('floor', rule.get('ceiling'))}"
                 + (f", not worse than baseline by > {rule['margin']}" if baseline is not None else ""))
        verdicts.append(Verdict(metric, mean, base_mean, low, bound, not reasons))
    return verdicts


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


def load_baseline(model: str) -> pd.DataFrame | None:
    """The stored per-case baseline for this model, if one was saved."""
    path = baseline_path(model)
    if not path.exists():
        return None
    return pd.read_json(path, lines=True).set_index("id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fail when a candidate answers worse than the stored baseline.")
    parser.add_argument("run", type=Path, help="the folder of an evaluation run (with rows.jsonl and metrics.json)")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    args = parser.parse_args(argv)
    rows_file, metrics_file = args.run / "rows.jsonl", args.run / "metrics.json"
    if not rows_file.exists() or not metrics_file.exists():
        print(f"gate: {args.run} has no rows.jsonl and metrics.json; run `python -m contoso_chat.evaluation` first.")
        return 2
    summary = json.loads(metrics_file.read_text())
    thresholds = yaml.safe_load(args.thresholds.read_text())
    baseline = load_baseline(summary["model"])
    if baseline is None:
        print(f"gate: no stored baseline for {summary['model']}; checking the floors only. Store one from the "
              "shipped app with `python -m contoso_chat.evaluation --save-baseline`.")
    verdicts = check(per_case(pd.read_json(rows_file, lines=True)), baseline, thresholds)
    failed_runs = summary.get("failed_runs", 0)
    for v in verdicts:
        if not v.measured:
            print(f"n/a   {v.metric:<24} {v.bound}")
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
