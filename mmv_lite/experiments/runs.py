"""Running arms: train (or build) one arm, measure it, cache its ``result.json`` (:func:`run_arm`), and many arms
at once in a process pool (:func:`run_arms`). The one cache and the one pool of every experiment."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_write
from ..models.mmv import build_model
from ..runtime import machine
from ..train import train
from .arms import RANDOM_INIT, SUPERVISED, arm_config, run_key
from .budget import Budget
from .measure import measure
from .sources import ClipFolder, World, make_source
from .supervised import train_supervised


def train_arm(
    arm: str, seed: int, budget: Budget, source: World | ClipFolder, out_dir: Path, device: str | None = None
) -> nn.Module:
    """The arm's network, trained with the budget, in eval mode on ``device`` (None: trained on the device
    :func:`mmv_lite.train.train` picks, returned on the CPU). The random initialisation is only built, the supervised
    reference trained on the labels, every other arm pretrained by :func:`mmv_lite.train.train` into
    ``<out_dir>/runs/<arm>-seed<seed>`` (its checkpoint removed afterwards: the measurements are what is kept)."""
    cfg = arm_config(arm, seed, budget)
    if arm == RANDOM_INIT:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return build_model(cfg, word_vectors=source.words.as_tensor()).to(device or "cpu").eval()
    train_ds = source.training_set(cfg, out_dir)
    if arm == SUPERVISED:
        return train_supervised(cfg, train_ds, source.words.as_tensor(), device or "cpu", source.num_classes)
    quiet = {"progress": False, "verbose": False}
    run_dir = Path(out_dir) / "runs" / f"{arm}-seed{seed}"
    summary = train(
        cfg, source.data, run_dir, device=device, datasets=(train_ds, None, source.words), keep_model=True, **quiet
    )
    Path(summary["checkpoint"]).unlink()
    return summary["model"].to(device or "cpu").eval()


def run_arm(
    arm: str,
    seed: int,
    budget: Budget,
    held: World | ClipFolder,
    out_dir: str | Path,
    force: bool = False,
    log: Callable[[str], None] = print,
    device: str | None = None,
) -> dict[str, Any]:
    """Train and measure one arm on the source ``held``; cached in ``<out_dir>/runs/<arm>-seed<seed>/result.json``
    while its :func:`~mmv_lite.experiments.arms.run_key` matches; ``device`` as in :func:`train_arm` (measured
    there, or on the CPU). Returns ``{"key", "arm", "seed", "flat",
    "train_seconds", "eval_seconds", "machine"}`` (and ``"cached": True`` when read from the cache)."""
    run_dir = Path(out_dir) / "runs" / f"{arm}-seed{seed}"
    cache = run_dir / "result.json"
    key = run_key(arm, seed, budget, arm in held.image_arms, None if isinstance(held, World) else held.data)
    if cache.exists() and not force:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            log(f"  {arm} seed {seed}: cached")
            return {**saved, "cached": True}
    t0 = time.perf_counter()
    model = train_arm(arm, seed, budget, held, Path(out_dir), device)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = measure(model, held, arm, budget, seed, device or "cpu")
    result = {
        "key": key,
        "arm": arm,
        "seed": seed,
        "flat": flat,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - t0,
        "machine": machine(),
    }
    atomic_write(cache, json.dumps(result, indent=2))
    log(f"  {arm} seed {seed}: train {train_seconds:.0f} s, eval {result['eval_seconds']:.0f} s")
    return result


def run_arms(
    tasks: Sequence[tuple[str, int]],
    budget: Budget,
    data: str | os.PathLike,
    out_dir: str | Path,
    jobs: int = 1,
    force: bool = False,
    log: Callable[[str], None] = print,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`run_arm` for every ``(arm, seed)`` of ``tasks`` on the source ``data`` (``"world"`` or a folder of
    clips, :func:`~mmv_lite.experiments.sources.make_source`, built once per process), in order.

    ``jobs`` > 1 runs that many at once in separate processes (each with this process's torch thread count); every
    run is seeded on its own, so the numbers do not depend on ``jobs``."""
    if not tasks:
        return []
    if jobs > 1:
        init = (str(data), budget, torch.get_num_threads())
        # spawn, not fork: forking a process whose torch thread pools are running can deadlock
        with ProcessPoolExecutor(jobs, mp.get_context("spawn"), initializer=_init_worker, initargs=init) as pool:
            futures = [pool.submit(_worker_run, arm, s, budget, str(out_dir), force, device) for arm, s in tasks]
            return [f.result() for f in futures]
    source = make_source(data, budget)
    return [run_arm(arm, s, budget, source, out_dir, force, log, device) for arm, s in tasks]


_SOURCE: World | ClipFolder | None = None


def _init_worker(data: str, budget: Budget, threads: int) -> None:
    global _SOURCE
    torch.set_num_threads(threads)
    _SOURCE = make_source(data, budget)


def _worker_run(arm: str, seed: int, budget: Budget, out: str, force: bool, device: str | None) -> dict[str, Any]:
    assert _SOURCE is not None, "worker not initialised"
    return run_arm(arm, seed, budget, _SOURCE, out, force, lambda m: print(m, flush=True), device)
