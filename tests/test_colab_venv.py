"""The Colab set-up cell, run for real in a fresh virtual environment with Colab's ipywidgets 7.7, once for each way
a class gets the kit (README.md, "Colab"): the published repository, a fork, and an upload of ``mmv_lite bundle``.

What stands in for Colab: a ``google.colab._message`` module that hands the cell the notebook's first cell (its
badge), a folder standing for ``/content``, and ``https://github.com/`` served from local git repositories
(``url.<base>.insteadOf``). The cell clones, unzips and runs ``pip install --no-deps -e`` for real; only the
install of the dependencies Colab already has (torch, numpy, ...; this environment has none of them) is recorded
instead of run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mmv_lite import colab
from mmv_lite.bundle import write_bundle

pytestmark = pytest.mark.slow  # 25 s on a 2-core machine: the environment (8 s), then 4-6 s per way

DRIVER = r"""
import json, os, subprocess, sys, types
content, setup_cell, first_cell, record = sys.argv[1:5]
message = types.ModuleType("google.colab._message")
notebook = {"cells": [{"cell_type": "markdown", "source": [first_cell]}]}
message.blocking_request = lambda kind, timeout_sec=None: {"ipynb": notebook}
google, google_colab = types.ModuleType("google"), types.ModuleType("google.colab")
google_colab._message = message
sys.modules.update({"google": google, "google.colab": google_colab, "google.colab._message": message})
planned, real_run = [], subprocess.run
def run(cmd, *args, **kwargs):  # Colab has torch and the rest; this environment has not: record that install
    if isinstance(cmd, list) and "pip" in cmd and "-c" in cmd:
        planned.append({"cmd": cmd, "constraints": open(cmd[-1]).read().split()})
        return subprocess.CompletedProcess(cmd, 0)
    return real_run(cmd, *args, **kwargs)
subprocess.run = run
exec(compile(open(setup_cell).read().replace("/content", content), "setup_cell", "exec"), {})
import importlib.metadata, mmv_lite
from mmv_lite.colab import samples_dir
version = importlib.metadata.version
json.dump({"package": mmv_lite.__file__, "cwd": os.getcwd(), "samples": str(samples_dir()),
           "ipywidgets": version("ipywidgets"), "installed": version("mmv_lite"),
           "planned": planned}, open(record, "w"))
"""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def colab_python(tmp_path_factory) -> Path:
    """A fresh virtual environment (no system packages) with Colab's ipywidgets 7.7 and nothing of the kit's."""
    venv = tmp_path_factory.mktemp("colab_venv")
    _run([sys.executable, "-m", "venv", str(venv)]).check_returncode()
    python = venv / "bin" / "python"
    r = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "ipywidgets==7.7.*"])
    if r.returncode != 0:
        pytest.skip(f"ipywidgets 7.7 could not be installed from the package registry: {r.stderr.strip()[-200:]}")
    return python


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> dict[str, Path]:
    """The kit as the bundle command writes it, and a git repository of it with a main and a course branch."""
    where = tmp_path_factory.mktemp("kit")
    bundle = write_bundle(where / "mmv_lite.zip")
    with zipfile.ZipFile(bundle) as z:
        z.extractall(where / "tree")
    repo = where / "tree" / colab.CLONE_DIR.rsplit("/", 1)[-1]
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "kit"], ["branch", "course"]):
        _run(git + cmd).check_returncode()
    remotes = where / "remotes"
    for owner in ("published-owner", "a-fork"):
        _run(["git", "clone", "-q", "--bare", str(repo), str(remotes / owner / "mmv_lite")]).check_returncode()
    return {"bundle": bundle, "remotes": remotes}


def _setup_as_on_colab(python: Path, kit: dict[str, Path], tmp_path: Path, badge_repo: str, branch="main") -> dict:
    content = tmp_path / "content"
    content.mkdir()
    cell, record = tmp_path / "setup_cell.py", tmp_path / "record.json"
    cell.write_text(colab.SETUP_CELL)
    badge = colab.colab_badge("03_pretraining.ipynb", repo_url=badge_repo).replace("/blob/main/", f"/blob/{branch}/")
    first = "# 03 · Pretraining\n\n" + badge
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.file://{kit['remotes']}/.insteadOf",
               GIT_CONFIG_VALUE_0="https://github.com/")  # fmt: skip
    return {"content": content, "cmd": [str(python), str(tmp_path / "driver.py"), str(content), str(cell), first,
            str(record)], "env": env, "record": record}  # fmt: skip


def _check(run: dict, kit_dir: Path) -> dict:
    r = _run(run["cmd"], env=run["env"], cwd=run["content"].parent)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(run["record"].read_text())
    assert Path(got["package"]).resolve() == (kit_dir / "mmv_lite" / "__init__.py").resolve()
    assert Path(got["cwd"]).resolve() == (kit_dir / "notebooks").resolve()
    assert Path(got["samples"]).resolve() == (kit_dir / "data_samples").resolve()
    assert (kit_dir / "data_samples" / "mmv_lite_fac.pt").is_file()  # the shipped checkpoint came along
    assert got["installed"] == "0.1.0" and got["ipywidgets"].startswith("7.7.")
    (plan,) = got["planned"]  # one install of what Colab lacks, with Colab's ipywidgets pinned, not upgraded
    targets = [colab._requirement_name(t) for t in plan["cmd"][plan["cmd"].index("-q") + 1 : plan["cmd"].index("-c")]]
    assert "ipywidgets" not in targets and f"ipywidgets=={got['ipywidgets']}" in plan["constraints"]
    return got


def test_the_published_way_clones_the_repository_its_badge_names(colab_python, kit, tmp_path):
    run = _setup_as_on_colab(colab_python, kit, tmp_path, "https://github.com/published-owner/mmv_lite")
    _check(run, run["content"] / "mmv_lite")
    assert (run["content"] / "mmv_lite" / ".git").is_dir()


def test_a_fork_on_its_own_branch(colab_python, kit, tmp_path):
    run = _setup_as_on_colab(colab_python, kit, tmp_path, "https://github.com/a-fork/mmv_lite", branch="course")
    assert "/a-fork/mmv_lite/blob/course/" in run["cmd"][4]
    _check(run, run["content"] / "mmv_lite")
    head = _run(["git", "-C", str(run["content"] / "mmv_lite"), "branch", "--show-current"]).stdout.strip()
    assert head == "course"


def test_the_upload_way_unzips_the_bundle_before_looking_at_the_address(colab_python, kit, tmp_path):
    """The address is the placeholder (unpublished): the uploaded zip is used, and nothing is cloned."""
    run = _setup_as_on_colab(colab_python, kit, tmp_path, f"https://github.com/{colab.PLACEHOLDER_OWNER}/mmv_lite")
    shutil.copy(kit["bundle"], run["content"] / "mmv_lite.zip")
    _check(run, run["content"] / "mmv_lite")
    assert not (run["content"] / "mmv_lite" / ".git").exists()


def test_without_a_copy_or_an_address_the_cell_names_the_three_ways(colab_python, kit, tmp_path):
    run = _setup_as_on_colab(colab_python, kit, tmp_path, f"https://github.com/{colab.PLACEHOLDER_OWNER}/mmv_lite")
    r = _run(run["cmd"], env=run["env"], cwd=tmp_path)
    assert r.returncode == 1 and "upload mmv_lite.zip" in r.stderr and "MyDrive" in r.stderr and "a fork" in r.stderr
