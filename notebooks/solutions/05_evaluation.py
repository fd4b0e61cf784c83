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
    per_case, styles, choice = citation_style.run(split="test", limit=8, out_dir=Path(tempfile.mkdtemp()))
    return exercises.check("05-1", per_case, styles, choice)


def exercise_2() -> bool:
    """A stricter copy of the thresholds, applied to a run of the shipped app."""
    folder = Path(tempfile.mkdtemp())
    evaluation.evaluate_variant("rag", split="test", limit=21, engine="direct", out_dir=folder / "rag")
    strict = yaml.safe_load(gate.DEFAULT_THRESHOLDS.read_text())
    strict["metrics"]["keyfact_accuracy"]["margin"] = 0.02
    (folder / "strict.yaml").write_text(yaml.safe_dump(strict))
    completed = subprocess.run([sys.executable, "-m", "contoso_chat.evaluation.gate", str(folder / "rag"),
                                "--thresholds", str(folder / "strict.yaml")], capture_output=True, text=True)
    return exercises.check("05-2", completed)


def exercise_3() -> bool:
    """An answer that fools a substring test but not the whole-number match."""
    return exercises.check("05-3", "74 g", "The stove weighs 174 g.")


MY_QUESTIONS = [  # five questions in a customer's words, each with key facts copied from its source
    {"question": "is the summit dome ok to pitch on a wooden platform where i can't push stakes in?",
     "key_facts": ["freestanding"], "expected_sources": ["product-1"]},
    {"question": "My daughter wants the Nightfall 20 for a trip where nights drop to about freezing. Down to what "
                 "temperature does it keep you comfortable?", "key_facts": ["0 °C | 32 °F"], "expected_sources": ["product-19"]},
    {"question": "how many lights are on the sparkline string?", "key_facts": ["30 LEDs | 30 warm LEDs"],
     "expected_sources": ["product-24"]},
    {"question": "Can I pay a bit more to get my order the next day?", "key_facts": ["$29.95"],
     "expected_sources": ["policy-shipping"]},
    {"question": "what's the fleece pullover made of? trying to buy recycled stuff",
     "key_facts": ["recycled polyester"], "expected_sources": ["product-8"]},
]


def exercise_4() -> bool:
    """Five questions of one's own, answered by the shipped app and checked like the audit set."""
    from contoso_chat.assistant import ContosoChat

    assistant = ContosoChat()
    replies = [assistant(case["question"], "C1003") for case in MY_QUESTIONS]
    return exercises.check("05-4", MY_QUESTIONS, replies)
