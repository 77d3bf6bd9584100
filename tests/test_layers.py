"""The layers of ../shared/spec/architecture.md hold: no upward import and no package cycle, counting
imports inside functions too (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "llmspell"

#: Layer of each unit (a package under llmspell/, or the shell and bindings inside script/).
LAYERS: dict[str, int] = {
    "config": 1, "settings": 1, "runtime": 1, "providers": 1, "resources": 1,
    "script": 2, "agents": 2, "tools": 2, "workflows": 2,
    "state": 3, "sessions": 3, "events": 3, "hooks": 3, "rag": 3,
    "script.globals": 4, "script.shell": 4, "script.docs": 4,
    "bootstrap": 5, "cli": 5, "kernel": 5, "debug": 5, "repl": 5,
}


def unit_of(module: str) -> str:
    """The layer unit a dotted module name belongs to ("" for the llmspell package itself)."""
    parts = module.split(".")[1:]
    if not parts or parts[0] == "__init__":
        return ""
    if parts[0] == "script" and len(parts) > 1 and f"script.{parts[1]}" in LAYERS:
        return f"script.{parts[1]}"
    return parts[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_edges() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, where) for every llmspell import in llmspell/, at any depth."""
    edges: list[tuple[str, str, str]] = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        src = unit_of(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    targets = [".".join([*base, node.module] if node.module else base)]
                elif node.module:
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target == "llmspell" or target.startswith("llmspell."):
                    dst = unit_of(target)
                    if dst and dst != src:
                        edges.append((src, dst, f"{path.relative_to(ROOT.parent)}:{node.lineno}"))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(_module_name(p)) for p in ROOT.rglob("*.py")} - {""}
    assert units <= set(LAYERS), f"units without a layer (add them to LAYERS and to ARCHITECTURE.md): {units - set(LAYERS)}"


def test_no_upward_import() -> None:
    upward = [f"{where}: {src} (layer {LAYERS[src]}) imports {dst} (layer {LAYERS[dst]})"
              for src, dst, where in import_edges() if src and LAYERS.get(dst, 0) > LAYERS.get(src, 0)]
    assert not upward, "\n".join(upward)


def test_no_package_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for src, dst, at in import_edges():
        if src:
            graph[src].add(dst)
            where.setdefault((src, dst), at)
    cycles: list[str] = []
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    ring = [*trail, start]
                    cycles.append(" -> ".join(f"{a} ({where[(a, b)]})" for a, b in zip(ring, ring[1:], strict=False)))
                elif nxt not in seen and nxt > start:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert not cycles, "package cycles:\n" + "\n".join(cycles)


def test_only_the_engine_touches_lupa() -> None:
    engine = {ROOT / "script" / "engine.py", ROOT / "script" / "bridge.py"}
    users = []
    for path in sorted(ROOT.rglob("*.py")):
        if path in engine:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            users += [f"{path.relative_to(ROOT.parent)}:{node.lineno}" for n in names if n.split(".")[0] == "lupa"]
    assert not users, "lupa imported outside the engine (use llmspell.script.bridge):\n" + "\n".join(users)


def _module_edges() -> dict[str, dict[str, int]]:
    """module -> {imported llmspell module: line}, imports inside functions included, `if TYPE_CHECKING:` left out."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}

    def owner(name: str) -> str:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree)
                       if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                       for n in ast.walk(block)}
        out = edges.setdefault(module, {})
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join([*parts[: len(parts) - (node.level - 1)], *([node.module] if node.module else [])])
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = owner(name) if name.startswith("llmspell") else ""
                if target and target != module:
                    out.setdefault(target, node.lineno)
    return edges


def test_no_module_cycle_even_through_lazy_imports() -> None:
    """No two modules need each other at run time: an import inside a function does not hide a cycle."""
    edges = _module_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            ring = []
            while True:
                w = stack.pop()
                ring.append(w)
                if w == v:
                    break
            if len(ring) > 1:
                cycles.append(sorted(ring))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    described = [", ".join(f"{m} (imports {', '.join(f'{t}:{edges[m][t]}' for t in ring if t in edges[m])})"
                           for m in ring) for ring in cycles]
    assert not cycles, "module cycles:\n" + "\n".join(described)
