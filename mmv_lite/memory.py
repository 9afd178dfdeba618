"""Will a training step fit the GPU? An estimate on the meta device, made before anything is allocated.

    >>> est = estimate_training_memory(get_config("s3dg"), amp=True)
    >>> est.largest_batch(16 * 2**30)            # clips per step that fit a 16 GB GPU
    >>> check_batch_fits(cfg, torch.device("cuda"))   # raises ValueError naming that batch when cfg's does not fit

The paper presets run out of memory on a 16 GB GPU at batch 32, and without this check they would do so after the
data is loaded and the first step has started. The network runs once on the meta device (shapes only, no memory,
no arithmetic): every tensor the forward pass keeps for the backward pass (``saved_tensors_hooks``) is counted, at
two batch sizes, which gives the bytes per clip. To that come the bytes that do not grow with the batch: weights,
their gradients and Adam's two moments (16 bytes per trainable parameter), the frozen word vectors, and a margin
for the CUDA context, cuDNN's workspace and the allocator (:data:`CUDA_MARGIN`, :data:`WORKSPACE_FACTOR`).
Under mixed precision the network runs in 16-bit on the meta device (autocast does not act there), which halves
the activations as autocast does for convolutions. Left out: the text network (its word-id check reads values, which
the meta device has none of) and the contrastive losses (``B x B`` similarities); their activations are under 1 MB
per clip at paper size, beside hundreds of MB for the video network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import Config, get_config
from .data.audio import num_audio_frames
from .models.mmv import build_model

GiB = 2**30
CUDA_MARGIN = 1.0 * GiB  # the CUDA context and cuDNN's handles, present before the first tensor
WORKSPACE_FACTOR = 1.25  # activations in flight during the backward pass, cuDNN workspaces, fragmentation
_VOCAB = 1000  # rows of the stand-in word matrix (the real one is counted by its size in the config's data)


def example_batch(cfg: Config, batch: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A batch of the config's real shapes: video ``(B, 3, T, S, S)``, audio ``(B, 1, F, n_mels)``, narrations
    ``(B, K, L)`` word ids with their masks (random values; on the meta device, shapes only)."""
    d = cfg.data
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, _VOCAB, (batch, d.num_candidates, d.max_words), generator=g)
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


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step: ``fixed_bytes + per_clip_bytes * batch``, times and plus the margins."""

    fixed_bytes: int  # weights, gradients, Adam's moments, frozen word vectors
    per_clip_bytes: float  # activations kept for the backward pass, per clip
    amp: bool

    def bytes_at(self, batch: int) -> float:
        return CUDA_MARGIN + self.fixed_bytes + WORKSPACE_FACTOR * self.per_clip_bytes * batch

    def largest_batch(self, total_bytes: float) -> int:
        """The most clips per step that fit ``total_bytes`` (0: not even one)."""
        room = total_bytes - CUDA_MARGIN - self.fixed_bytes
        return max(0, math.floor(room / (WORKSPACE_FACTOR * self.per_clip_bytes)))


def _saved_bytes(model: torch.nn.Module, batch: dict[str, torch.Tensor], params: set[int]) -> int:
    """Bytes of the tensors the forward pass saves for backward (parameters excluded, each tensor counted once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in params:
            seen.setdefault(id(t), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(video=batch["video"], audio=batch["audio"])
    del out
    return sum(seen.values())


def estimate_training_memory(cfg: Config, amp: bool | None = None, batches: tuple[int, int] = (2, 4)) -> MemoryEstimate:
    """The memory of one training step of ``cfg``'s network, from two forward passes on the meta device.

    ``amp`` (default ``cfg.train.amp``): the activations in 16-bit. Took 1-7 s per preset on a 2-core CPU (the
    first call in a process the longest).
    """
    amp = cfg.train.amp if amp is None else amp
    d = cfg.data
    with torch.device("meta"):
        model = build_model(cfg, word_vectors=torch.empty(_VOCAB, d.word_dim)).train()
    if amp:
        model = model.to(torch.bfloat16)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad) + sum(b.numel() for b in model.buffers())
    params = {id(p) for p in model.parameters()}
    saved = []
    for b in batches:
        batch = example_batch(cfg, b, "meta")
        if amp:
            batch = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in batch.items()}
        saved.append(_saved_bytes(model, batch, params))
    per_clip = (saved[1] - saved[0]) / (batches[1] - batches[0])
    fixed = 16 * trainable + 4 * frozen + max(0.0, saved[0] - per_clip * batches[0])
    return MemoryEstimate(int(fixed), float(per_clip), amp)


def device_memory(device: torch.device) -> int | None:
    """Total bytes of a CUDA ``device`` (None for other devices: their memory is the machine's)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.get_device_properties(device).total_memory)


def check_batch_fits(
    cfg: Config, device: torch.device, world: int = 1, amp: bool | None = None
) -> MemoryEstimate | None:
    """Refuse, before the data is loaded and the first step taken, a ``train.batch_size`` that cannot fit ``device``.

    ``world``: processes under ``torchrun`` (each GPU takes ``batch_size // world`` clips of a step). Raises
    ``ValueError`` naming the estimate and the largest batch that fits this GPU; returns the estimate (None off
    CUDA, where nothing is checked: the CPU's memory is the machine's, and the lite preset needs about 1 GB).
    """
    total = device_memory(device)
    if total is None:
        return None
    est = estimate_training_memory(cfg, amp)
    batch = cfg.train.batch_size // world
    if est.bytes_at(batch) > total:
        fits = est.largest_batch(total)
        precision = "mixed precision" if est.amp else "float32"
        per_gpu = " per GPU" if world > 1 else ""
        advice = f": use --set train.batch_size={fits * world}" if fits * world >= 2 else ": use a larger GPU"
        raise ValueError(
            f"train.batch_size={cfg.train.batch_size}: a training step of {batch} clips{per_gpu} needs about "
            f"{est.bytes_at(batch) / GiB:.1f} GiB in {precision} (a meta-device estimate) and this GPU has "
            f"{total / GiB:.1f} GiB; the largest batch that fits is {fits}{per_gpu}{advice}"
        )
    return est


def batch_table(presets: tuple[str, ...] = ("s3dg", "tsm_r50", "tsm_r50x2"), sizes_gb=(16, 24, 40, 80)) -> str:
    """Markdown: for each paper preset, in float32 and in mixed precision, the largest batch per GPU of each size
    (``n x 10^9`` bytes) and the estimate at the preset's batch of 32."""
    head = "| preset | precision | GiB per clip | GiB fixed | GiB at batch 32 | " + " | ".join(
        f"{g} GB" for g in sizes_gb
    )
    lines = [head + " |", "|---|---|---|---|---|" + "---|" * len(sizes_gb)]
    for preset in presets:
        for amp in (False, True):
            est = estimate_training_memory(get_config(preset), amp=amp)
            fits = " | ".join(str(est.largest_batch(g * 1e9)) for g in sizes_gb)
            lines.append(f"| {preset} | {'mixed (16-bit)' if amp else 'float32'} | {est.per_clip_bytes / GiB:.3f} | "
                         f"{est.fixed_bytes / GiB:.2f} | {est.bytes_at(32) / GiB:.1f} | {fits} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(batch_table())
