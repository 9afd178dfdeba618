"""The supervised reference arm: the MMV backbones trained on the ground-truth labels with the arms' budget."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..config import Config
from ..data.sampling import step_loader
from ..models.mmv import build_model
from ..optim import build_optimiser, train_step

LABELS = ("action", "image", "sound")


class SupervisedHeads(nn.Module):
    """Linear classifiers on the backbone features: video -> action and image labels, audio -> sound labels."""

    def __init__(self, d_v: int, d_a: int, num_classes: dict[str, int]):
        super().__init__()
        self.action = nn.Linear(d_v, num_classes["action"])
        self.image = nn.Linear(d_v, num_classes["image"])
        self.sound = nn.Linear(d_a, num_classes["sound"])

    def forward(self, f_v: Tensor, f_a: Tensor) -> dict[str, Tensor]:
        return {"action": self.action(f_v), "image": self.image(f_v), "sound": self.sound(f_a)}


def supervised_loss(logits: dict[str, Tensor], batch: dict[str, Any]) -> dict[str, Tensor]:
    """Sum of the cross-entropies of the three label sets; unknown labels (-1) and clips without audio (sound) are
    left out of their term."""
    terms = {}
    for name in LABELS:
        y = batch[f"{name}_label"].long().clone()
        if name == "sound" and "has_audio" in batch:
            y[~batch["has_audio"].bool()] = -1
        terms[name] = F.cross_entropy(logits[name], y, ignore_index=-1) if (y >= 0).any() else logits[name].sum() * 0.0
    return {"loss": sum(terms.values()), **{f"loss_{k}": v for k, v in terms.items()}}


def train_supervised(
    cfg: Config,
    train_ds: Dataset,
    word_vectors: Tensor,
    device: str = "cpu",
    num_classes: dict[str, int] | None = None,
) -> nn.Module:
    """The supervised reference: the MMV backbones trained on the ground-truth labels with the run budget.

    Same network (:func:`~mmv_lite.models.mmv.build_model`), same clips in the same order with the same
    augmentation (:func:`~mmv_lite.data.sampling.step_loader` seeded by ``train.seed``), same optimiser, schedule
    and step (:mod:`mmv_lite.optim`), same number of steps and batch size as the self-supervised runs; only the loss
    differs (:func:`supervised_loss` through :class:`SupervisedHeads`). ``num_classes``: ``{"action", "image",
    "sound": count}`` (default: the largest label of ``train_ds.labels`` + 1). Returns the model (eval mode); its
    heads ``model.supervised_heads`` are kept.
    """
    tc = cfg.train
    torch.manual_seed(tc.seed)
    model = build_model(cfg, word_vectors=word_vectors).to(device)
    if num_classes is None or set(num_classes) != set(LABELS):
        labels = train_ds.labels  # type: ignore[attr-defined]
        num_classes = {k: int(labels[k].max()) + 1 for k in LABELS}
    model.supervised_heads = SupervisedHeads(model.video_backbone.out_dim, model.audio_backbone.out_dim, num_classes)
    model.to(device)
    opt = build_optimiser(model.parameters(), tc, device)

    def logits(video: Tensor, audio: Tensor) -> dict[str, Tensor]:
        out = model(video=video, audio=audio)
        return model.supervised_heads(out["f_v"], out["f_a"])

    model.train()
    for batch in step_loader(train_ds, tc, 0, tc.steps):
        batch = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
        inputs = {"video": batch["video"], "audio": batch["audio"]}
        train_step(logits, inputs, lambda out, batch=batch: supervised_loss(out, batch), opt)
    return model.eval()
