"""Rendering cost of the sample-world stream: CPU milliseconds per training clip, with and without the stream cache.

    python bench/bench_world.py                    # 300 clips per setting, 3 rounds, lite preset
    python bench/bench_world.py --clips 100 --rounds 5

Settings (one process, one torch thread, the lite preset's clips and the default world):

- ``plan only``: the clip's factors, its video's segments and narrations (:func:`mmv_lite.data.world.plan_clip`),
  nothing rendered or encoded;
- ``no cache``: every item is planned, narrated, drawn and sounded, as the main job's workers do;
- ``cache, cold``: the same, and the picture and the log-mel are written to an empty cache (the first arm of a seed
  in ``experiment findings``);
- ``cache, warm``: picture and log-mel read back from the cache; the clip's plan and its captions' words are still
  made per item (every other arm of that seed).

The timer is process CPU time, robust to other processes on a shared machine; rounds alternate the order of the
settings, and each setting of a round gets new clip indices, except ``cache, warm``, which reads what ``cache, cold``
wrote in the same round. The table gives the median and the min-max over rounds. The cost per training step is this
times the batch (32); a step of the networks themselves is timed by ``bench/bench_models.py --lite-step``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from mmv_lite.config import get_config
from mmv_lite.data.world import WorldClips, plan_clip, world_word_vectors

SETTINGS = ("plan only", "no cache", "cache, cold", "cache, warm")


def ms_per_clip(ds: WorldClips, indices: range) -> float:
    """CPU milliseconds per ``ds[i]`` over ``indices``."""
    t0 = time.process_time()
    for i in indices:
        ds[i]
    return (time.process_time() - t0) / len(indices) * 1000


def ms_per_plan(cfg, indices: range) -> float:
    """CPU milliseconds per :func:`plan_clip` over ``indices``."""
    t0 = time.process_time()
    for i in indices:
        plan_clip(cfg.world, "train", i, cfg.data.clip_seconds)
    return (time.process_time() - t0) / len(indices) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=300, help="clips per setting and round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg, words = get_config("lite"), world_word_vectors()
    timings: dict[str, list[float]] = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory() as cache:
        plain = WorldClips(cfg.data, "train", cfg.world, words)
        cached = WorldClips(cfg.data, "train", cfg.world, words, cache_dir=cache)
        plain[0], cached[0]  # first-call costs (imports, FFT plans) out of the timing
        for r in range(a.rounds):
            base = 1 + r * 3 * a.clips
            plan, fresh, cold = (range(base + j * a.clips, base + (j + 1) * a.clips) for j in range(3))
            order = [("plan only", plan), ("no cache", fresh), ("cache, cold", cold), ("cache, warm", cold)]
            if r % 2:  # the uncached settings last in odd rounds; warm must follow cold
                order = order[2:] + order[:2]
            for name, indices in order:
                if name == "plan only":
                    timings[name].append(ms_per_plan(cfg, indices))
                else:
                    timings[name].append(ms_per_clip(plain if name == "no cache" else cached, indices))
    print(f"world stream, lite preset ({cfg.data.num_frames} frames of {cfg.data.crop_size} px), one torch thread,")
    print(f"{a.clips} clips x {a.rounds} rounds; CPU ms per clip, median [min-max]; x32 = one batch")
    print(f"{'setting':>14} {'ms per clip':>22} {'ms per batch of 32':>20}")
    for name in SETTINGS:
        ts = timings[name]
        med = statistics.median(ts)
        print(f"{name:>14} {med:>9.2f} [{min(ts):.2f}-{max(ts):.2f}] {med * 32:>20.0f}")


if __name__ == "__main__":
    main()
