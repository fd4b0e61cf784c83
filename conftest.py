"""Test-run wiring: run offline, and stop the local model server and prompt flow's service when the run ends."""

from contoso_chat.local_model import stop_local_model
from contoso_chat.offline import prepare_offline_environment, stop_prompt_flow_service


def pytest_configure(config):
    prepare_offline_environment()


def pytest_sessionfinish(session, exitstatus):
    stop_local_model()
    stop_prompt_flow_service()


def pytest_sessionstart(session):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "notebooks"))
