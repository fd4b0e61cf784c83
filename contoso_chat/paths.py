"""Where the project's data and generated files live (one place, overridable from the environment)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def data_dir() -> Path:
    """The data set folder (`CONTOSO_DATA_DIR`, default `data/` in the repository)."""
    return Path(os.environ.get("CONTOSO_DATA_DIR", REPO_ROOT / "data")).resolve()


def build_dir() -> Path:
    """The one git-ignored folder for everything a run generates (`CONTOSO_BUILD_DIR`, default `build/`)."""
    path = Path(os.environ.get("CONTOSO_BUILD_DIR", REPO_ROOT / "build")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
