"""The package layout: folders by role, no import cycles, and every module says what it does."""

from __future__ import annotations

import ast
from pathlib import Path

from contoso_chat.paths import PACKAGE_DIR

CORE = {"__init__", "assistant", "prompts", "guards", "chunking", "records", "paths", "catalog"}
ROLES = {"backends", "serving", "evaluation", "finetuning", "azure", "agentframework"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != "contoso_chat":
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    graph = {}
    for name, path in found.items():
        graph[name] = imported(path, known) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if state.get(target) is None:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 30
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_top_level_holds_only_the_app_core_and_the_role_folders():
    top_modules = {p.stem for p in PACKAGE_DIR.glob("*.py")}
    folders = {p.name for p in PACKAGE_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top_modules == CORE
    assert folders == ROLES


def test_the_core_depends_on_no_role_folder_but_backends():
    graph = import_graph()
    for name in CORE - {"__init__"}:
        outside = {t for t in graph[f"contoso_chat.{name}"] if t.split(".")[1] in ROLES - {"backends"}}
        assert not outside, f"contoso_chat.{name} imports {outside}"


def test_backends_never_import_serving_evaluation_or_azure():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("contoso_chat.backends"):
            wrong = {t for t in targets if t.split(".")[1:2] and t.split(".")[1] in {"serving", "evaluation", "azure"}}
            assert not wrong, f"{name} imports {wrong}"


def test_every_module_starts_with_a_docstring_that_says_what_it_does():
    for name, path in modules().items():
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and len(docstring.splitlines()[0]) > 20, f"{name} needs a first line that says what it does"


def test_no_two_modules_share_a_name():
    stems = [p.stem for p in PACKAGE_DIR.rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(stems) == len(set(stems)), sorted(s for s in stems if stems.count(s) > 1)
