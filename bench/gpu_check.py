"""The GPU check: one table, in one call of under 8 minutes, on a machine with a CUDA GPU.

    python bench/gpu_check.py                 # every row; stops measuring at --budget (420 s)
    python bench/gpu_check.py --cpu-smoke     # every row, tiny, on the CPU: a test of this script (no GPU needed)

Rows, in this order (the lite job first: it is what a student runs on a free GPU):

- **lite, step alone**: the lite preset's training step (``optim.build_optimiser`` + ``optim.train_step``, the
  preset's precision) on one batch already on the GPU: the ceiling the data pipeline has to feed.
- **lite, device rendering**: ``train()`` on the world stream with the world rendered on the GPU
  (``mmv_lite.data.render``); "not available" where this version of the kit has no device renderer.
- **lite, 0 / 1 / 2 CPU workers**: the same steps fed by the world rendered in DataLoader workers: clips/s, and the
  data wait (the share of the time the GPU waited for the next batch).
- **lite main job**: ``python -m mmv_lite train --preset lite`` (its 800 steps), wall clock.
- **paper-size steps**: the ``s3dg`` and ``tsm_r50`` presets (32 frames of 200 x 200, 48 kHz audio, narrations; FAC,
  VAT losses) in fp32, bf16 (only where the GPU has it natively, compute capability >= 8.0) and fp16 + GradScaler:
  clips/s and peak memory at ``--batch``.
- **AMP vs fp32 parity**: one step from the same weights on the same batch in float32 and in the device's mixed
  precision (``runtime.autocast_settings``): the relative difference of the losses (the verdict: within 2 %) and
  the cosine between the gradients.
- **DDP + SyncBatchNorm**: only with more than one GPU: the S3D-G step under ``torchrun`` on every GPU.

A row that runs out of GPU memory is recorded as such and the check goes on; rows are skipped once ``--budget``
seconds have passed. On a machine without CUDA the script says so and exits with status 1 (``--cpu-smoke`` aside).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmv_lite.config import Config, get_config
from mmv_lite.losses import MMVLoss
from mmv_lite.memory import example_batch
from mmv_lite.models.mmv import build_model, model_inputs
from mmv_lite.optim import Optimiser, build_optimiser, train_step
from mmv_lite.runtime import autocast_settings, cuda_capability, machine, native_bf16

REPO = Path(__file__).resolve().parents[1]
VOCAB = 1000  # rows of the (random) word matrix: enough for random narrations
NAMES = {"s3dg": "S3D-G", "tsm_r50": "TSM-ResNet50", "tsm_r50x2": "TSM-ResNet50x2", "lite": "lite TSM-ResNet10 x0.25"}
LOSS_INPUTS = ("has_audio", "has_text", "text_valid")
# --cpu-smoke: the paper networks at a size a CPU steps through in about a second
SMOKE = {"data.num_frames": 4, "data.crop_size": 32, "model.video_width": 0.125, "model.audio_width": 0.125}
# The parity verdict: the losses of one step within 2 %. The gradients' cosine is shown beside it, without a verdict:
# 16-bit rounding moves small gradients far more (a CPU smoke run of a random lite network in bf16: loss within 0.7 %,
# gradient cosine 0.91 at batch 8; at batch 2 the batch statistics of BatchNorm magnify it further).
PARITY_LOSS_TOLERANCE = 0.02


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["s3dg", "tsm_r50"], help="paper networks (default s3dg tsm_r50)")
    p.add_argument("--batch", type=int, default=8, help="clips per paper-size step (default 8)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per row, after --warmup steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each row's timing (default 3)")
    p.add_argument("--loader-steps", type=int, default=40, help="steps of each lite data row (default 40)")
    p.add_argument("--lite-steps", type=int, default=800, help="steps of the lite main job (default 800, the preset)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds after which rows are skipped (default 420)")
    p.add_argument("--skip-lite", action="store_true", help="leave out the lite main job")
    p.add_argument("--skip-ddp", action="store_true", help="leave out the DDP row")
    p.add_argument("--cpu-smoke", action="store_true", help="every row, tiny, on the CPU (a test of this script)")
    p.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # the DDP worker is told its device
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)  # the process torchrun starts
    args = p.parse_args(argv)
    if args.batch < 2 or args.steps < 1 or args.loader_steps < 1 or args.warmup < 1:
        p.error("--batch must be >= 2 (contrastive losses need negatives), --steps, --loader-steps, --warmup >= 1")
    if args.cpu_smoke:
        args.device, args.batch, args.steps, args.loader_steps, args.lite_steps, args.warmup = "cpu", 2, 1, 2, 2, 1
    return args


# --------------------------------------------------------------------------------------------------- one step
def row_config(preset: str, args: argparse.Namespace, **overrides: Any) -> Config:
    smoke = SMOKE if args.cpu_smoke and preset != "lite" else {}
    return get_config(preset, graph="fac", modalities="vat", **smoke, **overrides)


def make_optimiser(model: torch.nn.Module, cfg: Config, precision: str, device: torch.device) -> Optimiser:
    """``optim.build_optimiser`` in ``precision``: "fp32", "bf16", "fp16" (+ GradScaler) or "auto" (the policy)."""
    tc = cfg.train
    if precision == "fp32":
        return build_optimiser(model.parameters(), tc, device, amp=False)
    if precision == "fp16" and device.type == "cpu":  # smoke run: CPU autocast runs float16 too (training refuses it)
        opt = build_optimiser(model.parameters(), tc, device, amp=False)
        return dataclasses.replace(opt, scaler=torch.amp.GradScaler("cpu"), amp_dtype=torch.float16)
    tc = dataclasses.replace(tc, amp=True, amp_dtype="auto" if precision == "auto" else precision)
    return build_optimiser(model.parameters(), tc, device)


def make_step(model: torch.nn.Module, cfg: Config, opt: Optimiser, device: torch.device) -> Callable[[dict], Any]:
    """``step(batch) -> loss``: one ``optim.train_step`` of the MMV loss on a batch (moved to ``device``)."""
    loss_fn = MMVLoss(cfg)

    def step(batch: dict[str, Any]) -> torch.Tensor:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        targets = {k: batch[k] for k in LOSS_INPUTS if k in batch}
        losses = train_step(model, model_inputs(batch, cfg.train.modalities), lambda o: loss_fn(o, targets), opt)
        return losses["loss"].detach()

    return step


def new_model(cfg: Config, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(cfg, word_vectors=torch.randn(VOCAB, cfg.data.word_dim)).to(device).train()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], Any], steps: int, device: torch.device, warmup: int) -> tuple[list[float], float]:
    """Seconds of each timed call of ``step()`` after ``warmup`` calls, and the last loss."""
    loss = float("nan")
    for _ in range(warmup):
        loss = float(step())
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        loss = float(step())  # float() waits for the GPU too
        times.append(time.perf_counter() - t0)
    return times, loss


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan


def step_row(preset: str, precision: str, batch: int, args: argparse.Namespace, device: torch.device) -> dict:
    """Clips/s and peak memory of ``args.steps`` training steps of ``preset`` on one batch already on the device."""
    row = {"what": f"{NAMES.get(preset, preset)} step" + (" alone" if preset == "lite" else ""), "precision": precision}
    if precision == "bf16" and device.type == "cuda" and not native_bf16(device):
        return {**row, "note": f"skipped: no native bf16 at compute capability {cuda_capability(device)}"}
    cfg = row_config(preset, args)
    model = new_model(cfg, device)
    opt = make_optimiser(model, cfg, precision, device)
    data = example_batch(cfg, batch, device)
    step = make_step(model, cfg, opt, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    times, loss = time_steps(lambda: step(data), args.steps, device, args.warmup)
    ms = 1000 * statistics.median(times)
    note = f"loss {loss:.3f}" + (
        f", {opt.steps_taken} of {args.steps + args.warmup} steps taken" if opt.scaler.is_enabled() else ""
    )
    return {**row, "ms": ms, "clips_s": batch / (ms / 1000), "peak_gib": _peak_gib(device), "note": note}


# --------------------------------------------------------------------------------------------------- lite data rows
def loader_row(workers: int, args: argparse.Namespace, device: torch.device) -> dict:
    """The lite step fed by the world stream rendered in ``workers`` DataLoader workers: clips/s and data wait."""
    from mmv_lite.data.sampling import step_loader
    from mmv_lite.train import build_datasets

    cfg = row_config("lite", args, **({"train.batch_size": 4} if args.cpu_smoke else {}))
    tc = dataclasses.replace(cfg.train, num_workers=workers)
    train_ds = build_datasets(cfg, "world")[0]
    model = new_model(cfg, device)
    step = make_step(model, cfg, make_optimiser(model, cfg, "auto", device), device)
    loader = step_loader(train_ds, tc, 0, args.loader_steps + args.warmup, pin_memory=device.type == "cuda")
    it, wait, done = iter(loader), 0.0, 0
    for i in range(args.loader_steps + args.warmup):
        if i == args.warmup:  # after the warm-up (workers started, kernels chosen)
            _sync(device)
            t0, wait, done = time.perf_counter(), 0.0, 0
        w0 = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - w0
        float(step(batch))
        done += tc.batch_size
    seconds = time.perf_counter() - t0
    del it, loader
    what = f"lite, world rendered in {workers} CPU worker{'s' if workers != 1 else ''}"
    return {"what": what, "precision": "auto", "ms": 1000 * seconds / args.loader_steps, "clips_s": done / seconds,
            "wait": wait / seconds, "note": f"{args.loader_steps} steps"}  # fmt: skip


def device_render_row(args: argparse.Namespace, device: torch.device) -> dict:
    """``train()`` on the world stream with the world rendered on the device, where the kit has a device renderer."""
    row = {"what": "lite, world rendered on the device", "precision": "auto"}
    if importlib.util.find_spec("mmv_lite.data.render") is None:
        return {**row, "note": "not available: this version has no mmv_lite.data.render"}
    from mmv_lite.train import train

    over = {"train.steps": args.loader_steps, "train.eval_every": 0, "train.checkpoint_every": 0}
    smoke = {"train.batch_size": 4, "world.num_eval": 8}  # train() ends by scoring the val set: a small one here
    cfg = row_config("lite", args, **over, **(smoke if args.cpu_smoke else {}))
    with tempfile.TemporaryDirectory() as out:
        s = train(cfg, "world", Path(out) / "run", device=device, progress=False, verbose=False)
    return {**row, "ms": 1000 * s["train_seconds"] / s["step"], "clips_s": s["clips_per_second"],
            "wait": s["data_wait_fraction"], "note": f"{s['step']} steps of train(), "}  # fmt: skip


def lite_job_row(args: argparse.Namespace, timeout: float) -> dict:
    """Wall clock of ``python -m mmv_lite train --preset lite`` (into a temporary folder)."""
    row = {"what": f"lite main job ({args.lite_steps} steps)", "precision": "auto"}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "mmv_lite", "train", "--preset", "lite", "--out", str(Path(out) / "run")]
        cmd += ["--steps", str(args.lite_steps), "--device", args.device, "--no-progress"]
        if args.cpu_smoke:
            cmd += ["--batch-size", "4", "--set", "world.num_eval=8", "--set", "train.eval_every=0"]
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


# --------------------------------------------------------------------------------------------------- parity
def parity_row(preset: str, batch: int, args: argparse.Namespace, device: torch.device) -> dict:
    """One step from the same weights on the same batch in fp32 and in the device's mixed precision."""
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(autocast_settings(device)[0], "bf16")
    row = {"what": f"{NAMES.get(preset, preset)}: {precision} vs fp32, same weights and batch", "precision": precision}
    cfg = row_config(preset, args)
    base, data = new_model(cfg, "cpu"), example_batch(cfg, batch, device)
    results = {}
    for p in ("fp32", precision):
        model = copy.deepcopy(base).to(device)
        opt = make_optimiser(model, cfg, p, device)
        loss = float(make_step(model, cfg, opt, device)(data))
        grads = torch.cat([q.grad.float().flatten() for q in model.parameters() if q.grad is not None])
        results[p] = (loss, grads, opt.steps_taken)
    (l32, g32, _), (lamp, gamp, taken) = results["fp32"], results[precision]
    rel = abs(lamp - l32) / max(abs(l32), 1e-12)
    verdict = "agree" if rel <= PARITY_LOSS_TOLERANCE else "DISAGREE"
    note = f"{verdict}: loss {l32:.4f} vs {lamp:.4f} (rel. {rel:.1e}; tolerance {PARITY_LOSS_TOLERANCE:.0%})"
    if not taken:  # fp16: the GradScaler's first scale overflowed, so the gradients hold inf and the step was skipped
        return {**row, "note": f"{note}; gradient not compared (the GradScaler skipped this first step)"}
    cos = float(torch.nn.functional.cosine_similarity(g32, gamp, dim=0))
    return {**row, "note": f"{note}; gradient cosine {cos:.3f}"}


# --------------------------------------------------------------------------------------------------- DDP
def ddp_worker(args: argparse.Namespace) -> None:
    """Run by ``torchrun``: S3D-G steps with SyncBatchNorm under DDP; rank 0 prints one JSON line."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = args.device == "cuda"
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        cfg = row_config("s3dg", args)
        model = (
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(new_model(cfg, device)) if cuda else new_model(cfg, device)
        )
        n_sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if cuda else None)
        step = make_step(net, cfg, make_optimiser(net, cfg, "auto" if cuda else "fp32", device), device)
        data = example_batch(cfg, args.batch, device)
        times, loss = time_steps(lambda: step(data), args.steps, device, args.warmup)
        if dist.get_rank() == 0:
            print(json.dumps({"ms": 1000 * statistics.median(times), "loss": loss, "sync_bn": n_sync}), flush=True)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def ddp_row(args: argparse.Namespace, gpus: int, timeout: float) -> dict:
    """The DDP worker under ``torchrun`` on ``gpus`` processes (2 CPU processes with gloo in a smoke run)."""
    torchrun = shutil.which("torchrun")
    cmd = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    cmd += ["--standalone", "--nproc_per_node", str(gpus), __file__, "--ddp-worker", "--batch", str(args.batch)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device]
    cmd += ["--cpu-smoke"] if args.cpu_smoke else []
    row = {"what": f"S3D-G step, torchrun {gpus} processes, DDP" + (" + SyncBatchNorm" if gpus and not args.cpu_smoke
           else ""), "precision": "auto"}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 60), cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        return {**row, "note": f"FAILED (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}"}
    res = json.loads(lines[-1])
    finite = "finite" if math.isfinite(res["loss"]) else "NOT FINITE"
    note = f"loss {res['loss']:.3f} ({finite}), {res['sync_bn']} SyncBatchNorm layers, {wall:.0f} s with start-up"
    return {**row, "ms": res["ms"], "clips_s": gpus * args.batch / (res["ms"] / 1000), "note": note}


# --------------------------------------------------------------------------------------------------- the table
def is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def guarded(what: str, precision: str, measure: Callable[[], dict], device: torch.device) -> dict:
    """``measure()``, or the row saying it ran out of memory (then the memory is freed and the check goes on)."""
    try:
        return measure()
    except (torch.cuda.OutOfMemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        return {"what": what, "precision": precision, "note": f"out of memory: {str(e).splitlines()[0][:120]}"}
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def format_table(rows: list[dict[str, Any]], header: str) -> str:
    """A Markdown table, ready for docs/BENCHMARKS.md."""

    def num(x: Any, fmt: str) -> str:
        return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "-"

    lines = [
        header,
        "",
        "| what | precision | ms / step | clips / s | data wait | peak memory (GiB) | wall (s) | notes |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        wait = f"{100 * r['wait']:.0f} %" if isinstance(r.get("wait"), float) else "-"
        cells = [r["what"], r.get("precision", "-"), num(r.get("ms"), ".0f"), num(r.get("clips_s"), ".1f"), wait,
                 num(r.get("peak_gib"), ".1f"), num(r.get("wall_s"), ".0f"), r.get("note", "")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def header_line(device: torch.device, args: argparse.Namespace, seconds: float) -> str:
    """The machine (``runtime.machine()``), the GPU's compute capability, and how the rows were measured."""
    m = machine()
    cap = cuda_capability(device)
    where = "CPU smoke run (tiny rows: the numbers mean nothing)"
    if cap is not None:
        native = "native" if cap >= (8, 0) else "no native"
        where = f"{m['gpu']} (compute capability {cap[0]}.{cap[1]}, {native} bf16)"
    return (f"GPU check on {where}; {m['cpu']}, {m['cores']} cores, {m['cpu_capability']}; torch {m['torch']}. "
            f"Paper rows at batch {args.batch}, median of {args.steps} steps after {args.warmup} warm-up steps; "
            f"{seconds:.0f} s in all")  # fmt: skip


def plan(args: argparse.Namespace, device: torch.device) -> list[tuple[str, str, Callable[[float], dict]]]:
    """``(what, precision, measure(seconds_left))`` of every row, in order: the lite job first."""
    lite_batch = 4 if args.cpu_smoke else get_config("lite").train.batch_size
    rows: list[tuple[str, str, Callable[[float], dict]]] = [
        ("lite step alone", "auto", lambda _: step_row("lite", "auto", lite_batch, args, device)),
        ("lite, device rendering", "auto", lambda _: device_render_row(args, device)),
    ]
    for w in (0, 1, 2):
        rows.append((f"lite, {w} CPU workers", "auto", lambda _, w=w: loader_row(w, args, device)))
    if not args.skip_lite:
        rows.append(("lite main job", "auto", lambda left: lite_job_row(args, left)))
    for preset in args.presets:
        for p in ("fp32", "bf16", "fp16"):
            rows.append((f"{preset} step", p, lambda _, q=preset, p=p: step_row(q, p, args.batch, args, device)))
    for preset in ("lite", *args.presets):
        b = lite_batch if preset == "lite" else args.batch
        rows.append((f"{preset} parity", "amp", lambda _, q=preset, b=b: parity_row(q, b, args, device)))
    gpus = 2 if args.cpu_smoke else (torch.cuda.device_count() if device.type == "cuda" else 0)
    if not args.skip_ddp and gpus > 1:
        rows.append(("DDP", "auto", lambda left: ddp_row(args, gpus, left)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args)
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False); "
              "--cpu-smoke runs every row, tiny, on the CPU as a test of the script", file=sys.stderr)  # fmt: skip
        return 1
    t_start, rows = time.perf_counter(), []
    for what, precision, measure in plan(args, device):
        left = args.budget - (time.perf_counter() - t_start)
        if left <= 0:
            rows.append({"what": what, "precision": precision, "note": "skipped: time budget"})
            continue
        rows.append(guarded(what, precision, lambda m=measure, s=left: m(s), device))
        print(f"[{time.perf_counter() - t_start:.0f} s] {rows[-1]['what']}: done", file=sys.stderr, flush=True)
    if not args.skip_ddp and not any(r["what"].startswith("S3D-G step, torchrun") for r in rows):
        rows.append({"what": "DDP + SyncBatchNorm", "precision": "-", "note": "skipped: needs more than one GPU"})
    print(format_table(rows, header_line(device, args, time.perf_counter() - t_start)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
