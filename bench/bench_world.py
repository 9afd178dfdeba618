"""Rendering cost of the sample-world stream: CPU milliseconds per training clip, with and without the stream cache,
and drawn a batch at a time (mmv_lite.data.render) against the per-clip renderer.

    python bench/bench_world.py                    # 300 clips per setting, 3 rounds, lite preset
    python bench/bench_world.py --clips 100 --rounds 5
    python bench/bench_world.py --json world.json  # also the rendering comparison and the planning rate, as JSON

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

Rendering, in the same run (pinned to one CPU core, one torch thread), on the same planned clips each round, the
clips a training run draws (each from a video of its own):

- ``reference_ms_per_clip``: today's per-clip NumPy renderer, frames + sound + log-mel (``WorldClips._frames`` and
  ``_logmel``), the plan made beforehand;
- ``batched_ms_per_clip``: :func:`mmv_lite.data.render.render_batch` on batches of 32 (collated parameters);
- ``batched_parts_ms_per_clip``: where the batched renderer's time goes: frames, sound and log-mel, CPU ms per clip,
  on batches of 32 (training's) and 128;
- ``planning_ms_per_clip``: what a worker does per clip when the batch is drawn elsewhere
  (``WorldClips.planned_many`` on batches of 32: plan, narration, text ids and the render parameters);
- ``planning_clips_per_s_2_workers``: planned items through the loader a training run on a GPU reads (``step_loader``
  with 2 workers in ``device`` mode: each batch of 32 planned and collated), wall clock over the whole machine,
  worker start-up excluded; the median of three windows of 8 x ``--clips`` clips one after another (each rate in
  ``planning_clips_per_s_2_workers_windows``);
- ``loader_clips_per_s_2_workers``: whole training batches through ``step_loader`` with 2 workers, each clip drawn
  whole in a worker (``clip``, today's default on a CPU) or the batch drawn at once by the worker that collates it
  (``batch``), wall clock, the two alternated twice;
- ``gpu``: the batched renderer on CUDA (wall ms per clip, synchronised), when there is a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time

import torch

from mmv_lite.config import get_config
from mmv_lite.data import render, render_cpu
from mmv_lite.data.sampling import StepBatchSampler, as_tensors, step_loader
from mmv_lite.data.world import WorldClips, plan_clip, world_word_vectors
from mmv_lite.files import atomic_write
from mmv_lite.runtime import machine

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


def training_indices(clips: int, seed: int) -> list[int]:
    """The clips a training run draws, in its order (``step_loader``'s sampler): each from a video of its own, so
    that planning pays for the video too, as in training."""
    sampler = StepBatchSampler(None, 32, seed, 0, -(-clips // 32))
    return [i for batch in sampler for i, _ in batch][:clips]


def rendering(ds: WorldClips, indices: list[int], batch: int = 32) -> dict[str, float]:
    """CPU ms per clip: the reference renderer, the batched one, and planning, on the same clips."""
    plans = [ds.plan(i) for i in indices]
    t0 = time.process_time()
    for p, i in zip(plans, indices):
        ds._frames(p, i), ds._logmel(p, i)
    reference = time.process_time() - t0
    t0 = time.process_time()
    planned = [item for j in range(0, len(indices), batch) for item in ds.planned_many(indices[j : j + batch])]
    planning = time.process_time() - t0
    batches = [ds.collate(planned[j : j + batch]) for j in range(0, len(planned), batch)]
    n = len(indices) / 1000
    out = {"reference": reference / n, "planning": planning / n}
    for key, engine in (("batched", "compiled"), ("batched_torch", "torch")):
        t0 = time.process_time()
        for b in batches:
            ds.render_batch(b, engine=engine)
        out[key] = (time.process_time() - t0) / n
    return out


def batched_parts(ds: WorldClips, indices: list[int], batch: int, engine: str = "torch") -> dict[str, float]:
    """CPU ms per clip of each part of the batched renderer's ``engine`` (frames, sound, log-mel) on batches of
    ``batch``: where its time goes."""
    params = [
        ds.collate([ds.planned(i) for i in indices[j : j + batch]])["render"] for j in range(0, len(indices), batch)
    ]
    times = {"frames": 0.0, "sound": 0.0, "log_mel": 0.0}
    for p in params:
        codes = {k: p[k] for k in render.CPU_KEYS}
        t0 = time.process_time()
        if engine == "torch":
            render.render_frames(p, codes["kind"], ds.cfg)
        else:
            render_cpu.draw_frames(p, ds.cfg)
        t1 = time.process_time()
        if engine == "torch":
            waves = render.render_waves(p, codes, ds.cfg)
        else:
            waves = render_cpu.draw_waves(p, ds.cfg, render.noise(p, ds.cfg))
        t2 = time.process_time()
        render.log_mel(waves, ds.cfg)
        t3 = time.process_time()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[key] += dt
    return {key: t / len(indices) * 1000 for key, t in times.items()}


def gpu_ms_per_clip(ds: WorldClips, indices: list[int], batch: int = 32) -> float:
    """Wall ms per clip of the batched renderer on CUDA (parameters collated on the CPU, drawn on the GPU)."""
    batches = [ds.collate([ds.planned(i) for i in indices[j : j + batch]]) for j in range(0, len(indices), batch)]
    ds.render_batch(batches[0], "cuda")  # first-call costs out of the timing
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches:
        ds.render_batch(b, "cuda")
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / len(indices) * 1000


def planning_rate(ds: WorldClips, clips: int, workers: int = 2, batch: int = 32, windows: int = 3) -> list[float]:
    """Planned clips per second (wall clock) through the loader a training run on a GPU reads, start-up excluded:
    :func:`step_loader`'s workers in ``device`` mode (each batch planned and collated as arrays), without the
    rendering that follows on the device. One rate per window of ``clips`` clips, the windows one after another."""
    tc = dataclasses.replace(get_config("lite").train, num_workers=workers, batch_size=batch)
    it = iter(step_loader(ds, tc, 0, windows * (clips // batch + 1) + 2, render="device", device="cpu").loader)
    next(it)  # the workers are up
    rates = []
    for _ in range(windows):
        t0, n = time.perf_counter(), 0
        while n < clips:
            n += len(as_tensors(next(it))["index"])
        rates.append(n / (time.perf_counter() - t0))
    return rates


def loader_rate(ds: WorldClips, mode: str, clips: int, workers: int = 2) -> float:
    """Training batches per second x 32 through :func:`step_loader` in ``mode`` ("clip" or "batch", drawn on the
    CPU), wall clock, the first batch (worker start-up) excluded."""
    tc = dataclasses.replace(get_config("lite").train, num_workers=workers, batch_size=32)
    it = iter(step_loader(ds, tc, 0, clips // 32 + 1, render=mode, device="cpu"))
    next(it)
    t0 = time.perf_counter()
    n = sum(len(b["index"]) for b in it)
    return n / (time.perf_counter() - t0)


def render_comparison(cfg, words, clips: int, rounds: int) -> dict:
    """The rendering and planning numbers of the --json report (see the module docstring)."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one CPU core
    ds = WorldClips(cfg.data, "train", cfg.world, words)
    t0 = time.perf_counter()
    ds.render_batch(ds.collate([ds.planned(i) for i in range(32)]), engine="compiled")
    first_call = time.perf_counter() - t0  # numba imported, its loops compiled or read from its cache
    rendering(ds, training_indices(32, seed=99))  # first-call costs out of the timing
    runs = [rendering(ds, training_indices(clips, seed=r)) for r in range(rounds)]
    parts = {str(b): batched_parts(ds, training_indices(max(clips, b), seed=0), b) for b in (32, 128)}
    compiled_parts = batched_parts(ds, training_indices(max(clips, 32), seed=0), 32, "compiled")
    os.sched_setaffinity(0, cores)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    planning = planning_rate(ds, max(clips * 8, 64))  # three windows of some 1.6 s each: one of 0.8 s moved by 20 %
    out = {
        "command": "python bench/bench_world.py --json FILE " + f"--clips {clips} --rounds {rounds}",
        "machine": machine(),
        "load_average": os.getloadavg(),
        "clips_per_round": clips,
        "rounds": rounds,
        "reference_ms_per_clip": med["reference"],
        "batched_ms_per_clip": med["batched"],
        "planning_ms_per_clip": med["planning"],
        "batched_speedup": med["reference"] / med["batched"],
        "batched_torch_ms_per_clip": med["batched_torch"],
        "batched_torch_speedup": med["reference"] / med["batched_torch"],
        "compiled_first_call_s": first_call,
        "per_round": runs,
        "batched_parts_ms_per_clip": parts,
        "compiled_parts_ms_per_clip": compiled_parts,
        "planning_clips_per_s_2_workers": statistics.median(planning),
        "planning_clips_per_s_2_workers_windows": planning,
        "planning_clips_per_s_2_workers_from_cpu_time": 2 * 1000 / med["planning"],
        "gpu": None,
    }
    rates: dict[str, list[float]] = {"clip": [], "batch": []}
    for r in range(2):  # alternated: the machine's speed drifts
        for mode in ("clip", "batch") if r % 2 == 0 else ("batch", "clip"):
            rates[mode].append(loader_rate(ds, mode, max(clips * 2, 64)))
    out["loader_clips_per_s_2_workers"] = {mode: statistics.median(v) for mode, v in rates.items()}
    out["loader_runs"] = rates
    if torch.cuda.is_available():
        out["gpu"] = {
            "device": torch.cuda.get_device_name(),
            "batched_ms_per_clip": gpu_ms_per_clip(ds, training_indices(512, seed=7)),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=300, help="clips per setting and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=None, help="also compare the renderers and write the numbers to this file")
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
    if a.json:
        report = render_comparison(cfg, words, a.clips, a.rounds)
        atomic_write(a.json, json.dumps(report, indent=1) + "\n")
        print(f"\nrendering on one core, CPU ms per clip (median of {a.rounds} rounds of {a.clips} clips):")
        keys = ("reference_ms_per_clip", "batched_ms_per_clip", "batched_torch_ms_per_clip", "planning_ms_per_clip")
        for key in keys:
            print(f"{key:>32} {report[key]:8.3f}")
        torch_x, first = report["batched_torch_speedup"], report["compiled_first_call_s"]
        note = f"(torch engine {torch_x:.2f}x; first call {first:.1f} s)"
        print(f"{'batched speed-up':>32} {report['batched_speedup']:8.2f}x {note}")
        parts = {f"torch, batch {b}": p for b, p in report["batched_parts_ms_per_clip"].items()}
        for name, part in {**parts, "compiled, batch 32": report["compiled_parts_ms_per_clip"]}.items():
            print(f"{name + ': ' + ', '.join(part):>32} " + " ".join(f"{v:.3f}" for v in part.values()))
        windows = ", ".join(f"{r:.0f}" for r in report["planning_clips_per_s_2_workers_windows"])
        print(f"{'planning, 2 workers, clips/s':>32} {report['planning_clips_per_s_2_workers']:8.0f} ({windows})")
        for mode, rate in report["loader_clips_per_s_2_workers"].items():
            print(f"{'loader, 2 workers, ' + mode + ', clips/s':>32} {rate:8.0f}")
        if report["gpu"]:
            print(f"{'GPU ' + report['gpu']['device']:>32} {report['gpu']['batched_ms_per_clip']:8.3f} ms per clip")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
