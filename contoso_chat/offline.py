"""Keep libraries quiet and offline: no hub downloads, no telemetry, generated files under build/."""

from __future__ import annotations

import os

from contoso_chat.paths import build_dir

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "LANCE_LOG": "error",
}


def prepare_offline_environment() -> None:
    """Set the variables that stop downloads and telemetry; point prompt flow's home at build/."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    pf_home = build_dir() / "promptflow"
    pf_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PF_HOME_DIRECTORY", str(pf_home))
    config = pf_home / "pf.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


PROMPT_FLOW_SERVICE_PORT = 23333


def stop_prompt_flow_service() -> bool:
    """Stop prompt flow's local service (trace UI) if it is listening; True if it was."""
    import shutil
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", PROMPT_FLOW_SERVICE_PORT)) != 0:
            return False
    pf = Path(sys.executable).with_name("pf")
    command = [str(pf)] if pf.exists() else [shutil.which("pf") or "pf"]
    subprocess.run([*command, "service", "stop"], capture_output=True, timeout=120, env=os.environ.copy())
    return True
