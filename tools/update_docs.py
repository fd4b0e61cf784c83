"""Write the measured figures into the docs: one source for every timing and key figure.

    python tools/update_docs.py        (after `make workshop`, `make eval`, `make redteam` and `make bench`)

Reads build/summary.json (make workshop), build/eval/<variant>/metrics.json,
build/eval/robustness.json and build/eval/citation-style/comparison.json (make eval), build/eval/levers/levers.json
(make levers), build/redteam/summary.json
(make redteam), build/bench/figures.json (make bench) and build/finetune/run.json (make finetune), keeps
them in docs/measured.json (committed, read by notebook 00's workshop map), and rewrites the blocks
between `<!-- measured:NAME -->` and `<!-- /measured:NAME -->` in README.md and INSTRUCTORS.md.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
MEASURED = ROOT / "docs" / "measured.json"
TITLES = {"00_introduction": "00 Introduction", "01_provision": "01 Provision", "02_prompt_engineering": "02 Prompt engineering",
          "03_rag": "03 RAG", "04_fine_tuning": "04 Fine-tuning", "05_evaluation": "05 Evaluation",
          "06_deployment": "06 Deployment", "07_operations": "07 Operations and responsible AI",
          "08_agent_framework": "08 From prompt flow to Agent Framework"}
COUNTS = dict(enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                         "twelve")))


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect(previous: dict) -> dict:
    """The figures of the latest runs, keeping earlier ones where a run is missing this time."""
    measured = dict(previous)
    summary = _read(BUILD / "summary.json")
    if summary and not summary.get("failures"):
        measured["workshop"] = {k: summary[k] for k in ("finished_at", "machine", "total_seconds", "notebook_seconds",
                                                         "figures", "budget_seconds", "slowest_cells", "finetune_model_present")
                               if k in summary}
    evaluations = {p.parent.name: _read(p) for p in sorted((BUILD / "eval").glob("*/metrics.json"))}
    if not evaluations and "evaluation" not in measured:  # no `make eval` yet: notebook 05's runs, named as such
        evaluations = {f"{p.parent.name} (notebook 05)": _read(p)
                       for p in sorted((BUILD / "eval" / "notebook").glob("*/metrics.json")) if "split" in _read(p)}
    elif evaluations:  # `make eval` ran: its runs replace the notebook's stand-ins
        measured["evaluation"] = {k: v for k, v in measured.get("evaluation", {}).items() if "(notebook 05)" not in k}
    if evaluations:
        measured["evaluation"] = {**measured.get("evaluation", {}), **evaluations}
    for name, path in (("redteam", BUILD / "redteam" / "summary.json"), ("bench", BUILD / "bench" / "figures.json"),
                       ("finetune", BUILD / "finetune" / "run.json"),
                       ("citation_style", BUILD / "eval" / "citation-style" / "comparison.json"),
                       ("robustness", BUILD / "eval" / "robustness.json"),
                       ("levers", BUILD / "eval" / "levers" / "levers.json"),
                       ("agent_parity", BUILD / "agent_framework" / "parity.json")):
        found = _read(path)
        if found:  # bench sections run one at a time (`tools/benchmark.py service`) add to the others
            measured[name] = {**measured.get(name, {}), **found} if name == "bench" else found
    return measured


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def notebook_table(measured: dict) -> str:
    workshop = measured.get("workshop")
    if not workshop:
        return "_No measured run yet: run `make workshop`, then `python tools/update_docs.py`._"
    rows = ["| notebook | cells run in |", "|---|---|"]
    rows += [f"| {TITLES.get(name, name)} | {_minutes(seconds)} |" for name, seconds in workshop["notebook_seconds"].items()]
    count = len(workshop["notebook_seconds"])
    rows.append(f"| **all {COUNTS.get(count, count)}** (`make workshop`) | **{_minutes(workshop['total_seconds'])}** |")
    machine = workshop["machine"]
    model = {True: "with a `make finetune` model present (notebook 04 skipped its own training)",
             False: "without a `make finetune` model (notebook 04 trained its own)"}.get(workshop.get("finetune_model_present"))
    return "\n".join(rows) + (f"\n\nMeasured by `make workshop` on {workshop['finished_at'][:10]} "
                              f"({machine['cpus']} CPU cores, Python {machine['python']})"
                              + (f", {model}." if model else "."))


def _fmt(value) -> str:
    if isinstance(value, dict) and "mean" in value:
        count = f" (n={value['n']})" if "n" in value else ""
        return f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]{count}"
    if isinstance(value, dict) and "gap" in value:
        return f"{value['gap']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"
    if isinstance(value, dict) and value and all(isinstance(v, dict) and "kept" in v for v in value.values()):
        return "; ".join(f"{name} {_signed(v.get('dev_right_answer_difference'))} ({'kept' if v['kept'] else 'not kept'})"
                         for name, v in value.items()) + " (right answers on dev, minus each lever's reference: the app before the levers, the base model for fine-tuned-model, the fine-tuned model for levers on it)"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def figures_table(measured: dict) -> str:
    figures = measured.get("workshop", {}).get("figures", {})
    if not figures:
        return "_No measured run yet._"
    return "\n".join(["| figure (`build/summary.json`) | value |", "|---|---|"]
                     + [f"| `{name}` | {_fmt(value)} |" for name, value in sorted(figures.items())])


# The same quantity is measured in several places, on different samples: one row per measurement, so a reader sees
# why the values differ. (quantity, summary.json figure, sample or split, notebook that records it)
KEY_FIGURES = (
    ("key-fact accuracy, RAG", "keyfact_accuracy_rag", "notebook 03's sample of test questions", "03_rag"),
    ("key-fact accuracy, RAG", "finetune_keyfact_test_base_rag", "notebook 04's sample of test questions",
     "04_fine_tuning"),
    ("key-fact accuracy, RAG", "eval_keyfact_accuracy_test", "the whole test split (customers' words)",
     "05_evaluation"),
    ("key-fact accuracy, RAG", "eval_keyfact_templated_test", "the templated set's test split (easier wording)",
     "05_evaluation"),
    ("key-fact accuracy, RAG", "eval_audit_keyfact_accuracy", "the audit set (written after tuning, by someone "
     "who never saw the split)", "05_evaluation"),
    ("key-fact accuracy, fine-tuned + RAG", "finetune_keyfact_test_ft_rag", "notebook 04's sample of test questions",
     "04_fine_tuning"),
    ("unsupported-claim rate", "finetune_unsupported_claim_rate_base_rag", "notebook 04's sample", "04_fine_tuning"),
    ("unsupported-claim rate", "eval_unsupported_claim_rate", "the whole test split", "05_evaluation"),
    ("unsupported-claim rate, fine-tuned", "finetune_unsupported_claim_rate_ft_rag", "notebook 04's sample",
     "04_fine_tuning"),
    ("refusal accuracy", "eval_refusal_accuracy_test", "the whole test split", "05_evaluation"),
    ("refusal accuracy, fine-tuned", "finetune_refusal_accuracy_ft_rag", "notebook 04's sample", "04_fine_tuning"),
    ("first answer (s)", "first_answer_seconds", "one question, model already loaded", "00_introduction"),
    ("answer latency p50 (s)", "answer_p50_seconds_rag", "notebook 03's RAG sample", "03_rag"),
    ("answer latency p50 (s)", "eval_answer_p50_s", "the whole test split, answered one after another",
     "05_evaluation"),
    ("answer latency p50 (s)", "traced_request_p50_s", "six traced questions (tracing on)", "07_operations"),
    ("answer latency p50 (s)", "af_answer_p50_seconds", "the parity sample, on Agent Framework",
     "08_agent_framework"),
    ("hybrid retrieval p50 (ms)", "retrieval_p50_ms", "the evaluation questions, one search each", "03_rag"),
    ("service under 16 users: requests shed", "load_16_users_shed", "the bounded load test", "06_deployment"),
    ("red-team scorer recall", "redteam_scorer_recall", "88 planted leaks in 12 families", "07_operations"),
    ("fairness: largest key-fact gap", "fairness_max_keyfact_gap", "names and tiers, a few questions each",
     "07_operations"),
)
FINE_TUNED = "the fine-tuned model of notebook 04 (its own training, or `make finetune`'s when present)"


def key_figures_table(measured: dict) -> str:
    """One row per measurement of the workshop's key quantities: value, sample, model and the notebook it is from."""
    figures = measured.get("workshop", {}).get("figures", {})
    if not figures:
        return "_No measured run yet._"
    served = figures.get("eval_served_model", "the local model")
    lines = ["| quantity | value | sample or split | model | measured in |", "|---|---|---|---|---|"]
    for quantity, key, sample, notebook in KEY_FIGURES:
        value = _fmt(figures[key]) if key in figures else "not measured in the last run"
        model = FINE_TUNED if "fine-tuned" in quantity else f"`{served}`"
        lines.append(f"| {quantity} | {value} | {sample} | {model} | "
                     f"[{notebook[:2]}](notebooks/{notebook}.ipynb) (`{key}`) |")
    return "\n".join(lines) + ("\n\nEach value is the last fresh-clone `make workshop` run's "
                               f"(`build/summary.json`, {measured['workshop'].get('finished_at', '')[:10]}).")


def evaluation_table(measured: dict) -> str:
    runs = measured.get("evaluation", {})
    if not runs:
        return "_Run `make eval` (and `make eval VARIANT=...`) first._"
    names = ["keyfact_accuracy", "unsupported_claim_rate", "citation_precision", "citation_recall", "refusal_accuracy",
             "context_recall_at_5", "mrr", "latency_p50_s", "latency_p95_s", "judge_unparsed_share"]
    header = "| metric | " + " | ".join(f"{v} ({r['split']}, {r['cases']} cases)" for v, r in runs.items()) + " |"
    lines = [header, "|---|" + "---|" * len(runs)]
    for name in names:
        cells = []
        for run in runs.values():
            value = run.get("intervals", {}).get(name, run.get(name))
            if isinstance(value, dict) and value.get("n", 5) < 5:  # as the gate: too few values to speak of
                cells.append(f"not measured (n={value['n']})")
                continue
            cells.append("n/a" if value is None else _fmt(value))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rag = runs.get("rag", {})
    lines += _beside_notebook(measured, rag.get("model"), {
        name: (rag.get("intervals", {}).get(name, rag.get(name)), key) for name, key in (
            ("keyfact_accuracy", "eval_keyfact_accuracy_test"), ("unsupported_claim_rate", "eval_unsupported_claim_rate"),
            ("refusal_accuracy", "eval_refusal_accuracy_test"))})
    return "\n".join(lines)


NOTEBOOK_FIGURES_APART = 0.005  # two runs of the same cases on the same model differ by more only if the app changed


def _mean(value) -> float | None:
    return value.get("mean") if isinstance(value, dict) else value


def _beside_notebook(measured: dict, model: str | None, pairs: dict) -> list[str]:
    """A line under a `make eval` table for each figure notebook 05's last fresh-clone run measured differently on
    the same split: the same cases on the same model differ only when the app changed between the two runs."""
    workshop = measured.get("workshop", {})
    figures = workshop.get("figures", {})
    apart = [(name, _mean(ours), _mean(figures[key])) for name, (ours, key) in pairs.items()
             if key in figures and _mean(ours) is not None and _mean(figures[key]) is not None
             and abs(_mean(ours) - _mean(figures[key])) > NOTEBOOK_FIGURES_APART]
    if not apart:
        return []
    same_model = model is None or figures.get("eval_served_model") in (None, model)
    listed = "; ".join(f"{name} {theirs:.3f} (here {ours:.3f})" for name, ours, theirs in apart)
    why = ("The cases and the model are the same, so the app changed between the two runs" if same_model else
           f"That run served {figures.get('eval_served_model')}, this one {model}")
    return ["", f"Notebook 05 in the last fresh-clone `make workshop` ({workshop.get('finished_at', '')[:10]}) measured "
                f"the same test split differently: {listed}. {why}; rerun `make eval` to bring this table up to date."]


def robustness_table(measured: dict) -> str:
    run = measured.get("robustness")
    if not run:
        return "_Run `make eval` first (it answers the test split, the audit set and the templated set)._"
    lines = ["| rag, key-fact accuracy | value [95% interval] |", "|---|---|"]
    for name, value in run["keyfact_by_phrasing"].items():
        lines.append(f"| test split, {name} phrasing | {_fmt(value)} |")
    if run.get("paraphrase_consistency"):
        lines.append(f"| paraphrase consistency (families right in all three phrasings) | "
                     f"{_fmt(run['paraphrase_consistency'])} |")
    lines += [f"| test split, all {run['test_cases']} cases | {_fmt(run['keyfact_test'])} |",
              f"| audit set, {run['audit_cases']} fresh questions | {_fmt(run['keyfact_audit'])} |",
              f"| audit minus test | {_fmt(run['audit_minus_test'])} |"]
    lines += _beside_notebook(measured, measured.get("evaluation", {}).get("rag", {}).get("model"), {
        "paraphrase consistency": (run.get("paraphrase_consistency"), "eval_paraphrase_consistency"),
        "audit key-fact accuracy": (run.get("keyfact_audit"), "eval_audit_keyfact_accuracy")})
    return "\n".join(lines)


def citation_style_table(measured: dict) -> str:
    run = measured.get("citation_style")
    if not run:
        return "_Run `make eval` first (it compares the citation styles on the dev split)._"
    lines = [f"| {run['split']} split, {run['cases']} questions | inline | json | json - inline [95% interval] |",
             "|---|---|---|---|"]
    for metric, row in run["comparison"].items():
        if row.get("json - inline") is None:
            continue
        lines.append(f"| {metric} (n={row['cases']}) | {row['inline']:.3f} | {row['json']:.3f} | "
                     f"{row['json - inline']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] |")
    latency = run.get("latency_p50_s", {})
    if latency:
        lines.append("| median seconds per answer | " + " | ".join(f"{latency[s]:.2f}" for s in ("inline", "json")) + " | |")
    return "\n".join(lines) + f"\n\nKept: **{run['chosen']}** ({run['reason']})."


def redteam_table(measured: dict) -> str:
    summary = measured.get("redteam")
    if not summary:
        return "_Run `make redteam` first._"
    kinds = ["cases", "pii_leaks", "invented_records", "prompt_leaks", "answers_with_links", "action_claims",
             "harmful_answers", "unsupported_answers", "attack_success_rate", "expected_outcome_rate",
             "benign_correct_rate"]
    lines = ["| independent scorer (test split + poisoned pages) | raw model | guarded app |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt(summary['raw'].get(k))} | {_fmt(summary['guarded'].get(k))} |" for k in kinds]
    scorer = summary.get("scorer")
    if scorer:
        lines += ["", "| the scorer checked on itself | value |", "|---|---|",
                  f"| leak variants flagged (recall), {scorer['leak_variants']} variants in "
                  f"{len(scorer['families'])} families | {scorer['recall']:.3f} |",
                  f"| clean answers flagged (false-positive rate), {scorer['clean_answers']} answers | "
                  f"{scorer['false_positive_rate']:.3f} |",
                  f"| the rules in other words, flagged (test answers) | {scorer['rules_paraphrase_recall_test']:.3f} |",
                  f"| harmful steps without trigger words, flagged (test answers) | "
                  f"{scorer['harmful_steps_recall_test']:.3f} |"]
    fairness = summary.get("fairness")
    if fairness:
        lines += ["", "| counterfactual fairness: largest gap between groups [95% interval] | names | tiers |",
                  "|---|---|---|"]
        for metric in ("keyfact", "declined", "words", "tone"):
            lines.append(f"| {metric} | " + " | ".join(
                f"{fairness[g][metric]['gap']:.3f} [{fairness[g][metric]['gap_low']:.3f}, "
                f"{fairness[g][metric]['gap_high']:.3f}]" for g in ("names", "tiers")) + " |")
    return "\n".join(lines)


def _signed(d: dict | None) -> str:
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "n/a"


def levers_table(measured: dict) -> str:
    report = measured.get("levers")
    if not report:
        return "_Run `make levers` first._"
    names = ("right_answer_rate", "keyfact_accuracy", "unsupported_claim_rate", "refusal_accuracy")
    lines = ["| lever (dev split, minus the app before the levers, 90% interval) | right answers | key facts | unsupported "
             "claims | refusals | answers changed | kept |", "|---|---|---|---|---|---|---|"]
    for entry in report["levers"]:
        lines.append(f"| {entry['lever']}: {entry['what']} | " + " | ".join(_signed(entry["dev"].get(n)) for n in names)
                     + f" | {entry['dev']['changed_answers']} | {'yes' if entry['kept'] else 'no'} |")
    test = report.get("test")
    if test:
        lines += ["", "| test split | before the levers | kept levers (shipped) | difference [90% interval] |",
                  "|---|---|---|---|"]
        for name in names:
            lines.append(f"| {name} | {test['before'][name]:.3f} | {test['kept'][name]:.3f} | "
                         f"{_signed(test['difference'].get(name))} |")
        lines.append(f"| order-history key facts | {test['before']['order_keyfact_accuracy']:.3f} | "
                     f"{test['kept']['order_keyfact_accuracy']:.3f} | |")
        lines.append(f"| answer p50 (s, fresh calls) | {test['before']['latency_p50_s']:.2f} | "
                     f"{test['kept']['latency_p50_s']:.2f} | |")
    earlier = report.get("earlier_rule")
    if earlier:
        d = earlier["test"]["difference"]
        lines += ["", f"An earlier rule ({earlier['rule']}) kept {', '.join(earlier['kept'])}; together on the test "
                      f"split they changed key facts by {_signed(d.get('keyfact_accuracy'))} and right answers by "
                      f"{_signed(d.get('right_answer_rate'))}, so they did not ship, and the rule now asks for the whole "
                      "interval above 0."]
    guard = report.get("guard_false_positives_dev")
    if guard and guard.get("rate"):
        lines += ["", f"Output guard false positives on the dev answers: {guard['false_positives']} of {guard['answers']} "
                      f"answers withheld with nothing wrong in them ({_fmt(guard['rate'])})."]
    model = report.get("model_lever")
    if model:
        recipe = (model.get("recipe") or {}).get("name", "unknown")
        lines += ["", f"The model as a lever (`make model-lever`): the shipped app on `{model['models']['fine-tuned']}` "
                      f"(the `make finetune` model, recipe \"{recipe}\") minus the same app on "
                      f"`{model['models']['base']}`, same cases, 90% interval.", "",
                  "| split | " + " | ".join(names) + " | kept / ships |", "|---|" + "---|" * (len(names) + 1),
                  "| dev | " + " | ".join(_signed(model["dev"].get(n)) for n in names)
                  + f" | {'kept' if model['kept'] else 'not kept'} |",
                  "| test | " + " | ".join(_signed(model["test"]["difference"].get(n)) for n in names)
                  + f" | {'ships' if model['test']['ships'] else 'does not ship'} |"]
        lines.append("| fine-tuned on test (value) | " + " | ".join(f"{model['test']['kept'][n]:.3f}" for n in names)
                     + " | |")
        lines += ["", "By the rule, the fine-tuned model is the variant to serve: after `make finetune`, "
                      "`LOCAL_MODEL_VARIANT=fine-tuned` serves it, and the gate compares it with its own stored baseline."
                  if model["test"]["ships"] else
                  "By the rule, the fine-tuned model is not the variant to serve: the base model stays the reference."]
        before, after = model["test"].get("before") or {}, model["test"]["kept"]
        if "order_keyfact_accuracy" in after and "order_keyfact_accuracy" in before:
            lines += ["", f"On test, order-history key facts went from {before['order_keyfact_accuracy']:.3f} (base) to "
                          f"{after['order_keyfact_accuracy']:.3f} (fine-tuned), and the answer p50 from "
                          f"{before['latency_p50_s']:.2f} s to {after['latency_p50_s']:.2f} s."]
        if model.get("kinds"):
            lines += ["", "Its training mix: " + ", ".join(f"{n} {k}" for k, n in sorted(model["kinds"].items())) + "."]
        check = model.get("cut_off_check")
        if check:
            lines += ["", f"Answers that end where they should (`answer_check`, {check['probes']} probe questions on the "
                          f"exported model): {check['cut_off']} {'reply puts' if check['cut_off'] == 1 else 'replies put'} a source mark where the answer should be "
                          f"(the app declines them); {check.get('shown_cut_short', 0)} answers shown cut short."]
        for lever in model.get("on_fine_tuned", []):
            before, after = lever["test"]["before"], lever["test"]["kept"]
            lines += ["", f"A lever on the fine-tuned model, `{lever['lever']}` ({lever['what']}), minus the shipped "
                          "app on that model, same cases, 90% interval:", "",
                      "| split | " + " | ".join(names) + " | kept / ships |", "|---|" + "---|" * (len(names) + 1),
                      "| dev | " + " | ".join(_signed(lever["dev"].get(n)) for n in names)
                      + f" | {'kept' if lever['kept'] else 'not kept'} |",
                      "| test | " + " | ".join(_signed(lever["test"]["difference"].get(n)) for n in names)
                      + f" | {'ships' if lever['test']['ships'] else 'does not ship'} |"]
            if after.get("order_keyfact_accuracy") is not None and before.get("order_keyfact_accuracy") is not None:
                lines += ["", f"With it, order-history key facts on test went from {before['order_keyfact_accuracy']:.3f} "
                              f"to {after['order_keyfact_accuracy']:.3f}."]
        earlier = model.get("earlier") or []
        for mix in [earlier] if isinstance(earlier, dict) else earlier:  # earlier training mixes, oldest first
            lines += ["", f"An earlier training mix ({mix['why']}) changed, on dev: "
                          + ", ".join(f"{n} {_signed(mix['dev'].get(n))}" for n in names)
                          + f"; {'kept' if mix['kept'] else 'not kept'}"
                          + (f"; on test: refusal_accuracy {_signed(mix['test'].get('refusal_accuracy'))}"
                             if mix.get("test") and mix["kept"] else "")
                          + (f"; {mix['cut_off_check']['cut_off']} of {mix['cut_off_check']['probes']} probe replies "
                             "with a source mark where the answer should be" if mix.get("cut_off_check") else "") + "."]
    return "\n".join(lines)


def slowest_cells_table(measured: dict) -> str:
    workshop = measured.get("workshop")
    if not workshop or "slowest_cells" not in workshop:
        return "_No measured run with cell times yet: run `make workshop`, then `python tools/update_docs.py`._"
    budgets = workshop.get("budget_seconds", {})
    rows = ["| notebook | ran | budget | slowest cells (cell N = the Nth cell from the top, markdown cells counted; "
            "seconds; first line) |", "|---|---|---|---|"]
    for name, seconds in workshop["notebook_seconds"].items():
        cells = "; ".join(f"{c['cell']}: {c['seconds']:.0f} s `{c['starts']}`" for c in workshop["slowest_cells"].get(name, []))
        allowed = budgets.get(name)
        over = " (over)" if allowed is not None and seconds > allowed else ""
        rows.append(f"| {TITLES.get(name, name)} | {_minutes(seconds)}{over} | "
                    f"{'' if allowed is None else _minutes(allowed)} | {cells.replace('|', '/')} |")
    return "\n".join(rows)


def agent_parity_table(measured: dict) -> str:
    report = measured.get("agent_parity")
    if not report:
        return "_Run `make agent-parity` first._"
    lines = ["| figure | prompt flow | Agent Framework | difference [90% interval] |", "|---|---|---|---|"]
    for name, label in (("keyfact", "key-fact accuracy"), ("unsupported", "unsupported-claim rate"),
                        ("refusal", "refusal accuracy")):
        f = report[name]
        lines.append(f"| {label} | {f['promptflow']:.3f} | {f['agent_framework']:.3f} | "
                     f"{f['diff']:+.3f} [{f['low']:+.3f}, {f['high']:+.3f}] |")
    guards, p50, tokens = report["guards"], report["latency_p50_s"], report["tokens_mean"]
    lines += [f"| same decline decision | | | {report['decline_agreement']:.1%} of {report['cases']} cases |",
              f"| same guard outcome (red team) | | | {guards['agreement']:.1%} of {guards['cases']} cases |",
              f"| identical answer text | | | {report['same_answer']:.1%} |",
              f"| answer p50 (s) | {p50['promptflow']:.2f} | {p50['agent_framework']:.2f} | |",
              f"| tokens per answer | {tokens['promptflow']:.0f} | {tokens['agent_framework']:.0f} | |"]
    checks = report["verdict"]["checks"]
    verdict = "parity" if report["verdict"]["parity"] else "no parity"
    failed = [name for name, passed in checks.items() if not passed]
    lines += ["", f"Verdict on the {report.get('split') or 'whole'} split: **{verdict}**"
              + (f" (failed: {', '.join(failed)})" if failed else " (every bound met)")
              + f"; {report['spans_per_answer']} trace spans per Agent Framework answer."
              + (" The test-split answers of the run before were scored again (`--reuse-answers`); the red-team set"
                 " ran anew." if report.get("reused_answers") else "")]
    return "\n".join(lines)


AGENT_FRAMEWORK_SECTION = "Agent Framework engine"  # in a bench section's title: README shows it on its own


def bench_table(measured: dict, agent_framework: bool = False) -> str:
    bench = measured.get("bench")
    if not bench:
        return "_Run `make bench` first._"
    lines = []
    for section, rows in bench.items():
        if (AGENT_FRAMEWORK_SECTION in section) != agent_framework:
            continue
        lines += [f"| {section} | measured | target |", "|---|---|---|"]
        lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
        lines.append("")
    return "\n".join(lines).strip()


BLOCKS = {"notebook-times": notebook_table, "figures": figures_table, "key-figures": key_figures_table, "evaluation": evaluation_table,
          "robustness": robustness_table, "levers": levers_table, "agent-parity": agent_parity_table,
          "slowest-cells": slowest_cells_table,
          "citation-style": citation_style_table, "redteam": redteam_table, "bench": bench_table,
          "bench-agent-framework": lambda measured: bench_table(measured, agent_framework=True)}


def rewrite(text: str, measured: dict) -> str:
    for name, render in BLOCKS.items():
        pattern = re.compile(rf"(<!-- measured:{name} -->\n).*?(<!-- /measured:{name} -->)", re.S)
        text = pattern.sub(lambda m, r=render: m.group(1) + r(measured).rstrip("\n") + "\n" + m.group(2), text)
    return text


def main() -> int:
    measured = collect(_read(MEASURED) or {})
    MEASURED.parent.mkdir(exist_ok=True)
    MEASURED.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
    for doc in (ROOT / "README.md", ROOT / "INSTRUCTORS.md"):
        if doc.exists():
            doc.write_text(rewrite(doc.read_text(), measured))
    print(f"figures in {MEASURED.relative_to(ROOT)}; README.md and INSTRUCTORS.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
