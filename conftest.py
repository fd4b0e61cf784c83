"""Test-run wiring: run offline, and stop the background servers it started (and only those) when the run ends."""

import importlib.util

from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.serving.local_service import running_servers, stop_local_stack

ALREADY_RUNNING: dict[str, int] = {}
# Agent Framework's tests and notebook run in make test's second session, with .venv/agent-framework on PYTHONPATH
# (it needs a newer OpenTelemetry than prompt flow accepts); a session without it leaves them out.
AGENT_FRAMEWORK = importlib.util.find_spec("agent_framework") is not None
collect_ignore = [] if AGENT_FRAMEWORK else ["tests/agentframework", "notebooks/08_agent_framework.ipynb"]


def pytest_configure(config):
    prepare_offline_environment()
    ALREADY_RUNNING.update(running_servers())


def pytest_sessionfinish(session, exitstatus):
    stop_local_stack(keep=ALREADY_RUNNING)


def pytest_sessionstart(session):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "notebooks"))
