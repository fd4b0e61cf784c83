"""Library noise stays out of notebook outputs once the helper has quieted the libraries."""

from __future__ import annotations

import subprocess
import sys

PLAN = ("from contoso_chat.azure import provisioning\n"
        "from contoso_chat.backends.settings import resolve\n"
        "provisioning.build_plan(resolve({}))\n")


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_azure_ml_experimental_class_lines_are_silenced():
    assert "experimental class" in run(PLAN), "without quieting, azure-ai-ml prints the lines (the test can fail)"
    quiet = "from contoso_chat.backends.environment import quiet_libraries\nquiet_libraries()\n"
    assert "experimental class" not in run(quiet + PLAN)
