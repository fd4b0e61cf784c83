"""Plans as YAML for people to read: SDK objects as plain data, every secret-looking value replaced by ***."""

from __future__ import annotations

import re
from typing import Any

import yaml

SECRET_KEYS = re.compile(r"(?i)(key|secret|password|token|connection_string|^sas$)")
SECRET_REFERENCE = re.compile(r"^\$\{\{(azureml://connections/|keyvault:).*\}\}$")  # a pointer, not a secret


def _hidden(key: Any, value: Any) -> bool:
    if not SECRET_KEYS.search(str(key)) or value in (None, "", {}) or isinstance(value, (dict, list)):
        return False
    return not (isinstance(value, str) and SECRET_REFERENCE.match(value))


def redact(value: Any) -> Any:
    """A copy with every secret-looking field's value replaced by *** (secret references stay readable)."""
    if isinstance(value, dict):
        return {k: ("***" if _hidden(k, v) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """OrderedDicts and tuples as plain dicts and lists, for YAML."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_yaml(document: dict) -> str:
    """The document as YAML, redacted."""
    return yaml.safe_dump(redact(plain(document)), sort_keys=False, width=110)
