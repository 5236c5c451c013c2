"""The house's shape: no import circles among lorag's modules, and each package imports only the floors below it
(ARCHITECTURE.md). Read from the source with `ast`, so an import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "ingest", "finetune", "eval", "services", "ui")
# what each package may import besides itself: ui wires everything; services run the user actions over the three
# jobs; ingest, finetune and eval are siblings over the core; assistant imports none of them
MAY_IMPORT = {
    "assistant": set(),
    "ingest": {"assistant"},
    "finetune": {"assistant"},
    "eval": {"assistant"},
    "services": {"assistant", "ingest", "finetune", "eval"},
    "ui": {"assistant", "ingest", "finetune", "eval", "services"},
}


def modules(root: Path = REPO) -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for f in (root / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = f
    return found


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project's modules it imports (`from a.b import c` counts a.b.c when c is a module, else a.b)."""
    graph = {}
    for name, f in mods.items():
        out: set[str] = set()
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, level - 1 up
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                subs = {f"{base}.{a.name}" for a in node.names}
                if not subs <= mods.keys():  # `from pkg import submodule` needs pkg loaded, not run: no edge to it
                    out.add(base)
                out.update(subs)
        graph[name] = {m for m in out if m in mods and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert cycles(import_graph(modules())) == []


def test_each_package_imports_only_the_floors_below_it():
    wrong = [
        f"{m} imports {d}"
        for m, deps in import_graph(modules()).items()
        for d in sorted(deps)
        if d.split(".")[0] != m.split(".")[0] and d.split(".")[0] not in MAY_IMPORT[m.split(".")[0]]
    ]
    assert wrong == []


def test_the_check_finds_a_circle_and_a_wrong_floor(tmp_path):
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "ui" / "a.py").write_text("def f():\n    from ui import b\n")  # inside a function: still a circle
    (tmp_path / "ui" / "b.py").write_text("from ui.a import f\n")
    (tmp_path / "eval" / "x.py").write_text("from finetune import y\n")
    (tmp_path / "finetune" / "y.py").write_text("from . import z\n")
    (tmp_path / "finetune" / "z.py").write_text("import finetune.y\n")
    graph = import_graph(modules(tmp_path))
    assert cycles(graph) == [["finetune.y", "finetune.z"], ["ui.a", "ui.b"]]
    assert "finetune.y" in graph["eval.x"]
