"""Solutions to notebook 05's exercises (run by tests/test_exercises.py)."""

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

import exercises
from contoso_chat.evaluation import citation_style, gate
from contoso_chat.evaluation import run as evaluation


def exercise_1() -> bool:
    """The citation-style comparison of notebook 03, repeated on a few test questions."""
    _, styles, choice = citation_style.run(split="test", limit=8, out_dir=Path(tempfile.mkdtemp()))
    return exercises.check("05-1", styles, choice)


def exercise_2() -> bool:
    """A stricter copy of the thresholds, applied to a run of the shipped app."""
    folder = Path(tempfile.mkdtemp())
    evaluation.evaluate_variant("rag", split="test", limit=6, engine="direct", out_dir=folder / "rag")
    strict = yaml.safe_load(gate.DEFAULT_THRESHOLDS.read_text())
    strict["metrics"]["keyfact_accuracy"]["margin"] = 0.02
    (folder / "strict.yaml").write_text(yaml.safe_dump(strict))
    completed = subprocess.run([sys.executable, "-m", "contoso_chat.evaluation.gate", str(folder / "rag"),
                                "--thresholds", str(folder / "strict.yaml")], capture_output=True, text=True)
    return exercises.check("05-2", completed.returncode)


def exercise_3() -> bool:
    """An answer that fools a substring test but not the whole-number match."""
    return exercises.check("05-3", "74 g", "The stove weighs 174 g.")
