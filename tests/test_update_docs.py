"""tools/update_docs.py: measured figures reach the docs between their markers, and nothing else changes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("update_docs", ROOT / "tools" / "update_docs.py")
update_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(update_docs)

MEASURED = {"workshop": {"finished_at": "2026-12-01T10:00:00", "machine": {"cpus": 2, "python": "3.11.2"},
                         "total_seconds": 500.0, "notebook_seconds": {"00_introduction": 12.0, "05_evaluation": 200.0},
                         "figures": {"rag_keyfact_accuracy": 0.5}}}


def test_blocks_are_filled_and_the_text_around_them_kept():
    text = ("before\n<!-- measured:notebook-times -->\n<!-- /measured:notebook-times -->\nmiddle\n"
            "<!-- measured:figures -->\nold table\n<!-- /measured:figures -->\nafter\n")
    out = update_docs.rewrite(text, MEASURED)
    assert out.startswith("before\n") and "\nmiddle\n" in out and out.endswith("after\n")
    assert "| 00 Introduction | 12 s |" in out and "| 05 Evaluation | 3.3 min |" in out
    assert "| **all two** (`make workshop`) | **8.3 min** |" in out
    assert "old table" not in out and "| `rag_keyfact_accuracy` | 0.500 |" in out
    assert update_docs.rewrite(out, MEASURED) == out, "rewriting twice changes nothing"


def test_the_run_times_say_whether_notebook_04_trained_its_own_model():
    fresh = {"workshop": {**MEASURED["workshop"], "finetune_model_present": False}}
    prebuilt = {"workshop": {**MEASURED["workshop"], "finetune_model_present": True}}
    assert "without a `make finetune` model (notebook 04 trained its own)" in update_docs.notebook_table(fresh)
    assert "with a `make finetune` model present" in update_docs.notebook_table(prebuilt)
    assert "make finetune" not in update_docs.notebook_table(MEASURED)  # an older run that did not record it


def test_without_a_run_the_block_says_what_to_run():
    out = update_docs.rewrite("<!-- measured:evaluation -->\n<!-- /measured:evaluation -->\n", {})
    assert "make eval" in out


def test_a_failed_workshop_run_does_not_replace_the_last_good_figures(tmp_path, monkeypatch):
    (tmp_path / "summary.json").write_text(json.dumps({**MEASURED["workshop"], "total_seconds": 1.0,
                                                       "failures": ["03_rag"]}))
    monkeypatch.setattr(update_docs, "BUILD", tmp_path)
    assert update_docs.collect(MEASURED)["workshop"]["total_seconds"] == 500.0
    (tmp_path / "summary.json").write_text(json.dumps({**MEASURED["workshop"], "total_seconds": 1.0}))
    assert update_docs.collect(MEASURED)["workshop"]["total_seconds"] == 1.0


def test_the_citation_style_block_shows_each_paired_difference_and_the_choice():
    run = {"split": "dev", "cases": 40, "chosen": "inline", "reason": "key-fact accuracy: ... so inline costs less",
           "latency_p50_s": {"inline": 2.3, "json": 2.4},
           "comparison": {"key-fact accuracy": {"inline": 0.414, "json": 0.271, "json - inline": -0.143,
                                                "low": -0.272, "high": -0.014, "cases": 35},
                          "citation precision (json answers that cite)": {"inline": None, "json": 1.0,
                                                                          "json - inline": None, "cases": 14}}}
    text = "<!-- measured:citation-style -->\n<!-- /measured:citation-style -->\n"
    out = update_docs.rewrite(text, {"citation_style": run})
    assert "| key-fact accuracy (n=35) | 0.414 | 0.271 | -0.143 [-0.272, -0.014] |" in out
    assert "citation precision" not in out, "an unpaired figure has no difference to show"
    assert "Kept: **inline**" in out and "| median seconds per answer | 2.30 | 2.40 | |" in out
    assert "make eval" in update_docs.rewrite(text, {})


def test_make_eval_runs_replace_the_notebooks_stand_ins(tmp_path, monkeypatch):
    (tmp_path / "eval" / "rag").mkdir(parents=True)
    (tmp_path / "eval" / "rag" / "metrics.json").write_text(json.dumps({"split": "test", "cases": 41}))
    monkeypatch.setattr(update_docs, "BUILD", tmp_path)
    previous = {"evaluation": {"rag (notebook 05)": {"split": "test", "cases": 41}}}
    assert list(update_docs.collect(previous)["evaluation"]) == ["rag"]


def test_the_robustness_block_shows_phrasings_and_the_audit_beside_the_test_split():
    interval = {"mean": 0.3, "low": 0.2, "high": 0.4, "n": 60}
    measured = {"robustness": {"test_cases": 219, "audit_cases": 36, "keyfact_test": interval,
                               "keyfact_audit": {**interval, "mean": 0.1, "n": 33},
                               "audit_minus_test": {"mean": -0.2, "low": -0.3, "high": -0.1, "n": 33},
                               "keyfact_by_phrasing": {"catalog": interval, "customer": interval},
                               "paraphrase_consistency": {"mean": 0.05, "low": 0.0, "high": 0.1, "n": 63}}}
    out = update_docs.rewrite("<!-- measured:robustness -->\n<!-- /measured:robustness -->\n", measured)
    assert "| test split, catalog phrasing | 0.300 [0.200, 0.400] (n=60) |" in out
    assert "| audit set, 36 fresh questions | 0.100 [0.200, 0.400] (n=33) |" in out
    assert "| audit minus test | -0.200 [-0.300, -0.100] (n=33) |" in out
    assert "make eval" in update_docs.rewrite("<!-- measured:robustness -->\n<!-- /measured:robustness -->\n", {})


def test_the_levers_block_shows_each_lever_its_verdict_and_the_test_confirmation():
    interval = {"mean": 0.05, "low": 0.013, "high": 0.096, "n": 219}
    worse = {"mean": -0.069, "low": -0.103, "high": -0.034, "n": 204}
    summary = {"right_answer_rate": 0.1, "keyfact_accuracy": 0.2, "unsupported_claim_rate": 0.3,
               "refusal_accuracy": 0.9, "order_keyfact_accuracy": 0.1, "latency_p50_s": 1.9}
    report = {"levers": [{"lever": "not-carried", "what": "declines", "kept": True,
                          "dev": {"right_answer_rate": interval, "changed_answers": 11}}],
              "test": {"before": summary, "kept": summary, "ships": True,
                       "difference": {"keyfact_accuracy": worse}},
              "earlier_rule": {"rule": "a positive mean", "kept": ["fewer-facts"],
                               "test": {"difference": {"keyfact_accuracy": worse}}}}
    out = update_docs.levers_table({"levers": report})
    assert "| not-carried: declines | +0.050 [+0.013, +0.096] | n/a | n/a | n/a | 11 | yes |" in out
    assert "| keyfact_accuracy | 0.200 | 0.200 | -0.069 [-0.103, -0.034] |" in out
    assert "kept fewer-facts" in out and "did not ship" in out
    assert update_docs.levers_table({}) == "_Run `make levers` first._"
    assert "make model-lever" not in out, "no model row before it is measured"
    report["model_lever"] = {"models": {"base": "base-model", "fine-tuned": "tuned-model"}, "recipe": {"name": "full"},
                             "dev": {"right_answer_rate": interval}, "kept": True,
                             "test": {"difference": {"keyfact_accuracy": worse}, "kept": summary, "ships": False}}
    out = update_docs.levers_table({"levers": report})
    assert "`tuned-model` (the `make finetune` model, recipe \"full\") minus the same app on `base-model`" in out
    assert "| dev | +0.050 [+0.013, +0.096] | n/a | n/a | n/a | kept |" in out
    assert "| test | n/a | -0.069 [-0.103, -0.034] | n/a | n/a | does not ship |" in out


def test_the_levers_figure_reads_as_one_line_per_lever():
    levers = {"not-carried": {"dev_right_answer_difference": {"mean": 0.05, "low": 0.013, "high": 0.096}, "kept": True},
              "fewer-facts": {"dev_right_answer_difference": {"mean": 0.009, "low": -0.026, "high": 0.046}, "kept": False}}
    text = update_docs._fmt(levers)
    assert text.startswith("not-carried +0.050 [+0.013, +0.096] (kept); fewer-facts +0.009 [-0.026, +0.046] (not kept)")


def test_the_slowest_cells_block_marks_a_notebook_over_its_budget():
    measured = {"workshop": {**MEASURED["workshop"], "budget_seconds": {"00_introduction": 10, "05_evaluation": 300},
                             "slowest_cells": {"00_introduction": [{"cell": 3, "seconds": 9.5, "starts": "import a|b"}],
                                               "05_evaluation": [{"cell": 12, "seconds": 150.0, "starts": "run()"}]}}}
    out = update_docs.slowest_cells_table(measured)
    assert "| 00 Introduction | 12 s (over) | 10 s | 3: 10 s `import a/b` |" in out
    assert "| 05 Evaluation | 3.3 min | 5.0 min | 12: 150 s `run()` |" in out
    assert "No measured run" in update_docs.slowest_cells_table(MEASURED)


def test_the_parity_block_names_the_bounds_that_failed():
    figure = {"promptflow": 0.3, "agent_framework": 0.2, "diff": -0.1, "low": -0.15, "high": -0.05}
    report = {"keyfact": figure, "unsupported": figure, "refusal": figure, "cases": 219, "same_answer": 0.5,
              "decline_agreement": 0.99, "guards": {"agreement": 1.0, "cases": 121},
              "latency_p50_s": {"promptflow": 1.9, "agent_framework": 1.8},
              "tokens_mean": {"promptflow": 500, "agent_framework": 500}, "spans_per_answer": 9.0, "split": "test",
              "verdict": {"parity": False, "checks": {"keyfact_diff": False, "decline_agreement": True,
                                                      "guard_agreement": True}}}
    out = update_docs.agent_parity_table({"agent_parity": report})
    assert "**no parity** (failed: keyfact_diff)" in out and "| key-fact accuracy | 0.300 | 0.200 | -0.100 [-0.150, -0.050] |" in out
    report["verdict"] = {"parity": True, "checks": {k: True for k in report["verdict"]["checks"]}}
    assert "**parity** (every bound met)" in update_docs.agent_parity_table({"agent_parity": report})


def test_each_key_figure_names_the_notebook_that_records_it_and_shows_its_sample():
    for quantity, key, sample, notebook in update_docs.KEY_FIGURES:
        text = (ROOT / "notebooks" / f"{notebook}.ipynb").read_text()
        assert key in text or key.rsplit("_", 2)[0] in text, f"{key} is not recorded by notebook {notebook}"
    measured = {"workshop": {"finished_at": "2026-12-01T10:00:00", "figures": {
        "eval_served_model": "tiny-model", "keyfact_accuracy_rag": 0.25, "finetune_keyfact_test_ft_rag": 0.5,
        "eval_keyfact_accuracy_test": {"mean": 0.3, "low": 0.2, "high": 0.4, "n": 200}}}}
    out = update_docs.key_figures_table(measured)
    rows = {line.rsplit("(`", 1)[1].split("`)")[0]: line for line in out.splitlines() if line.startswith("| ") and "(`" in line}
    assert set(rows) == {key for _, key, _, _ in update_docs.KEY_FIGURES}
    assert "| 0.250 | notebook 03's sample" in rows["keyfact_accuracy_rag"]
    assert "`tiny-model`" in rows["keyfact_accuracy_rag"] and "[03](notebooks/03_rag.ipynb)" in rows["keyfact_accuracy_rag"]
    assert "| 0.300 [0.200, 0.400] (n=200) | the whole test split" in rows["eval_keyfact_accuracy_test"]
    assert "fine-tuned model of notebook 04" in rows["finetune_keyfact_test_ft_rag"]
    assert "tiny-model" not in rows["finetune_keyfact_test_ft_rag"], "a fine-tuned figure is not the base model's"
    assert out.count("not measured in the last run") == len(update_docs.KEY_FIGURES) - 3
    assert update_docs.key_figures_table({}) == "_No measured run yet._"


def test_an_earlier_training_mix_of_the_model_lever_is_reported_beside_it():
    worse = {"mean": -0.38, "low": -0.45, "high": -0.32, "n": 219}
    summary = {"right_answer_rate": 0.1, "keyfact_accuracy": 0.2, "unsupported_claim_rate": 0.3, "refusal_accuracy": 0.9}
    model = {"models": {"base": "b", "fine-tuned": "t"}, "recipe": {"name": "full"}, "kept": False,
             "dev": {"refusal_accuracy": worse}, "test": {"difference": {}, "kept": summary, "ships": False},
             "earlier": {"why": "13% declines", "dev": {"refusal_accuracy": worse}, "kept": False}}
    out = update_docs.levers_table({"levers": {"levers": [], "model_lever": model}})
    assert "An earlier training mix (13% declines) changed, on dev: right_answer_rate n/a" in out
    assert "refusal_accuracy -0.380 [-0.450, -0.320]; not kept." in out


def test_an_earlier_mix_kept_on_dev_shows_its_test_refusals_and_its_cut_off_count():
    worse = {"mean": -0.023, "low": -0.042, "high": -0.004, "n": 219}
    summary = {"right_answer_rate": 0.1, "keyfact_accuracy": 0.2, "unsupported_claim_rate": 0.3, "refusal_accuracy": 0.9}
    model = {"models": {"base": "b", "fine-tuned": "t"}, "recipe": {"name": "full"}, "kept": True,
             "dev": {}, "test": {"difference": {}, "kept": summary, "ships": True},
             "earlier": [{"why": "answers around the question", "dev": {}, "kept": True,
                          "test": {"refusal_accuracy": worse}, "cut_off_check": {"cut_off": 9, "probes": 20}},
                         {"why": "older", "dev": {}, "kept": False, "test": {"refusal_accuracy": worse}}]}
    out = update_docs.levers_table({"levers": {"levers": [], "model_lever": model}})
    assert ("kept; on test: refusal_accuracy -0.023 [-0.042, -0.004]; 9 of 20 probe replies with a source mark"
            in out), out
    assert "(older) changed, on dev: right_answer_rate n/a, keyfact_accuracy n/a, unsupported_claim_rate n/a, " \
           "refusal_accuracy n/a; not kept." in out


def test_the_model_lever_shows_order_history_and_latency_on_test():
    before = {"right_answer_rate": 0.1, "keyfact_accuracy": 0.2, "unsupported_claim_rate": 0.3, "refusal_accuracy": 0.9,
              "order_keyfact_accuracy": 0.1, "latency_p50_s": 2.626}
    after = {**before, "order_keyfact_accuracy": 0.0333, "latency_p50_s": 2.029}
    model = {"models": {"base": "b", "fine-tuned": "t"}, "recipe": {"name": "full"}, "kept": True, "dev": {},
             "test": {"before": before, "difference": {}, "kept": after, "ships": True},
             "cut_off_check": {"probes": 20, "cut_off": 1, "shown_cut_short": 0}}
    out = update_docs.levers_table({"levers": {"levers": [], "model_lever": model}})
    assert "order-history key facts went from 0.100 (base) to 0.033 (fine-tuned)" in out
    assert "answer p50 from 2.63 s to 2.03 s" in out and "1 reply puts a source mark" in out
    assert "the fine-tuned model is the variant to serve" in out
    model["test"]["ships"] = False
    assert "the fine-tuned model is not the variant to serve" in update_docs.levers_table(
        {"levers": {"levers": [], "model_lever": model}})


def test_a_lever_measured_on_the_fine_tuned_model_shows_its_verdicts_and_order_history():
    summary = {"right_answer_rate": 0.3, "keyfact_accuracy": 0.4, "unsupported_claim_rate": 0.0, "refusal_accuracy": 0.9,
               "order_keyfact_accuracy": 0.2, "latency_p50_s": 1.6}
    gain = {"mean": 0.05, "low": 0.01, "high": 0.09, "n": 219}
    lever = {"lever": "matched-orders-on-fine-tuned", "what": "only the orders asked about", "kept": True,
             "dev": {"right_answer_rate": gain},
             "test": {"before": summary, "kept": {**summary, "order_keyfact_accuracy": 0.5, "latency_p50_s": None},
                      "difference": {"refusal_accuracy": {"mean": -0.03, "low": -0.05, "high": -0.01, "n": 219}},
                      "ships": False}}
    model = {"models": {"base": "b", "fine-tuned": "t"}, "recipe": {"name": "full"}, "kept": True, "dev": {},
             "test": {"before": summary, "difference": {}, "kept": summary, "ships": True}, "on_fine_tuned": [lever]}
    out = update_docs.levers_table({"levers": {"levers": [], "model_lever": model}})
    assert "`matched-orders-on-fine-tuned` (only the orders asked about)" in out
    assert "| dev | +0.050 [+0.010, +0.090] | n/a | n/a | n/a | kept |" in out, out
    assert "| test | n/a | n/a | n/a | -0.030 [-0.050, -0.010] | does not ship |" in out
    assert "order-history key facts on test went from 0.200 to 0.500" in out


def test_every_benchmark_target_in_readme_says_whether_it_was_met():
    """A missed target (the hybrid recall below keyword's, the RAG gain under 0.30) reads "NOT met", not as a pass."""
    from contoso_chat.evaluation.loadtest import judged

    assert judged("target <= 1 s", False) == "target <= 1 s: NOT met" and judged("target < 5 s", True).endswith(": met")
    readme = (ROOT / "README.md").read_text()
    rows = [line for name in ("bench", "bench-agent-framework")
            for line in readme.split(f"<!-- measured:{name} -->")[1].split(f"<!-- /measured:{name} -->")[0].splitlines()
            if line.startswith("| ") and "| target" in line and "| measured |" not in line]
    assert len(rows) >= 15
    assert all(row.rstrip(" |").endswith(("met", "NOT met")) for row in rows), rows


def test_a_make_eval_table_says_when_notebook_05_measured_the_same_split_differently():
    run = {"split": "test", "cases": 219, "model": "m", "refusal_accuracy": 0.927,
           "intervals": {"refusal_accuracy": {"mean": 0.927, "low": 0.87, "high": 0.97, "n": 219}}}
    workshop = {"finished_at": "2026-12-04T17:12:30", "figures": {"eval_refusal_accuracy_test": 0.9635,
                                                                  "eval_served_model": "m"}}
    apart = update_docs.evaluation_table({"evaluation": {"rag": run}, "workshop": workshop})
    assert "refusal_accuracy 0.964 (here 0.927)" in apart and "the app changed between the two runs" in apart
    workshop["figures"]["eval_refusal_accuracy_test"] = 0.929
    assert "Notebook 05" not in update_docs.evaluation_table({"evaluation": {"rag": run}, "workshop": workshop})
    workshop["figures"].update(eval_refusal_accuracy_test=0.5, eval_served_model="other")
    assert "That run served other, this one m" in update_docs.evaluation_table({"evaluation": {"rag": run},
                                                                               "workshop": workshop})
