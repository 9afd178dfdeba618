"""Deflation: turn a video backbone into an image network (MMV paper, section 3.3 and Table 3).

Each backbone's rule is its entry's ``deflate`` in :data:`mmv_lite.backbones.BACKBONES`, written beside the network:

* S3D-G: every 3D kernel is summed over its temporal axis to a 2D kernel; temporal strides, temporal padding and
  the temporal axis of the pools disappear, so the result is a true 2D network on ``(B, 3, H, W)``. The temporal
  conv of a separable unit (``kT x 1 x 1``) becomes a 1x1 conv; self-gating averages over H, W.
  On a static clip (one image repeated over time), each 3D conv equals its deflated 2D conv at every frame far
  enough from the clip ends that its temporal window sees no padding.
* TSM-ResNet: the same ResNet without the temporal shift; the channels it shifts are scaled by ``alpha``
  (``deflate(..., alpha)``, config ``model.deflation_alpha``). ``alpha = 1`` (default) switches the shift off: on a
  static clip the shifted channels carry the same image, so the image network equals the video network away from
  the clip's ends. ``alpha = 0`` is a one-frame clip through the video network (the shift brings in zeros).
  DeepMind's later TSM code (not the MMV release, which has no deflation) has a deflated mode with ``alpha = 0.3``.

Naive deflation loses accuracy because the video network's outputs include the clip borders (temporal zero padding).
:func:`calibrate_deflated_bn` keeps every weight and learns new BatchNorm scale and offset (gamma, beta) of the
deflated copy, minimising the L1 distance between ``deflated(image)`` and ``video_backbone(image as a static clip)``.

    >>> image_net = deflate(model.video_backbone)
    >>> report = calibrate_deflated_bn(image_net, model.video_backbone, frames, num_frames=8)
    >>> model.set_image_mode(image_net)           # model(video=images) now takes (B, 3, H, W)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..backbones import BACKBONES, resolve
from ..config import TrainConfig
from ..optim import build_optimiser, train_step
from .layers import batched, eval_mode


class DeflatedConv3d(nn.Module):
    """Deflation of a 3D conv module with its own padding rule (e.g. the released space-to-depth S3D-G stem).

    Holds a copy of the module with its kernel summed over time (temporal size 1) and applies it to the image as a
    one-frame clip: ``(B, C, H, W) -> (B, C_out, H', W')``, the module's spatial stride and padding unchanged.
    Exact when the module pads nothing before the first frame (true of the released stem).
    """

    def __init__(self, conv3d: nn.Conv3d):
        super().__init__()
        self.conv3d = copy.deepcopy(conv3d)
        with torch.no_grad():
            self.conv3d.weight = nn.Parameter(conv3d.weight.detach().sum(dim=2, keepdim=True).clone())
        self.conv3d.kernel_size = (1, *self.conv3d.kernel_size[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3d(x.unsqueeze(2))[:, :, 0]


def deflate(video_backbone: nn.Module, alpha: float = 1.0) -> nn.Module:
    """A new image network ``(B, 3, H, W) -> (B, out_dim)`` from a video backbone (or an ``MMV`` model's), by the
    deflation rule of its :data:`mmv_lite.backbones.BACKBONES` entry.

    ``alpha``: TSM only, the scale of the shifted channels in every block (module docstring); must be 1 for S3D-G.

    The video backbone is not modified; the result has its own copies of every weight and BatchNorm (statistics
    included) and the same train/eval mode, device and dtype.
    """
    if hasattr(video_backbone, "video_backbone") and isinstance(video_backbone.video_backbone, nn.Module):
        video_backbone = video_backbone.video_backbone  # an MMV model
    ref = next(video_backbone.parameters())
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"deflate: alpha must be in [0, 1], got {alpha}")
    entry = next((b for b in BACKBONES.values() if isinstance(video_backbone, resolve(b.network))), None)
    if entry is None:
        raise TypeError(
            f"deflate: {type(video_backbone).__name__} is no video backbone of mmv_lite.backbones.BACKBONES "
            f"(expected one of {[resolve(b.network).__name__ for b in BACKBONES.values()]}, or an MMV model)"
        )
    net = resolve(entry.deflate)(video_backbone, alpha)
    return net.to(device=ref.device, dtype=ref.dtype).train(video_backbone.training)


def static_clip(images: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``(B, 3, H, W)`` images -> ``(B, 3, T, H, W)`` clips that repeat each image ``num_frames`` times."""
    return images.unsqueeze(2).expand(-1, -1, num_frames, -1, -1).contiguous()


@torch.no_grad()
def deflation_gap(
    deflated: nn.Module, video_backbone: nn.Module, images: torch.Tensor, num_frames: int = 8, batch_size: int = 16
) -> float:
    """Mean absolute difference between ``deflated(images)`` and ``video_backbone(static clips)``, both in eval mode."""
    with eval_mode(deflated, video_backbone):
        target = batched(video_backbone, static_clip(images, num_frames), batch_size)
        return (batched(deflated, images, batch_size) - target).abs().mean().item()


# Calibration steps (Adam on gamma/beta, batches of 16): enough for the calibration's own L1 to flatten. It does by
# ~100 steps for the lite TSM-ResNet (little to correct) and by ~1200 for an S3D-G, whose 7-frame kernels see the
# padding of an 8-frame clip everywhere (the deflation_l1_step* curves of docs/results/findings.json).
CALIB_STEPS = 1500


def calibrate_deflated_bn(
    deflated: nn.Module,
    video_backbone: nn.Module,
    images: torch.Tensor,
    steps: int = CALIB_STEPS,
    lr: float = 1e-2,
    batch_size: int = 16,
    num_frames: int = 8,
    seed: int = 0,
) -> dict:
    """Learn the deflated network's BatchNorm gamma/beta so that it matches the video network on static clips.

    Minimises ``mean |deflated(image) - video_backbone(image repeated num_frames times)|`` with Adam at a constant rate
    (:func:`~mmv_lite.optim.build_optimiser` and the one :func:`~mmv_lite.optim.train_step`) over random mini-batches
    of ``images (N, 3, H, W)``. Only the BatchNorm ``weight``/``bias`` of ``deflated`` change; every
    other weight is frozen and the video backbone is untouched. BatchNorm running statistics: both networks run in
    eval mode, so the deflated copy keeps the statistics copied from the video network and the correction is a pure
    per-channel affine one (a few images give poor batch statistics, and the result must not depend on the batch).
    ``requires_grad`` flags and train/eval modes are restored afterwards.

    Returns ``{"before": L1, "after": L1, "history": [L1 of each step's batch], "steps": steps, "by_step": {s: mean
    L1 of the batches of steps s-49..s}}`` (``by_step`` at :data:`L1_CURVE_STEPS` up to ``steps``: is it flat?), the
    L1 values before/after measured on all ``images``.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"calibrate_deflated_bn: images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    bn_params = [
        p
        for m in deflated.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine
        for p in (m.weight, m.bias)
    ]
    if not bn_params:
        raise ValueError("calibrate_deflated_bn: the deflated network has no BatchNorm with scale/offset to learn")
    before = deflation_gap(deflated, video_backbone, images, num_frames, batch_size)
    flags = [(p, p.requires_grad) for p in deflated.parameters()]
    with eval_mode(deflated, video_backbone):
        targets = batched(video_backbone, static_clip(images, num_frames), batch_size)
        for p, _ in flags:
            p.requires_grad_(False)
        for p in bn_params:
            p.requires_grad_(True)
        # A training step like any other (the one step of mmv_lite.optim): Adam at a constant rate, in float32.
        tc = TrainConfig(steps=steps, lr=lr, warmup_steps=0, weight_decay=0.0, amp=False)
        opt = build_optimiser(bn_params, tc, images.device, schedule=False)
        gen = torch.Generator().manual_seed(seed)
        history = []
        try:
            for _ in range(steps):
                idx = torch.randperm(len(images), generator=gen)[:batch_size].to(images.device)
                losses = train_step(
                    deflated, images[idx], lambda out, t=targets[idx]: {"loss": (out - t).abs().mean()}, opt
                )
                history.append(losses["loss"].item())
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
                p.grad = None
    after = deflation_gap(deflated, video_backbone, images, num_frames, batch_size)
    by_step = {s: sum(history[s - 50 : s]) / 50 for s in L1_CURVE_STEPS if s <= steps}
    return {"before": before, "after": after, "history": history, "steps": steps, "by_step": by_step}


L1_CURVE_STEPS = (50, 100, 200, 400, 800, 1200, 1500)  # where calibrate_deflated_bn reports its L1 curve
