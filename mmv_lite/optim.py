"""Optimisation: Adam with a linear warm-up and a half-period cosine decay (MMV_REFERENCE section 4), and one step.

Every training loop of the project (the pretraining loop of :mod:`mmv_lite.train`, the supervised reference of
:mod:`mmv_lite.experiments.supervised`, the BatchNorm calibration of :mod:`mmv_lite.models.deflation`, the bench
scripts) builds its optimiser with :func:`build_optimiser` and takes its steps with :func:`train_step`:

    >>> opt = build_optimiser(model.parameters(), cfg.train, device)
    >>> losses = train_step(model, inputs, lambda out: loss_fn(out, batch), opt)   # {"loss": ..., ...}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .config import TrainConfig
from .runtime import autocast_settings, cpu_autocast_kernels


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


class ConstantRate:
    """``LambdaLR`` schedule object for a constant learning rate (a baseline without warm-up or decay)."""

    def __call__(self, step: int) -> float:
        return 1.0


@dataclass
class Optimiser:
    """What a step needs besides the model: the optimiser, its schedule, and mixed precision.

    ``amp_dtype``: the autocast dtype (None: float32); ``scaler``: a ``GradScaler``, enabled only for float16.
    ``steps_taken``: optimiser steps actually taken (a GradScaler skips the step when a gradient overflowed).
    """

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    device_type: str
    steps_taken: int = 0

    def __post_init__(self) -> None:
        # Counted by the optimiser itself: GradScaler.step() calls optimizer.step() only when no gradient overflowed.
        self.optimizer.register_step_post_hook(lambda *_: self._count_step())

    def _count_step(self) -> None:
        self.steps_taken += 1

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def checkpoint_entries(self) -> dict[str, Any]:
        """The keyword arguments of :func:`mmv_lite.checkpoints.make_state` that save this state."""
        extra = {"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}
        return {"optimizer": self.optimizer, "scheduler": self.scheduler, "extra": extra}

    def load_checkpoint_entries(self, state: dict[str, Any], tc: TrainConfig) -> None:
        """Restore what :meth:`checkpoint_entries` saved into a checkpoint ``state``; the schedule follows ``tc``
        (a resumed run may have more steps)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.lr_lambdas[0] = WarmupCosine(tc.warmup_steps, tc.steps)
        if state.get("extra", {}).get("scaler"):
            self.scaler.load_state_dict(state["extra"]["scaler"])


def build_optimiser(
    params: Iterable[nn.Parameter],
    tc: TrainConfig,
    device: torch.device | str = "cpu",
    amp: bool | None = None,
    schedule: bool = True,
) -> Optimiser:
    """Adam (``tc.lr``, ``tc.weight_decay``) over the trainable ``params``, warm-up + cosine over ``tc.steps``.

    ``amp`` (default ``tc.amp``): mixed precision on CUDA (bf16 where the GPU has it natively, else fp16 with a
    GradScaler; :func:`mmv_lite.runtime.autocast_settings`).
    ``schedule=False``: a constant learning rate instead (a baseline for bench scripts).
    """
    device = torch.device(device)
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=tc.lr, weight_decay=tc.weight_decay)
    rate = WarmupCosine(tc.warmup_steps, tc.steps) if schedule else ConstantRate()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    amp_dtype, needs_scaler = autocast_settings(device, tc.amp if amp is None else amp, tc.amp_dtype)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_scaler)
    return Optimiser(opt, sched, scaler, amp_dtype, device.type)


def train_step(
    model: Callable[..., Any],
    inputs: dict[str, Any] | Tensor,
    loss_fn: Callable[[Any], dict[str, Tensor]],
    opt: Optimiser,
) -> dict[str, Tensor]:
    """One optimisation step; returns the loss terms (``{"loss": total, ...}``, attached to the graph).

    The forward pass ``model(**inputs)`` (or ``model(inputs)`` for one tensor) runs under the optimiser's autocast;
    ``loss_fn(output)`` gives ``{"loss": ...}``; the backward pass is scaled when float16 needs it; then the
    optimiser and the learning-rate schedule take one step. When the GradScaler skips the optimiser's step (an
    overflowed float16 gradient), the schedule does not advance either: it counts the steps taken.
    """
    with cpu_autocast_kernels(torch.device(opt.device_type), opt.amp_dtype):
        with opt.autocast():
            out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
        losses = loss_fn(out)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(losses["loss"]).backward()
    taken = opt.steps_taken
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    if opt.steps_taken > taken:
        opt.scheduler.step()
    return losses
