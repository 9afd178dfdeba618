"""Data pipeline speed: decoded clips per second from mp4 and from the decoded-clip cache, with 0 and 2 workers.

    python bench/bench_data.py                       # data_samples, lite preset, train split, train mode
    python bench/bench_data.py --repeats 5 --root data_samples

Every setting iterates one full epoch of the train split through a DataLoader (batch 32, shuffled, train-mode
augmentation, exactly as training reads it), worker start-up included, and reports clips/s. Settings are run
interleaved, ``--repeats`` times, in one process; the table gives the median and the min-max spread, and the ratio
of each setting to "mp4, 0 workers".

- mp4: no cache, every clip is decoded from its file (seek to the window, decode about 1.7 s of video and audio).
- cache, first epoch: an empty cache; each video is decoded once in full and written as .npy, then memory-mapped.
- cache, warm: every later epoch (persistent workers, second epoch timed): memory-mapped slices, no mp4 decoding.

mp4 and first-epoch rows include starting the workers, as a first epoch does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmv_lite.config import get_config
from mmv_lite.data.clips import ClipDataset
from mmv_lite.runtime import machine


def epoch_rate(ds: ClipDataset, workers: int, batch_size: int, skip_first_epoch: bool = False) -> float:
    """Clips/s over one epoch; with ``skip_first_epoch`` the workers are persistent and a second epoch is timed
    (steady state: no worker start-up, as in a training run of many epochs)."""
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    for _ in range(2 if skip_first_epoch else 1):
        t0 = time.perf_counter()
        n = 0
        for batch in loader:
            n += batch["video"].shape[0]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="data_samples")
    p.add_argument("--preset", default="lite")
    p.add_argument("--split", default="train")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = get_config(args.preset).data
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir = Path(tmp) / "warm"
        ClipDataset(args.root, args.split, cfg, cache_dir=warm_dir).warm_cache()
        n_clips = len(ClipDataset(args.root, args.split, cfg, cache_dir=warm_dir))
        for r in range(args.repeats):
            for workers in (0, 2):
                mp4 = ClipDataset(args.root, args.split, cfg, train=True, cache=False)
                results.setdefault(f"mp4, {workers} workers", []).append(epoch_rate(mp4, workers, args.batch_size))
                cold = ClipDataset(args.root, args.split, cfg, train=True, cache_dir=Path(tmp) / f"cold{r}-{workers}")
                results.setdefault(f"cache, first epoch, {workers} workers", []).append(
                    epoch_rate(cold, workers, args.batch_size)
                )
                warm = ClipDataset(args.root, args.split, cfg, train=True, cache_dir=warm_dir)
                results.setdefault(f"cache, warm, {workers} workers", []).append(
                    epoch_rate(warm, workers, args.batch_size, skip_first_epoch=True)
                )
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    base = statistics.median(results["mp4, 0 workers"])
    order = [f"{s}, {w} workers" for s in ("mp4", "cache, first epoch", "cache, warm") for w in (0, 2)]
    print(
        f"python bench/bench_data.py --root {args.root} --preset {args.preset} --split {args.split} "
        f"--batch-size {args.batch_size} --repeats {args.repeats}"
    )
    m = machine()
    print(f"{n_clips} clips per epoch, {m['cpu']} ({m['cpu_capability']}), {m['cores']} CPUs, torch {m['torch']}\n")
    print("| setting | clips/s (median) | min-max | vs mp4, 0 workers | ms per batch of 32 |")
    print("|---|---|---|---|---|")
    for name in order:
        v = results[name]
        med = statistics.median(v)
        print(f"| {name} | {med:.0f} | {min(v):.0f}-{max(v):.0f} | {med / base:.1f}x | {1000 * 32 / med:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
