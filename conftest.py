"""Test-run wiring: run offline, and stop every background server it started when the run ends."""

from contoso_chat.serving.local_service import stop_local_stack
from contoso_chat.backends.environment import prepare_offline_environment


def pytest_configure(config):
    prepare_offline_environment()


def pytest_sessionfinish(session, exitstatus):
    stop_local_stack()


def pytest_sessionstart(session):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "notebooks"))
