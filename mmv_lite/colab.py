"""Running the notebooks the same way on a laptop and on Colab.

The repository URL lives here, once: every notebook's "Open in Colab" badge and its Colab install line are built from
:data:`REPO_URL` (``tests/test_notebooks.py`` checks that they agree).

    >>> from mmv_lite.colab import run_mode, samples_dir
    >>> mode = run_mode()          # "quick" or "full", from MMV_LITE_MODE (default: full on CUDA, quick otherwise)
    >>> samples = samples_dir()    # the shipped data_samples/ folder, wherever the notebook runs

The device a notebook runs on comes from :func:`mmv_lite.runtime.select_device`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

REPO_URL = "https://github.com/mmv-lite/mmv_lite"
BRANCH = "main"
MODE_ENV = "MMV_LITE_MODE"
MODES = ("quick", "full")


def colab_url(notebook: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The Colab address that opens ``notebooks/<notebook>`` straight from the repository.

    >>> colab_url("00_data_tour.ipynb")
    'https://colab.research.google.com/github/mmv-lite/mmv_lite/blob/main/notebooks/00_data_tour.ipynb'
    """
    if not repo_url.startswith("https://github.com/"):
        raise ValueError(f"repo_url must be a https://github.com/<owner>/<name> address; got {repo_url!r}")
    owner_name = repo_url.removeprefix("https://github.com/").strip("/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{branch}/notebooks/{notebook}"


def colab_badge(notebook: str) -> str:
    """Markdown of the "Open in Colab" badge for ``notebook`` (a file name in ``notebooks/``)."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})"


def run_mode(default: str | None = None) -> str:
    """``"quick"`` or ``"full"``: ``MMV_LITE_MODE``, else ``default``, else full on CUDA and quick otherwise.

    Quick mode is what the tests run on a 2-core CPU (few steps, few points); full mode is a GPU session's budget.
    """
    value = os.environ.get(MODE_ENV, "").strip().lower() or default
    if not value:
        value = "full" if torch.cuda.is_available() else "quick"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV}={value!r}: expected one of {MODES}")
    return value


def repo_root() -> Path:
    """The repository folder this package was imported from (a clone or an editable install)."""
    return Path(__file__).resolve().parents[1]


def samples_dir(path: str | os.PathLike | None = None) -> Path:
    """The shipped sample data folder (``data_samples/``).

    Looked for in order: ``path``; the ``MMV_LITE_SAMPLES`` environment variable; ``data_samples/`` in the current
    folder or any folder above it (notebooks run from ``notebooks/``); the repository this package sits in.
    """
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    if os.environ.get("MMV_LITE_SAMPLES"):
        candidates.append(Path(os.environ["MMV_LITE_SAMPLES"]))
    here = Path.cwd().resolve()
    candidates += [p / "data_samples" for p in (here, *here.parents)]
    candidates.append(repo_root() / "data_samples")
    for c in candidates:
        if (c / "metadata.json").is_file():
            return c
    raise FileNotFoundError(
        "no data_samples/ folder with metadata.json found (looked in: "
        + ", ".join(str(c) for c in candidates[:4])
        + ", ...). Run the notebooks from a clone of the repository, set MMV_LITE_SAMPLES, "
        "or make the samples with: python -m mmv_lite make-samples"
    )


# The first code cell of every notebook, verbatim (tests/test_notebooks.py checks each notebook against it).
# It cannot import mmv_lite (on Colab mmv_lite is not installed yet), so it repeats REPO_URL; the test keeps them equal.
_SETUP_CELL = """# Setup: works on a laptop and on Colab. On Colab it clones the repository (code + sample clips),
# installs mmv_lite without its dependencies, then only the dependencies Colab lacks, with every package
# Colab already has (torch, ipywidgets 7.7, numpy, ...) pinned at its installed version: nothing is upgraded.
import importlib.util
import os
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires, version

REPO_URL = "{repo_url}"
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/mmv_lite"):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, "/content/mmv_lite"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "/content/mmv_lite"], check=True)
    importlib.invalidate_caches()
    missing, pins = [], []
    for req in requires("mmv_lite"):
        if "extra ==" in req:
            continue
        name = re.split(r"[ ;<>=!~\\[]", req)[0]
        try:
            pins.append(f"{{name}}=={{version(name)}}")
        except PackageNotFoundError:
            missing.append(req)
    if missing:
        with open("/tmp/mmv_lite_pins.txt", "w") as f:
            f.write("\\n".join(pins))
        pip = [sys.executable, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *missing, "-c", "/tmp/mmv_lite_pins.txt"], check=True)
        importlib.invalidate_caches()
    os.chdir("/content/mmv_lite/notebooks")
elif importlib.util.find_spec("mmv_lite") is None:
    sys.path.insert(0, os.path.abspath(".."))  # a clone used without `pip install -e .`"""


def setup_cell(repo_url: str = REPO_URL) -> str:
    """The source of every notebook's first code cell (see the comment above ``_SETUP_CELL``)."""
    return _SETUP_CELL.format(repo_url=repo_url)
