"""Print the speed and quality figures that README quotes, measured on this machine.

Usage: python tools/benchmark.py [setup] [model] [rag] [service]   (no argument = model rag service)
Each section prints a small table; nothing here asserts, it measures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contoso_chat.backends.environment import prepare_offline_environment  # noqa: E402


def p(values: list[float], q: float) -> float:
    """The q-quantile (0-1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def show(title: str, rows: list[tuple[str, str, str]]) -> None:
    print(f"\n## {title}")
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>14}   {target}")


def bench_setup() -> None:
    """Set-up time of a fresh clone (pip cache as it is) and of a repeated set-up."""
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(["bash", "tools/setup_venv.sh"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
            timings.append(time.perf_counter() - start)
    show("Set-up (make setup in a fresh clone)", [
        ("first set-up", f"{timings[0]:.0f} s", "target <= 480 s on a fresh machine (no pip cache)"),
        ("repeated set-up", f"{timings[1]:.1f} s", "target <= 30 s"),
    ])


def bench_model() -> None:
    """Local model: a 150-token prompt answered, and generation speed."""
    from contoso_chat import clients, config

    settings = config.load_settings()
    target = clients.chat_target(settings)
    prompt = ("A family of four plans an autumn camping weekend in the mountains with a dog, a small stove and "
              "wet weather expected. They ask which tent size, sleeping bag rating and lighting they need. ") * 3
    timings, speeds, prompt_tokens = [], [], 0
    for n in range(8):
        start = time.perf_counter()
        reply = target.client.chat.completions.create(
            model=target.model, messages=[{"role": "user", "content": f"Question {n}: {prompt} Answer in one line."}],
            max_tokens=24, temperature=0)
        timings.append(time.perf_counter() - start)
        prompt_tokens = reply.usage.prompt_tokens
    for n in range(3):
        start = time.perf_counter()
        reply = target.client.chat.completions.create(
            model=target.model, messages=[{"role": "user", "content": f"Write {n + 3} sentences about hiking boots."}],
            max_tokens=120, temperature=0)
        speeds.append(reply.usage.completion_tokens / (time.perf_counter() - start))
    show(f"Local model ({target.model}, {os.cpu_count()} cores)", [
        (f"{prompt_tokens}-token prompt, 24-token answer, p50", f"{statistics.median(timings):.2f} s", "target <= 1 s"),
        ("generation speed", f"{statistics.median(speeds):.0f} tokens/s", ""),
    ])


def bench_rag() -> None:
    """Index build, retrieval latency and recall, RAG vs no-RAG key facts, end-to-end answer latency."""
    from contoso_chat import config, data, metrics
    from contoso_chat.assistant import ContosoChat, standalone_query
    from contoso_chat.backends.lancedb_search import local_index

    settings = config.load_settings()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        local_index(settings, folder=Path(folder) / "index", rebuild=True, log=lambda *_: None)
        build_seconds = time.perf_counter() - start
    app = ContosoChat(settings=settings)
    labelled = [c for c in data.qa_cases() if c.expected_sources]
    latencies, recalls = [], {"keyword": [], "vector": [], "hybrid": []}
    for case in labelled:
        query = standalone_query(case.question, [t.model_dump() for t in case.chat_history])
        for mode in recalls:
            start = time.perf_counter()
            hits = app.retriever.search(query, k=5, mode=mode)
            if mode == "hybrid":
                latencies.append((time.perf_counter() - start) * 1000)
            recalls[mode].append(metrics.recall_at_k([h.source_id for h in hits], case.expected_sources, 5))
    no_rag = ContosoChat(settings=settings, retriever=app.retriever, customers=app.customers, chat=app.chat,
                         use_retrieval=False)
    answerable = [c for c in data.qa_cases() if c.category != "out-of-scope"]
    scores = {"rag": [], "no-rag": []}
    answer_seconds = []
    for case in answerable:
        history = [t.model_dump() for t in case.chat_history]
        reply = app(case.question, case.customer_id, history)
        answer_seconds.append(reply["usage"]["latency_s"])
        scores["rag"].append(metrics.keyfact_score(reply["answer"], case.key_facts))
        scores["no-rag"].append(metrics.keyfact_score(no_rag(case.question, case.customer_id, history)["answer"],
                                                      case.key_facts))
    mean = statistics.mean
    show(f"RAG ({len(data.qa_cases())} eval questions, {os.cpu_count()} cores)", [
        ("index build (all chunks)", f"{build_seconds:.1f} s", "target <= 60 s"),
        ("hybrid retrieval p50", f"{statistics.median(latencies):.1f} ms", "target <= 50 ms"),
        ("recall@5 keyword / vector", f"{mean(recalls['keyword']):.3f} / {mean(recalls['vector']):.3f}", ""),
        ("recall@5 hybrid", f"{mean(recalls['hybrid']):.3f}", "target >= 0.95 and >= each of the others"),
        (f"key-fact accuracy, no RAG ({len(answerable)} q)", f"{mean(scores['no-rag']):.3f}", ""),
        (f"key-fact accuracy, RAG ({len(answerable)} q)", f"{mean(scores['rag']):.3f}", "target: RAG - no RAG >= 0.30"),
        ("end-to-end answer p50 / p95", f"{statistics.median(answer_seconds):.2f} / {p(answer_seconds, 0.95):.2f} s",
         "target p50 <= 3 s"),
    ])


def bench_service() -> None:
    """Load test of the HTTP service on 127.0.0.1 (bounded in requests and time)."""
    from contoso_chat.evaluation.loadtest import run_benchmark

    rows = run_benchmark()
    show("HTTP service load test (127.0.0.1)", rows)


SECTIONS = {"setup": bench_setup, "model": bench_model, "rag": bench_rag, "service": bench_service}


def main(names: list[str]) -> None:
    prepare_offline_environment()
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        sys.exit(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    from contoso_chat.backends.local_model import recorded_model, stop_local_model

    print(json.dumps({"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}}))
    already_running = recorded_model() is not None
    try:
        for name in names or ["model", "rag", "service"]:
            SECTIONS[name]()
    finally:
        if not already_running:
            stop_local_model()


if __name__ == "__main__":
    main(sys.argv[1:])
