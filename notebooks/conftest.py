"""Settings for running the notebooks under pytest (``python -m pytest --nbmake notebooks``).

nbmake starts one Jupyter kernel per notebook, and each kernel inherits this process's environment. A value already
set in the environment wins over the defaults below.

- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads that spin while they wait for work fight each other, and every other
  process, on a busy 2-core machine; passive waiting avoids that. Measured on the 2-core CPU at load average 9: ten
  BatchNorm-calibration steps of the deflated lite S3D-G (notebook 05) took 76.7 s with torch's 2 threads and spinning
  waits, 4.9 s with 2 threads and ``OMP_WAIT_POLICY=PASSIVE``, 5.5 s with 1 thread.
- ``NUMBA_CACHE_DIR``: where numba keeps the world's compiled loops, outside the source tree.
- ``MMV_LITE_CACHE_DIR``, ``MMV_LITE_RUNS``: temp folders of this run for the decode cache and the notebooks'
  training runs (never ``data_samples/videos/.cache`` or ``runs/``).
- A cell may run for 15 minutes, not nbmake's default 5 (an explicit ``--nbmake-timeout`` other than 300 wins): the
  limit is there to catch a hang, not to time the course. Notebook 03 trained for one to two minutes on a
  quiet 2-core CPU (150 steps then; 80 now), and its training cell ran past 5 minutes on the same machine with other work beside it.
- ``MMV_LITE_SOLUTIONS=1``: every exercise's starter function is replaced by its solution (``mmv_lite.exercises``),
  so the notebooks run top to bottom with every check passing.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MMV_LITE_SOLUTIONS", "1")

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

# With MMV_LAB_TIMINGS=FILE, each notebook's nbmake time is recorded in FILE (mmv_lite.tools.render_notebooks), beside
# the JupyterLab Run All times the browser test records in the same run (README's table).
_NBMAKE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    if os.environ.get("MMV_LAB_TIMINGS") and report.when == "call" and report.nodeid.endswith(".ipynb"):
        _NBMAKE_SECONDS[report.nodeid.rsplit("::", 1)[-1].removesuffix(".ipynb")] = report.duration


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("MMV_LAB_TIMINGS") and _NBMAKE_SECONDS:
        from mmv_lite.tools.render_notebooks import record_timings

        record_timings(os.environ["MMV_LAB_TIMINGS"], "nbmake", _NBMAKE_SECONDS, "pytest --nbmake, one kernel each")


NBMAKE_DEFAULT_TIMEOUT, CELL_TIMEOUT_S = 300, 900


def pytest_configure(config):
    if getattr(config.option, "nbmake_timeout", None) == NBMAKE_DEFAULT_TIMEOUT:
        config.option.nbmake_timeout = CELL_TIMEOUT_S


def pytest_collection_modifyitems(items):
    """The notebooks run first. They are the longest items of the suite (notebook 03 alone takes one to two minutes),
    and with pytest-xdist one that starts last keeps the whole run waiting while the other worker has nothing left to
    do: in the README's test command they came last, and the workers ended 17 s apart."""
    items.sort(key=lambda item: not item.nodeid.startswith("notebooks/"))  # a stable sort: the rest keep their order
