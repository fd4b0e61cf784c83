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


QUIET_LOGGERS = ("execution", "execution.bulk", "execution.flow", "promptflow", "azure", "azure.identity",
                 "azure.monitor", "httpx", "urllib3", "opentelemetry", "sentence_transformers", "transformers",
                 "lancedb", "uvicorn", "filelock")


# Loggers a library re-levels when it is imported (azure-ai-ml sets its own to INFO, with its own handler),
# so a level set earlier would not hold: a filter on the logger object survives that.
FILTERED_LOGGERS = ("azure.ai.ml._utils._experimental",)


def _errors_only(record) -> bool:
    return record.levelno >= 40  # logging.ERROR


def quiet_libraries() -> None:
    """Keep library logging and warnings out of notebook outputs: errors only, no progress lines of their own."""
    import logging
    import warnings

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in FILTERED_LOGGERS:
        logging.getLogger(name).addFilter(_errors_only)  # added once: the same function is not added twice
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("PF_LOGGING_LEVEL", "ERROR")
    for category in (DeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
