"""Load a `.prompty` file and render it into chat messages.

The format is prompt flow's Prompty: YAML front matter (model, parameters, inputs, sample) and a
Jinja2 template whose `system:` / `user:` / `assistant:` lines start messages. This small
renderer produces the same messages as `promptflow.core.Prompty` (a test checks it), so the app
keeps working when prompt flow is retired; only notebooks and the flex flow use prompt flow.

Role lines inside input values (a question, a document, a history turn) are escaped before
rendering, so text such as "system:" typed by a user cannot start a message of its own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2.sandbox import SandboxedEnvironment

from contoso_chat.paths import PACKAGE_DIR

DEFAULT_PROMPTY = PACKAGE_DIR / "contoso_chat.prompty"
ROLES = ("system", "user", "assistant", "function", "tool")
ROLE_LINE = re.compile(r"(?im)^(\s*#?\s*)(" + "|".join(ROLES) + r")(\s*:\s*)$")
SEPARATOR = re.compile(r"(?im)^\s*#?\s*(" + "|".join(ROLES) + r")\s*:\s*\n")


@dataclass(frozen=True)
class PromptyFile:
    """A parsed .prompty file."""

    path: Path
    front_matter: dict = field(hash=False)
    template: str

    @property
    def parameters(self) -> dict:
        return dict(self.front_matter.get("model", {}).get("parameters", {}))

    @property
    def sample(self) -> dict:
        return dict(self.front_matter.get("sample", {}))


CANARY = re.compile(r"\bCANARY-[A-Z0-9]+(?:-[A-Z0-9]+)*\b")


def canary(text: str) -> str:
    """The canary token in a prompt's text (it lives in the .prompty file only), or '' when there is none."""
    match = CANARY.search(text)
    return match.group(0) if match else ""


def confidential_rules(messages: list[dict]) -> str:
    """The part of the rendered system message that must never reach an answer: from the canary line to the facts."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    start = system.find(canary(system)) if canary(system) else 0
    line_start = system.rfind("\n", 0, start) + 1
    end = system.find("\nFacts:")
    return system[line_start:end if end > 0 else len(system)]


def load(path: Path | str = DEFAULT_PROMPTY) -> PromptyFile:
    """Parse the front matter and the template of a .prompty file."""
    text = Path(path).read_text(encoding="utf-8")
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n(.*)$", text, re.S)
    if not match:
        raise ValueError(f"{Path(path).name} is not a prompty file: it must start with '---' front matter")
    return PromptyFile(Path(path), yaml.safe_load(match.group(1)) or {}, match.group(2))


def _escape(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            token = f"[[role-{uuid.uuid4().hex}]]"
            table[token] = match.group(2)
            return match.group(1) + token + match.group(3)
        return ROLE_LINE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _escape(v, table) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape(v, table) for v in value]
    return value


def _unescape(text: str, table: dict[str, str]) -> str:
    for token, role in table.items():
        text = text.replace(token, role)
    return text


def render(prompty: PromptyFile, **inputs: Any) -> list[dict[str, str]]:
    """The chat messages for these inputs (defaults from the front matter fill missing ones)."""
    declared = prompty.front_matter.get("inputs", {}) or {}
    values = {name: spec.get("default") for name, spec in declared.items() if isinstance(spec, dict)}
    values.update(inputs)
    table: dict[str, str] = {}
    escaped = {k: _escape(v, table) for k, v in values.items()}
    environment = SandboxedEnvironment(trim_blocks=True, keep_trailing_newline=True)
    text = environment.from_string(prompty.template).render(**escaped)
    parts = SEPARATOR.split(text)
    messages = []
    for role, content in zip(parts[1::2], parts[2::2]):
        content = _unescape(content.strip(), table)
        if content:
            messages.append({"role": role.lower(), "content": content})
    return messages
