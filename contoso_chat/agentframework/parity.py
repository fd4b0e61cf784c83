"""Prompt flow and Agent Framework answer the same cases; the project's metrics say whether they are on a par.

    python -m contoso_chat.agentframework.parity              # the whole test split and the red-team set (make agent-parity)
    python -m contoso_chat.agentframework.parity --limit 24   # a sample, spread over the categories

Run it with .venv/agent-framework in front (`make agent-parity` does). The prompt flow side is a real `pf run` of
the flex flow over the cases, started in a process without Agent Framework's folder (prompt flow cannot load the
newer OpenTelemetry); the Agent Framework side runs a fresh workflow per case in this process. Both answer tables
are scored here by the same evaluators (`contoso_chat.evaluation.evaluators.score_answer`), and the Agent Framework
rows also go through Agent Framework's own evaluation API (`evaluate_agent` with local checks) and the project's
quality gate. Guard outcomes are compared on the red-team set, where the prompt flow side is the flex flow's
entry (`ContosoChat`, what `pf` calls) in this process.

Parity (`BOUNDS`): key-fact difference (Agent Framework minus prompt flow) within +/-0.05 with its 90% paired
interval including 0, the same decline decision on at least 95% of cases, the same guard outcome on every
red-team case. Writes build/agent_framework/parity.json and both answer tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm  # the text bar: its last state stays in a saved notebook (a widget shows 0% there)

from contoso_chat import guards, records
from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.evaluation import batch
from contoso_chat.evaluation.evaluators import score_answer
from contoso_chat.evaluation.intervals import paired_difference, percentile
from contoso_chat.paths import build_dir

BOUNDS = {"keyfact_diff": 0.05, "decline_agreement": 0.95, "guard_agreement": 1.0}
METRIC_COLUMNS = {"keyfact": "keyfact.keyfact", "unsupported": "unsupported.unsupported",
                  "refusal_correct": "decline.refusal_correct", "citation_precision": "citation.citation_precision",
                  "citation_recall": "citation.citation_recall"}
ENGINES = ("promptflow", "agent_framework")
NOT_APPLICABLE = "no key facts to state (a case to decline)"


def out_folder() -> Path:
    return build_dir() / "agent_framework"


def without_agent_framework(environ: dict[str, str]) -> dict[str, str]:
    """The environment with Agent Framework's folder taken off PYTHONPATH (prompt flow needs .venv's OpenTelemetry)."""
    kept = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and not Path(p).name == "agent-framework"]
    clean = {k: v for k, v in environ.items() if k != "PYTHONPATH"}
    return {**clean, "PYTHONPATH": os.pathsep.join(kept)} if kept else clean


def promptflow_answers(split: str | None, limit: int | None, out_dir: Path) -> pd.DataFrame:
    """The flex flow's answers from a `pf run` over the cases, made in a process without Agent Framework."""
    out_dir.mkdir(parents=True, exist_ok=True)
    answers = out_dir / "answers.jsonl"
    answers.unlink(missing_ok=True)
    command = [sys.executable, "-m", "contoso_chat.agentframework.parity", "--promptflow-only",
               "--split", split or "all", "--out", str(out_dir)] + (["--limit", str(limit)] if limit else [])
    done = subprocess.run(command, env=without_agent_framework(dict(os.environ)))
    if done.returncode != 0 or not answers.exists():
        raise RuntimeError(f"The prompt flow side failed (exit code {done.returncode}); its output is above.")
    return pd.read_json(answers, lines=True, dtype={"id": str, "customer_id": str})


def write_answers(rows: pd.DataFrame, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows.to_json(out_dir / "answers.jsonl", orient="records", lines=True, force_ascii=False)


def scored(rows: pd.DataFrame) -> pd.DataFrame:
    """The answer rows with the project's per-case metrics (the column names the gate reads) and the usage figures."""
    table = rows.copy()
    scores = pd.DataFrame([score_answer(row) for row in table.to_dict("records")], index=table.index)
    for name, column in METRIC_COLUMNS.items():
        table[column] = scores[name]
    usage = table["usage"].apply(lambda u: u if isinstance(u, dict) else {})
    table["decline_reason"] = usage.apply(lambda u: u.get("decline_reason"))
    return table


def compare(promptflow: pd.DataFrame, agent: pd.DataFrame) -> dict:
    """The two engines' figures on the same cases, Agent Framework minus prompt flow with 90% paired intervals."""
    merged = promptflow.set_index("id").join(agent.set_index("id"), lsuffix="_pf", rsuffix="_af", how="inner")
    if merged.empty:
        raise ValueError("The two answer tables share no case id; run both engines on the same cases.")
    families = list(merged["family_pf"]) if "family_pf" in merged else None
    figures = {}
    for name, column in (("keyfact", "keyfact.keyfact"), ("unsupported", "unsupported.unsupported"),
                         ("refusal", "decline.refusal_correct")):
        pf, af = merged[f"{column}_pf"].astype(float), merged[f"{column}_af"].astype(float)
        known = pf.notna() & af.notna()
        diff = paired_difference(list(af[known]), list(pf[known]),
                                 groups=[g for g, k in zip(families, known) if k] if families else None)
        figures[name] = {"promptflow": round(float(pf[known].mean()), 4), "agent_framework": round(float(af[known].mean()), 4),
                         "diff": round(diff.mean, 4), "low": round(diff.low, 4), "high": round(diff.high, 4),
                         "cases": int(known.sum())}
    same_decline = merged["declined_pf"] == merged["declined_af"]
    same_answer = merged["response_pf"] == merged["response_af"]
    differing = merged[~same_answer | ~same_decline]
    return {
        "cases": len(merged), **figures,
        "decline_agreement": round(float(same_decline.mean()), 4),
        "same_answer": round(float(same_answer.mean()), 4),
        "latency_p50_s": {e: round(percentile(list(merged[f"latency_s_{s}"]), 0.5), 3)
                          for e, s in zip(ENGINES, ("pf", "af"))},
        "tokens_mean": {e: round(float((merged[f"prompt_tokens_{s}"] + merged[f"completion_tokens_{s}"]).mean()), 1)
                        for e, s in zip(ENGINES, ("pf", "af"))},
        "differing": [{"id": i, "question": r["question_pf"], "promptflow": r["response_pf"],
                       "agent_framework": r["response_af"], "declined_pf": r["decline_reason_pf"],
                       "declined_af": r["decline_reason_af"]} for i, r in differing.iterrows()],
    }


def guard_outcome(reply: Callable[[], dict]) -> dict:
    """What the guards did with one request: the decline reason and the guard findings, or the input guard's refusal."""
    try:
        answer = reply()
    except guards.InputError as error:
        return {"outcome": f"input-guard:{error.field}", "answer": error.message}
    usage = answer["usage"]
    return {"outcome": f"{usage['decline_reason'] or 'answered'}|{','.join(sorted(usage['guard']))}",
            "answer": answer["answer"]}


def guard_agreement(app, agent_reply: Callable, cases: Sequence[records.RedTeamCase],
                    before_each: Callable[[], None] = lambda: None) -> dict:
    """Every red-team case through the flex flow's app, then every case through the agent; the share whose guard
    outcome is the same, and the ones that differ (with both answers).

    One engine answers all cases before the other, as in the test-split comparison: asking the same prompt twice
    in a row lets the model server reuse its cached reading of the prompt, which can change a near-tie in the
    next word and so the answer, whichever engine asks second. `before_each` (engine.settle) puts the model server
    in the same state before every request of both engines.
    """
    cases = list(cases)

    def outcome(reply, case):
        before_each()
        return guard_outcome(lambda: reply(case.attack, case.customer_id, list(case.chat_history)))
    flow = [outcome(app, case) for case in tqdm(cases, desc="red-team cases, prompt flow's app", unit="case")]
    agent = [outcome(agent_reply, case) for case in tqdm(cases, desc="red-team cases, Agent Framework", unit="case")]
    table = pd.DataFrame([{"id": case.id, "category": case.category, "promptflow": pf["outcome"],
                           "agent_framework": af["outcome"], "same": pf["outcome"] == af["outcome"],
                           "answer_pf": pf["answer"], "answer_af": af["answer"]}
                          for case, pf, af in zip(cases, flow, agent)])
    return {"cases": len(table), "agreement": round(float(table["same"].mean()), 4),
            "differing": table[~table["same"]].to_dict("records"), "outcomes": table}


def verdict(report: dict) -> dict:
    """Parity or not, bound by bound."""
    keyfact = report["keyfact"]
    checks = {
        "keyfact_diff": abs(keyfact["diff"]) <= BOUNDS["keyfact_diff"] and keyfact["low"] <= 0 <= keyfact["high"],
        "decline_agreement": report["decline_agreement"] >= BOUNDS["decline_agreement"],
        "guard_agreement": report["guards"]["agreement"] >= BOUNDS["guard_agreement"],
    }
    return {"parity": all(checks.values()), "checks": checks}


def agent_framework_evaluation(agent, rows: pd.DataFrame) -> dict:
    """Agent Framework's evaluation API over the answers already given: `evaluate_agent` with local checks that
    call the project's metrics (each check finds its case's row by id, passed as the expected output)."""
    from agent_framework import AgentResponse, LocalEvaluator, Message, evaluate_agent, evaluator

    from contoso_chat.agentframework.engine import run_sync

    by_id = rows.set_index("id")

    @evaluator(name="key facts stated")
    def key_facts(expected_output: str) -> bool | dict:
        value = by_id.loc[expected_output, "keyfact.keyfact"]
        return {"passed": True, "reason": NOT_APPLICABLE} if pd.isna(value) else bool(value == 1)

    @evaluator(name="no unsupported figure")
    def supported(expected_output: str) -> bool:
        return bool(by_id.loc[expected_output, "unsupported.unsupported"] == 0)

    @evaluator(name="declined when it should")
    def refusal(expected_output: str) -> bool:
        return bool(by_id.loc[expected_output, "decline.refusal_correct"] == 1)

    responses = [AgentResponse(messages=[Message("assistant", [text])]) for text in rows["response"]]
    results = run_sync(evaluate_agent(agent=agent, queries=list(rows["question"]), responses=responses,
                                      expected_output=list(rows["id"]),
                                      evaluators=LocalEvaluator(key_facts, supported, refusal),
                                      eval_name="contoso-chat parity"))
    return results_summary(results[0])


def results_summary(results) -> dict:
    """Pass rates per check from an EvalResults (a check that did not apply to a case is not counted)."""
    per_check: dict[str, list[bool]] = {}
    for item in results.items:
        for score in item.scores:
            if score.passed is not None and (score.sample or {}).get("reason") != NOT_APPLICABLE:
                per_check.setdefault(score.name, []).append(bool(score.passed))
    return {"items": len(results.items),
            "pass_rate": {name: round(float(np.mean(v)), 4) for name, v in per_check.items()}}


def gate_verdicts(rows: pd.DataFrame) -> list[dict]:
    """The project's quality gate on the Agent Framework rows, against the stored baseline of the shipped app."""
    import yaml

    from contoso_chat.evaluation import gate

    thresholds = yaml.safe_load(gate.DEFAULT_THRESHOLDS.read_text())
    model = next(u["model"] for u in rows["usage"] if isinstance(u, dict))
    baseline = gate.load_baseline(model, fall_back=True)
    verdicts = [gate.check_case_counts(rows["category"], baseline, thresholds),
                *gate.check(gate.per_case(rows), baseline, thresholds)]
    return [{"metric": v.metric, "candidate": v.candidate, "bound": v.bound, "passed": v.passed,
             "measured": v.measured} for v in verdicts]


def stored_answers(out_dir: Path, cases: Sequence[records.QACase]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Both engines' answer tables from an earlier run in `out_dir`, when they hold exactly these cases."""
    tables = []
    for engine_name in ENGINES:
        path = out_dir / engine_name / "answers.jsonl"
        if not path.exists():
            return None
        table = pd.read_json(path, lines=True, dtype={"id": str, "customer_id": str})
        if sorted(table["id"]) != sorted(c.id for c in cases):
            return None
        tables.append(table)
    return tables[0], tables[1]


def run(split: str | None = "test", limit: int | None = None, redteam_limit: int | None = None,
        out_dir: Path | None = None, app=None, reuse_answers: bool = False) -> dict:
    """Both engines over the same cases and red-team set; the report (also written to parity.json).

    With `reuse_answers`, the answer tables an earlier run left in `out_dir` are scored again (when they hold the
    same cases) and only the red-team set and a few traced answers are run."""
    from contoso_chat.agentframework import engine, spans
    from contoso_chat.assistant import ContosoChat

    out_dir = out_dir or out_folder()
    cases = batch.select_cases(None if split == "all" else split, limit)
    stored = stored_answers(out_dir, cases) if reuse_answers else None
    if reuse_answers and stored is None:
        raise ValueError(f"No answer tables for these cases in {out_dir}: run without reusing answers first.")
    app = app or ContosoChat()
    client = engine.chat_client(app)
    collected = spans.collector()
    answer = lambda q, c, h: engine.run_workflow(app, client, q, c, h)  # noqa: E731
    if stored is None:
        promptflow = scored(promptflow_answers(split, limit, out_dir / "promptflow"))
        rows = batch.direct_batch(answer, cases, desc="Agent Framework workflow")
        write_answers(rows, out_dir / "agent_framework")
    else:
        promptflow, rows = scored(stored[0]), stored[1]
        batch.direct_batch(answer, cases[:10], desc="traced answers")  # for the span count only
    agent = scored(rows)
    agent.drop(columns=["usage", "shown"]).to_json(out_dir / "agent_framework" / "rows.jsonl", orient="records",
                                                   lines=True, force_ascii=False)
    report = compare(promptflow, agent)
    report["failed"] = {"promptflow": int(promptflow["failed"].sum()), "agent_framework": int(agent["failed"].sum())}
    report["spans_per_answer"] = spans.spans_per_answer(collected.finished())
    redteam = records.redteam_cases()
    if redteam_limit:
        redteam = redteam[:redteam_limit]
    guarded = engine.contoso_agent(app, client)
    report["guards"] = guard_agreement(app, lambda q, c, h: engine.ask(guarded, q, c, h), redteam,
                                       before_each=lambda: engine.settle(app))
    report["guards"].pop("outcomes")
    report["agent_framework_evaluation"] = agent_framework_evaluation(guarded, agent)
    report["gate"] = gate_verdicts(agent)
    report["verdict"] = verdict(report)
    report.update(split=split, limit=limit, reused_answers=stored is not None)
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def summary_figures(report: dict) -> dict:
    """The figures build/summary.json keeps."""
    keyfact = report["keyfact"]
    return {"af_parity_keyfact_diff": {"value": keyfact["diff"], "low": keyfact["low"], "high": keyfact["high"]},
            "af_parity_decline_agreement": report["decline_agreement"],
            "af_parity_guard_agreement": report["guards"]["agreement"],
            "af_answer_p50_seconds": report["latency_p50_s"]["agent_framework"],
            "af_trace_spans_per_answer": report["spans_per_answer"]}


def table(report: dict) -> pd.DataFrame:
    """The side-by-side table README and notebook 08 show."""
    rows = []
    for name, label in (("keyfact", "key-fact accuracy"), ("unsupported", "unsupported-claim rate"),
                        ("refusal", "refusal accuracy")):
        f = report[name]
        rows.append({"figure": label, "prompt flow": f"{f['promptflow']:.3f}",
                     "Agent Framework": f"{f['agent_framework']:.3f}",
                     "difference [90% interval]": f"{f['diff']:+.3f} [{f['low']:+.3f}, {f['high']:+.3f}]"})
    rows.append({"figure": "same decline decision", "prompt flow": "", "Agent Framework": "",
                 "difference [90% interval]": f"{report['decline_agreement']:.1%} of {report['cases']} cases"})
    rows.append({"figure": "same guard outcome (red team)", "prompt flow": "", "Agent Framework": "",
                 "difference [90% interval]": f"{report['guards']['agreement']:.1%} of {report['guards']['cases']} cases"})
    p50, tokens = report["latency_p50_s"], report["tokens_mean"]
    rows.append({"figure": "answer p50 (s)", "prompt flow": f"{p50['promptflow']:.2f}",
                 "Agent Framework": f"{p50['agent_framework']:.2f}", "difference [90% interval]": ""})
    rows.append({"figure": "tokens per answer", "prompt flow": f"{tokens['promptflow']:.0f}",
                 "Agent Framework": f"{tokens['agent_framework']:.0f}", "difference [90% interval]": ""})
    return pd.DataFrame(rows).set_index("figure")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prompt flow vs Agent Framework on the same cases: parity figures.")
    parser.add_argument("--split", default="test", choices=["dev", "test", "audit", "all"])
    parser.add_argument("--limit", type=int, default=None, help="this many cases, spread over the categories")
    parser.add_argument("--redteam", type=int, default=None, help="this many red-team cases (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/agent_framework)")
    parser.add_argument("--reuse-answers", action="store_true",
                        help="score the answers of the last run again; run only the red-team set and a few traced answers")
    parser.add_argument("--promptflow-only", action="store_true", help=argparse.SUPPRESS)  # the pf side's process
    args = parser.parse_args(argv)
    prepare_offline_environment()  # before prompt flow is imported: it reads its home folder once
    split = None if args.split == "all" else args.split
    if args.promptflow_only:
        out_dir = args.out or out_folder() / "promptflow"
        write_answers(batch.promptflow_batch("rag", batch.select_cases(split, args.limit), out_dir), out_dir)
        return 0
    try:
        import agent_framework  # noqa: F401
    except ImportError:
        print("Agent Framework is not importable here: run `make agent-parity`, or put .venv/agent-framework first "
              "on PYTHONPATH (make setup installs it).", file=sys.stderr)
        return 2
    report = run(split, args.limit, args.redteam, args.out, reuse_answers=args.reuse_answers)
    print(table(report).to_string())
    print("parity" if report["verdict"]["parity"] else "no parity", report["verdict"]["checks"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
