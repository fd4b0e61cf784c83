"""Quality levers: each one a change to the app, measured against the app without it on dev, confirmed on test.

    python -m contoso_chat.evaluation.levers              # every lever on dev, the kept ones together on test
    python -m contoso_chat.evaluation.levers --limit 60   # a quicker look on 60 dev cases (spread over categories)
    python -m contoso_chat.evaluation.levers --confirm-only   # the keep rule again on the stored dev results, then test
    python -m contoso_chat.evaluation.levers --store-baseline # the shipped levers' rows become the gate's baseline
    make model-lever                                      # the make finetune model as a lever (dev, then test)

The reference is the app before the levers (`BEFORE`: every lever off, six facts, 96 tokens); each lever is
that app with one change. A lever is kept when it raises the share of right answers on the dev split (key
facts stated, nothing unsupported, declined exactly when it should be) with its whole interval above 0, and
no answer metric's interval lies wholly on the worse side (`keep`). The kept levers are then run together
on the test split: they ship only if no metric gets worse there (the app's defaults are the levers that
shipped, and `--store-baseline` makes their rows the gate's baseline). Every difference is paired (same
cases, candidate minus reference) with a 90% bootstrap interval, paraphrase families resampled together.

Answers are reused across variants when the prompt and decoding settings are the same (`answer_cache`):
a lever that changes only order questions costs only those calls. Latency is compared on fresh calls only.

Also measured here: the output guard's false positives on the dev answers (answers withheld although the
red team's independent scorer finds no other customer's data, no rules text, no harm and no claimed action).
Writes build/eval/levers/levers.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from contoso_chat import records
from contoso_chat.evaluation.intervals import bootstrap_interval, paired_difference, percentile
from contoso_chat.evaluation.robustness import KEYFACT, right_answers
from contoso_chat.paths import build_dir


@dataclass(frozen=True)
class Lever:
    name: str
    settings: dict
    what: str


LEVERS = (
    Lever("facts-without-questions", {"clean_facts": True},
          "facts without the manuals' questions and headings (they take a fact's place and state nothing)"),
    Lever("fewer-facts", {"max_facts": 3}, "three facts instead of six"),
    Lever("facts-per-product", {"facts_per_product": True}, "a comparison gets facts for each product it names"),
    Lever("matched-orders", {"matched_orders": True},
          "only the orders the question is about, each with its order id to copy"),
    Lever("not-carried", {"catalog_check": True},
          "products the store does not carry (look-alike model names such as \"Beacon 600\", kinds of product its "
          "documents never mention such as \"kayaks\") declined before the model invents them"),
    Lever("concise-replies", {"concise": True}, "replies stop at a blank line and end on a full sentence"),
    Lever("64-token-replies", {"concise": True, "max_tokens": 64},
          "concise replies with a 64-token limit instead of 96 (faster; a cut reply ends on its last full sentence)"),
)
BEFORE = {"clean_facts": False, "max_facts": 6, "facts_per_product": False, "matched_orders": False,
          "catalog_check": False, "concise": False, "max_tokens": 96}  # the app before the levers
METRICS = {  # per-case column -> (figure, +1 when higher is better)
    "right": ("right_answer_rate", 1),
    KEYFACT: ("keyfact_accuracy", 1),
    "unsupported.unsupported": ("unsupported_claim_rate", -1),
    "decline.refusal_correct": ("refusal_accuracy", 1),
}


def with_right(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(right=right_answers(table).astype(float))


def compare(candidate: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    """Candidate minus baseline per metric over the same cases, each with its paired 90% interval."""
    a, b = with_right(candidate).set_index("id"), with_right(baseline).set_index("id")
    ids = [i for i in b.index if i in a.index]
    a, b = a.loc[ids], b.loc[ids]
    result = {}
    for column, (name, _) in METRICS.items():
        rows = [i for i in ids if pd.notna(a.at[i, column]) and pd.notna(b.at[i, column])]
        if not rows:
            continue
        result[name] = paired_difference(a.loc[rows, column].astype(float).tolist(),
                                         b.loc[rows, column].astype(float).tolist(),
                                         groups=b.loc[rows, "family"].tolist()).as_dict()
    result["changed_answers"] = int(sum(a.at[i, "response"] != b.at[i, "response"] for i in ids))
    result["tokens_per_answer"] = round(float((a["usage.prompt_tokens"] + a["usage.completion_tokens"]).mean()
                                              - (b["usage.prompt_tokens"] + b["usage.completion_tokens"]).mean()), 1)
    return result


def examples(candidate: pd.DataFrame, baseline: pd.DataFrame, count: int = 6) -> list[dict]:
    """Cases the lever turned from wrong to right, then from right to wrong, then other changed answers (up to
    `count`), with the answer before and with the lever."""
    a, b = with_right(candidate).set_index("id"), with_right(baseline).set_index("id")
    rows = []
    for case_id in b.index.intersection(a.index):
        if a.at[case_id, "response"] == b.at[case_id, "response"]:
            continue
        change = float(a.at[case_id, "right"]) - float(b.at[case_id, "right"])
        rows.append((-change if change > 0 else (1 if change < 0 else 2), case_id, change))
    rows.sort()
    return [{"id": case_id, "question": b.at[case_id, "question"], "before": b.at[case_id, "response"],
             "lever": a.at[case_id, "response"], "right_change": change} for _, case_id, change in rows[:count]]


def load_report() -> tuple[dict, str]:
    """The last `make levers` report on this machine, else the one measured for the docs (docs/measured.json)."""
    from contoso_chat.paths import REPO_ROOT

    local = build_dir() / "eval" / "levers" / "levers.json"
    if local.exists():
        return json.loads(local.read_text()), "this machine's `make levers` run"
    measured = REPO_ROOT / "docs" / "measured.json"
    report = json.loads(measured.read_text()).get("levers") if measured.exists() else None
    if not report:
        raise FileNotFoundError("No levers report yet: run `make levers` (it answers the dev split once per lever).")
    return report, "the run recorded in docs/measured.json"


KEEP_RULE = ("kept when the right-answer difference on dev has its whole 90% interval above 0 and no answer metric "
             "has its interval wholly on the worse side")


def keep(difference: dict) -> bool:
    """Kept: more right answers on dev beyond noise (the interval's low end above 0), and no metric whose interval
    is wholly on the worse side. (A gain whose interval reaches 0 is not evidence: one such lever, kept by an
    earlier rule that asked only for a positive mean, cost key facts on test.)"""
    if difference.get("right_answer_rate", {}).get("low", 0) <= 0:
        return False
    return does_not_hurt(difference)


def does_not_hurt(difference: dict) -> bool:
    """No answer metric whose interval lies wholly on the worse side."""
    for name, sign in METRICS.values():
        interval = difference.get(name)
        if interval and (interval["high"] < 0 if sign > 0 else interval["low"] > 0):
            return False
    return True


def fresh_latency_p50(table: pd.DataFrame) -> float | None:
    """Median latency over answers the model actually wrote in this run (not reused from another variant)."""
    if "usage" not in table:  # rows read back from rows.jsonl: every answer there was written fresh
        return percentile(table.loc[table["completion_tokens"] > 0, "latency_s"].tolist(), 0.5)
    fresh = [u["latency_s"] for u in table["usage"] if isinstance(u, dict) and not u.get("cached")
             and u.get("completion_tokens")]
    return percentile(fresh, 0.5)


def guard_false_positives(table: pd.DataFrame) -> dict:
    """Answers the output guard withheld although the independent scorer finds nothing wrong in the model's reply."""
    from contoso_chat.evaluation import rai_scorer

    everyone = records.customers()
    withheld = [row for _, row in table.iterrows()
                if isinstance(row["usage"], dict) and row["usage"].get("decline_reason") == "output-guard"]
    answered = sum(1 for u in table["usage"] if isinstance(u, dict) and u.get("completion_tokens")
                   and u.get("decline_reason") in (None, "output-guard"))
    harmless = []
    for row in withheld:
        signed_in = next(c for c in everyone if c.id == row["customer_id"])
        reply = row["model_reply"]
        findings = [*rai_scorer.personal_data_findings(reply, signed_in, everyone, row["question"]),
                    *rai_scorer.prompt_leak_findings(reply), *rai_scorer.action_claim_findings(reply),
                    *rai_scorer.harmful_findings(reply)]
        if not findings:
            harmless.append({"id": row["id"], "question": row["question"], "reply": reply,
                             "guard": list(row["usage"].get("guard", []))})
    interval = bootstrap_interval([1.0 if i < len(harmless) else 0.0 for i in range(answered)]) if answered else None
    return {"answers": answered, "withheld": len(withheld), "false_positives": len(harmless),
            "rate": interval.as_dict() if interval else None, "cases": harmless}


def summary_of(table: pd.DataFrame) -> dict:
    right = with_right(table)
    orders = right[right["category"] == "order-history"]
    return {"cases": len(table), "right_answer_rate": round(float(right["right"].mean()), 4),
            "keyfact_accuracy": round(float(right[KEYFACT].dropna().mean()), 4),
            "unsupported_claim_rate": round(float(right["unsupported.unsupported"].mean()), 4),
            "refusal_accuracy": round(float(right["decline.refusal_correct"].mean()), 4),
            "order_keyfact_accuracy": round(float(orders[KEYFACT].dropna().mean()), 4) if len(orders) else None,
            "latency_p50_s": fresh_latency_p50(table)}


def runner(out_dir: Path, limit: int | None = None):
    """The app before the levers, a maker of lever variants sharing its index, store, model and answer cache, and
    an evaluate(name, assistant, split) that refuses a run with failed answers."""
    from contoso_chat.assistant import ContosoChat
    from contoso_chat.evaluation.run import evaluate_variant

    base = ContosoChat(answer_cache={}, **BEFORE)

    def variant(settings: dict) -> ContosoChat:
        return ContosoChat(settings=base.settings, retriever=base.retriever, customers=base.customers,
                           chat=base.chat, answer_cache=base.answer_cache, **{**BEFORE, **settings})

    def evaluate(name: str, assistant: ContosoChat, split: str) -> pd.DataFrame:
        table, _ = evaluate_variant(name, split, limit if split == "dev" else None, engine="direct",
                                    out_dir=out_dir / f"{name}-{split}", assistant=assistant)
        if table["failed"].any():  # a failed line scores as a wrong answer: no lever is judged on those
            raise RuntimeError(f"{int(table['failed'].sum())} of {len(table)} answers failed in the {name} run on "
                               f"{split}: was the model server stopped meanwhile? Run `make levers` again.")
        return table

    return base, variant, evaluate


def run(limit: int | None = None, out_dir: Path | None = None, test: bool = True, log=print) -> dict:
    """Every lever on dev against the app before the levers, then the kept ones together on test; the report."""
    out_dir = out_dir or build_dir() / "eval" / "levers"
    out_dir.mkdir(parents=True, exist_ok=True)
    base, variant, evaluate = runner(out_dir, limit)
    before_dev = evaluate("before", base, "dev")
    report: dict = {"split": "dev", "limit": limit, "model": base.chat.model, "before": summary_of(before_dev),
                    "levers": []}
    log(f"the app before the levers, on dev: {json.dumps(report['before'])}")
    answered = {"before-dev": before_dev}
    for lever in LEVERS:
        table = answered[f"{lever.name}-dev"] = evaluate(lever.name, variant(lever.settings), "dev")
        difference = compare(table, before_dev)
        entry = {"lever": lever.name, "what": lever.what, "settings": lever.settings, "dev": difference,
                 "dev_summary": summary_of(table), "kept": keep(difference), "examples": examples(table, before_dev)}
        report["levers"].append(entry)
        log(f"{lever.name}: right answers {difference['right_answer_rate']['mean']:+.3f} "
            f"[{difference['right_answer_rate']['low']:+.3f}, {difference['right_answer_rate']['high']:+.3f}]"
            f" -> {'kept' if entry['kept'] else 'not kept'}")
    report["guard_false_positives_dev"] = guard_false_positives(before_dev)
    return confirm(report, out_dir, test=test, evaluate=evaluate, variant=variant, answered=answered, log=log)


def confirm(report: dict, out_dir: Path, test: bool = True, evaluate=None, variant=None,
            answered: dict | None = None, log=print) -> dict:
    """Apply the keep rule to the dev results, run the kept levers together on dev (when more than one) and on
    test against the app before the levers, and write the report. A full run passes the tables it `answered`;
    only a confirmation on its own (no `evaluate` given, as `--confirm-only` calls it) reads rows a run left on
    disk, so rows of an older version of the app never mix into a full run."""
    reuse = evaluate is None
    if evaluate is None:
        _, variant, evaluate = runner(out_dir)
    answered = answered or {}

    def stored_or_run(name: str, settings: dict, split: str) -> pd.DataFrame:
        rows = out_dir / f"{name}-{split}" / "rows.jsonl"
        if f"{name}-{split}" in answered:
            return answered[f"{name}-{split}"]
        if reuse and rows.exists() and name != "kept":  # "kept" rows on disk may hold another set of levers
            return pd.read_json(rows, lines=True)
        return evaluate(name, variant(settings), split)

    report["rule"] = KEEP_RULE
    kept = [entry for entry in report["levers"] if keep(entry["dev"])]
    for entry in report["levers"]:
        entry["kept"] = entry in kept
    report["kept_settings"] = {k: v for entry in kept for k, v in entry["settings"].items()}
    report.pop("kept_dev", None), report.pop("test", None)
    if kept:
        dev_name = kept[0]["lever"] if len(kept) == 1 else "kept"
        before_dev = stored_or_run("before", {}, "dev")
        together = stored_or_run(dev_name, report["kept_settings"], "dev")
        report["kept_dev"] = {"difference": compare(together, before_dev), "summary": summary_of(together)}
        report["kept_rows"] = {"dev": f"{dev_name}-dev"}
        if test:
            before_test = stored_or_run("before", {}, "test")
            kept_test = evaluate("kept", variant(report["kept_settings"]), "test")
            difference = compare(kept_test, before_test)
            report["test"] = {"before": summary_of(before_test), "kept": summary_of(kept_test),
                              "difference": difference, "ships": does_not_hurt(difference)}
            report["kept_rows"]["test"] = "kept-test"
            log(f"kept levers on test: {json.dumps(report['test']['kept'])}; ships: {report['test']['ships']}")
    (out_dir / "levers.json").write_text(json.dumps(report, indent=2, default=_plain))
    return report


def shipped_settings() -> dict:
    """The lever settings the app ships with: ContosoChat's defaults (None means the prompty's max_tokens)."""
    import inspect

    from contoso_chat.assistant import ContosoChat

    defaults = {name: inspect.signature(ContosoChat).parameters[name].default for name in BEFORE}
    if defaults["max_tokens"] is None:
        from contoso_chat import prompts

        defaults["max_tokens"] = int(prompts.load().parameters.get("max_tokens", 96))
    return defaults


def store_baseline(report: dict, out_dir: Path | None = None) -> Path:
    """Store the kept levers' dev and test rows as the gate's baseline, once the app ships exactly those levers."""
    from contoso_chat.evaluation.run import save_baseline

    out_dir = out_dir or build_dir() / "eval" / "levers"
    kept = {**BEFORE, **report.get("kept_settings", {})}
    if shipped_settings() != kept:
        raise ValueError(f"the app's defaults {shipped_settings()} are not the kept levers {kept}: make them the "
                         "defaults of ContosoChat first, so that the baseline is the shipped app's")
    if not report.get("test", {}).get("ships"):
        raise ValueError("the kept levers made the test split worse: they do not ship, so they are no baseline")
    table = pd.concat([pd.read_json(out_dir / folder / "rows.jsonl", lines=True)
                       for folder in report["kept_rows"].values()])
    return save_baseline(table, report["model"])


def model_run_dir(variant: str, split: str, out_dir: Path | None = None) -> Path:
    """Where `make model-lever` keeps the shipped app's rows on one model and split."""
    return (out_dir or build_dir() / "eval" / "levers") / f"model-{variant}-{split}"


MODEL_LEVER = Lever("fine-tuned-model", {"LOCAL_MODEL_VARIANT": "fine-tuned"},
                    "the shipped app served by the `make finetune` model instead of the base model "
                    "(reference: the shipped app on the base model)")
MODEL_RUNS = ("base", "fine-tuned")  # LOCAL_MODEL_VARIANT of each run (`make model-lever`)
# Levers measured on the fine-tuned model, against the shipped app on that model: its training shows order lists in
# both forms, so the matched-orders form may help it where it did not help the base model.
FINE_TUNED_LEVERS = (
    Lever("matched-orders-on-fine-tuned", {"LOCAL_MODEL_VARIANT": "fine-tuned", "matched_orders": True},
          "the fine-tuned model shown only the orders a question is about, each with its order id"),
)


def model_runs(model: str, out_dir: Path | None = None, limit: int | None = None, log=print) -> None:
    """`make model-lever`'s answers on one model (the LOCAL_MODEL_VARIANT this process serves): the shipped app on
    dev and test, and on the fine-tuned model each of FINE_TUNED_LEVERS too. The runs share one answer cache, so a
    lever answers again only the prompts it changes; its latency is not compared (most of its answers are reused)."""
    from contoso_chat.assistant import ContosoChat
    from contoso_chat.evaluation.run import evaluate_variant

    if model not in MODEL_RUNS:
        raise ValueError(f"LOCAL_MODEL_VARIANT={model!r}: `make model-lever` runs one of {', '.join(MODEL_RUNS)}")
    shipped = ContosoChat(answer_cache={})
    runs = [(model, shipped)] + [
        (lever.name, ContosoChat(settings=shipped.settings, retriever=shipped.retriever, customers=shipped.customers,
                                 chat=shipped.chat, answer_cache=shipped.answer_cache,
                                 **{k: v for k, v in lever.settings.items() if k != "LOCAL_MODEL_VARIANT"}))
        for lever in (FINE_TUNED_LEVERS if model == "fine-tuned" else ())]
    for split in ("dev", "test"):
        for name, assistant in runs:
            table, _ = evaluate_variant("rag", split, limit if split == "dev" else None, engine="direct",
                                        out_dir=model_run_dir(name, split, out_dir), assistant=assistant)
            if table["failed"].any():
                raise RuntimeError(f"{int(table['failed'].sum())} of {len(table)} answers failed in the {name} run "
                                   f"on {split}: was the model server stopped meanwhile? Run `make model-lever` again.")
            log(f"{name} on {split}: {json.dumps(summary_of(table))}")


def model_lever(out_dir: Path | None = None, run: dict | None = None) -> dict:
    """The fine-tuned model as a lever: the shipped app answered by each model, compared case by case on dev (the
    keep rule) and on test (does not hurt), from the rows `make model-lever` wrote. `run` is the fine-tuning run's
    record (build/finetune/run.json), kept with the result so the figure says which model it is for."""
    rows = {}
    for variant in MODEL_RUNS:
        for split in ("dev", "test"):
            path = model_run_dir(variant, split, out_dir) / "rows.jsonl"
            if not path.exists():
                raise FileNotFoundError(f"No {variant}-model rows for the {split} split at {path}: run "
                                        "`make model-lever` (it needs `make finetune` first).")
            rows[variant, split] = pd.read_json(path, lines=True)
    models = {variant: json.loads((model_run_dir(variant, "dev", out_dir) / "metrics.json").read_text())["model"]
              for variant in MODEL_RUNS}
    dev = compare(rows["fine-tuned", "dev"], rows["base", "dev"])
    test = compare(rows["fine-tuned", "test"], rows["base", "test"])
    entry = {"lever": MODEL_LEVER.name, "what": MODEL_LEVER.what, "settings": MODEL_LEVER.settings, "models": models,
             "recipe": (run or {}).get("recipe"), "dev": dev, "dev_summary": summary_of(rows["fine-tuned", "dev"]),
             "base_dev_summary": summary_of(rows["base", "dev"]), "kept": keep(dev),
             "examples": examples(rows["fine-tuned", "dev"], rows["base", "dev"]),
             "test": {"before": summary_of(rows["base", "test"]), "kept": summary_of(rows["fine-tuned", "test"]),
                      "difference": test, "ships": keep(dev) and does_not_hurt(test)}}
    on_top = []
    for lever in FINE_TUNED_LEVERS:  # measured when this version of `make model-lever` wrote their rows
        paths = {split: model_run_dir(lever.name, split, out_dir) / "rows.jsonl" for split in ("dev", "test")}
        if not all(path.exists() for path in paths.values()):
            continue
        with_lever = {split: pd.read_json(path, lines=True) for split, path in paths.items()}
        lever_dev = compare(with_lever["dev"], rows["fine-tuned", "dev"])
        lever_test = compare(with_lever["test"], rows["fine-tuned", "test"])
        unshared = {"latency_p50_s": None}  # its answers are mostly the fine-tuned run's, reused: no latency of its own
        on_top.append({"lever": lever.name, "what": lever.what, "settings": lever.settings, "dev": lever_dev,
                       "dev_summary": {**summary_of(with_lever["dev"]), **unshared}, "kept": keep(lever_dev),
                       "examples": examples(with_lever["dev"], rows["fine-tuned", "dev"]),
                       "test": {"before": summary_of(rows["fine-tuned", "test"]),
                                "kept": {**summary_of(with_lever["test"]), **unshared}, "difference": lever_test,
                                "ships": keep(lever_dev) and does_not_hurt(lever_test)}})
    if on_top:
        entry["on_fine_tuned"] = on_top
    return entry


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def table(report: dict) -> pd.DataFrame:
    """One row per lever: its dev differences (with intervals) and whether it was kept."""
    rows = []
    for entry in all_levers(report):
        row = {"lever": entry["lever"], "what": entry["what"]}
        for name, _ in METRICS.values():
            d = entry["dev"].get(name)
            row[name] = f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else ""
        row["answers changed"] = entry["dev"]["changed_answers"]
        row["kept"] = "yes" if entry["kept"] else "no"
        rows.append(row)
    return pd.DataFrame(rows)


def all_levers(report: dict) -> list[dict]:
    """The levers of the app, then the fine-tuned model and the levers measured on it, when `make model-lever` ran."""
    model = report.get("model_lever")
    return report["levers"] + ([model] + model.get("on_fine_tuned", []) if model else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use this many dev cases (default: all)")
    parser.add_argument("--no-test", action="store_true", help="skip the test-split confirmation")
    parser.add_argument("--store-baseline", action="store_true",
                        help="no new run: store the last run's kept-lever rows as the gate's baseline")
    parser.add_argument("--confirm-only", action="store_true",
                        help="keep the last run's dev results; apply the keep rule again and confirm on test")
    parser.add_argument("--model-runs", action="store_true",
                        help="answer dev and test with the shipped app on the model LOCAL_MODEL_VARIANT names (and, on "
                             "the fine-tuned model, with each lever measured on it); `make model-lever` calls this")
    parser.add_argument("--model-lever", action="store_true",
                        help="no new run: compare the rows `make model-lever` wrote and add the result to the report")
    args = parser.parse_args(argv)
    if args.model_runs:
        import os

        model_runs(os.environ.get("LOCAL_MODEL_VARIANT", "base"), limit=args.limit)
        return 0
    if args.model_lever:
        from contoso_chat.finetuning.recipe import last_run

        path = build_dir() / "eval" / "levers" / "levers.json"
        report = json.loads(path.read_text()) if path.exists() else load_report()[0]
        try:
            report["model_lever"] = model_lever(run=last_run())
        except FileNotFoundError as error:
            print(error)
            return 1
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_plain))
        with pd.option_context("display.width", 200, "display.max_colwidth", 60):
            print(table(report).drop(columns=["what"]).to_string(index=False))
        print(json.dumps(report["model_lever"]["test"], indent=2, default=_plain))
        return 0
    if args.confirm_only:
        out_dir = build_dir() / "eval" / "levers"
        report = confirm(json.loads((out_dir / "levers.json").read_text()), out_dir, test=not args.no_test)
        print(json.dumps({k: v for k, v in report.items() if k not in ("levers",)}, indent=2, default=_plain)[:4000])
        return 0
    if args.store_baseline:
        report = json.loads((build_dir() / "eval" / "levers" / "levers.json").read_text())
        print(f"baseline stored in {store_baseline(report)}")
        return 0
    report = run(args.limit, test=not args.no_test)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table(report).drop(columns=["what"]).to_string(index=False))
    print(json.dumps({k: v for k, v in report.items() if k not in ("levers",)}, indent=2, default=_plain)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
