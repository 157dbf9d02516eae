"""The package's layers import only downward (docs/architecture.md): an ast walk over every
module finds each ``healthbench`` import (top level and inside functions) and fails on an upward
import, on a models/ module reaching past core/ and data/, on report/ reaching run/ or models/,
and on any import cycle between modules."""
from __future__ import annotations

import ast
from pathlib import Path

import healthbench

PACKAGE = Path(healthbench.__file__).resolve().parent

#: Lowest first; a layer may import only the layers before it (and itself).
LAYERS = ["core", "data", "taskconfig", "scoring", "suites", "models", "results", "run",
          "report", "api"]
#: Known upward edges still to remove (each names the issue work that removes it). Empty is the goal.
KNOWN_UPWARD: set[tuple[str, str]] = set()
#: Layers that may import only some of the lower ones.
RESTRICTED = {"models": {"core", "data", "models"},
              "report": {"core", "data", "taskconfig", "scoring", "results", "report"}}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__", "cli", "metrics", "__main__", "api"):
        return "api"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    this = module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("healthbench"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = this.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("healthbench"):
                found.add(mod)
                for alias in node.names:  # `from healthbench.x import y` may import module y
                    candidate = f"{mod}.{alias.name}"
                    if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists() \
                            or (PACKAGE.parent / Path(*candidate.split("."))).is_dir():
                        found.add(candidate)
    found.discard(this)
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))
            if "_tasks" not in p.parts}


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = sorted(m for m in import_graph() if layer_of(m) not in LAYERS)
    assert not unknown, f"modules outside the layers: {unknown}"


def test_no_upward_or_forbidden_import() -> None:
    bad = []
    for module, targets in import_graph().items():
        mine = layer_of(module)
        allowed = RESTRICTED.get(mine, set(LAYERS[:LAYERS.index(mine) + 1]))
        for target in targets:
            if target == "healthbench":
                continue  # the package root holds only __version__ and lazy names
            if layer_of(target) not in allowed and (module, target) not in KNOWN_UPWARD:
                bad.append(f"{module} ({mine}) imports {target} ({layer_of(target)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle() -> None:
    graph = import_graph()
    # package __init__ modules are imported on the way to their children; count those edges too
    edges = {m: {t for t in ts if t in graph} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_layer_checker_catches_an_upward_import(tmp_path: Path) -> None:
    """The walk sees function-level imports: a check that could not fail would prove nothing."""
    bad = tmp_path / "mod.py"
    bad.write_text("def f():\n    from healthbench.run.runner import run_task\n")
    assert "healthbench.run.runner" in imports_of_any(bad)


def imports_of_any(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
