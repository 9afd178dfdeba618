"""Settings for running the notebooks under pytest (``python -m pytest --nbmake notebooks``).

nbmake starts one Jupyter kernel per notebook, and each kernel inherits this process's environment. A value already
set in the environment wins over the defaults below.

- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads that spin while they wait for work fight each other, and every other
  process, on a busy 2-core machine; passive waiting avoids that. Measured on the 2-core CPU at load average 9: ten
  BatchNorm-calibration steps of the deflated lite S3D-G (notebook 05) took 76.7 s with torch's 2 threads and spinning
  waits, 4.9 s with 2 threads and ``OMP_WAIT_POLICY=PASSIVE``, 5.5 s with 1 thread.
- ``MMV_LITE_CACHE_DIR``: a temp folder of this run for the decode cache (never ``data_samples/.cache``).
- ``MMV_LITE_SOLUTIONS=1``: every exercise's starter function is replaced by its solution (``mmv_lite.exercises``),
  so the notebooks run top to bottom with every check passing.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MMV_LITE_SOLUTIONS", "1")

# Decoded videos are cached in a temp folder of this test run, never inside the source tree (data_samples/.cache):
# a run starts from no cache and leaves none behind. A value already set in the environment wins.
_CACHE = tempfile.mkdtemp(prefix="mmv_lite-test-cache-")
os.environ.setdefault("MMV_LITE_CACHE_DIR", _CACHE)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
