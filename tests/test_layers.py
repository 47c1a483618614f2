"""The import graph of ``recorder/``: no cycles, and every import goes down the layers.

Every module is parsed (never imported) and every ``recorder.*`` import counted, function
level and ``TYPE_CHECKING`` ones included: an import that only dodges a cycle at run time is
still a cycle in the design. The layers, bottom up:

1. **spine**: what every part shares (schema, rows, actions, the catalogue's types, config,
   errors) and the pipeline (journal, transport, normalize, collect, lake, build). It imports
   nothing under ``recorder.venues``: it is handed the catalogue value.
2. **venues**: ``recorder.venues.<venue>.*`` and the helpers they share (``base``,
   the simulator driver ``recorder.sim``). A venue imports the spine, the shared helpers and its own folder, never
   another venue's.
3. **the catalogue value**: ``recorder.venues`` itself (``venues/__init__.py``), one line per
   venue.
4. **application**: the CLI, ``record``, the views, replay, ``verify``... (every other
   top-level module): they may import anything below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "recorder"
SPINE = frozenset({
    "recorder.errors", "recorder.schema", "recorder.exact", "recorder.rows", "recorder.actions",
    "recorder.config", "recorder.options", "recorder.catalogue", "recorder.journal",
    "recorder.runs", "recorder.normalize", "recorder.collect", "recorder.lake",
    "recorder.build", "recorder.transport", "recorder.progress", "recorder.sse",
})
# What venues share: the adapter prelude, and the simulator driver (sessions, ledger, faults,
# clock, the recording a native replay server reads).
VENUE_SHARED = frozenset({"recorder.venues.base", "recorder.sim", "recorder.sim.driver",
                          "recorder.sim.clock", "recorder.sim.recording"})
CATALOGUE = "recorder.venues"
# Edges that break the layers today, each with the work that removes it. The test fails when
# one disappears, so the list only ever shrinks.
KNOWN: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _target(name: str) -> str | None:
    """The recorder module ``name`` refers to (a module, or the module holding it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # `from recorder.venues import derive` imports the module recorder.venues.derive
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        for n in names:
            t = _target(n) if n.startswith("recorder") else None
            if t is not None and t != module:
                out.add(t)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Every module's ``recorder`` imports: parsed once, when a test here runs (not at
    collection, in every worker), and module-scoped so that these tests share one worker."""
    return {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> str:
    if module == CATALOGUE:
        return "catalogue"
    if module.startswith(CATALOGUE + ".") or module in VENUE_SHARED:
        return "venues"
    if module in SPINE or any(module.startswith(s + ".") for s in SPINE):
        return "spine"
    return "app"


def _venue(module: str) -> str | None:
    """The venue folder a module belongs to (None for the helpers venues share)."""
    return None if module in VENUE_SHARED else module.split(".")[2]


ALLOWED = {"spine": {"spine"}, "venues": {"spine", "venues"},
           "catalogue": {"spine", "venues"}, "app": {"spine", "venues", "catalogue", "app"}}


def test_the_graph_is_parsed(graph: dict[str, set[str]]) -> None:
    # The walk sees what it must: a function-level import, and a package import.
    assert "recorder.record" in graph["recorder.cli"]
    assert {"recorder.venues.mackinac", "recorder.catalogue"} <= graph[CATALOGUE]
    assert "recorder.venues.derive.server" in graph["recorder.venues.derive"]


def test_every_import_goes_down_the_layers(graph: dict[str, set[str]]) -> None:
    bad = []
    for m, deps in graph.items():
        for d in sorted(deps):
            if (m, d) in KNOWN:
                continue
            if _layer(d) not in ALLOWED[_layer(m)]:
                bad.append(f"{m} ({_layer(m)}) imports {d} ({_layer(d)})")
    assert not bad, "\n".join(bad)


def test_a_venue_imports_no_other_venue(graph: dict[str, set[str]]) -> None:
    bad = []
    for m, deps in graph.items():
        if _layer(m) != "venues" or _venue(m) is None:
            continue
        for d in deps:
            if _layer(d) == "venues" and _venue(d) not in (None, _venue(m)):
                bad.append(f"{m} imports {d}")
    assert not bad, "\n".join(bad)


def test_no_cycles(graph: dict[str, set[str]]) -> None:
    graph = {m: {d for d in deps if (m, d) not in KNOWN} for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_known_exceptions_still_exist(graph: dict[str, set[str]]) -> None:
    """Remove an entry of KNOWN once its edge is gone."""
    assert all(d in graph[m] for m, d in KNOWN)
