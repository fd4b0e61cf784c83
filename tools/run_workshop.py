"""Run every workshop notebook in order on the configured stack (local by default).

Executed copies go to build/notebooks/, and build/summary.json gets the seconds each notebook
took plus the key figures the notebooks recorded with `workshop.record(...)`.
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

CELL_TIMEOUT_S = 900
KERNEL_NAME = "contoso-chat"  # registered for .venv by `make setup`


def notebooks(filters: list[str]) -> list[Path]:
    """The numbered notebooks, in order, optionally only those whose name contains a filter."""
    found = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not filters or any(f in p.name for f in filters)]


def run(path: Path, out_dir: Path) -> tuple[float, str | None]:
    """Execute one notebook in its own kernel; return seconds taken and the error, if any."""
    notebook = nbformat.read(path, as_version=4)
    config = Config()
    config.KernelManager.transport = "ipc"  # local sockets: nothing on the network, and no transport warning
    config.KernelManager.ip = str(Path(tempfile.mkdtemp(prefix="kernel-")) / "ipc")  # absolute: kernel runs elsewhere
    kernel = notebook.metadata.get("kernelspec", {}).get("name", KERNEL_NAME)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name=kernel, config=config,
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
    started = time.perf_counter()
    try:
        for number, path in enumerate(selected, start=1):
            print(f"[{number}/{len(selected)}] {path.name} ...", end=" ", flush=True)
            seconds, error = run(path, out_dir)
            timings[path.stem] = round(seconds, 1)
            if error:
                failures[path.stem] = error
                print(f"FAILED after {seconds:.0f} s: {error}")
            else:
                print(f"{seconds:.0f} s")
    finally:
        stop_local_stack(keep=already_running)
    summary = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "total_seconds": round(time.perf_counter() - started, 1),
        "notebook_seconds": timings,
        "failures": failures,
        "figures": json.loads(records.read_text()) if records.exists() else {},
    }
    (build_dir() / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Executed notebooks in {out_dir}; summary in {build_dir() / 'summary.json'}")
    print(json.dumps(summary["figures"], indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
