"""The rooms of the house, read from the source with ``ast``, so a change cannot quietly
break them.

- ``jobpipe`` (the contract, the dev stack, the CLI frame) imports no stage;
- ``ingest``, ``bridge`` and ``consumers`` import the contract and themselves only;
- ``dashboard`` imports the contract, ``consumers`` (whose pause and DLQ code it drives)
  and ``ingest`` (whose HTTP server it can be mounted in);
- ``loadtest`` may import every stage (and no stage imports it);
- no module imports, directly or through others, a module that imports it back.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``.
Commands a group loads by string (``"bridge.cli:bridge"``) are not imports.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("jobpipe", "ingest", "bridge", "consumers", "dashboard", "loadtest")
# room -> the rooms it may import (itself included)
ALLOWED: Mapping[str, frozenset[str]] = {
    "jobpipe": frozenset({"jobpipe"}),
    "ingest": frozenset({"jobpipe", "ingest"}),
    "bridge": frozenset({"jobpipe", "bridge"}),
    "consumers": frozenset({"jobpipe", "consumers"}),
    # acts through the consumers' pause and DLQ code and mounts itself beside the
    # intake, so it is a room of its own (and no stage imports it)
    "dashboard": frozenset({"jobpipe", "consumers", "ingest", "dashboard"}),
    "loadtest": frozenset(PACKAGES),
}


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``packages`` under ``root``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """The modules of ``known``'s packages that ``name`` imports, with the line of each.

    ``from a.b import c`` is an import of ``a.b.c`` when that is a module, else of ``a.b``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    roots = {m.partition(".")[0] for m in known}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        for target in targets:
            if target.partition(".")[0] in roots:
                yield target, node.lineno


def graph(root: Path, packages: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Module -> {imported module: line}, within ``packages``."""
    known = modules(root, packages)
    return {name: dict(imported(name, path, known)) for name, path in known.items()}


def room_breaches(edges: Mapping[str, Mapping[str, int]],
                  allowed: Mapping[str, frozenset[str]]) -> list[str]:
    """One line per import that runs from a room to one it may not import."""
    out = []
    for name, targets in sorted(edges.items()):
        room = name.partition(".")[0]
        for target, line in sorted(targets.items()):
            if target.partition(".")[0] not in allowed[room]:
                out.append(f"{name} (line {line}) imports {target}")
    return out


def cycles(edges: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The groups of modules that import each other (strongly connected, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, {}):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges.get(node, {}):
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def edges() -> dict[str, dict[str, int]]:
    return graph(ROOT, PACKAGES)


def test_every_room_imports_only_what_it_may(edges: dict[str, dict[str, int]]) -> None:
    assert room_breaches(edges, ALLOWED) == []


def test_no_import_cycle(edges: dict[str, dict[str, int]]) -> None:
    assert cycles(edges) == []


def test_every_package_of_the_project_has_a_room() -> None:
    # A new top-level package must be given its rules here, not slip past them.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(project["tool"]["mypy"]["packages"]) == set(PACKAGES) == set(ALLOWED)


def test_the_graph_covers_the_tree(edges: dict[str, dict[str, int]]) -> None:
    # The rules above pass trivially on an empty or unreadable tree; this one does not.
    assert {"jobpipe.cli", "bridge.cli", "consumers.worker", "ingest.producer",
            "loadtest.orchestrate"} <= edges.keys()
    assert "jobpipe.settings" in edges["bridge.service"]


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_rules_catch_breaches_and_cycles(tmp_path: Path) -> None:
    write(tmp_path, {
        "jobpipe/__init__.py": "",
        "jobpipe/core.py": "def f():\n    from bridge import relay\n",  # function-local
        "bridge/__init__.py": "",
        "bridge/relay.py": "from . import pump\nimport consumers.sink\n",
        "bridge/pump.py": "from bridge.relay import x\n",
        "consumers/__init__.py": "",
        "consumers/sink.py": "from typing import TYPE_CHECKING\n"
                             "if TYPE_CHECKING:\n    from loadtest import run\n",
        "loadtest/__init__.py": "import bridge\nimport consumers\n",  # allowed
    })
    packages = ("jobpipe", "bridge", "consumers", "loadtest")
    edges = graph(tmp_path, packages)
    assert room_breaches(edges, ALLOWED) == [
        "bridge.relay (line 2) imports consumers.sink",
        "consumers.sink (line 3) imports loadtest",
        "jobpipe.core (line 2) imports bridge.relay",
    ]
    assert cycles(edges) == [["bridge.pump", "bridge.relay"]]
