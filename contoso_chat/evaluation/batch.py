"""Batch runs: every evaluation case through an assistant variant, with prompt flow's `pf run` or in process.

Both return the same table: the case's fields plus `response`, `citations`, the app's `usage`, and the
columns the evaluators read (`declined`, `retrieved`, `shown`, latency and tokens).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm import tqdm  # the text bar: its last state stays in a saved notebook (a widget shows 0% there)

from contoso_chat import records
from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.serving.promptflow_adapter import FLOW_DIR


def cases_frame(cases: Sequence[records.QACase]) -> pd.DataFrame:
    """The cases as the table a batch run reads (chat history as plain dicts)."""
    return pd.DataFrame([{**c.model_dump(), "chat_history": [t.model_dump() for t in c.chat_history]} for c in cases])


PHRASING_ORDER = ("customer", "situation", "catalog", "templated")


def select_cases(split: records.CaseSplit | None = "test", limit: int | None = None,
                 collection: records.EvalSet = "customers") -> list[records.QACase]:
    """The cases of one split (or all) of an evaluation set, or `limit` of them spread evenly over the categories,
    one need (paraphrase family) at a time and turn about over the phrasings (same every time)."""
    cases = records.qa_cases(split=split, collection=collection)
    if not limit or limit >= len(cases):
        return cases
    by_category: dict[str, list[records.QACase]] = {}
    for case in _one_family_at_a_time(cases):
        by_category.setdefault(case.category, []).append(case)
    picked: list[records.QACase] = []
    while len(picked) < limit:
        for group in by_category.values():
            if group and len(picked) < limit:
                picked.append(group.pop(0))
    return sorted(picked, key=lambda c: c.id)


def _one_family_at_a_time(cases: Sequence[records.QACase]) -> list[records.QACase]:
    """The cases reordered so that the first ones come from different families (the first family of each product,
    then the second, ...), the n-th family starting with its n-th phrasing (customer, situation, catalog), and the
    rest of each family after all first picks."""
    families: dict[str, list[records.QACase]] = {}
    for case in cases:
        families.setdefault(case.family, []).append(case)
    per_product: dict[tuple, int] = {}
    turn = {}
    for family, members in families.items():  # the first family of every product, then the second, ...
        product = tuple(sorted(members[0].products))
        turn[family] = per_product[product] = per_product.get(product, -1) + 1
    ordered = sorted(families.values(), key=lambda members: turn[members[0].family])
    rounds: list[list[records.QACase]] = []
    for number, members in enumerate(ordered):
        ranked = sorted(members, key=lambda c: PHRASING_ORDER.index(c.phrasing))
        shift = number % len(ranked)
        for position, case in enumerate(ranked[shift:] + ranked[:shift]):
            if len(rounds) <= position:
                rounds.append([])
            rounds[position].append(case)
    return [case for round_ in rounds for case in round_]


def promptflow_batch(variant: str, cases: Sequence[records.QACase], out_dir: Path) -> pd.DataFrame:
    """Run the flex flow over the cases with `pf run create` (prompt flow's batch engine); one row per case.

    The run goes through the `pf` command in its own process, as in CI; in the same process as
    azure-ai-evaluation's evaluate(), prompt flow's tracing set-up made evaluate() hang.
    """
    from promptflow.client import PFClient

    prepare_offline_environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    table = cases_frame(cases)
    inputs = out_dir / "cases.jsonl"
    table.to_json(inputs, orient="records", lines=True, force_ascii=False)
    name = f"contoso_chat_{variant.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    environment = {**os.environ, "PF_WORKER_COUNT": "1",  # one local model answers one request at a time
                   "PF_BATCH_METHOD": "spawn"}  # torch and LanceDB do not survive a fork
    command = [str(Path(sys.executable).with_name("pf")), "run", "create", "--flow", str(FLOW_DIR),
               "--data", str(inputs), "--name", name, "--init", f"variant={variant}",
               "--column-mapping", "question=${data.question}", "customer_id=${data.customer_id}",
               "chat_history=${data.chat_history}", "--stream"]
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process, tqdm(total=len(table), desc=f"pf run {variant}", unit="case") as progress:
        log_tail: list[str] = []
        for line in process.stdout:
            log_tail = (log_tail + [line.rstrip()])[-20:]
            finished = re.search(r"Finished (\d+) / (\d+) lines", line)
            if finished:
                progress.update(int(finished.group(1)) - progress.n)
        if process.wait() == 0:
            progress.update(len(table) - progress.n)  # pf reports progress now and then; the bar ends where the run did
    if process.returncode != 0:
        raise RuntimeError(f"pf run create failed for {variant}:\n" + "\n".join(log_tail))
    details = PFClient().get_details(name, all_results=True)
    outputs = pd.DataFrame({"response": details["outputs.answer"].fillna(""), "citations": details["outputs.citations"],
                            "usage": details["outputs.usage"]})
    merged = pd.concat([table.reset_index(drop=True), outputs.reset_index(drop=True)], axis=1)
    merged.attrs["run_name"] = name
    return with_usage_columns(merged)


def direct_batch(assistant, cases: Sequence[records.QACase], desc: str = "answering") -> pd.DataFrame:
    """The same batch in this process, calling the assistant directly (no prompt flow start-up)."""
    table = cases_frame(cases)
    replies = []
    for case in tqdm(list(cases), desc=desc, unit="case"):
        try:
            replies.append(assistant(case.question, case.customer_id, [t.model_dump() for t in case.chat_history]))
        except Exception as error:  # a crashed line is recorded as failed, as prompt flow's batch does
            replies.append({"answer": "", "citations": None, "usage": None, "error": type(error).__name__})
    outputs = pd.DataFrame({"response": [r["answer"] for r in replies], "citations": [r["citations"] for r in replies],
                            "usage": [r["usage"] for r in replies]})
    return with_usage_columns(pd.concat([table.reset_index(drop=True), outputs], axis=1))


def with_usage_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Columns from each row's usage dict, for the evaluators; a row without usage is a failed line."""
    rows = rows.copy()
    usage = rows["usage"].apply(lambda u: u if isinstance(u, dict) else {})
    rows["failed"] = ~rows["usage"].apply(lambda u: isinstance(u, dict))
    rows["citations"] = rows["citations"].apply(lambda c: c if isinstance(c, list) else [])
    rows["retrieved"] = usage.apply(lambda u: u.get("retrieved", []))
    rows["shown"] = usage.apply(lambda u: u.get("shown", []))
    rows["model_reply"] = usage.apply(lambda u: u.get("model_reply", ""))
    rows["declined"] = usage.apply(lambda u: bool(u.get("declined", False)))
    rows["invalid_citations"] = usage.apply(lambda u: int(u.get("invalid_citations", 0) or 0))
    for column in ("latency_s", "prompt_tokens", "completion_tokens"):
        rows[column] = usage.apply(lambda u, c=column: u.get(c, 0) or 0)
    return rows
