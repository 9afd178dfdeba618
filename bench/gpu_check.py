"""The GPU check: one table, in under 5 minutes, on a machine with a CUDA GPU.

    python bench/gpu_check.py                        # every row (about 3-4 minutes on one recent GPU)
    python bench/gpu_check.py --skip-lite            # without the lite main job
    python bench/gpu_check.py --device cpu --presets lite --steps 1 --skip-ddp --skip-lite   # smoke test, no GPU

Rows of the table:

- **Paper-size training steps**: the ``s3dg`` and ``tsm_r50`` presets (32 frames of 200 x 200 at 10 fps, 48 kHz audio,
  narrations; FAC graph, VAT losses): forward, the multimodal loss, backward and an Adam step on random batches of
  the real shapes, in float32 and under bf16 autocast (``mmv_lite.runtime.autocast_settings``). Clips per second
  (median over the timed steps, after warm-up) and the peak GPU memory of the step.
- **DDP + SyncBatchNorm**: the same S3D-G step under ``torchrun --nproc_per_node 1``: nccl process group, BatchNorm
  converted to SyncBatchNorm (the paper's cross-replica BatchNorm), DistributedDataParallel; its loss must be finite.
- **The lite main job**: ``python -m mmv_lite train --preset lite`` on the sample-world stream (the preset's 800
  steps), wall clock.

Every row stops being measured once ``--budget`` seconds have passed (then the table says "skipped: time budget").
On a machine without CUDA the script says so and exits with status 1, unless ``--device cpu`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mmv_lite.config import get_config
from mmv_lite.data.audio import num_audio_frames
from mmv_lite.losses import MMVLoss
from mmv_lite.models.mmv import build_model
from mmv_lite.runtime import autocast_settings, cpu_autocast_kernels

REPO = Path(__file__).resolve().parents[1]
VOCAB = 1000  # rows of the (random) word matrix: enough for random narrations
NAMES = {"s3dg": "S3D-G", "tsm_r50": "TSM-ResNet50", "tsm_r50x2": "TSM-ResNet50x2", "lite": "lite TSM-ResNet10 x0.25"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["s3dg", "tsm_r50"], help="networks to time (default s3dg tsm_r50)")
    p.add_argument("--batch", type=int, default=8, help="clips per training step (default 8)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per row, after 3 warm-up steps (default 10)")
    p.add_argument("--device", default="cuda", help="cuda (default); cpu only for a smoke test of this script")
    p.add_argument("--budget", type=float, default=280.0, help="seconds after which rows are skipped (default 280)")
    p.add_argument("--skip-ddp", action="store_true", help="leave out the torchrun DDP + SyncBatchNorm row")
    p.add_argument("--skip-lite", action="store_true", help="leave out the lite main job")
    p.add_argument("--lite-steps", type=int, default=600, help="steps of the lite main job (default 600, the preset)")
    p.add_argument("--data", default="world", help="data of the lite main job (default: the sample-world stream)")
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)  # the process torchrun starts
    args = p.parse_args(argv)
    if args.batch < 2 or args.steps < 1:
        p.error("--batch must be >= 2 (contrastive losses need negatives) and --steps >= 1")
    return args


# --------------------------------------------------------------------------------------------------- one step
def random_batch(preset: str, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of the preset's real shapes: video ``(B, 3, T, S, S)``, audio ``(B, 1, F, n_mels)``, narrations."""
    d = get_config(preset).data
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, VOCAB, (batch, d.num_candidates, d.max_words), generator=g)
    out = {
        "video": torch.rand(batch, 3, d.num_frames, d.crop_size, d.crop_size, generator=g),
        "audio": torch.randn(batch, 1, num_audio_frames(d), d.n_mels, generator=g),
        "text_ids": ids,
        "text_mask": torch.ones_like(ids, dtype=torch.bool),
        "text_valid": torch.ones(batch, d.num_candidates, dtype=torch.bool),
        "has_audio": torch.ones(batch, dtype=torch.bool),
        "has_text": torch.ones(batch, dtype=torch.bool),
    }
    return {k: v.to(device) for k, v in out.items()}


def training_step(model: torch.nn.Module, loss_fn: MMVLoss, optimizer: Any, batch: dict, amp: torch.dtype | None):
    """Forward (under autocast when ``amp``), the MMV loss, backward, Adam step; returns the loss."""
    device_type = batch["video"].device.type
    with torch.autocast(device_type, dtype=amp, enabled=amp is not None):
        out = model(batch["video"], batch["audio"], batch["text_ids"], batch["text_mask"])
    loss = loss_fn(out, batch)["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Any, steps: int, device: torch.device, warmup: int = 3) -> tuple[list[float], float]:
    """Seconds of each timed call of ``step()`` after ``warmup`` calls, and the last loss."""
    loss = float("nan")
    for _ in range(warmup):
        loss = float(step())
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        loss = float(step())  # .item() waits for the GPU too
        times.append(time.perf_counter() - t0)
    return times, loss


def throughput_row(preset: str, precision: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Clips/s and peak memory of ``args.steps`` training steps of a preset in "fp32" or "bf16"."""
    cfg = get_config(preset, graph="fac", modalities="vat")
    torch.manual_seed(0)
    model = build_model(cfg, word_vectors=torch.randn(VOCAB, cfg.data.word_dim)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    amp = autocast_settings(device, True, "bf16")[0] if precision == "bf16" else None
    batch, loss_fn = random_batch(preset, args.batch, device), MMVLoss(cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    with cpu_autocast_kernels(device, amp):  # (CPU smoke tests: oneDNN's bf16 gradients are unreliable there)
        times, loss = time_steps(lambda: training_step(model, loss_fn, optimizer, batch, amp), args.steps, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
    ms = 1000 * statistics.median(times)
    return {"what": f"{NAMES.get(preset, preset)} training step", "precision": precision, "ms": ms,
            "clips_s": args.batch / (ms / 1000), "peak_gib": peak, "note": f"loss {loss:.3f}"}  # fmt: skip


# --------------------------------------------------------------------------------------------------- DDP
def ddp_worker(args: argparse.Namespace) -> None:
    """Run by ``torchrun``: an S3D-G step with SyncBatchNorm under DDP; prints one JSON line."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    dist.init_process_group("nccl")
    try:
        cfg = get_config("s3dg", graph="fac", modalities="vat")
        torch.manual_seed(0)
        model = build_model(cfg, word_vectors=torch.randn(VOCAB, cfg.data.word_dim))
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).to(device).train()
        n_sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local])
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        batch, loss_fn = random_batch("s3dg", args.batch, device), MMVLoss(cfg)
        amp = autocast_settings(device, True, "bf16")[0]
        times, loss = time_steps(lambda: training_step(net, loss_fn, optimizer, batch, amp), args.steps, device)
        if dist.get_rank() == 0:
            print(json.dumps({"ms": 1000 * statistics.median(times), "loss": loss, "sync_bn": n_sync}), flush=True)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def ddp_row(args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    torchrun = shutil.which("torchrun")
    cmd = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    cmd += ["--standalone", "--nproc_per_node", "1", __file__, "--ddp-worker", "--batch", str(args.batch)]
    cmd += ["--steps", str(args.steps)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 30), cwd=REPO)
    wall = time.perf_counter() - t0
    row = {"what": "S3D-G step, torchrun 1 GPU, DDP + SyncBatchNorm", "precision": "bf16"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        return {**row, "note": f"FAILED (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}"}
    res = json.loads(lines[-1])
    finite = "finite" if math.isfinite(res["loss"]) else "NOT FINITE"
    note = f"loss {res['loss']:.3f} ({finite}), {res['sync_bn']} SyncBatchNorm layers, {wall:.0f} s with start-up"
    return {**row, "ms": res["ms"], "clips_s": args.batch / (res["ms"] / 1000), "note": note}


# --------------------------------------------------------------------------------------------------- lite job
def lite_row(args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    """Wall clock of ``python -m mmv_lite train --preset lite`` (into a temporary folder)."""
    row = {"what": f"lite main job ({args.lite_steps} steps)", "precision": "auto"}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "mmv_lite", "train", "--preset", "lite", "--data", args.data, "--out", out]
        cmd += ["--steps", str(args.lite_steps), "--device", args.device, "--no-progress"]
        t0 = time.perf_counter()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 30), cwd=REPO)
        except subprocess.TimeoutExpired:
            return {**row, "note": f"stopped after {timeout:.0f} s (time budget)"}
        wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {**row, "note": f"FAILED (exit {r.returncode}): {r.stderr.strip()[-300:]}"}
    done = [ln for ln in r.stdout.splitlines() if ln.startswith("done:")]
    return {**row, "wall_s": wall, "note": done[-1][:110] if done else ""}


# --------------------------------------------------------------------------------------------------- the table
def format_table(rows: list[dict[str, Any]], header: str) -> str:
    """A Markdown table, ready for docs/BENCHMARKS.md."""

    def num(x: Any, fmt: str) -> str:
        return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "-"

    lines = [header, "", "| what | precision | ms / step | clips / s | peak memory (GiB) | wall (s) | notes |"]
    lines.append("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["what"], r.get("precision", "-"), num(r.get("ms"), ".0f"), num(r.get("clips_s"), ".1f"),
                 num(r.get("peak_gib"), ".1f"), num(r.get("wall_s"), ".0f"), r.get("note", "")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args)
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False); "
              "for a smoke test of the script: --device cpu --presets lite --steps 1 --skip-ddp --skip-lite",
              file=sys.stderr)  # fmt: skip
        return 1
    t_start = time.perf_counter()

    def within_budget(what: str, precision: str, measure: Any) -> dict[str, Any]:
        left = args.budget - (time.perf_counter() - t_start)
        if left <= 0:
            return {"what": what, "precision": precision, "note": "skipped: time budget"}
        return measure(left)

    rows = []
    for preset in args.presets:
        for precision in ("fp32", "bf16"):
            what = f"{NAMES.get(preset, preset)} training step"
            measure = lambda _, p=preset, q=precision: throughput_row(p, q, args, device)  # noqa: E731
            rows.append(within_budget(what, precision, measure))
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if not args.skip_ddp:
        rows.append(within_budget("DDP + SyncBatchNorm", "bf16", lambda left: ddp_row(args, left)))
    if not args.skip_lite:
        rows.append(within_budget("lite main job", "auto", lambda left: lite_row(args, left)))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (f"GPU check on {name}, torch {torch.__version__}, batch {args.batch}, median of {args.steps} steps "
              f"after 3 warm-up steps; {time.perf_counter() - t_start:.0f} s in all")  # fmt: skip
    print(format_table(rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
