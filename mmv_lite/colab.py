"""Running the notebooks the same way on a laptop and on Colab.

    >>> from mmv_lite.colab import run_mode, samples_dir
    >>> mode = run_mode()          # "quick" or "full", from MMV_LITE_MODE (default: full on CUDA, quick otherwise)
    >>> samples = samples_dir()    # the shipped data_samples/ folder, wherever the notebook runs

**One repository address.** It is written once, as ``Repository`` under ``[project.urls]`` in ``pyproject.toml``
(:func:`repository_url` reads it there in a checkout, and from the package metadata where the kit is installed).
Everything else follows it: each notebook's "Open in Colab" badge (:func:`colab_badge`;
``python -m mmv_lite.tools.notebook_pairs --sync`` rewrites the badges) and, through the badge, the clone that the
Colab set-up cell makes. While the address is the placeholder (owner ``OWNER``) the project is not published: the
badges point at the README's Colab section, and the set-up cell works from an uploaded or Drive copy only.

**The set-up cell** (:data:`SETUP_CELL`, the first code cell of every notebook, at most six lines) names no address.
On Colab it first uses a copy of the kit that is already there: ``/content/<folder>/`` (a teacher's clone, or the zip
of ``python -m mmv_lite bundle`` uploaded as ``/content/mmv_lite*.zip``, which the cell unzips), else
``/content/drive/MyDrive/<folder>/`` (Drive, once mounted). Only without a copy does it read the repository and branch
from the notebook's own badge and clone it into ``/content/mmv_lite``; with the placeholder address it stops with a
message giving the three ways (README.md, "Colab"). Then it
calls :func:`setup_colab`, which installs the kit without its dependencies and then only the dependencies Colab lacks,
with torch, ipywidgets and every other package Colab already has pinned at its installed version: nothing is upgraded
(installing ipywidgets 8 on Colab breaks its widgets). On a laptop the cell does nothing: ``pip install -r
requirements.txt`` installed everything.

The device a notebook runs on comes from :func:`mmv_lite.runtime.select_device`.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

BRANCH = "main"
MODE_ENV = "MMV_LITE_MODE"
SAMPLES_ENV = "MMV_LITE_SAMPLES"  # the sample folder, where the kit is not a checkout (pip install from git)
SOLUTIONS_ENV = "MMV_LITE_SOLUTIONS"  # 1: exercise starters use the solutions (mmv_lite.exercises)
MODES = ("quick", "full")
PLACEHOLDER_OWNER = "OWNER"  # the owner in pyproject.toml's address until the project is published
CLONE_DIR = "/content/mmv_lite"
# Never upgraded on Colab (pinned at Colab's versions even when a requirement would allow a newer one).
PROTECTED = ("torch", "torchvision", "torchaudio", "ipywidgets", "numpy")
_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_UNPUBLISHED_LINK = "../README.md#colab"

# The first code cell of every notebook, verbatim (tests/test_notebooks.py checks each notebook against it).
# On Colab mmv_lite is not installed yet, so the cell cannot import it before the clone: it takes the repository and
# branch from the notebook's own "Open in Colab" badge (derived from pyproject.toml), which holds no badge link while
# the project is unpublished. "# fmt: off" keeps the formatter from spreading the three lines over twenty.
SETUP_CELL = r"""# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)"""  # noqa: E501


# --------------------------------------------------------------------------------------------------------------------
# The repository address, and what follows from it
# --------------------------------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The repository folder this package was imported from (a clone or an editable install)."""
    return Path(__file__).resolve().parents[1]


def _urls_from_pyproject(text: str) -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the one table we need, read line by line
        urls, inside = {}, False
        for line in text.splitlines():
            if line.strip().startswith("["):
                inside = line.strip() == "[project.urls]"
            elif inside and (m := re.match(r'\s*"?([\w .-]+?)"?\s*=\s*"([^"]*)"', line)):
                urls[m[1]] = m[2]
        return urls
    return dict(tomllib.loads(text).get("project", {}).get("urls", {}))


def repository_url() -> str:
    """``Repository`` under ``[project.urls]``: from ``pyproject.toml`` in a checkout (it may be newer than the
    metadata of an editable install), else from the installed package's metadata."""
    pyproject = repo_root() / "pyproject.toml"
    if pyproject.is_file() and 'name = "mmv_lite"' in (text := pyproject.read_text()):
        urls = _urls_from_pyproject(text)
    else:
        entries = metadata.metadata("mmv_lite").get_all("Project-URL") or []
        urls = dict(tuple(part.strip() for part in e.split(",", 1)) for e in entries if "," in e)
    if "Repository" not in urls:
        raise KeyError("pyproject.toml has no Repository under [project.urls]: the notebooks' badges need it")
    return urls["Repository"]


def owner_and_name(repo_url: str | None = None) -> tuple[str, str]:
    """``("owner", "name")`` of a ``https://github.com/<owner>/<name>`` address (default: :func:`repository_url`)."""
    repo_url = repository_url() if repo_url is None else repo_url
    m = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url)
    if not m:
        raise ValueError(f"the repository address must be https://github.com/<owner>/<name>; got {repo_url!r}")
    return m[1], m[2]


def published(repo_url: str | None = None) -> bool:
    """False while the repository address is the placeholder (owner ``OWNER``)."""
    return owner_and_name(repo_url)[0] != PLACEHOLDER_OWNER


def colab_url(notebook: str, repo_url: str | None = None, branch: str = BRANCH) -> str:
    """The Colab address that opens ``notebooks/<notebook>`` straight from the repository (published or not)."""
    owner, name = owner_and_name(repo_url)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/{notebook}"


def colab_badge(notebook: str, repo_url: str | None = None) -> str:
    """Markdown of the "Open in Colab" badge for ``notebook`` (a file name in ``notebooks/``).

    While the project is unpublished the badge leads to the README's Colab section instead of an address that
    does not exist (or belongs to someone else)."""
    link = colab_url(notebook, repo_url) if published(repo_url) else _UNPUBLISHED_LINK
    return f"[![Open In Colab]({_BADGE_IMAGE})]({link})"


# --------------------------------------------------------------------------------------------------------------------
# Colab: what the set-up cell calls after the clone
# --------------------------------------------------------------------------------------------------------------------


def _requirement_name(req: str) -> str:
    return re.split(r"[ ;<>=!~\[(]", req.strip(), maxsplit=1)[0]


def install_plan(requirements: list[str], installed: dict[str, str]) -> tuple[list[str], list[str]]:
    """``(missing, pins)``: the requirements that are not installed, and ``name==version`` constraints for every
    requirement (and every :data:`PROTECTED` package) that is. Extras (``; extra == ...``) are skipped."""
    missing, pins = [], []
    names = []
    for req in requirements:
        if "extra ==" in req:
            continue
        names.append(_requirement_name(req))
        if names[-1].lower() not in installed:
            missing.append(req.strip())
    for name in dict.fromkeys([*names, *PROTECTED]):
        if name.lower() in installed:
            pins.append(f"{name}=={installed[name.lower()]}")
    return missing, pins


def _installed_versions() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(name.lower(), dist.version)
            out.setdefault(name.lower().replace("_", "-"), dist.version)
            out.setdefault(name.lower().replace("-", "_"), dist.version)
    return out


def _dependencies(root: Path) -> list[str]:
    text = (root / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        block = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.S | re.M)
        return re.findall(r'"([^"]+)"', block[1]) if block else []
    return list(tomllib.loads(text)["project"]["dependencies"])


def setup_colab(clone: str | os.PathLike = CLONE_DIR) -> None:
    """Finish the Colab set-up once the set-up cell has found the kit (or cloned it) at ``clone``.

    Installs the kit itself without its dependencies (editable, so ``python -m mmv_lite`` works in a shell too), then
    the dependencies Colab lacks, under constraints that pin every requirement Colab has, and torch, torchvision,
    torchaudio, ipywidgets and numpy, at the installed versions; then works from ``clone/notebooks``, with
    ``MMV_LITE_SAMPLES`` naming ``clone/data_samples`` (:func:`samples_dir`).
    """
    clone = Path(clone)
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--no-deps", "-e", str(clone)], check=True)
    missing, pins = install_plan(_dependencies(clone), _installed_versions())
    if missing:
        fd, name = tempfile.mkstemp(prefix="mmv_lite_constraints_", suffix=".txt")
        os.close(fd)
        constraints = Path(name)
        constraints.write_text("\n".join(pins) + "\n")
        subprocess.run([*pip, *missing, "-c", str(constraints)], check=True)
    importlib.invalidate_caches()
    if str(clone) not in sys.path:
        sys.path.insert(0, str(clone))
    os.chdir(clone / "notebooks")
    os.environ[SAMPLES_ENV] = str(clone / "data_samples")
    print(f"mmv_lite is set up from {clone}" + (f"; installed {', '.join(missing)}" if missing else ""))


# --------------------------------------------------------------------------------------------------------------------
# Run mode and the sample folder
# --------------------------------------------------------------------------------------------------------------------


def run_mode(default: str | None = None) -> str:
    """``"quick"`` or ``"full"``: ``MMV_LITE_MODE``, else ``default``, else full on CUDA and quick otherwise.

    Quick mode is what the tests run on a 2-core CPU (few steps, few points); full mode is a GPU session's budget.
    """
    value = os.environ.get(MODE_ENV, "").strip().lower() or default
    if not value:
        import torch

        value = "full" if torch.cuda.is_available() else "quick"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV}={value!r}: expected one of {MODES}")
    return value


RUNS_ENV = "MMV_LITE_RUNS"  # where notebooks write their training runs (the notebook tests set a temp folder)


def runs_dir() -> Path:
    """Where a notebook writes its training runs: ``$MMV_LITE_RUNS`` when set, else ``runs/`` at the top of the kit
    (beside ``data_samples/``; ``runs/`` in the current folder when the kit is installed elsewhere)."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV])
    root = repo_root()
    return root / "runs" if (root / "pyproject.toml").is_file() else Path.cwd() / "runs"


def samples_dir(path: str | os.PathLike | None = None) -> Path:
    """The shipped sample data folder (``data_samples/``).

    Looked for in order: ``path``; the ``MMV_LITE_SAMPLES`` environment variable; ``data_samples/`` in the current
    folder or any folder above it (notebooks run from ``notebooks/``); the repository this package sits in.
    """
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    if os.environ.get(SAMPLES_ENV):
        candidates.append(Path(os.environ[SAMPLES_ENV]))
    here = Path.cwd().resolve()
    candidates += [p / "data_samples" for p in (here, *here.parents)]
    candidates.append(repo_root() / "data_samples")
    for c in candidates:
        if (c / "metadata.json").is_file():
            return c
    raise FileNotFoundError(
        "no data_samples/ folder with metadata.json found (looked in: "
        + ", ".join(str(c) for c in candidates[:4])
        + ", ...). `pip install` from a git address leaves data_samples/ behind: run the notebooks from a clone or "
        "an unzipped `python -m mmv_lite bundle`, set MMV_LITE_SAMPLES to the folder, "
        "or make the samples with: python -m mmv_lite make-samples"
    )


# --------------------------------------------------------------------------------------------------------------------
# Threading policy: a kernel on a busy laptop
# --------------------------------------------------------------------------------------------------------------------

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


def set_threading_policy() -> bool:
    """Let OpenMP threads sleep, not spin, while they wait for work (``OMP_WAIT_POLICY=PASSIVE``), unless the
    environment already chose a policy. Called by ``import mmv_lite``.

    OpenMP reads the variable once, when torch loads it, so it counts only if the kit is imported before torch; child
    processes (data-loader workers, the kernels ``render-notebooks`` starts) inherit it either way. Spinning threads
    fight every other process on a busy machine: on the 2-core CPU at load average 9, ten BatchNorm-calibration steps
    of notebook 05 took 76.7 s with spinning waits and 4.9 s with passive ones (``notebooks/conftest.py``).

    Returns True when the policy now in the environment reaches torch's OpenMP (torch not loaded yet)."""
    os.environ.setdefault(WAIT_POLICY_ENV, "PASSIVE")
    return "torch" not in sys.modules
