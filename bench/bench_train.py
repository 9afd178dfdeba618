"""Training throughput of the lite preset: clips per second and the fraction of step time spent waiting for data.

    python bench/bench_train.py                               # 60 steps each with 0 and 2 DataLoader workers
    python bench/bench_train.py --steps 60 --workers 0 2 --threads 2 --rounds 2
    python bench/bench_train.py --data data_samples           # the file pipeline instead of the world stream

Each configuration trains the ``lite`` preset (batch 32, FAC, VAT) on the world stream (or a folder of clips) for
``--steps`` steps with ``mmv_lite.train.train`` (no validation), logging every 10 steps. The first logging window
(start-up, first batches) is left out; the report gives the median and range over the remaining windows of clips/s
and of the data wait fraction (time blocked in ``next(loader)`` over wall time). The world renders every clip as it
is asked for (no cache); a folder's clip cache is filled before timing. The configurations alternate over
``--rounds`` so machine load hits them alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from mmv_lite.config import get_config
from mmv_lite.train import WORLD, build_datasets, train


def run(steps: int, workers: int, data: str, device: str) -> list[dict]:
    cfg = get_config("lite", **{"train.steps": steps, "train.num_workers": workers, "train.eval_every": 0})
    cfg.train.log_every = 10
    cfg.train.checkpoint_every = 0
    train_ds, _, wv = build_datasets(cfg, data)
    with tempfile.TemporaryDirectory() as out:
        train(cfg, data, out, device=device, datasets=(train_ds, None, wv), progress=False, verbose=False)
        lines = [json.loads(ln) for ln in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [e for e in lines if "clips_per_s" in e][1:]  # drop the start-up window


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=WORLD, help="'world' (default: the sample-world stream) or a folder of clips")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = get_config("lite")
    train_ds, val_ds, _ = build_datasets(cfg, a.data)
    for ds in (train_ds, val_ds):
        if hasattr(ds, "warm_cache"):  # a folder: decode every mp4 once, so that timing sees the steady state
            ds.warm_cache()

    windows: dict[int, list[dict]] = {w: [] for w in a.workers}
    for r in range(a.rounds):
        for w in a.workers if r % 2 == 0 else reversed(a.workers):
            windows[w] += run(a.steps, w, a.data, a.device)
    print(
        f"lite preset, batch {cfg.train.batch_size}, {a.steps} steps x {a.rounds} round(s), device {a.device}, "
        f"{torch.get_num_threads()} torch threads; median [min-max] over 10-step windows after the first"
    )
    print(f"{'workers':>8}{'clips/s':>24}{'data wait (% of step time)':>34}")
    for w, es in windows.items():
        cps = [e["clips_per_s"] for e in es]
        wait = [100 * e["data_wait"] for e in es]
        c = f"{statistics.median(cps):.1f} [{min(cps):.1f}-{max(cps):.1f}]"
        d = f"{statistics.median(wait):.1f} [{min(wait):.1f}-{max(wait):.1f}]"
        print(f"{w:>8}{c:>24}{d:>34}")


if __name__ == "__main__":
    main()
