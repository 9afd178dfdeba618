"""Self-supervised pretraining of MMV: the loop, its schedule, checkpoints, exact resume, and DDP.

    python -m mmv_lite train --preset lite                        # the laptop model on data_samples/
    python -m mmv_lite train --preset lite --out runs/a --resume  # continue exactly where runs/a stopped
    torchrun --nproc_per_node 4 -m mmv_lite train --preset s3dg --data /data/howto --out runs/s3dg

or from Python: ``summary = train(get_config("lite"), "data_samples", "runs/lite")``.

What one step does (MMV_REFERENCE sections 3-4): a batch of clips goes through the network, the embeddings of
the graph's spaces go to :class:`~mmv_lite.losses.MMVLoss` (NCE for video-audio, MIL-NCE for video-text; under
DDP with negatives gathered from every rank), and Adam takes a step whose learning rate follows a linear warm-up
and then a half-period cosine decay to zero.

Reproducibility and exact resume
--------------------------------
The batches are a pure function of ``(seed, step)``: epoch ``e`` visits the training clips in the order of a
permutation seeded by ``(seed, e)``, cut into global batches of ``train.batch_size``; and every clip is loaded
with the random streams (Python, NumPy, torch) seeded by its position in the whole run, so its augmentation does
not depend on which DataLoader worker loads it. A checkpoint therefore needs only the step to know where the data
stream stands; with the model, optimiser, scheduler and RNG states restored, ``--resume`` continues exactly: on a
CPU the parameters after N straight steps and after N/2 + resume + N/2 are bit-identical (tested).

``train.batch_size`` is the *global* batch: under ``torchrun`` with W processes each rank takes its 1/W share of
the same global batch, so a run with W processes sees the same clips, and the same loss, as one process.

Checkpoints (``<out>/checkpoint.pt``) are written atomically every ``train.checkpoint_every`` steps, at the end,
and when the run is stopped with Ctrl-C (SIGINT; a second Ctrl-C aborts at once). ``<out>/metrics.jsonl`` gets one
JSON line per log step (loss, its terms, learning rate, clips/s, the fraction of step time spent waiting for data)
and per validation (zero-shot retrieval on the val split).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .checkpoints import (
    config_from_checkpoint,
    inference_only,
    load_checkpoint,
    load_state_into,
    make_state,
    save_checkpoint,
    set_rng_state,
)
from .config import GRAPHS, MODALITY_SETS, PRESETS, Config, get_config, validate
from .losses import MMVLoss

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
# Directions printed in the validation table, in this order.
TABLE_DIRECTIONS = ("t2v", "v2t", "v2a", "a2v", "a2t", "t2a")
_MODEL_INPUTS = {"v": ("video",), "a": ("audio",), "t": ("text_ids", "text_mask")}


# --------------------------------------------------------------------------------------------------------------------
# Devices and processes
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Runtime:
    """Where this process runs: its device and its place among the ``torchrun`` processes."""

    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def select_device(name: str | torch.device | None = None) -> torch.device:
    """``"auto"``/``None``: CUDA if present, else Apple's MPS, else CPU; otherwise the named device."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device auto or cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device auto or cpu")
    return dev


def setup_runtime(device: str | torch.device | None = None) -> Runtime:
    """Join the ``torchrun`` process group when ``RANK``/``WORLD_SIZE`` are set (nccl on CUDA, gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Runtime(select_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = select_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, rank=rank, world=world, local_rank=local_rank)


def default_cpu_threads() -> int:
    """Intra-op threads for CPU training: half the cores (at least 1), at most torch's default.

    The other half is left to the DataLoader workers. Taking every core backfires on a busy machine: OpenMP threads
    that wait for each other on oversubscribed cores made a lite step 10-30x slower on 2 cores (docs/BENCHMARKS.md).
    """
    return max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) // 2))


def autocast_settings(
    device: torch.device, enabled: bool = True, dtype: str = "auto"
) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``train.amp`` / ``train.amp_dtype``.

    ``"auto"``: bf16 on CUDA where supported, else fp16 + scaler; CPU and MPS train in float32 (CPU bf16 is slower than
    float32 for these convolutions on most laptops). ``"bf16"``: bf16 on any device, the CPU included (no scaler: bf16
    has float32's range). ``"fp16"``: fp16 + scaler, CUDA only.
    """
    if not enabled:
        return None, False
    if dtype == "bf16":
        return torch.bfloat16, False
    if dtype == "fp16":
        if device.type != "cuda":
            raise ValueError(f"train.amp_dtype='fp16' needs CUDA (device is {device.type}); use 'bf16' on the CPU")
        return torch.float16, True
    if device.type != "cuda":
        return None, False
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


@contextlib.contextmanager
def cpu_autocast_kernels(device: torch.device, amp_dtype: torch.dtype | None) -> Iterator[None]:
    """Under bf16 autocast on the CPU, PyTorch's own convolution kernels instead of oneDNN's.

    oneDNN's bf16 weight gradient of a stride-2 3 x 3 convolution over a 1 x 1 input reads memory it never wrote (torch
    2.14: 16 different results in 100 identical calls, 2 of them inf/NaN), and small clips reach 1 x 1 maps. Float32
    and CUDA are not affected.
    """
    if device.type != "cpu" or amp_dtype != torch.bfloat16:
        yield
        return
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was


# --------------------------------------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------------------------------------


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear warm-up, then half-period cosine to 0.

    >>> [round(lr_factor(s, 2, 6), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < warmup:
        return (step + 1) / warmup
    decay = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, decay) / decay))


class WarmupCosine:
    """``LambdaLR`` schedule object; a plain class so the scheduler's state_dict holds only numbers."""

    def __init__(self, warmup: int, total: int):
        self.warmup, self.total = int(warmup), int(total)

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.warmup, self.total)


# --------------------------------------------------------------------------------------------------------------------
# Data: a batch order that is a function of (seed, step)
# --------------------------------------------------------------------------------------------------------------------


def _mix(*xs: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), so nearby inputs give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return h >> 1


class StepBatchSampler:
    """Batches for steps ``start, ..., total - 1``; the rank's share of global batch ``step`` is a pure function.

    Yields lists of ``(index, item_seed)`` for :class:`SeededItems`. Epoch ``e`` is a permutation of the ``n``
    clips seeded by ``(seed, e)``, cut into ``n // batch_size`` global batches (the remainder is dropped); rank ``r``
    of ``world`` takes entries ``[r * b, (r + 1) * b)`` of each global batch, ``b = batch_size // world``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, total: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ValueError(f"train.batch_size={batch_size} must be divisible by the number of processes ({world})")
        if n < batch_size:
            raise ValueError(
                f"the training split has {n} clips, fewer than train.batch_size={batch_size}; lower --batch-size"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.total, self.rank, self.world = start, total, rank, world
        self.steps_per_epoch = n // batch_size
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return max(self.total - self.start, 0)

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return self._perm[1]

    def batch(self, step: int) -> list[tuple[int, int]]:
        perm = self._permutation(self.epoch_of(step))
        offset = (step % self.steps_per_epoch) * self.batch_size
        per_rank = self.batch_size // self.world
        lo = offset + self.rank * per_rank
        return [(int(perm[lo + i]), _mix(self.seed, step, self.rank * per_rank + i)) for i in range(per_rank)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.total):
            yield self.batch(step)


class SeededItems(Dataset):
    """Wraps a dataset so that ``ds[(i, seed)]`` is ``inner[i]`` drawn with Python/NumPy/torch seeded by ``seed``.

    Random augmentation then depends on the item's place in the run, not on the worker or process that loads it.
    In the main process (``num_workers=0``) the global random states are put back afterwards.
    """

    def __init__(self, inner: Dataset):
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        in_worker = torch.utils.data.get_worker_info() is not None
        saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.get_rng_state())  # noqa: NPY002
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002
            torch.manual_seed(seed)
            return self.inner[index]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])  # noqa: NPY002
                torch.set_rng_state(saved[2])


def _worker_init(_: int) -> None:
    # Ctrl-C reaches every process of the terminal's group: workers ignore it and the main process stops cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def build_datasets(cfg: Config, data_dir: str | os.PathLike) -> tuple[Dataset, Dataset, Any]:
    """The train split (augmented), the val split (deterministic) and the word vectors of ``data_dir``."""
    from .data.clips import ClipDataset
    from .data.text import WordVectors

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"--data {str(data_dir)!r} is not a folder; point it at a folder of clips such as data_samples/ "
            "(make one with `python -m mmv_lite make-samples --out DIR`)"
        )
    wv = WordVectors.load(data_dir / "word_vectors.bin")
    train_ds = ClipDataset(data_dir, "train", cfg.data, train=True, word_vectors=wv)
    val_ds = ClipDataset(data_dir, "val", cfg.data, train=False, word_vectors=wv)
    return train_ds, val_ds, wv


# --------------------------------------------------------------------------------------------------------------------
# Logging helpers
# --------------------------------------------------------------------------------------------------------------------


def format_retrieval(metrics: dict[str, dict], chance: dict[str, dict] | None = None, title: str = "") -> str:
    """A small text table of zero-shot retrieval: one row per direction, chance in brackets."""
    cols = ("R@1", "R@5", "R@10", "MedR")
    lines = [title] if title else []
    lines.append(f"{'':<6}" + "".join(f"{c:>16}" for c in cols) + f"{'queries':>9}")
    for d in TABLE_DIRECTIONS:
        if d not in metrics:
            continue
        row = f"{d:<6}"
        for c in cols:
            v = metrics[d][c]
            ch = (chance or {}).get(d, {}).get(c)
            cell = f"{v:.1f}" + (f" ({ch:.1f})" if ch is not None else "")
            row += f"{cell:>16}"
        lines.append(row + f"{metrics[d].get('num_queries', ''):>9}")
    if chance:
        lines.append("(in brackets: chance level of a random ranking)")
    return "\n".join(lines)


def _round(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, float):
        return round(x, 5)
    return x


class MetricsLog:
    """Append-only JSONL; on resume, entries logged after the checkpoint's step are dropped (they will be redone)."""

    def __init__(self, path: Path, resume_step: int | None, enabled: bool):
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        if resume_step is None:
            path.write_text("")
        elif path.exists():
            kept = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= resume_step]
            path.write_text("".join(ln + "\n" for ln in kept))

    def write(self, **entry: Any) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(_round(entry)) + "\n")


class _StopFlag:
    """SIGINT -> finish the current step, save, exit. A second SIGINT raises KeyboardInterrupt at once."""

    def __init__(self):
        self.stop = False
        self._old: Any = None

    def __enter__(self) -> _StopFlag:
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C handling stays as it was
            self._old = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def validate_retrieval(
    model: nn.Module,
    dataset: Dataset,
    cfg: Config,
    device: torch.device,
    num_workers: int = 0,
    batch_size: int | None = None,
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Zero-shot retrieval on ``dataset`` and its chance levels: ``({direction: metrics}, {direction: chance})``."""
    from .evaluate import chance_levels, embed_dataset, zero_shot_retrieval

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


# --------------------------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------------------------


def _to_device(batch: dict[str, Any], device: torch.device, keys: set[str]) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) for k, v in batch.items() if k in keys and isinstance(v, torch.Tensor)}


def _model_inputs(modalities: str) -> set[str]:
    keys = {k for m in "v" + modalities for k in _MODEL_INPUTS.get(m, ())}
    return keys | {"has_audio", "has_text", "text_valid"}


def _check_resume_config(saved: Config, cfg: Config, path: Path) -> None:
    """The network and its data must be those of the checkpoint; the train section may change (e.g. more steps)."""
    diffs = []
    for section in ("data", "model"):
        a, b = getattr(saved, section).__dict__, getattr(cfg, section).__dict__
        diffs += [f"{section}.{k}: checkpoint {a[k]!r}, now {b.get(k)!r}" for k in a if a[k] != b.get(k)]
    if diffs:
        raise ValueError(
            f"cannot resume from {str(path)!r}: the config differs from the checkpoint's in " + "; ".join(diffs)
        )


def train(
    cfg: Config | None = None,
    data_dir: str | os.PathLike = "data_samples",
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    *,
    stop_at: int | None = None,
    export: str | os.PathLike | None = None,
    progress: bool = True,
    datasets: tuple[Dataset, Dataset, Any] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Pretrain an MMV network; returns a summary dict.

    Args:
        cfg: the configuration (``get_config("lite", ...)``); with ``resume`` it may be None (the checkpoint's).
        data_dir: folder of clips (``videos/``, ``captions.json``, ``metadata.json``, ``word_vectors.bin``).
        out_dir: where ``checkpoint.pt`` and ``metrics.jsonl`` go (default ``runs/<preset>-<graph>-<modalities>``).
        resume: continue from ``<out_dir>/checkpoint.pt`` if it exists (start fresh if it does not).
        device: ``"auto"``/None, ``"cpu"``, ``"cuda"``, ``"mps"``.
        stop_at: stop (and checkpoint) after this many steps, as if interrupted; the schedule still runs to
            ``train.steps``, so a later ``resume`` continues the same run.
        export: also write the inference-only checkpoint (model, config, vocabulary, metrics) here at the end.
        progress: show a tqdm progress bar.
        datasets: ``(train, val, word_vectors)`` instead of reading ``data_dir``; ``val`` may be None.
        verbose: print the validation tables and the final summary.

    Returns:
        ``{"step", "steps", "interrupted", "val": {direction: metrics}, "chance": {...}, "train_seconds",
        "clips_per_second", "data_wait_fraction", "checkpoint", "out_dir", "loss"}``.
    """
    rt = setup_runtime(device)
    say = print if (verbose and rt.main) else (lambda *a, **k: None)

    # ---- configuration and output folder
    if out_dir is None:
        if cfg is None:
            raise ValueError("train(resume=True) without a config needs out_dir (the run to continue)")
        out_dir = Path("runs") / f"{cfg.preset}-{cfg.model.graph}-{cfg.train.modalities}"
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_NAME
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
    tc = cfg.train
    if rt.main:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(f".{CHECKPOINT_NAME}.*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)

    # ---- seeds, data, model, optimiser
    random.seed(tc.seed)
    np.random.seed(tc.seed % 2**32)  # noqa: NPY002
    torch.manual_seed(tc.seed)
    train_ds, val_ds, wv = datasets if datasets is not None else build_datasets(cfg, data_dir)
    vocab = list(getattr(wv, "vocab", []) or [])
    vectors = wv.as_tensor() if hasattr(wv, "as_tensor") else torch.as_tensor(wv)

    from .models.mmv import build_model

    model = build_model(cfg, word_vectors=vectors).to(rt.device)
    if rt.distributed and rt.device.type == "cuda" and tc.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # the paper's cross-replica BatchNorm
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(tc.warmup_steps, tc.steps))
    amp_dtype, needs_scaler = autocast_settings(rt.device, tc.amp, tc.amp_dtype)
    if rt.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    scaler = torch.amp.GradScaler("cuda", enabled=needs_scaler)
    loss_fn = MMVLoss(cfg)

    step, metrics = 0, {}
    if state is not None:
        load_state_into(model, state["model"], ckpt_path)
        if "optimizer" not in state:
            raise ValueError(f"{str(ckpt_path)!r} is an inference-only checkpoint: it cannot be resumed")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scheduler.lr_lambdas[0] = WarmupCosine(tc.warmup_steps, tc.steps)  # the config's schedule (steps may grow)
        if state.get("extra", {}).get("scaler"):
            scaler.load_state_dict(state["extra"]["scaler"])
        step, metrics = int(state["step"]), dict(state.get("metrics") or {})
        say(f"resuming {ckpt_path} at step {step}/{tc.steps}")
    net: nn.Module = model
    if rt.distributed:
        unused = tc.modalities != "vat"  # e.g. the text tower gets no gradient in a "va" run
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)

    stop_step = tc.steps if stop_at is None else min(stop_at, tc.steps)
    sampler = StepBatchSampler(len(train_ds), tc.batch_size, tc.seed, step, stop_step, rt.rank, rt.world)
    workers = tc.num_workers
    loader = DataLoader(
        SeededItems(train_ds),
        batch_sampler=sampler,
        collate_fn=getattr(train_ds, "collate", None),  # ClipDataset.collate keeps video ids as a list of str
        num_workers=workers,
        pin_memory=rt.device.type == "cuda",
        persistent_workers=workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
    )
    if state is not None:
        set_rng_state(state["rng"])  # after everything that draws random numbers at set-up
    log = MetricsLog(out / METRICS_NAME, step if state is not None else None, rt.main)
    inputs = _model_inputs(tc.modalities)

    def checkpoint(at: int) -> None:
        if rt.main:
            extra = {"scaler": scaler.state_dict()} if needs_scaler else {}
            s = make_state(
                model, cfg, vocab, step=at, metrics=metrics, optimizer=optimizer, scheduler=scheduler, extra=extra
            )
            save_checkpoint(ckpt_path, s)

    def run_validation(at: int) -> None:
        nonlocal metrics
        if val_ds is None:
            return
        if rt.main:
            # One process embeds the whole val split, a per-rank batch at a time (the global one may not fit).
            val, chance = validate_retrieval(
                model, val_ds, cfg, rt.device, batch_size=max(1, tc.batch_size // rt.world)
            )
            metrics = {"step": at, "val": val, "chance": chance}
            log.write(step=at, val=val)
            say(format_retrieval(val, chance, title=f"validation retrieval at step {at} (%, {cfg.model.graph})"))
        if rt.distributed:
            dist.barrier()

    # ---- the loop
    from tqdm.auto import tqdm

    bar = tqdm(total=stop_step, initial=step, disable=not (progress and rt.main), unit="step", dynamic_ncols=True)
    net.train()
    t_start = time.perf_counter()
    win = {"t0": time.perf_counter(), "wait": 0.0, "clips": 0, "steps": 0}
    totals = {"wait": 0.0, "time": 0.0, "clips": 0}
    sums: dict[str, torch.Tensor] = {}
    interrupted = False
    last_loss = float("nan")
    it = iter(loader)
    with _StopFlag() as flag, cpu_autocast_kernels(rt.device, amp_dtype):
        while step < stop_step:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                break
            except RuntimeError:
                if flag.stop:  # a worker died from the same Ctrl-C
                    interrupted = True
                    break
                raise
            wait = time.perf_counter() - t0
            batch = _to_device(batch, rt.device, inputs)
            with torch.autocast(rt.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out_ = net(**{k: batch[k] for k in inputs if k in _ALL_INPUTS})
            losses = loss_fn(out_, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1

            n_clips = tc.batch_size
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            win["wait"] += wait
            win["clips"] += n_clips
            win["steps"] += 1
            if step % tc.log_every == 0 or step == stop_step:
                means = {k: (v / win["steps"]).item() for k, v in sums.items()}  # .item() waits for the GPU
                elapsed = time.perf_counter() - win["t0"]
                clips_s = win["clips"] / max(elapsed, 1e-9)
                wait_frac = win["wait"] / max(elapsed, 1e-9)
                totals["wait"] += win["wait"]
                totals["time"] += elapsed
                totals["clips"] += win["clips"]
                last_loss = means["loss"]
                lr = optimizer.param_groups[0]["lr"]
                log.write(step=step, **means, lr=lr, clips_per_s=clips_s, data_wait=wait_frac)
                bar.set_postfix(loss=f"{last_loss:.3f}", clips_s=f"{clips_s:.1f}", wait=f"{100 * wait_frac:.0f}%")
                sums = {}
                win = {"t0": time.perf_counter(), "wait": 0.0, "clips": 0, "steps": 0}
            bar.update(1)

            stop_now = flag.stop
            if rt.distributed:  # every rank must stop at the same step
                t = torch.tensor(float(stop_now), device=rt.device)
                dist.all_reduce(t)
                stop_now = bool(t.item())
            if stop_now:
                interrupted = True
                break
            if tc.eval_every and step % tc.eval_every == 0 and step < tc.steps:
                bar.clear()
                run_validation(step)
                win["t0"] = time.perf_counter()  # validation time is not training time
            if tc.checkpoint_every and step % tc.checkpoint_every == 0 and step < stop_step:
                checkpoint(step)
    bar.close()
    train_seconds = time.perf_counter() - t_start
    del it  # stop the workers before validation and saving

    finished = step >= tc.steps
    if finished and val_ds is not None:
        run_validation(step)
    checkpoint(step)
    if rt.main and export is not None:
        save_checkpoint(export, inference_only(make_state(model, cfg, vocab, step=step, metrics=metrics)))
    summary = {
        "step": step,
        "steps": tc.steps,
        "finished": finished,
        "interrupted": interrupted,
        "loss": last_loss,
        "val": metrics.get("val"),
        "chance": metrics.get("chance"),
        "train_seconds": train_seconds,
        "clips_per_second": totals["clips"] / max(totals["time"], 1e-9),
        "data_wait_fraction": totals["wait"] / max(totals["time"], 1e-9),
        "checkpoint": str(ckpt_path),
        "out_dir": str(out),
    }
    if interrupted:
        say(f"stopped at step {step}; checkpoint saved to {ckpt_path} (continue with --resume)")
    elif not finished:
        say(f"stopped at step {step} of {tc.steps} (stop_at); checkpoint saved to {ckpt_path}")
    else:
        say(
            f"done: {step} steps in {train_seconds:.0f} s ({summary['clips_per_second']:.1f} clips/s, "
            f"{100 * summary['data_wait_fraction']:.1f}% of step time waiting for data); checkpoint {ckpt_path}"
        )
    if rt.distributed:
        dist.barrier()
    return summary


_ALL_INPUTS = {"video", "audio", "text_ids", "text_mask"}


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mmv_lite train",
        description="Pretrain an MMV network (also under torchrun --nproc_per_node N for several GPUs).",
    )
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="model/data/training sizes (default lite)")
    p.add_argument("--data", default="data_samples", help="folder of clips (default data_samples)")
    p.add_argument("--out", default=None, help="run folder (default runs/<preset>-<graph>-<modalities>)")
    p.add_argument("--steps", type=int, default=None, help="total optimisation steps (default: the preset's)")
    p.add_argument("--graph", choices=GRAPHS, default=None, help="embedding graph (default fac)")
    p.add_argument("--modalities", choices=MODALITY_SETS, default=None, help="loss terms (default vat)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (split over processes)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader worker processes")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt if it exists")
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


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected SECTION.NAME=VALUE, e.g. --set model.d_va=64")
        k, v = item.split("=", 1)
        over[k.strip()] = _parse_value(v.strip())
    if base is None:
        return get_config(args.preset or "lite", **over)
    cfg = Config.from_dict(base.to_dict())
    if args.preset is not None and args.preset != cfg.preset:
        raise ValueError(f"--preset {args.preset} does not match the checkpoint's preset {cfg.preset!r}")
    sections = {"data": cfg.data, "model": cfg.model, "train": cfg.train}
    for key, value in over.items():
        sec, _, name = key.partition(".")
        if sec not in sections or not hasattr(sections[sec], name):
            raise ValueError(f"unknown config field {key!r}")
        setattr(sections[sec], name, value)
    validate(cfg)
    return cfg


def cli_main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads or default_cpu_threads())
    base = None
    if args.resume:
        if args.out is None:
            raise SystemExit("--resume needs --out: the run folder to continue")
        ck = Path(args.out) / CHECKPOINT_NAME
        if ck.exists():
            base = config_from_checkpoint(load_checkpoint(ck), ck)
    try:
        cfg = config_from_args(args, base)
    except ValueError as e:
        raise SystemExit(f"train: {e}") from None
    with contextlib.ExitStack():
        summary = train(
            cfg,
            data_dir=args.data,
            out_dir=args.out,
            resume=args.resume,
            device=args.device,
            stop_at=args.stop_at,
            export=args.export,
            progress=not args.no_progress,
        )
    if dist.is_initialized():
        dist.destroy_process_group()
    return 130 if summary["interrupted"] else 0
