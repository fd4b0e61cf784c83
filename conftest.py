"""Test-run wiring: run offline, and stop the background servers it started (and only those) when the run ends."""

from contoso_chat.backends.environment import prepare_offline_environment
from contoso_chat.serving.local_service import running_servers, stop_local_stack

ALREADY_RUNNING: dict[str, int] = {}


def pytest_configure(config):
    prepare_offline_environment()
    ALREADY_RUNNING.update(running_servers())


def pytest_sessionfinish(session, exitstatus):
    stop_local_stack(keep=ALREADY_RUNNING)


def pytest_sessionstart(session):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "notebooks"))
