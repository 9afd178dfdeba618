"""Building blocks shared by the networks: TensorFlow "SAME" padding, normalisation layers, initialisation,
parameter counting, and running a network in eval mode.

The official MMV models are written in Haiku, whose convolutions and pools use TensorFlow's ``padding="SAME"``:
the output size is ``ceil(n / stride)`` and the total padding ``max((out - 1) * stride + k - n, 0)`` is split
with the extra element *after* the input. For a stride-2 layer on an even size that padding is asymmetric
(e.g. ``(2, 3)`` for a 7-tap kernel, ``(0, 1)`` for a 3-tap one), which PyTorch's ``padding=`` cannot express.
The helpers below use PyTorch's own (fast) symmetric padding whenever SAME is symmetric and pad explicitly
only when it is not. Max-pools pad with ``-inf`` (padding never wins the max), as Haiku does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

# A normalisation layer factory, as torchvision's ``norm_layer``: ``norm_layer(num_features) -> nn.Module``.
NormLayer = Callable[[int], nn.Module]


def batch_norm(dims: int, eps: float = 1e-5, momentum: float = 0.1, sync: bool = False) -> NormLayer:
    """BatchNorm over ``dims``-D inputs (1: ``(N, C)``, 2: images, 3: clips) with the given eps and momentum.

    ``sync``: ``nn.SyncBatchNorm``, whose statistics span every process of a multi-GPU run (the paper's cross-replica
    BatchNorm); on one process it is the plain BatchNorm.
    """
    cls = nn.SyncBatchNorm if sync else {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
    return functools.partial(cls, eps=eps, momentum=momentum)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding ``(before, after)`` of one axis of length ``size``.

    >>> same_padding(56, 7, 2), same_padding(57, 7, 2), same_padding(8, 3, 1)
    ((2, 3), (3, 3), (1, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> list[tuple[int, int]]:
    spatial = x.shape[2:]
    return [same_padding(n, k, s) for n, k, s in zip(spatial, kernel, stride)]


def _flat_pad(pads: list[tuple[int, int]]) -> list[int]:
    # F.pad wants the last axis first: (W_before, W_after, H_before, H_after, ...).
    flat: list[int] = []
    for before, after in reversed(pads):
        flat += [before, after]
    return flat


class _SameConvMixin:
    """Convolution with TensorFlow SAME padding for any input size (weights stay at ``.weight`` / ``.bias``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if all(k == 1 for k in self.kernel_size) and any(s > 1 for s in self.stride):
            # A strided 1x1 conv is the 1x1 conv of the subsampled input (SAME pads nothing for k = 1). Written so
            # because oneDNN's channels-last backward of a 1x1 stride-2 conv with fewer than 8 input channels
            # corrupts the heap on CPU (torch 2.14; tests/test_layers.py).
            every = tuple(slice(None, None, s) for s in self.stride)
            return self._conv(x[(..., *every)], 0, stride=1)
        pads = _pads(x, self.kernel_size, self.stride)
        if all(b == a for b, a in pads):
            return self._conv(x, [b for b, _ in pads])
        return self._conv(F.pad(x, _flat_pad(pads)), 0)


class Conv3dSame(_SameConvMixin, nn.Conv3d):
    """``nn.Conv3d`` with TensorFlow SAME padding. Input ``(B, C, T, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def _conv(self, x: torch.Tensor, padding, stride=None) -> torch.Tensor:
        return F.conv3d(x, self.weight, self.bias, self.stride if stride is None else stride, padding)


class Conv2dSame(_SameConvMixin, nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow SAME padding. Input ``(B, C, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def _conv(self, x: torch.Tensor, padding, stride=None) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride if stride is None else stride, padding)


def max_pool_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """Max-pool over the trailing 2 or 3 axes with TensorFlow SAME padding (padding is ``-inf``).

    ``x``: ``(B, C, H, W)`` or ``(B, C, T, H, W)``; ``kernel`` and ``stride`` have one entry per pooled axis.
    """
    pool = F.max_pool3d if x.dim() == 5 else F.max_pool2d
    pads = _pads(x, kernel, stride)
    # PyTorch pads symmetrically with -inf; with ceil_mode it also lets the last window run past the end. With
    # padding=before, that gives SAME's windows exactly when the extra trailing padding (after - before) < stride.
    if all(b <= k // 2 and a - b < s for (b, a), k, s in zip(pads, kernel, stride)):
        return pool(x, kernel, stride, padding=[b for b, _ in pads], ceil_mode=True)
    return pool(F.pad(x, _flat_pad(pads), value=float("-inf")), kernel, stride)


def init_like_haiku(module: nn.Module) -> None:
    """Initialise as Haiku does by default: truncated normal, std ``1/sqrt(fan_in)``, zero biases; BN 1 and 0.

    Applied to every ``Conv``/``Linear``/``BatchNorm`` inside ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            fan_in = m.weight[0].numel()
            # Haiku divides by the std of a unit normal truncated at +-2 so the result has the asked-for std.
            std = 1.0 / math.sqrt(fan_in) / 0.87962566103423978
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int, device: torch.device | None = None
) -> torch.Tensor:
    """``fn`` over the rows of ``x`` in chunks of ``batch_size`` (each moved to ``device`` when given), concatenated.

    ``x``: ``(N, ...)``; returns ``(N, ...)`` as ``fn`` gives it, without gradients.
    """
    return torch.cat([fn(x[i : i + batch_size].to(device or x.device)) for i in range(0, len(x), batch_size)])


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (weights, biases, BatchNorm scale and offset; buffers such as running stats excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Run the block with every module in eval mode, then give each back the train/eval mode it had.

    >>> with eval_mode(model):
    ...     out = model(video=video)
    """
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
