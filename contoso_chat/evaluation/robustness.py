"""Robustness of the evaluation: key facts by phrasing and topic, paraphrase consistency, and the audit set.

    python -m contoso_chat.evaluation.robustness build/eval/rag build/eval/rag-audit [build/eval/rag-templated]

A test split written in the catalog's words can score well while customers' own words fail. Every case of
the evaluation set belongs to a paraphrase family (one need asked in the catalog's words, the customer's
words, and as a situation the customer describes) and has a phrasing and a topic; this module reads them
back from a run's per-case rows. The audit set holds fresh questions written after every prompt and
threshold was fixed: its figure beside the test split's, with the difference and its interval, says
whether the test split is easier than what customers ask.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from contoso_chat.evaluation.intervals import Interval, bootstrap_interval, difference_interval

PHRASINGS = ("catalog", "customer", "situation")
KEYFACT = "keyfact.keyfact"


def family_interval(table: pd.DataFrame, column: str) -> Interval:
    """Mean of a per-case column with its bootstrap interval, paraphrase families resampled together."""
    measured = table[table[column].notna()]
    groups = measured["family"].tolist() if "family" in measured else None
    return bootstrap_interval(measured[column].astype(float).tolist(), groups=groups)


def right_answers(table: pd.DataFrame) -> pd.Series:
    """Per case: right means declined when it should be, and otherwise every key fact stated and no figure that the
    facts shown do not support."""
    declined_right = table["decline.refusal_correct"] == 1
    answered_right = (table[KEYFACT] == 1) & (table["unsupported.unsupported"] == 0) & declined_right
    return answered_right.where(table["category"] != "out-of-scope", declined_right)


def robustness(table: pd.DataFrame) -> dict:
    """Key facts by phrasing and by topic, and paraphrase consistency: the share of families with all three
    phrasings in the run whose every phrasing was answered right."""
    if "phrasing" not in table:
        return {}
    answerable = table[table["category"] != "out-of-scope"]
    by_phrasing = {name: family_interval(group, KEYFACT).as_dict()
                   for name, group in answerable.groupby("phrasing") if group[KEYFACT].notna().any()}
    by_topic = {name: round(float(group[KEYFACT].mean()), 4) for name, group in answerable.groupby("topic")}
    right = table.assign(right=right_answers(table))
    complete = right.groupby("family").filter(lambda g: set(g["phrasing"]) >= set(PHRASINGS))
    consistency = None
    if len(complete):
        all_right = complete.groupby("family")["right"].all().astype(float)
        consistency = bootstrap_interval(all_right.tolist()).as_dict()
    return {"keyfact_by_phrasing": by_phrasing, "keyfact_by_topic": by_topic,
            "right_answer_rate": round(float(right["right"].mean()), 4) if len(right) else None,
            "paraphrase_consistency": consistency,
            "paraphrase_families": int(complete["family"].nunique()) if len(complete) else 0}


def compare_sets(first: pd.DataFrame, second: pd.DataFrame, column: str = KEYFACT) -> dict:
    """Mean of one metric on the first set of cases minus on the second (say audit minus test), with its interval."""
    a, b = first[first[column].notna()], second[second[column].notna()]
    return difference_interval(a[column].astype(float).tolist(), b[column].astype(float).tolist(),
                               first_groups=a["family"].tolist(), second_groups=b["family"].tolist()).as_dict()


def report(test: pd.DataFrame, audit: pd.DataFrame, templated: pd.DataFrame | None = None) -> dict:
    """The figures README and the notebook print: key facts on the test split by phrasing (and the templated set as
    one more phrasing), paraphrase consistency, and the audit set against the test split."""
    by_phrasing = robustness(test)["keyfact_by_phrasing"]
    if templated is not None:
        by_phrasing["templated"] = family_interval(templated[templated["category"] != "out-of-scope"], KEYFACT).as_dict()
    return {"test_cases": len(test), "audit_cases": len(audit),
            "keyfact_test": family_interval(test, KEYFACT).as_dict(),
            "keyfact_audit": family_interval(audit, KEYFACT).as_dict(),
            "audit_minus_test": compare_sets(audit, test),
            "keyfact_by_phrasing": by_phrasing,
            "paraphrase_consistency": robustness(test)["paraphrase_consistency"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Key facts by phrasing, paraphrase consistency, audit minus test.")
    parser.add_argument("test", type=Path, help="the folder of a run on the test split (with rows.jsonl)")
    parser.add_argument("audit", type=Path, help="the folder of the same variant's run on the audit set")
    parser.add_argument("templated", type=Path, nargs="?", help="optionally, its run on the templated test split")
    parser.add_argument("--out", type=Path, default=None, help="where to write the figures (default: beside test)")
    args = parser.parse_args(argv)
    folders = [f for f in (args.test, args.audit, args.templated) if f is not None]
    missing = [str(f) for f in folders if not (f / "rows.jsonl").exists()]
    if missing:
        print(f"robustness: no rows.jsonl in {', '.join(missing)}; run `python -m contoso_chat.evaluation` there first.")
        return 2
    tables = [pd.read_json(f / "rows.jsonl", lines=True) for f in folders]
    figures = report(*tables)
    out = args.out or args.test.parent / "robustness.json"
    out.write_text(json.dumps(figures, indent=2))
    for name, value in figures["keyfact_by_phrasing"].items():
        print(f"key facts, {name + ' phrasing':<22} {Interval(**value)}")
    consistency = figures["paraphrase_consistency"]
    print(f"paraphrase consistency          {Interval(**consistency) if consistency else 'not measured'}")
    print(f"key facts, test split           {Interval(**figures['keyfact_test'])}")
    print(f"key facts, audit set            {Interval(**figures['keyfact_audit'])}")
    print(f"audit minus test                {Interval(**figures['audit_minus_test'])}")
    print(f"figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
