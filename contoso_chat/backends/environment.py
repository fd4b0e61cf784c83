"""The process environment every entry point sets first: offline, no telemetry, generated files under build/."""

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
