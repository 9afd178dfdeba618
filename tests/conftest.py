"""Shared fixtures: small configurations and a tiny generated sample folder (made once per test session)."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mmv_lite.config import get_config

REPO = Path(__file__).resolve().parents[1]
DATA_SAMPLES = REPO / "data_samples"

# The world's compiled loops (mmv_lite.data.render_cpu) are cached by numba in a folder of the user's, outside the
# source tree, kept between runs: compiling them takes about 13 s.
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mmv_lite-numba")
)

# Decoded videos are cached in a temp folder of this test run, never inside the source tree
# (data_samples/videos/.cache): a run starts from no cache and leaves none behind. A value already set in the
# environment wins.
# The notebooks' training runs (mmv_lite.colab.runs_dir) go to another one.
_CACHE = tempfile.mkdtemp(prefix="mmv_lite-test-cache-")
_RUNS = tempfile.mkdtemp(prefix="mmv_lite-test-runs-")
os.environ.setdefault("MMV_LITE_CACHE_DIR", _CACHE)
os.environ.setdefault("MMV_LITE_RUNS", _RUNS)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
atexit.register(shutil.rmtree, _RUNS, ignore_errors=True)


@pytest.fixture(autouse=True)
def same_random_state_alone_or_in_the_suite():
    """Every test starts from the same global random state (Python's, NumPy's legacy one, torch's CPU generator),
    so that it draws the same numbers run alone, in any order, or on any pytest-xdist worker. A test that drew from
    whatever the tests before it left passed in the suite and failed alone (docs/BENCHMARKS.md, "Tests and CI")."""
    import torch  # here, not at the top: the pytest-xdist controller loads this file too, and needs no torch

    random.seed(0)
    np.random.seed(0)  # noqa: NPY002
    torch.default_generator.manual_seed(0)


# Notebooks that a test runs top to bottom itself (a cell that raises fails it): the render test in quick mode with
# the exercises' solutions, as nbmake does, and the browser tests with Run > Run All Cells in JupyterLab before they
# drive the notebook's widgets. When that test will run (not deselected, not skipped for want of a browser), nbmake
# does not run the same notebook a second time. With MMV_LAB_TIMINGS set, every notebook runs both ways: the README's
# table has both times.
RUN_BY_A_TEST = {
    "02_losses.ipynb": "tests/test_render.py::test_render_one_notebook_in_quick_mode",
    "05b_deflation_alpha.ipynb": "tests/browser/test_notebooks_in_lab.py::test_deflation_toggle_switches_network",
    "06_retrieval.ipynb": "tests/browser/test_notebooks_in_lab.py::test_retrieval_query_reranks_clips",
}


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected, and the browser tests are marked (tests/browser)
def pytest_collection_modifyitems(config, items):
    if os.environ.get("MMV_LAB_TIMINGS"):
        return
    running = {item.nodeid for item in items if not item.get_closest_marker("skip")}
    for item in items:
        name = Path(str(item.fspath)).name
        test = RUN_BY_A_TEST.get(name) if item.nodeid.startswith("notebooks/") else None
        if test in running:
            item.add_marker(pytest.mark.skip(reason=f"{name} runs top to bottom in {test}"))


# The clip pipeline's tests read files with these settings: 8 frames at 5 fps, 56 px crops of 64 px frames, 16 kHz
# audio as an 80-band log-mel with a 16 ms hop, bags of K = 4 narrations (the data tests exercise MIL-NCE's bags).
FILE_DATA = {
    "data.crop_size": 56,
    "data.resize_to": 64,
    "data.n_fft": 512,
    "data.hop_length": 256,
    "data.n_mels": 80,
    "data.num_candidates": 4,
}


@pytest.fixture
def lite_data_cfg():
    """A fresh DataConfig of the ``lite`` preset with the file-pipeline settings above (:data:`FILE_DATA`)."""
    return get_config("lite", **FILE_DATA).data


@pytest.fixture(scope="session")
def tiny_samples(tmp_path_factory) -> Path:
    """A sample folder made by the generator: 2 narrated videos + 2 sound clips, seed 0, small word corpus.

    Laid out like ``data_samples/`` (videos/, captions.json, metadata.json, word_vectors.bin). Treat it as
    read-only; copy it (``shutil.copytree``) before changing anything.
    """
    from mmv_lite.data.synth import make_samples

    out = tmp_path_factory.mktemp("tiny_samples")
    make_samples(out, num_videos=2, num_sound=2, seed=0, corpus_sentences=300, progress=False)
    return out


@pytest.fixture(scope="session")
def data_samples() -> Path:
    """The shipped ``data_samples/`` folder (skips the test when it has not been generated)."""
    if not (DATA_SAMPLES / "metadata.json").is_file():
        pytest.skip("data_samples/ is missing: python -m mmv_lite make-samples --out data_samples --videos 60 --seed 0")
    return DATA_SAMPLES


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: small tensors gain nothing from threads, and on a shared 2-core machine extra
    threads only contend. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The suite writes nothing into the source tree: caches, runs and outputs go to temp folders. These hooks list the
# untracked paths (ignored ones included) before and after the session, and fail the session if new ones appear
# (with pytest-xdist, once, in the controller, after every worker has finished).
# Screenshots of the browser tests (test-artifacts/) and Python's own caches are the exceptions.
_OWN_LEFTOVERS = ("__pycache__", ".pytest_cache", ".ruff_cache", "test-artifacts", ".egg-info", ".ipynb_checkpoints")


def _untracked_paths() -> set[str] | None:
    import subprocess

    cmd = ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "--no-empty-directory"]
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an unzipped bundle): nothing to compare
    asked = os.environ.get("MMV_LAB_TIMINGS")  # the timings file a run was asked to write (README, the notebook times)
    asked_rel = os.path.relpath(Path(asked).resolve(), REPO) if asked else None
    return {p for p in out.splitlines() if not any(part in p for part in _OWN_LEFTOVERS) and p != asked_rel}


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # with pytest-xdist, the controller alone compares (at the end)
        session.config._untracked_before = _untracked_paths()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_untracked_before", None)
    after = _untracked_paths() if before is not None else None
    new = sorted(after - before) if after is not None else []
    if new:
        print(f"\nerror: the tests wrote into the source tree (use tmp_path or a temp folder): {', '.join(new)}")
        session.exitstatus = 1
