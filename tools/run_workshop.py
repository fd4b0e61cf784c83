"""Run every workshop notebook in order on the configured stack (local by default).

Executed copies go to build/notebooks/, and build/summary.json gets the seconds each notebook
took plus the key figures the notebooks recorded with `workshop.record(...)`. Each notebook states its time
budget at its top ("**Time budget**: N s"); a notebook that runs longer gets a warning with its slowest cells,
and the slowest cells of every notebook go to summary.json (INSTRUCTORS.md lists them).
Usage: python tools/run_workshop.py [name-filter ...]
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contoso_chat.serving.local_service import running_servers, stop_local_stack  # noqa: E402
from contoso_chat.backends.environment import prepare_offline_environment  # noqa: E402
from contoso_chat.paths import build_dir  # noqa: E402
from contoso_chat.backends.local_model import finetuned_model_path  # noqa: E402
sys.path.insert(0, str(ROOT / "notebooks"))
from workshop import BUDGET, LONG_CELL_S, WAIT_LINE, cell_name  # noqa: E402  a cell this long is a wait the notebook announces

CELL_TIMEOUT_S = 900
KERNEL_NAME = "contoso-chat"  # registered for .venv by `make setup`


def notebooks(filters: list[str]) -> list[Path]:
    """The numbered notebooks, in order, optionally only those whose name contains a filter."""
    found = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not filters or any(f in p.name for f in filters)]




def budget(notebook) -> int | None:
    """The seconds of cells a notebook's first cell allows it ("**Time budget**: 150 s ..."), or None."""
    match = BUDGET.search(notebook.cells[0].source) if notebook.cells else None
    return int(match.group(1)) if match else None


def cell_seconds(cell) -> float | None:
    """How long a code cell ran, from the timestamps nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(end) - parse(start)).total_seconds(), 1)




def slowest_cells(notebook, count: int = 3) -> list[dict]:
    """The `count` slowest code cells, and every other cell of LONG_CELL_S or more: their number (1-based, counting
    every cell), seconds and first line, slowest first."""
    timed = [(number, cell_seconds(cell), cell_name(cell.source))
             for number, cell in enumerate(notebook.cells, start=1) if cell.cell_type == "code"]
    timed = sorted((t for t in timed if t[1] is not None), key=lambda t: -t[1])
    timed = [t for rank, t in enumerate(timed) if rank < count or t[1] >= LONG_CELL_S]
    return [{"cell": number, "seconds": seconds, "starts": first[:80]} for number, seconds, first in timed]


def run(path: Path, out_dir: Path) -> tuple[float, str | None]:
    """Execute one notebook in its own kernel; return seconds taken and the error, if any."""
    notebook = nbformat.read(path, as_version=4)
    config = Config()
    config.KernelManager.transport = "ipc"  # local sockets: nothing on the network, and no transport warning
    config.KernelManager.ip = str(Path(tempfile.mkdtemp(prefix="kernel-")) / "ipc")  # absolute: kernel runs elsewhere
    kernel = notebook.metadata.get("kernelspec", {}).get("name", KERNEL_NAME)
    # coalesce_streams: a cell's printed output as one stream, carriage returns applied, so a progress bar is saved
    # in its last state (how far it got) instead of every redraw
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name=kernel, config=config, coalesce_streams=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1][:300]
    seconds = time.perf_counter() - start
    nbformat.write(notebook, out_dir / path.name)
    return seconds, error


def main(filters: list[str]) -> int:
    prepare_offline_environment()
    out_dir = build_dir() / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    records = build_dir() / "records.json"
    records.unlink(missing_ok=True)
    selected = notebooks(filters)
    already_running = running_servers()
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    budgets: dict[str, int] = {}
    slowest: dict[str, list[dict]] = {}
    model_before = finetuned_model_path().exists()  # read before notebook 04, whose own training makes one
    started = time.perf_counter()
    try:
        for number, path in enumerate(selected, start=1):
            print(f"[{number}/{len(selected)}] {path.name} ...", end=" ", flush=True)
            seconds, error = run(path, out_dir)
            timings[path.stem] = round(seconds, 1)
            executed = nbformat.read(out_dir / path.name, as_version=4)
            slowest[path.stem] = slowest_cells(executed)
            allowed = budget(executed)
            if allowed is not None:
                budgets[path.stem] = allowed
            if error:
                failures[path.stem] = error
                print(f"FAILED after {seconds:.0f} s: {error}")
            else:
                print(f"{seconds:.0f} s" + ("" if allowed is None else f" (budget {allowed} s)"))
            if allowed is not None and seconds > allowed:
                print(f"    WARNING: {path.stem} ran {seconds - allowed:.0f} s over its time budget; slowest cells: "
                      + "; ".join(f"cell {c['cell']} {c['seconds']:.0f} s ({c['starts']})" for c in slowest[path.stem]))
    finally:
        stop_local_stack(keep=already_running)
    summary = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "finetune_model_present": model_before,  # a `make finetune` model was there: notebook 04 skipped its training
        "total_seconds": round(time.perf_counter() - started, 1),
        "notebook_seconds": timings,
        "budget_seconds": budgets,
        "over_budget": {name: round(timings[name] - allowed, 1) for name, allowed in budgets.items()
                        if timings.get(name, 0) > allowed},
        "slowest_cells": slowest,
        "failures": failures,
        "figures": json.loads(records.read_text()) if records.exists() else {},
    }
    (build_dir() / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Executed notebooks in {out_dir}; summary in {build_dir() / 'summary.json'}")
    if budgets:
        print(f"{summary['total_seconds']:.0f} s of cells in all; the budgets add up to {sum(budgets.values())} s"
              + (f"; over budget: {', '.join(summary['over_budget'])}" if summary["over_budget"] else ""))
    print(json.dumps(summary["figures"], indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
