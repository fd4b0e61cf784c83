"""tools/run_workshop.py: each notebook's time budget is read from its top, and the slowest cells are found."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_workshop", ROOT / "tools" / "run_workshop.py")
run_workshop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_workshop)


def timed(source: str, start: str, end: str):
    cell = new_code_cell(source)
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_every_notebook_states_a_budget_within_the_series_targets():
    budgets = {p.stem: run_workshop.budget(nbformat.read(p, as_version=4)) for p in run_workshop.notebooks([])}
    assert None not in budgets.values(), budgets
    assert max(budgets.values()) <= 300 and sum(budgets.values()) <= 900, budgets


def test_the_budget_is_read_from_the_first_cell_only():
    stated = new_notebook(cells=[new_markdown_cell("# 03\n\n**Time budget**: 150 s of cells on 2 cores")])
    assert run_workshop.budget(stated) == 150
    later = new_notebook(cells=[new_markdown_cell("# 03"), new_markdown_cell("**Time budget**: 150 s")])
    assert run_workshop.budget(later) is None
    assert run_workshop.budget(new_notebook(cells=[new_markdown_cell("**Time budget**: soon")])) is None


def test_the_slowest_cells_come_first_with_their_number_and_first_line():
    notebook = new_notebook(cells=[
        new_markdown_cell("# title"),
        timed("fast()", "2026-12-01T10:00:00.000Z", "2026-12-01T10:00:01.500Z"),
        timed("\nslow()\nmore()", "2026-12-01T10:00:02.000Z", "2026-12-01T10:01:02.000Z"),
        new_code_cell("never_ran()"),
        timed("middle()", "2026-12-01T10:01:03.000Z", "2026-12-01T10:01:13.250Z")])
    assert run_workshop.slowest_cells(notebook, count=2) == [
        {"cell": 3, "seconds": 60.0, "starts": "slow()"}, {"cell": 5, "seconds": 10.2, "starts": "middle()"}]
    assert run_workshop.cell_seconds(notebook.cells[3]) is None
    assert [c["cell"] for c in run_workshop.slowest_cells(notebook, count=0)] == [3], \
        "beyond `count`, every cell of 20 s or more is listed, and no shorter one"


def test_a_long_cell_is_named_by_the_line_after_its_wait_line():
    cell = f"{run_workshop.WAIT_LINE}\nrows, figures = run()\nprint(figures)"
    assert run_workshop.cell_name(cell) == "rows, figures = run()"
    assert run_workshop.cell_name("rows = run()") == "rows = run()"


def test_every_long_cell_of_the_last_run_says_its_wait_first():
    """A cell of LONG_CELL_S or more in the last fresh-clone run starts with `workshop.expect_wait()`."""
    import json

    run = json.loads((ROOT / "docs" / "measured.json").read_text())["workshop"]
    checked = 0
    for notebook, cells in run["slowest_cells"].items():
        sources = {run_workshop.cell_name(c.source)[:80]: c.source
                   for c in nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4).cells
                   if c.cell_type == "code"}
        for cell in cells:
            if cell["seconds"] >= run_workshop.LONG_CELL_S and cell["starts"] in sources:
                checked += 1
                assert sources[cell["starts"]].startswith(run_workshop.WAIT_LINE), (notebook, cell["starts"])
    assert checked >= 10
