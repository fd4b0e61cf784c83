"""Print the speed and quality figures that README quotes, measured on this machine.

Usage: python tools/benchmark.py [setup | setup-cold] [model] [rag] [service] [service-agent-framework]
       (no argument = model rag service service-agent-framework)
Each section prints a small table; nothing here asserts, it measures.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contoso_chat.backends.environment import prepare_offline_environment  # noqa: E402
from contoso_chat.evaluation.intervals import percentile  # noqa: E402
from contoso_chat.evaluation.loadtest import judged  # noqa: E402


MEASURED: dict[str, list[tuple[str, str, str]]] = {}


def show(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Print a section's table and keep it for build/bench/figures.json (which tools/update_docs.py reads)."""
    MEASURED[title] = rows
    print(f"\n## {title}")
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>14}   {target}")


SETUP_STEPS = {"venv": "create .venv", "uv": "install uv", "packages": "install the pinned packages",
               "torch": "install torch", "project": "contoso_chat, kernel, git filter",
               "llama": "wait for the compile, install it", "check": "check and import"}


def run_setup(clone: Path, env: dict[str, str]) -> tuple[float, str, dict]:
    """One `make setup` (its script) in clone: wall seconds, load averages before/after, and its timings.json."""
    timings = clone / "build" / "setup" / "timings.json"
    timings.unlink(missing_ok=True)
    output = clone.parent / f"{clone.name}-setup.log"
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with output.open("a") as log:
        done = subprocess.run(["bash", "tools/setup_venv.sh"], cwd=clone, env=env, stdout=log, stderr=log)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"make setup failed in a fresh clone; the end of its output:\n{output.read_text()[-3000:]}")
    load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    return seconds, load, json.loads(timings.read_text()) if timings.exists() else {}


def setup_rows(label: str, seconds: float, load: str, timings: dict, target: str) -> list[tuple[str, str, str]]:
    """Table rows for one set-up run: the total, then where the time went."""
    rows = [(label, f"{seconds:.1f} s", target), ("  load average before / after", load, "")]
    for key, name in SETUP_STEPS.items():
        if key in timings.get("steps_s", {}):
            rows.append((f"  {name}", f"{timings['steps_s'][key]:.0f} s", ""))
    uv = timings.get("packages_uv", {})
    if uv:
        rows.append((f"    of which uv downloads+unpacks / links {timings['packages']}",
                     f"{uv.get('download_and_unpack_s', 0):.0f} / {uv.get('link_s', 0):.0f} s", ""))
    if timings.get("compile_s") is not None:
        rows.append(("  llama-cpp-python compile in the background: wall / CPU",
                     f"{timings['compile_s']:.0f} s / {timings['compile_cpu_s']:.0f} s", ""))
    if timings.get("cpu_s") is not None:
        rows.append(("  CPU time of the whole set-up (grows too when others share the cores)",
                     f"{timings['cpu_s']:.0f} s", ""))
    if timings.get("installer"):
        rows.append(("  installer", timings["installer"], ""))
    return rows


def setup_environment(caches: Path | None) -> dict[str, str]:
    """The environment for a set-up run: without the offline settings this process added; own caches if given."""
    from contoso_chat.backends.environment import OFFLINE_ENV

    added = {*OFFLINE_ENV, "PF_HOME_DIRECTORY", "VIRTUAL_ENV"}
    env = {name: value for name, value in os.environ.items() if name not in added}
    if caches is not None:
        env.update(PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"))
    return env


def bench_setup(cold: bool = False) -> None:
    """make setup in fresh clones of this repository's last commit, step by step.

    setup: one fresh clone with the pip and uv caches as they are, then a repeated set-up.
    setup-cold: empty caches (a cold first set-up), a second fresh clone with the caches that run filled
    (a warm set-up), then a repeated set-up. It downloads everything and compiles llama-cpp-python.
    """
    with tempfile.TemporaryDirectory() as folder:
        caches = Path(folder) / "caches" if cold else None
        env = setup_environment(caches)
        rows = []
        for label, target in ([("first set-up, empty caches", "target <= 480 s"),
                               ("first set-up, warm caches", "target <= 120 s")] if cold
                              else [("first set-up, caches as they are", "")]):
            clone = Path(folder) / f"clone-{len(rows)}"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            seconds, load, timings = run_setup(clone, env)
            limit = re.search(r"<= (\d+) s", target)
            rows += setup_rows(label, seconds, load, timings, judged(target, seconds <= int(limit.group(1)))
                               if limit else target)
        seconds, load, _ = run_setup(clone, env)
        rows.append(("repeated set-up (stamp check)", f"{seconds:.2f} s", judged("target < 5 s", seconds < 5)))
    show(f"Set-up (make setup in a fresh clone, {os.cpu_count()} cores)", rows)


def bench_model() -> None:
    """Local model: a 150-token prompt answered, and generation speed."""
    from contoso_chat.backends.chat import chat_target
    from contoso_chat.backends.settings import load_settings

    settings = load_settings()
    target = chat_target(settings)
    prompt = ("A family of four plans an autumn camping weekend in the mountains with a dog, a small stove and "
              "wet weather expected. They ask which tent size, sleeping bag rating and lighting they need. ") * 3
    timings, speeds, reading, prompt_tokens = [], [], [], 0
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
    for n in range(3):  # prompt reading: a long prompt, one output token, so the time is nearly all reading
        long_prompt = f"Note {n}: " + prompt * 4 + " Reply with one word."
        start = time.perf_counter()
        reply = target.client.chat.completions.create(
            model=target.model, messages=[{"role": "user", "content": long_prompt}], max_tokens=1, temperature=0)
        reading.append(reply.usage.prompt_tokens / (time.perf_counter() - start))
    show(f"Local model ({target.model}, {os.cpu_count()} cores)", [
        (f"{prompt_tokens}-token prompt, 24-token answer, p50", f"{statistics.median(timings):.2f} s",
         judged("target <= 1 s", statistics.median(timings) <= 1)),
        ("generation speed", f"{statistics.median(speeds):.0f} tokens/s", ""),
        ("prompt reading speed", f"{statistics.median(reading):.0f} tokens/s", ""),
    ])


def bench_rag() -> None:
    """Index build, retrieval latency and recall, RAG vs no-RAG key facts, end-to-end answer latency."""
    from contoso_chat import records
    from contoso_chat.assistant import ContosoChat, standalone_query
    from contoso_chat.backends.lancedb_search import local_index
    from contoso_chat.backends.settings import load_settings
    from contoso_chat.evaluation import metrics

    settings = load_settings()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        local_index(settings, folder=Path(folder) / "index", rebuild=True, log=lambda *_: None)
        build_seconds = time.perf_counter() - start
    app = ContosoChat(settings=settings)
    test = records.qa_cases(split="test")  # the split figures are reported on, in customers' words
    labelled = [c for c in test if c.expected_sources]
    latencies, recalls = [], {"keyword": [], "vector": [], "hybrid": []}
    for case in labelled:
        query = standalone_query(case.question, [t.model_dump() for t in case.chat_history])
        for mode in recalls:
            start = time.perf_counter()
            hits = app.retriever.search(query, k=5, mode=mode)
            if mode == "hybrid":
                latencies.append((time.perf_counter() - start) * 1000)
            recalls[mode].append(metrics.context_recall([h.source_id for h in hits], case.expected_sources, 5))
    no_rag = ContosoChat(settings=settings, retriever=app.retriever, customers=app.customers, chat=app.chat,
                         use_retrieval=False)
    answerable = [c for c in test if c.category != "out-of-scope"]
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
    show(f"RAG ({len(test)} test questions, {os.cpu_count()} cores)", [
        ("index build (all chunks)", f"{build_seconds:.1f} s", judged("target <= 60 s", build_seconds <= 60)),
        ("hybrid retrieval p50", f"{statistics.median(latencies):.1f} ms",
         judged("target <= 50 ms", statistics.median(latencies) <= 50)),
        ("recall@5 keyword / vector", f"{mean(recalls['keyword']):.3f} / {mean(recalls['vector']):.3f}", ""),
        ("recall@5 hybrid", f"{mean(recalls['hybrid']):.3f}",
         judged("target >= 0.95 and >= each of the others", mean(recalls["hybrid"]) >= 0.95
                and mean(recalls["hybrid"]) >= max(mean(recalls["keyword"]), mean(recalls["vector"])))),
        (f"key-fact accuracy, no RAG ({len(answerable)} q)", f"{mean(scores['no-rag']):.3f}", ""),
        (f"key-fact accuracy, RAG ({len(answerable)} q)", f"{mean(scores['rag']):.3f}",
         judged("target: RAG - no RAG >= 0.30", mean(scores["rag"]) - mean(scores["no-rag"]) >= 0.30)),
        ("end-to-end answer p50 / p95", f"{statistics.median(answer_seconds):.2f} / {percentile(answer_seconds, 0.95):.2f} s",
         judged("target p50 <= 3 s", statistics.median(answer_seconds) <= 3)),
    ])


def bench_service() -> None:
    """Load test of the HTTP service on 127.0.0.1 (bounded in requests and time)."""
    from contoso_chat.evaluation.loadtest import run_benchmark

    rows = run_benchmark()
    show("HTTP service load test (127.0.0.1)", rows)


def bench_service_agent_framework() -> None:
    """The same load test with each turn run by Agent Framework (SERVICE_ENGINE=agent-framework)."""
    from contoso_chat.evaluation.loadtest import run_benchmark

    rows = run_benchmark(engine="agent-framework")
    show("HTTP service load test, Agent Framework engine (127.0.0.1)", rows)


SECTIONS = {"setup": bench_setup, "setup-cold": lambda: bench_setup(cold=True), "model": bench_model,
            "rag": bench_rag, "service": bench_service, "service-agent-framework": bench_service_agent_framework}


def main(names: list[str]) -> None:
    prepare_offline_environment()
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        sys.exit(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    from contoso_chat.backends.local_model import recorded_model, stop_local_model

    print(json.dumps({"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}}))
    already_running = recorded_model() is not None
    try:
        for name in names or ["model", "rag", "service", "service-agent-framework"]:
            SECTIONS[name]()
    finally:
        if not already_running:
            stop_local_model()
    from contoso_chat.paths import build_dir

    figures = build_dir() / "bench" / "figures.json"
    figures.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(figures.read_text()) if figures.exists() else {}
    figures.write_text(json.dumps({**kept, **MEASURED}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
