"""The package's shape: no import cycle among its modules, its own modules imported at the top, short functions,
modules of a readable length."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmv_lite"
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = 600
# The sample-world generator reads as one story; clips.py holds the dataset and the video decoder together.
LONG_MODULES = {"data/synth.py", "data/clips.py"}


def _modules() -> dict[str, Path]:
    """``{"mmv_lite.models.mmv": path, ...}`` for every module of the package (packages as their __init__)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_relative_and_nested_imports():
    graph = import_graph()
    assert "mmv_lite.config" in graph["mmv_lite.models.mmv"]  # from ..config import ...
    assert "mmv_lite.models.mmv" in graph["mmv_lite"]  # imported inside __getattr__
    assert "mmv_lite.viz.network" in graph["mmv_lite.viz"]  # from .network import ...


def test_no_import_cycle_among_the_package_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_functions_are_short():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_modules_are_of_a_readable_length():
    long = [
        f"{path.relative_to(PACKAGE)} ({n} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
        and path.relative_to(PACKAGE).as_posix() not in LONG_MODULES
    ]
    assert not long, long


# Modules allowed to import a package module inside a function, and why.
LOCAL_PACKAGE_IMPORTS = {
    "__init__.py": "build_model is imported on first use, so that `import mmv_lite` does not import torch",
    "data/synth.py": "the word vectors are trained only when the samples are written",
    "data/render.py": "numba is imported, and its loops compiled or read from its cache, when a CPU draws a batch",
}


def test_package_modules_are_imported_at_the_top():
    nested = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                own = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mmv_lite"))
                own |= isinstance(node, ast.Import) and any(a.name.startswith("mmv_lite") for a in node.names)
                if own and rel not in LOCAL_PACKAGE_IMPORTS:
                    nested.append(f"{rel}:{node.lineno} in {fn.name}")
    assert not nested, nested


def test_training_on_the_world_does_not_import_torchvision():
    """torchvision's import takes about 2 s (torchvision.ops pulls in torch._dynamo); the processes that only draw
    the sample world (train --preset lite, notebooks 01-03, DataLoader workers started with spawn) never need it."""
    import subprocess
    import sys

    code = "import sys, mmv_lite.__main__, mmv_lite.train, mmv_lite.evaluate; print('torchvision' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr[-2000:]
