"""The package layout: subpackages by stage, no import cycles, no private names crossing
subpackages, small modules, and a complete public surface. No model needed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rag

PACKAGE = Path(rag.__file__).resolve().parent
MAX_LINES = 430
# Lower layers never import higher ones; interfaces, eval and bench sit on top.
TOP = {"rag.interfaces", "rag.eval", "rag.bench", "rag.__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return name or None


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module imported, name imported) for every ``rag`` import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("rag")]
    return found


def _subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for imported, name in _imports(path):
            target = _resolve(f"{imported}.{name}") or _resolve(imported)
            if target and target != module:
                graph[module].add(target)
    return graph


def test_no_import_cycles_between_modules_or_subpackages() -> None:
    graph = _graph()
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if _subpackage(module) != _subpackage(target):
                packages.setdefault(_subpackage(module), set()).add(_subpackage(target))
    for g in (graph, packages):
        state: dict[str, int] = {}

        def visit(node: str, path: list[str], g: dict[str, set[str]] = g,
                  state: dict[str, int] = state) -> None:
            state[node] = 1
            for nxt in g.get(node, ()):
                assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, nxt])}"
                if nxt not in state:
                    visit(nxt, [*path, nxt])
            state[node] = 2

        for start in list(g):
            if start not in state:
                visit(start, [start])


def test_the_library_never_imports_eval_bench_or_interfaces() -> None:
    offenders = [f"{module} imports {target}" for module, targets in _graph().items()
                 if _subpackage(module) not in TOP
                 for target in targets if _subpackage(target) in TOP]
    assert not offenders


def test_no_private_name_crosses_a_subpackage() -> None:
    offenders = []
    for module, path in MODULES.items():
        for imported, name in _imports(path):
            if name.startswith("_") and _subpackage(imported) != _subpackage(module):
                offenders.append(f"{module}: from {imported} import {name}")
            if any(part.startswith("_") and part != "__main__"
                   for part in imported.split(".")[1:]) and \
                    _subpackage(imported) != _subpackage(module):
                offenders.append(f"{module}: import {imported}")
    assert not offenders


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by responsibility"


def test_public_surface_is_complete() -> None:
    exported = {name for name in dir(rag) if not name.startswith("_")}
    modules = {"errors", "facade", "settings", "types", "answer", "bench", "embed", "eval",
               "ingest", "interfaces", "retrieve", "sources", "store", "annotations"}
    assert sorted(exported - modules) == sorted(rag.__all__)
    for name in rag.__all__:
        assert getattr(rag, name).__module__.startswith("rag.")
    assert "ConstraintCoverage" in rag.__all__  # every type an Answer carries is public
