"""Colab (mmv_lite.colab): one repository address, badges derived from it, and the six-line set-up cell run as on
Colab (git, pip and Colab's notebook API replaced by recorders)."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mmv_lite import colab
from mmv_lite.tools import notebook_pairs

REPO = Path(__file__).resolve().parents[1]
A_FORK = "https://github.com/example-owner/mmv_lite"  # an example argument, not an address the project uses
PLACEHOLDER = f"https://github.com/{colab.PLACEHOLDER_OWNER}/mmv_lite"


def test_the_repository_address_is_written_once():
    """pyproject.toml holds it; no other tracked file repeats it (badges and the clone are derived from it)."""
    url = colab.repository_url()
    assert url.startswith("https://github.com/")
    try:
        files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    holders = []
    for name in files.split():
        path = REPO / name
        if path.is_file() and path.suffix not in (".pt", ".bin", ".mp4", ".npz", ".png"):
            text = path.read_text(errors="ignore")
            holders += [name] * text.count(url)
    assert holders == ["pyproject.toml"]


def test_badges_follow_the_address():
    badge = colab.colab_badge("02_losses.ipynb", repo_url=A_FORK)
    assert badge.endswith(
        "(https://colab.research.google.com/github/example-owner/mmv_lite/blob/main/notebooks/02_losses.ipynb)"
    )
    assert not colab.published(PLACEHOLDER)
    assert colab.colab_badge("02_losses.ipynb", repo_url=PLACEHOLDER).endswith("(../README.md#colab)")
    with pytest.raises(ValueError, match="github.com/<owner>/<name>"):
        colab.owner_and_name("https://gitlab.com/a/b")


def test_repository_address_from_the_installed_metadata(monkeypatch, tmp_path):
    monkeypatch.setattr(colab, "repo_root", lambda: tmp_path)  # no pyproject.toml: an installed wheel
    fake = {"Project-URL": ["Repository, " + A_FORK]}
    monkeypatch.setattr(colab.metadata, "metadata", lambda name: types.SimpleNamespace(get_all=fake.get))
    assert colab.repository_url() == A_FORK


def test_sync_rewrites_stale_badges(tmp_path):
    src = REPO / "notebooks" / "02_losses.py"
    stale = src.read_text().replace(colab.colab_badge("02_losses.ipynb"), colab.colab_badge("x", repo_url=A_FORK))
    (tmp_path / "02_losses.py").write_text(stale)
    problems = notebook_pairs.out_of_sync(tmp_path)
    assert any("badge" in p for p in problems)
    notebook_pairs.sync(tmp_path)
    assert colab.colab_badge("02_losses.ipynb") in (tmp_path / "02_losses.py").read_text()
    assert notebook_pairs.out_of_sync(tmp_path) == []


def test_the_setup_cell_is_six_lines_and_names_no_address():
    lines = colab.SETUP_CELL.strip().splitlines()
    assert len(lines) <= 6
    assert colab.repository_url() not in colab.SETUP_CELL
    assert not re.findall(r"https://[\w.-]+/[\w.-]+/[\w.-]+", colab.SETUP_CELL)  # only the host, no owner/name
    assert "pip" not in colab.SETUP_CELL  # installing is setup_colab's job, which never upgrades torch or ipywidgets


def _run_cell_as_on_colab(monkeypatch, first_cell: str):
    """Execute SETUP_CELL with Colab's modules faked; returns (shell commands, setup_colab calls)."""
    google = types.ModuleType("google")
    google_colab = types.ModuleType("google.colab")
    message = types.ModuleType("google.colab._message")
    notebook = {"cells": [{"cell_type": "markdown", "source": first_cell.splitlines(True)}], "metadata": {}}
    message.blocking_request = lambda kind, timeout_sec=None: {"ipynb": notebook} if kind == "get_ipynb" else None
    google_colab._message = message
    for name, module in (("google", google), ("google.colab", google_colab), ("google.colab._message", message)):
        monkeypatch.setitem(sys.modules, name, module)
    commands, setups = [], []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kwargs: commands.append(cmd))
    monkeypatch.setattr(colab, "setup_colab", lambda kit: setups.append(kit))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(colab.SETUP_CELL, "setup_cell", "exec"), {})
    return commands, setups


def test_the_setup_cell_clones_the_repository_its_badge_names(monkeypatch):
    badge = colab.colab_badge("03_pretraining.ipynb", repo_url=A_FORK)
    shell, setups = _run_cell_as_on_colab(monkeypatch, f"# 03 · Pretraining\n\n{badge}\n\n**Learning goals.**")
    assert shell == ["git clone -q --depth 1 -b main https://github.com/example-owner/mmv_lite /content/mmv_lite"]
    assert setups == ["/content/mmv_lite"]
    assert sys.path[0] == "/content/mmv_lite"


def test_the_setup_cell_stops_with_the_line_to_change_while_unpublished(monkeypatch):
    badge = colab.colab_badge("03_pretraining.ipynb", repo_url=PLACEHOLDER)
    with pytest.raises(SystemExit) as stop:
        _run_cell_as_on_colab(monkeypatch, f"# 03 · Pretraining\n\n{badge}\n")
    message = str(stop.value)
    assert "Repository under [project.urls] in pyproject.toml" in message and "notebook_pairs --sync" in message
    assert "upload mmv_lite.zip" in message and "bundle --out" in message and "MyDrive" in message  # the 3 ways


def test_install_plan_never_upgrades_what_colab_has():
    reqs = ["torch>=2.1", "ipywidgets>=7.7", "av>=12", "umap-learn>=0.5.4", 'pytest>=7; extra == "dev"']
    installed = {"torch": "2.3.0+cu121", "ipywidgets": "7.7.1", "numpy": "1.26.4"}
    missing, pins = colab.install_plan(reqs, installed)
    assert missing == ["av>=12", "umap-learn>=0.5.4"]
    assert pins == ["torch==2.3.0+cu121", "ipywidgets==7.7.1", "numpy==1.26.4"]


def test_setup_colab_installs_the_kit_then_only_what_is_missing(monkeypatch, tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False: calls.append(cmd))
    monkeypatch.setattr(colab, "_installed_versions", lambda: {"torch": "2.3.0", "ipywidgets": "7.7.1", "numpy": "2"})
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(Path.cwd())  # monkeypatch remembers this folder and returns to it after the test
    colab.setup_colab(tmp_path)
    assert Path.cwd() == tmp_path / "notebooks"
    assert calls[0][-3:] == ["--no-deps", "-e", str(tmp_path)]
    targets = calls[1][calls[1].index("-q") + 1 : calls[1].index("-c")]
    names = [colab._requirement_name(t) for t in targets]
    assert "torch" not in names and "ipywidgets" not in names and "numpy" not in names and "av" in names
    assert sorted(Path(calls[1][-1]).read_text().split()) == ["ipywidgets==7.7.1", "numpy==2", "torch==2.3.0"]


def _import_kit_and_report(env_update: dict[str, str | None]) -> list[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update({k: v for k, v in env_update.items() if v is not None})
    code = "import os, sys, mmv_lite; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_importing_the_kit_sets_the_threading_policy_before_torch_loads():
    """A student's kernel: `import mmv_lite` (or any of its modules) sets OMP_WAIT_POLICY=PASSIVE, and does so
    before torch (hence OpenMP, which reads the variable once) is loaded; a policy the user chose is kept."""
    assert _import_kit_and_report({}) == ["PASSIVE", "False"]
    assert _import_kit_and_report({"OMP_WAIT_POLICY": "ACTIVE"}) == ["ACTIVE", "False"]


def test_set_threading_policy_says_whether_it_came_before_torch(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    assert colab.set_threading_policy() is False  # torch loaded already: OpenMP kept its own policy
    assert __import__("os").environ["OMP_WAIT_POLICY"] == "PASSIVE"  # children still inherit it
    monkeypatch.delitem(sys.modules, "torch")
    assert colab.set_threading_policy() is True


def test_runs_dir_follows_the_environment_else_the_kit(monkeypatch, tmp_path):
    """Notebooks write their runs to $MMV_LITE_RUNS (the notebook tests: a temp folder), else to runs/ of the kit."""
    monkeypatch.setenv(colab.RUNS_ENV, str(tmp_path / "r"))
    assert colab.runs_dir() == tmp_path / "r"
    monkeypatch.delenv(colab.RUNS_ENV)
    assert colab.runs_dir() == colab.repo_root() / "runs"
