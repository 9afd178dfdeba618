"""``python -m mmv_lite bundle --out mmv_lite.zip``: the kit as one zip, for a teacher to upload to Colab or Drive.

The zip holds one folder, ``mmv_lite/``: the package, the notebooks, ``data_samples/`` (the sample clips, captions,
word vectors and the shipped checkpoint ``mmv_lite_fac.pt``), ``docs/`` (the results files notebook 07 reads),
``pyproject.toml``, ``requirements.txt``, the README and the licence. Caches and compiled files are left out
(``data_samples/videos/.cache`` alone can reach 150 MB). Unzipped in ``/content`` it is the copy that each notebook's
Colab set-up cell finds first (:data:`mmv_lite.colab.SETUP_CELL`); on a laptop, ``pip install -e .`` in it.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .colab import repo_root
from .files import atomic_path

TOP = "mmv_lite"  # the folder inside the zip
PARTS = ("mmv_lite", "notebooks", "data_samples", "docs", "pyproject.toml", "requirements.txt", "README.md", "LICENSE")
SKIP_DIRS = {"__pycache__", ".cache", ".ipynb_checkpoints", ".pytest_cache", "runs", ".git"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".tmp")


def bundle_files(root: Path) -> Iterator[Path]:
    """The files of the kit under ``root`` that go into the zip, in a stable order."""
    for part in PARTS:
        path = root / part
        if path.is_file():
            yield path
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(files):
                if not name.endswith(SKIP_SUFFIXES) and not name.startswith("."):
                    yield Path(folder) / name


def write_bundle(out: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write the kit at ``root`` (default: the repository this package sits in) as ``out`` (a .zip); returns it."""
    root, out = Path(root) if root is not None else repo_root(), Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"--out {str(out)!r}: expected a file name ending in .zip")
    missing = [p for p in PARTS[:3] if not (root / p).exists()]
    if missing:
        raise FileNotFoundError(f"{root}: not a copy of the kit (no {', '.join(missing)}); run bundle from a clone")
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for path in bundle_files(root):
            rel = path.relative_to(root).as_posix()
            # mp4, the checkpoint and other binaries barely compress: store them as they are
            kind = zipfile.ZIP_DEFLATED if path.suffix in (".py", ".ipynb", ".md", ".json", ".toml", ".txt") else 0
            z.write(path, f"{TOP}/{rel}", compress_type=kind)
    return out


def cli_main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mmv_lite bundle",
        description="Write the kit (package, notebooks, data_samples/ with the shipped checkpoint, docs/results) as "
        "one zip to upload to Colab or Drive (README.md, 'Colab').",
    )
    p.add_argument("--out", required=True, help="the zip to write, e.g. mmv_lite.zip")
    args = p.parse_args(argv)
    out = write_bundle(args.out)
    with zipfile.ZipFile(out) as z:
        count = len(z.namelist())
    print(f"wrote {out}: {out.stat().st_size / 1e6:.1f} MB, {count} files in {TOP}/")
    print(f"Colab: upload it in the Files pane (it lands in /content), then run any notebook's first cell: it unzips "
          f"{out.name} and uses /content/{TOP}")  # fmt: skip
    return 0
