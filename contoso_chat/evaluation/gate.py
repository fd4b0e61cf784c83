"""The evaluation gate: compare a metrics file with the committed thresholds; exit 1 if any fails.

    python -m contoso_chat.evaluation.gate build/eval/rag/metrics.json [--thresholds contoso_chat/evaluation/thresholds.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.yaml"


@dataclass(frozen=True)
class Verdict:
    """One metric against its bound."""

    metric: str
    value: float | None
    bound: str
    passed: bool


def check(metrics: dict, thresholds: dict) -> list[Verdict]:
    """A verdict per threshold; a missing metric fails."""
    verdicts = []
    for metric, bound in thresholds.items():
        value = metrics.get(metric)
        if "min" in bound:
            passed, text = value is not None and value >= bound["min"], f">= {bound['min']}"
        else:
            passed, text = value is not None and value <= bound["max"], f"<= {bound['max']}"
        verdicts.append(Verdict(metric, value, text, passed))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fail when an evaluation metric misses its threshold.")
    parser.add_argument("metrics", type=Path, help="metrics.json written by contoso_chat.evaluation")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    args = parser.parse_args(argv)
    if not args.metrics.exists():
        print(f"gate: {args.metrics} does not exist; run `python -m contoso_chat.evaluation` first.")
        return 2
    metrics = json.loads(args.metrics.read_text())
    verdicts = check(metrics, yaml.safe_load(args.thresholds.read_text()))
    for v in verdicts:
        shown = "missing" if v.value is None else f"{v.value:.4g}"
        print(f"{'PASS' if v.passed else 'FAIL'}  {v.metric:<22} {shown:>8}  (needs {v.bound})")
    failed = [v.metric for v in verdicts if not v.passed]
    label = metrics.get("variant", args.metrics.parent.name)
    if failed:
        print(f"gate: {label} FAILED on {', '.join(failed)}")
        return 1
    print(f"gate: {label} passed all {len(verdicts)} thresholds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
