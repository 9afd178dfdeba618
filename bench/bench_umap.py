"""The first UMAP fit of a fresh process, as a student meets it in notebook 04: UMAP's own kNN against the neighbours
``mmv_lite.embedding.project_2d`` hands it, side by side, each in new processes (numba compiles on a first fit).

    python bench/bench_umap.py                  # 300 points of 128 dimensions, 2 rounds
    python bench/bench_umap.py --points 1000 --rounds 3

Each round runs both ways in a new Python process each, alternating which goes first, and reports the wall seconds
of the first fit (UMAP imported beforehand) and whether the two maps are equal bit for bit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

FIT = r"""
import json, sys, time, warnings
import numpy as np
import umap
from mmv_lite.embedding import _unit, _umap_knn
way, points, dim, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
X = _unit(np.random.default_rng(0).normal(size=(points, dim))).astype(np.float32)
k = 15
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    knn = _umap_knn(X, k) if way == "handed" else {}
    Y = umap.UMAP(n_neighbors=k, min_dist=0.3, metric="cosine", random_state=0, n_jobs=1, **knn).fit_transform(X)
seconds = time.perf_counter() - t0
np.save(out, Y)
print(json.dumps({"way": way, "first_fit_s": seconds}))
"""


def first_fit(way: str, points: int, dim: int, out: Path) -> float:
    r = subprocess.run(
        [sys.executable, "-c", FIT, way, str(points), str(dim), str(out)], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"the {way} fit failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["first_fit_s"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=300, help="points to map (default 300, notebook 04's order)")
    p.add_argument("--dim", type=int, default=128, help="their dimension (default 128)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, each running both ways (default 2)")
    args = p.parse_args(argv)
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            ways = ("umap", "handed") if r % 2 == 0 else ("handed", "umap")
            times = {w: first_fit(w, args.points, args.dim, Path(tmp) / f"{w}.npy") for w in ways}
            same = np.array_equal(np.load(Path(tmp) / "umap.npy"), np.load(Path(tmp) / "handed.npy"))
            print(f"round {r + 1}: first fit {times['umap']:.1f} s with UMAP's kNN, {times['handed']:.1f} s with "
                  f"the neighbours handed over; maps equal bit for bit: {same}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
