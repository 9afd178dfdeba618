"""Check (or fix) that every ``notebooks/*.py`` and its ``.ipynb`` pair say the same, and carry no outputs.

python -m mmv_lite.tools.notebook_pairs --check           # pairs in sync, badges follow pyproject.toml (exit 1 if not)
python -m mmv_lite.tools.notebook_pairs --check-outputs   # no outputs in committed .ipynb
python -m mmv_lite.tools.notebook_pairs --sync            # rewrite each .py's badge, then each .ipynb from its .py

The "Open in Colab" badge in each notebook's first cell is derived from the repository address in pyproject.toml
(:func:`mmv_lite.colab.colab_badge`): after changing that address, ``--sync`` rewrites every badge.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from mmv_lite.colab import colab_badge
from mmv_lite.files import atomic_write

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _jupytext():
    try:
        import jupytext  # a development tool (requirements.txt), not a dependency of the package
    except ImportError as e:  # pragma: no cover - jupytext is in requirements.txt
        raise SystemExit("jupytext is needed: pip install -r requirements.txt") from e
    return jupytext


def pairs(folder: Path = NOTEBOOKS) -> list[tuple[Path, Path]]:
    """(source .py, paired .ipynb) for every notebook source in ``folder``."""
    return [(py, py.with_suffix(".ipynb")) for py in sorted(folder.glob("[0-9]*.py"))]


_BADGE_LINE = re.compile(r"^# \[!\[Open In Colab\]\(.*$", flags=re.M)


def stale_badge(py: Path) -> str | None:
    """The badge line ``py`` should have, when it has another one (None when it is right or has no badge)."""
    want = f"# {colab_badge(py.with_suffix('.ipynb').name)}"
    m = _BADGE_LINE.search(py.read_text())
    return want if m and m[0] != want else None


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def out_of_sync(folder: Path = NOTEBOOKS) -> list[str]:
    """Problems found, one line each (empty when every pair agrees cell by cell)."""
    jt = _jupytext()
    problems = []
    for py, ipynb in pairs(folder):
        if not ipynb.exists():
            problems.append(f"{py.name}: no paired {ipynb.name} (run --sync)")
            continue
        a, b = _cells(jt.read(py)), _cells(jt.read(ipynb))
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            problems.append(f"{ipynb.name} differs from {py.name} from cell {first} on (run --sync)")
    for py, _ in pairs(folder):
        if stale_badge(py):
            problems.append(f"{py.name}: its Colab badge does not follow pyproject.toml's Repository (run --sync)")
    for ipynb in sorted(folder.glob("[0-9]*.ipynb")):
        if not ipynb.with_suffix(".py").exists():
            problems.append(f"{ipynb.name}: no .py source beside it")
    return problems


def with_outputs(folder: Path = NOTEBOOKS) -> list[str]:
    """Notebooks that carry outputs or execution counts."""
    bad = []
    for ipynb in sorted(folder.glob("*.ipynb")):
        nb = json.loads(ipynb.read_text())
        for cell in nb.get("cells", []):
            if cell.get("outputs") or cell.get("execution_count"):
                bad.append(ipynb.name)
                break
    return bad


def _stable_ids(nb) -> None:
    """Cell ids from each cell's content, so that re-syncing an unchanged notebook changes no byte of it."""
    seen: dict[str, int] = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        cell["id"] = digest if n == 0 else f"{digest}-{n}"


def sync(folder: Path = NOTEBOOKS) -> list[Path]:
    """Rewrite stale badges in the .py sources, then write every .ipynb from its .py source, with no outputs; returns
    the files that changed."""
    jt = _jupytext()
    changed = []
    for py, ipynb in pairs(folder):
        if badge := stale_badge(py):
            atomic_write(py, _BADGE_LINE.sub(lambda _: badge, py.read_text(), count=1))
            changed.append(py)
        nb = jt.read(py)
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        _stable_ids(nb)
        text = jt.writes(nb, fmt="ipynb")
        if not ipynb.exists() or ipynb.read_text() != text:
            atomic_write(ipynb, text)
            changed.append(ipynb)
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    p.add_argument("--check-outputs", action="store_true")
    p.add_argument("--sync", action="store_true")
    p.add_argument("--folder", type=Path, default=NOTEBOOKS)
    args = p.parse_args(argv)
    if args.sync:
        sync(args.folder)
    rc = 0
    if args.check:
        for line in out_of_sync(args.folder):
            print(line, file=sys.stderr)
            rc = 1
    if args.check_outputs:
        for name in with_outputs(args.folder):
            print(f"{name} carries outputs: run 'python -m mmv_lite.tools.notebook_pairs --sync'", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
