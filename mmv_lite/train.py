"""Self-supervised pretraining of MMV: the loop, its schedule, checkpoints, exact resume, and DDP.

    python -m mmv_lite train --preset lite                        # the laptop model on the sample-world stream
    python -m mmv_lite train --preset lite --out runs/a --resume  # continue exactly where runs/a stopped
    python -m mmv_lite train --preset lite --out runs/a --overwrite  # start runs/a again (never done silently)
    torchrun --nproc_per_node 4 -m mmv_lite train --preset s3dg --data /data/howto --out runs/s3dg

or from Python: ``summary = train(get_config("lite"), "data_samples", "runs/lite")``.

What one step does (MMV_REFERENCE sections 3-4): a batch of clips goes through the network, the embeddings of
the graph's spaces go to :class:`~mmv_lite.losses.MMVLoss` (NCE for video-audio, MIL-NCE for video-text; under
DDP with negatives gathered from every rank), and Adam takes a step whose learning rate follows a linear warm-up
and then a half-period cosine decay to zero.

Reproducibility and exact resume
--------------------------------
The batches are a pure function of ``(seed, step)`` (:mod:`mmv_lite.data.sampling`): epoch ``e`` visits the training
clips in the order of a permutation seeded by ``(seed, e)``, cut into global batches of ``train.batch_size``; and
every clip is loaded with the random streams (Python, NumPy, torch) seeded by its position in the whole run, so its
augmentation does not depend on which DataLoader worker loads it. A checkpoint therefore needs only the step to know
where the data stream stands; with the model, optimiser, scheduler and RNG states restored, ``--resume`` continues
exactly: on a CPU the parameters after N straight steps and after N/2 + resume + N/2 are bit-identical (tested).

``train.batch_size`` is the *global* batch: under ``torchrun`` with W processes each rank takes its 1/W share of
the same global batch, so a run with W processes sees the same clips, and the same loss, as one process.

Checkpoints (``<out>/checkpoint.pt``) are written atomically every ``train.checkpoint_every`` steps, at the end,
and when the run is stopped with Ctrl-C (SIGINT; a second Ctrl-C aborts at once). ``<out>/metrics.jsonl`` gets one
JSON line per log step and per validation (:mod:`mmv_lite.runlog`).

Where the pieces live: the batch order in :mod:`mmv_lite.data.sampling`, the optimiser, schedule and the step itself
in :mod:`mmv_lite.optim`, devices, threads and DDP in :mod:`mmv_lite.runtime`.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .checkpoints import (
    config_from_checkpoint,
    inference_only,
    load_checkpoint,
    load_state_into,
    make_state,
    save_checkpoint,
    set_rng_state,
)
from .cli import check_at_least
from .config import MODALITY_SETS, PRESETS, Config, apply_overrides, get_config, parse_set_options, validate
from .data.clips import ClipDataset, folder_word_vectors
from .data.sampling import step_loader
from .data.world import WorldClips, world_word_vectors
from .embedding import embed_dataset
from .files import stale_temporaries
from .graphs import GRAPHS
from .losses import MMVLoss
from .memory import check_batch_fits
from .models.mmv import build_model, model_inputs
from .optim import build_optimiser, train_step
from .retrieval import chance_levels, format_retrieval, zero_shot_retrieval
from .runlog import Meter, MetricsLog, StopFlag
from .runtime import Runtime, all_ranks_agree, barrier, default_cpu_threads, setup_runtime

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
# Batch entries the loss reads besides the model's output (which clips have audio, text, which narrations exist).
LOSS_INPUTS = ("has_audio", "has_text", "text_valid")


WORLD = "world"  # the --data value that trains on the sample-world stream


def build_datasets(cfg: Config, data_dir: str | os.PathLike) -> tuple[Dataset, Dataset, Any]:
    """The train split (augmented), the val split (deterministic) and the word vectors of ``data_dir``.

    ``data_dir="world"``: the sample world of ``cfg.world``, an unlimited training stream and its fixed val set.
    """
    if str(data_dir) == WORLD:
        wv = world_word_vectors()
        return WorldClips(cfg.data, "train", cfg.world, wv), WorldClips(cfg.data, "val", cfg.world, wv), wv
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"--data {str(data_dir)!r} is not a folder; point it at a folder of clips such as data_samples/ "
            "(make one with `python -m mmv_lite make-samples --out DIR`), or use --data world"
        )
    wv = folder_word_vectors(data_dir, "t" in cfg.train.modalities)  # None: the text tower gets a placeholder row
    narrations = wv is not None
    train_ds = ClipDataset(data_dir, "train", cfg.data, train=True, word_vectors=wv, narrations=narrations)
    val_ds = ClipDataset(data_dir, "val", cfg.data, train=False, word_vectors=wv, narrations=narrations)
    return train_ds, val_ds, wv


def validate_retrieval(
    model: nn.Module,
    dataset: Dataset,
    cfg: Config,
    device: torch.device,
    num_workers: int = 0,
    batch_size: int | None = None,
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Zero-shot retrieval on ``dataset`` and its chance levels: ``({direction: metrics}, {direction: chance})``."""
    emb = embed_dataset(
        model,
        dataset,
        batch_size=batch_size or cfg.train.batch_size,
        device=device,
        num_workers=num_workers,
        modalities=cfg.train.modalities,
    )
    graph = cfg.model.graph
    return zero_shot_retrieval(emb, graph), chance_levels(emb, graph)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random streams."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) for k, v in batch.items() if isinstance(v, torch.Tensor)}


def _check_resume_config(saved: Config, cfg: Config, path: Path) -> None:
    """The network and its data must be those of the checkpoint; the train section may change (e.g. more steps)."""
    diffs = []
    for section in ("data", "model", "world"):
        a, b = getattr(saved, section).__dict__, getattr(cfg, section).__dict__
        diffs += [f"{section}.{k}: checkpoint {a[k]!r}, now {b.get(k)!r}" for k in a if a[k] != b.get(k)]
    if diffs:
        raise ValueError(
            f"cannot resume from {str(path)!r}: the config differs from the checkpoint's in " + "; ".join(diffs)
        )


def default_out_dir(cfg: Config) -> Path:
    """Where a run goes without ``out_dir``: ``runs/<preset>-<graph>-<modalities>``."""
    return Path("runs") / f"{cfg.preset}-{cfg.model.graph}-{cfg.train.modalities}"


def check_run_folder(out_dir: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse (``FileExistsError``) to start a new run in a folder that holds one, unless ``overwrite``.

    A folder holds a run when it has ``checkpoint.pt`` or ``metrics.jsonl``; ``resume`` continues it instead.
    """
    out = Path(out_dir)
    found = [name for name in (CHECKPOINT_NAME, METRICS_NAME) if (out / name).exists()]
    if found and not (resume or overwrite):
        raise FileExistsError(
            f"{str(out)!r} already holds a run ({', '.join(found)}): continue it with --resume, replace it with "
            "--overwrite, or give another --out"
        )


def _resolve_run(
    cfg: Config | None, out_dir: str | os.PathLike | None, resume: bool, say: Any
) -> tuple[Config, Path, dict | None]:
    """The run's config, its checkpoint path, and the checkpoint to resume from (None for a new run)."""
    if out_dir is None:
        if cfg is None:
            raise ValueError("train(resume=True) without a config needs out_dir (the run to continue)")
        out_dir = default_out_dir(cfg)
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME
    state = None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        saved = config_from_checkpoint(state, ckpt_path)
        if cfg is None:
            cfg = saved
        else:
            _check_resume_config(saved, cfg, ckpt_path)
    elif resume:
        say(f"--resume: no checkpoint at {ckpt_path}; starting a new run")
    if cfg is None:
        raise ValueError(f"no config given and no checkpoint to resume at {ckpt_path}")
    validate(cfg)
    return cfg, ckpt_path, state


class Pretraining:
    """One pretraining run: the network (``model``, and ``net``, its DDP wrapper under torchrun), the optimiser,
    the loss, and where the run saves and logs. :meth:`run` is the loop."""

    def __init__(self, cfg: Config, word_vectors: Any, rt: Runtime, ckpt_path: Path, say: Any, data: str | None):
        self.cfg, self.rt, self.ckpt_path, self.say, self.data = cfg, rt, ckpt_path, say, data
        tc = cfg.train
        self.vocab = list(getattr(word_vectors, "vocab", []) or [])
        vectors = word_vectors.as_tensor() if hasattr(word_vectors, "as_tensor") else word_vectors
        vectors = None if vectors is None else torch.as_tensor(vectors)  # None: a folder without narrations
        sync_bn = rt.distributed and rt.device.type == "cuda" and tc.sync_bn  # the paper's cross-replica BatchNorm
        self.model = build_model(cfg, word_vectors=vectors, sync_bn=sync_bn).to(rt.device)
        self.opt = build_optimiser(self.model.parameters(), tc, rt.device)
        if rt.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        self.loss_fn = MMVLoss(cfg)
        self.net: nn.Module = self.model
        self.metrics: dict[str, Any] = {}

    def restore(self, state: dict | None) -> int:
        """Load a training checkpoint (model, optimiser, schedule); returns its step (0 without one)."""
        if state is None:
            return 0
        load_state_into(self.model, state["model"], self.ckpt_path)
        if "optimizer" not in state:
            raise ValueError(f"{str(self.ckpt_path)!r} is an inference-only checkpoint: it cannot be resumed")
        self.opt.load_checkpoint_entries(state, self.cfg.train)
        self.metrics = dict(state.get("metrics") or {})
        step = int(state["step"])
        self.say(f"resuming {self.ckpt_path} at step {step}/{self.cfg.train.steps}")
        return step

    def wrap_ddp(self) -> None:
        if self.rt.distributed:
            unused = self.cfg.train.modalities != "vat"  # e.g. the text tower gets no gradient in a "va" run
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=unused)

    def state(self, step: int, training: bool = True) -> dict[str, Any]:
        """The checkpoint of this run at ``step`` (``training``: with the optimiser and RNG states)."""
        entries = self.opt.checkpoint_entries() if training else {}
        return make_state(self.model, self.cfg, self.vocab, step=step, metrics=self.metrics, data=self.data, **entries)

    def checkpoint(self, step: int) -> None:
        if self.rt.main:
            save_checkpoint(self.ckpt_path, self.state(step))

    def validate(self, step: int, val_ds: Dataset | None, log: MetricsLog) -> None:
        """Zero-shot retrieval on the val split (one process embeds it all, a per-rank batch at a time)."""
        if val_ds is None:
            return
        if self.rt.main:
            batch_size = max(1, self.cfg.train.batch_size // self.rt.world)
            val, chance = validate_retrieval(self.model, val_ds, self.cfg, self.rt.device, batch_size=batch_size)
            self.metrics = {"step": step, "val": val, "chance": chance}
            log.write(step=step, val=val)
            title = f"validation retrieval at step {step} (%, {self.cfg.model.graph})"
            self.say(format_retrieval(val, chance, title=title))
        barrier(self.rt)

    def step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch`` (:func:`mmv_lite.optim.train_step`)."""
        inputs = _to_device(model_inputs(batch, self.cfg.train.modalities), self.rt.device)
        targets = _to_device({k: batch[k] for k in LOSS_INPUTS if k in batch}, self.rt.device)
        return train_step(self.net, inputs, lambda out: self.loss_fn(out, targets), self.opt)

    def run(self, loader: Any, step: int, stop: int, val_ds: Dataset | None, log: MetricsLog, progress: bool):
        """Train from ``step`` to ``stop``, logging, validating and checkpointing on the way.

        Returns ``(step reached, interrupted, Meter, seconds)``."""
        tc = self.cfg.train
        bar = tqdm(total=stop, initial=step, disable=not (progress and self.rt.main), unit="step", dynamic_ncols=True)
        self.net.train()
        t_start, meter, interrupted = time.perf_counter(), Meter(), False
        it = iter(loader)
        with StopFlag() as flag:
            while step < stop:
                t0 = time.perf_counter()
                batch = _next_batch(it, flag)
                if batch is None:
                    interrupted = flag.stop
                    break
                wait = time.perf_counter() - t0
                meter.add(self.step(batch), wait, tc.batch_size)
                step += 1
                if step % tc.log_every == 0 or step == stop:
                    means, rates = meter.flush()
                    log.write(step=step, **means, lr=self.opt.lr, **rates)
                    bar.set_postfix(
                        loss=f"{means['loss']:.3f}",
                        clips_s=f"{rates['clips_per_s']:.1f}",
                        wait=f"{100 * rates['data_wait']:.0f}%",
                    )
                bar.update(1)
                if all_ranks_agree(flag.stop, self.rt):  # every rank stops at the same step
                    interrupted = True
                    break
                if tc.eval_every and step % tc.eval_every == 0 and step < tc.steps:
                    bar.clear()
                    self.validate(step, val_ds, log)
                    meter.restart_clock()
                if tc.checkpoint_every and step % tc.checkpoint_every == 0 and step < stop:
                    self.checkpoint(step)
        bar.close()
        seconds = time.perf_counter() - t_start
        del it  # stop the workers before validation and saving
        return step, interrupted, meter, seconds


def _next_batch(it: Any, flag: StopFlag) -> dict[str, Any] | None:
    """The next batch; None when the batches end, or when a worker died from the same Ctrl-C as this process."""
    try:
        return next(it)
    except StopIteration:
        return None
    except RuntimeError:
        if flag.stop:
            return None
        raise


def train(
    cfg: Config | None = None,
    data_dir: str | os.PathLike = WORLD,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    *,
    stop_at: int | None = None,
    export: str | os.PathLike | None = None,
    progress: bool = True,
    datasets: tuple[Dataset, Dataset, Any] | None = None,
    verbose: bool = True,
    keep_model: bool = False,
) -> dict[str, Any]:
    """Pretrain an MMV network; returns a summary dict.

    Args:
        cfg: the configuration (``get_config("lite", ...)``); with ``resume`` it may be None (the checkpoint's).
        data_dir: ``"world"`` (the sample-world stream of ``cfg.world``) or a folder of clips (``videos/``,
            ``captions.json``, ``metadata.json``, ``word_vectors.bin``).
        out_dir: where ``checkpoint.pt`` and ``metrics.jsonl`` go (default ``runs/<preset>-<graph>-<modalities>``).
        resume: continue from ``<out_dir>/checkpoint.pt`` if it exists (start fresh if it does not).
        device: ``"auto"``/None, ``"cpu"``, ``"cuda"``, ``"mps"``.
        stop_at: stop (and checkpoint) after this many steps, as if interrupted; the schedule still runs to
            ``train.steps``, so a later ``resume`` continues the same run.
        export: also write the inference-only checkpoint (model, config, vocabulary, metrics) here at the end.
        progress: show a tqdm progress bar.
        datasets: ``(train, val, word_vectors)`` instead of reading ``data_dir``; ``val`` may be None.
        verbose: print the validation tables and the final summary.
        keep_model: also return the trained network itself (``"model"``, on the training device), the one whose
            weights the checkpoint holds, so that a caller need not load the checkpoint back.

    Returns:
        ``{"step", "steps", "interrupted", "val": {direction: metrics}, "chance": {...}, "train_seconds",
        "clips_per_second", "data_wait_fraction", "checkpoint", "out_dir", "loss"}`` (and ``"model"``).
    """
    rt = setup_runtime(device)
    say = print if (verbose and rt.main) else (lambda *a, **k: None)
    cfg, ckpt_path, state = _resolve_run(cfg, out_dir, resume, say)
    tc, out = cfg.train, ckpt_path.parent
    check_batch_fits(cfg, rt.device, rt.world)  # on a GPU: refuse a batch that cannot fit before loading data
    seed_everything(tc.seed)
    train_ds, val_ds, wv = datasets if datasets is not None else build_datasets(cfg, data_dir)
    if rt.main:  # only now that the config and the data are known to work is anything written
        out.mkdir(parents=True, exist_ok=True)
        for stale in stale_temporaries(ckpt_path):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        if state is None:  # a new run: no checkpoint of an earlier one may stay beside its fresh metrics.jsonl
            ckpt_path.unlink(missing_ok=True)
    source = None if datasets is not None else (WORLD if str(data_dir) == WORLD else str(data_dir))
    run = Pretraining(cfg, wv, rt, ckpt_path, say, source)
    step = run.restore(state)
    run.wrap_ddp()
    stop = tc.steps if stop_at is None else min(stop_at, tc.steps)
    cuda = rt.device.type == "cuda"  # the sample world is then drawn on the GPU, a batch at a time
    loader = step_loader(train_ds, tc, step, stop, rt.rank, rt.world, pin_memory=cuda, device=rt.device)
    if state is not None:
        set_rng_state(state["rng"])  # after everything that draws random numbers at set-up
    log = MetricsLog(out / METRICS_NAME, step if state is not None else None, rt.main)
    step, interrupted, meter, seconds = run.run(loader, step, stop, val_ds, log, progress)

    finished = step >= tc.steps
    if finished and val_ds is not None:
        run.validate(step, val_ds, log)
    run.checkpoint(step)
    if rt.main and export is not None:
        save_checkpoint(export, inference_only(run.state(step, training=False)))
    summary = {
        "step": step,
        "steps": tc.steps,
        "finished": finished,
        "interrupted": interrupted,
        "loss": meter.last_loss,
        "val": run.metrics.get("val"),
        "chance": run.metrics.get("chance"),
        "train_seconds": seconds,
        "clips_per_second": meter.clips_per_second,
        "data_wait_fraction": meter.data_wait_fraction,
        "checkpoint": str(ckpt_path),
        "out_dir": str(out),
    }
    if keep_model:
        summary["model"] = run.model
    say(_ending(summary, interrupted, finished))
    barrier(rt)
    return summary


def _ending(summary: dict[str, Any], interrupted: bool, finished: bool) -> str:
    step, ckpt = summary["step"], summary["checkpoint"]
    if interrupted:
        return f"stopped at step {step}; checkpoint saved to {ckpt} (continue with --resume)"
    if not finished:
        return f"stopped at step {step} of {summary['steps']} (stop_at); checkpoint saved to {ckpt}"
    return (
        f"done: {step} steps in {summary['train_seconds']:.0f} s ({summary['clips_per_second']:.1f} clips/s, "
        f"{100 * summary['data_wait_fraction']:.1f}% of step time waiting for data); checkpoint {ckpt}"
    )


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mmv_lite train",
        description="Pretrain an MMV network (also under torchrun --nproc_per_node N for several GPUs).",
    )
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="model/data/training sizes (default lite)")
    p.add_argument("--data", default=WORLD, help="'world' (the sample-world stream, the default) or a folder of clips")
    p.add_argument(
        "--out",
        default=None,
        help="run folder (default runs/<preset>-<graph>-<modalities>); one that holds a run needs --resume or "
        "--overwrite",
    )
    p.add_argument("--steps", type=int, default=None, help="total optimisation steps (default: the preset's)")
    p.add_argument("--graph", choices=tuple(GRAPHS), default=None, help="embedding graph (default fac)")
    p.add_argument("--modalities", choices=MODALITY_SETS, default=None, help="loss terms (default vat)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (split over processes)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader worker processes")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt if it exists")
    again.add_argument(
        "--overwrite", action="store_true", help="start a new run even where <out> holds one (its files are replaced)"
    )
    p.add_argument("--stop-at", type=int, default=None, help="stop (and checkpoint) after this step; resume later")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the network (default: half the cores)")
    p.add_argument("--export", default=None, help="also write the small inference checkpoint here at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.NAME=VALUE",
        help="any other config field, e.g. --set model.d_va=64 --set train.eval_every=0 (repeatable)",
    )
    return p


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """The run's config: ``base`` (a resumed checkpoint's) or the preset, with the options given on the command line."""
    over: dict[str, Any] = {}
    for name, key in (
        ("steps", "train.steps"),
        ("graph", "model.graph"),
        ("modalities", "train.modalities"),
        ("seed", "train.seed"),
        ("batch_size", "train.batch_size"),
        ("lr", "train.lr"),
        ("num_workers", "train.num_workers"),
    ):
        if getattr(args, name) is not None:
            over[key] = getattr(args, name)
    over.update(parse_set_options(args.set))
    if base is None:
        return get_config(args.preset or "lite", **over)
    if args.preset is not None and args.preset != base.preset:
        raise ValueError(f"--preset {args.preset} does not match the checkpoint's preset {base.preset!r}")
    return apply_overrides(base, over)


def cli_main(argv: list[str] | None = None) -> int:
    """``python -m mmv_lite train ...``: every option is checked before anything is written; a folder that holds a
    run is continued (``--resume``) or replaced (``--overwrite``), never silently overwritten."""
    args = _parser().parse_args(argv)
    check_at_least(args, threads=1, stop_at=1)
    out = Path(args.out) if args.out is not None else default_out_dir(config_from_args(args))
    ck = out / CHECKPOINT_NAME
    # Resuming: the run's own config, with what the command line changes.
    base = config_from_checkpoint(load_checkpoint(ck), ck) if args.resume and ck.exists() else None
    cfg = config_from_args(args, base)
    check_run_folder(out, args.resume, args.overwrite)
    torch.set_num_threads(args.threads or default_cpu_threads())
    summary = train(
        cfg,
        data_dir=args.data,
        out_dir=out,
        resume=args.resume,
        device=args.device,
        stop_at=args.stop_at,
        export=args.export,
        progress=not args.no_progress,
    )
    if dist.is_initialized():
        dist.destroy_process_group()
    return 130 if summary["interrupted"] else 0
