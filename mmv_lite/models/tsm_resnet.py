"""Pre-activation ResNet-V2 (He et al. 2016) and its Temporal Shift Module version TSM-ResNet (Lin et al. 2019).

One block code serves three networks:

* ``tsm_resnet(depth=50, width=1)``: the MMV video backbone, ``(B, 3, T, H, W) -> (B, 2048 * width)``;
  frames are folded into the batch, ``(B * T, 3, H, W)`` (batch-major: all frames of clip 0 first).
* ``audio_resnet(depth=50)`` in ``audio_resnet.py``: the same network on a 1-channel log-mel, shift off.
* the deflated image network (``deflation.deflate``): a TSM-ResNet with the shift switched off.

Architecture, as the official Haiku models (``mmv/models/tsm_resnet.py``, ``resnet.py``):
stem ``7x7/2`` conv (no bias) + ``3x3/2`` max-pool; four units of blocks with output channels
``(256, 512, 1024, 2048) x width`` (bottleneck = a quarter of that), strides ``(1, 2, 2, 2)`` on the block's
3x3 conv; the first block of a unit has a 1x1 projection shortcut (from the pre-activated input) when its
stride or channel count changes; end: BN, ReLU, mean over H, W (then over T for video).
All convs and the max-pool use TensorFlow SAME padding. Any ``H, W >= 1`` and ``T >= 1`` work.

A pre-activation block (bottleneck)::

    preact   = relu(bn_0(x))
    shortcut = shortcut_conv(preact)   if the block projects, else x
    preact   = temporal_shift(preact)  (residual branch only; TSM)
    out      = shortcut + conv_2(relu(bn_2(conv_1(relu(bn_1(conv_0(preact)))))))

Small depths for the laptop preset: 10 and 18 (basic blocks: two 3x3 convs; the official ``BasicBlock`` uses a
1x1 then a 3x3 conv, no released model uses it), 14 and 26 (bottlenecks, 1 and 2 blocks per unit).

State-dict names and the official Haiku names (TSM: ``tsm_resnet_stem``, ``tsm_resnet_unit_{i}``; audio ResNet:
``initial_conv``, ``block_group_{i}``)::

    stem.weight                      tsm_resnet_stem/w | initial_conv/w      (Conv w [kH,kW,in,out] -> permute 3,2,0,1)
    units.{i}.{j}.bn_0               .../block_{j}/~/batch_norm     (pre-activation of the block)
    units.{i}.{j}.shortcut_conv      .../block_{j}/~/shortcut_conv
    units.{i}.{j}.conv_0 / bn_1      .../block_{j}/~/conv_0 / batch_norm_1
    units.{i}.{j}.conv_1 / bn_2      .../block_{j}/~/conv_1 / batch_norm_2
    units.{i}.{j}.conv_2             .../block_{j}/~/conv_2
    bn_out                           the network-level batch_norm after the last unit
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Conv2dSame, NormLayer, init_like_haiku, max_pool_same

# depth -> (block kind, blocks per unit)
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    14: ("bottleneck", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    26: ("bottleneck", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
UNIT_CHANNELS = {"bottleneck": (256, 512, 1024, 2048), "basic": (64, 128, 256, 512)}
UNIT_STRIDES = (1, 2, 2, 2)


def _shift(x: torch.Tensor, num_frames: int, n: int, reverse: bool = False) -> torch.Tensor:
    # Channels [0, n) move one frame later (frame t reads t - 1), channels [C - n, C) one frame earlier; zeros enter
    # at the clip ends. reverse=True moves them the other way: that is the adjoint, i.e. the backward pass.
    c = x.shape[1]
    x5 = x.view(x.shape[0] // num_frames, num_frames, *x.shape[1:])
    out = x5.clone()  # one dense copy (keeps the memory format), then overwrite the 2n shifted channels
    first, last = (slice(0, n), slice(c - n, c)) if not reverse else (slice(c - n, c), slice(0, n))
    out[:, 1:, first] = x5[:, :-1, first]
    out[:, :1, first] = 0
    out[:, :-1, last] = x5[:, 1:, last]
    out[:, -1:, last] = 0
    return out.view_as(x)


class _TemporalShift(torch.autograd.Function):
    """The shift with a hand-written backward (the opposite shift): cheaper than autograd through slice copies."""

    @staticmethod
    def forward(ctx, x, num_frames, n):
        ctx.num_frames, ctx.n = num_frames, n
        return _shift(x, num_frames, n)

    @staticmethod
    def backward(ctx, grad):
        return _shift(grad.contiguous(memory_format=_layout(grad)), ctx.num_frames, ctx.n, reverse=True), None, None


def _layout(t: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
        else (torch.contiguous_format)
    )


def temporal_shift(x: torch.Tensor, num_frames: int, fraction: float = 0.125) -> torch.Tensor:
    """Temporal Shift Module: move ``n = int(C * fraction)`` channels one frame each way, zeros at the clip ends.

    ``x``: ``(B * T, C, H, W)``, batch-major (frame ``t`` of clip ``b`` at row ``b * T + t``). Returns the same shape.
    Channel positions are kept:

    * output channels ``[0, n)`` at frame t are input channels ``[0, n)`` at frame **t - 1** (zero at t = 0);
    * output channels ``[C - n, C)`` at frame t are input channels ``[C - n, C)`` at frame **t + 1** (zero at t = T-1);
    * the middle channels are unchanged.

    The official Haiku code (``temporal_shift_gpu``) shifts the same input channels the same way but concatenates
    ``[from t+1 (input's last n), middle, from t-1 (input's first n)]``: its output channel ``j < n`` is our
    channel ``C - n + j`` and its channel ``C - n + j`` is our channel ``j``. To import official weights, swap the
    first and last ``n`` input channels of the conv that follows (``conv_0``):
    ``w_ours[:, :n] = w_official[:, C-n:]``, ``w_ours[:, C-n:] = w_official[:, :n]``, middle unchanged.
    """
    n = int(x.shape[1] * fraction)
    if n == 0:
        return x
    if x.dim() != 4 or x.shape[0] % num_frames:
        raise ValueError(
            f"temporal_shift: expected (B * T, C, H, W) with T = num_frames = {num_frames}, got {tuple(x.shape)}"
        )
    return _TemporalShift.apply(x, num_frames, n)


def deflated_shift(x: torch.Tensor, fraction: float, alpha: float) -> torch.Tensor:
    """The temporal shift of a deflated TSM (one image, no time): the ``n = int(C * fraction)`` channels that the
    video network shifts each way are scaled by ``alpha``, the others kept. ``x``: ``(N, C, H, W)``, same shape out.

    ``alpha = 1`` is the shift switched off (on a static clip, shifted channels carry the same image); ``alpha = 0``
    is what a one-frame clip's shift brings in (zeros); DeepMind's later TSM code (``temporal_shift_image_mode``)
    uses 0.3, "to emulate the effect of the padding". Same channels as :func:`temporal_shift` (positions kept)."""
    n = int(x.shape[1] * fraction)
    if n == 0 or alpha == 1.0:
        return x
    scale = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    scale[:n] = alpha
    scale[-n:] = alpha
    return x * scale.view(1, -1, 1, 1)


class PreActBlock(nn.Module):
    """Pre-activation residual block, bottleneck (1x1, 3x3/stride, 1x1) or basic (3x3/stride, 3x3).

    ``forward(x, num_frames)``: ``x (N, C_in, H, W) -> (N, C_out, H / stride, W / stride)``; with
    ``shift_fraction > 0`` and ``num_frames`` given, the pre-activated residual input is temporally shifted.
    ``deflated_shift = (fraction, alpha)`` (set by ``deflation.deflate`` on an image network): its shifted channels
    are scaled by ``alpha`` instead (:func:`deflated_shift`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        projection: bool,
        bottleneck: bool = True,
        shift_fraction: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ):
        super().__init__()
        self.shift_fraction = shift_fraction
        self.deflated_shift: tuple[float, float] | None = None
        self.bottleneck = bottleneck
        self.bn_0 = norm_layer(in_channels)
        self.shortcut_conv = Conv2dSame(in_channels, out_channels, 1, stride) if projection else None
        if bottleneck:
            mid = max(1, out_channels // 4)
            self.conv_0 = Conv2dSame(in_channels, mid, 1)
            self.bn_1 = norm_layer(mid)
            self.conv_1 = Conv2dSame(mid, mid, 3, stride)
            self.bn_2 = norm_layer(mid)
            self.conv_2 = Conv2dSame(mid, out_channels, 1)
        else:
            self.conv_0 = Conv2dSame(in_channels, out_channels, 3, stride)
            self.bn_1 = norm_layer(out_channels)
            self.conv_1 = Conv2dSame(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        preact = F.relu(self.bn_0(x))
        shortcut = x if self.shortcut_conv is None else self.shortcut_conv(preact)
        if self.shift_fraction > 0 and num_frames is not None:
            preact = temporal_shift(preact, num_frames, self.shift_fraction)
        elif self.deflated_shift is not None:
            preact = deflated_shift(preact, *self.deflated_shift)
        r = self.conv_0(preact)
        r = self.conv_1(F.relu(self.bn_1(r), inplace=True))
        if self.bottleneck:
            r = self.conv_2(F.relu(self.bn_2(r), inplace=True))
        return shortcut + r


class ResNetV2(nn.Module):
    """Pre-activation ResNet-V2 on images: ``(N, in_channels, H, W) -> (N, out_dim)``.

    With ``shift_fraction > 0`` it is a TSM-ResNet whose ``forward(x, num_frames)`` takes frames folded
    batch-major into N; :class:`TSMResNet` adds the ``(B, 3, T, H, W)`` interface.

    Args:
        in_channels: 3 for RGB, 1 for a log-mel spectrogram.
        depth: one of ``DEPTHS`` (50 = the paper's).
        width: channel multiplier (fractional widths allowed; 2 = ResNet50x2).
        shift_fraction: fraction of channels shifted each way in every block (0 = plain ResNet).
        norm_layer: the BatchNorm of every block, ``(num_features) -> module`` (default ``nn.BatchNorm2d``).
        stem_stride: stride of the 7x7 stem conv (official 2). Small frames keep detail with 1: at 2, the stem and
            its max-pool leave a 40-pixel frame 10 x 10 cells before the first block.
    """

    def __init__(
        self,
        in_channels: int = 3,
        depth: int = 50,
        width: float = 1.0,
        shift_fraction: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
        stem_stride: int = 2,
    ):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNetV2: depth must be one of {sorted(DEPTHS)}, got {depth}")
        if width <= 0:
            raise ValueError(f"ResNetV2: width must be > 0, got {width}")
        if not 0.0 <= shift_fraction <= 0.5:
            raise ValueError(f"ResNetV2: shift_fraction must be in [0, 0.5], got {shift_fraction}")
        if stem_stride not in (1, 2):
            raise ValueError(f"ResNetV2: stem_stride must be 1 or 2, got {stem_stride}")
        kind, num_blocks = DEPTHS[depth]
        self.in_channels, self.depth, self.width, self.shift_fraction = in_channels, depth, width, shift_fraction
        self.stem_stride = stem_stride
        ch = max(1, int(round(64 * width)))
        self.stem = Conv2dSame(in_channels, ch, 7, stem_stride)
        units = []
        for unit_ch, n, stride in zip(UNIT_CHANNELS[kind], num_blocks, UNIT_STRIDES):
            out = max(1, int(round(unit_ch * width)))
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                blocks.append(
                    PreActBlock(ch, out, s, projection=(s != 1 or ch != out), bottleneck=kind == "bottleneck",
                                shift_fraction=shift_fraction, norm_layer=norm_layer)
                )  # fmt: skip
                ch = out
            units.append(nn.ModuleList(blocks))
        self.units = nn.ModuleList(units)
        self.bn_out = norm_layer(ch)
        self.out_dim = ch
        # Channels-last activations: faster convs on CPU (oneDNN) and GPU (mixed precision); set False to disable.
        self.channels_last = True
        init_like_haiku(self)

    def feature_map(
        self, x: torch.Tensor, num_frames: int | None = None, endpoints: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, out_dim, H', W')`` after the final BN + ReLU (official endpoint ``last_conv``).

        ``endpoints``: a dict that receives the output of the stem, the max-pool and each unit on the way."""
        x = self.stem(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)
        if self.channels_last:  # a 1-channel input (audio) leaves the stem output's layout ambiguous
            x = x.contiguous(memory_format=torch.channels_last)
        keep = endpoints if endpoints is not None else {}
        keep["stem"] = x
        x = max_pool_same(x, (3, 3), (2, 2))
        keep["max_pool"] = x
        for i, unit in enumerate(self.units, start=1):
            for block in unit:
                x = block(x, num_frames)
            keep[f"unit_{i}"] = x
        return F.relu(self.bn_out(x), inplace=True)

    def forward(self, x: torch.Tensor, num_frames: int | None = None, return_endpoints: bool = False):
        """``x``: ``(N, in_channels, H, W)`` -> ``(N, out_dim)`` (mean over H, W). ``num_frames`` only for TSM. With
        ``return_endpoints`` a dict ``{"stem", "max_pool", "unit_1", ..., "Embeddings"}`` of ``(N, C, H', W')``
        activations (the names of :class:`TSMResNet`'s, so a deflated network can be compared with its video one)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        found: dict[str, torch.Tensor] = {}
        out = self.feature_map(x, num_frames, found).mean(dim=(2, 3))
        return {**found, "Embeddings": out} if return_endpoints else out


class TSMResNet(ResNetV2):
    """TSM-ResNet video backbone: ``(B, 3, T, H, W) -> (B, out_dim)`` (per-frame features averaged over T).

    Also accepts frames already folded, ``(B * T, 3, H, W)`` batch-major, when built with ``num_frames``.
    """

    def __init__(
        self,
        depth: int = 50,
        width: float = 1.0,
        shift_fraction: float = 0.125,
        num_frames=None,
        norm_layer: NormLayer = nn.BatchNorm2d,
        stem_stride: int = 2,
    ):
        super().__init__(3, depth, width, shift_fraction, norm_layer, stem_stride)
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor, num_frames: int | None = None, return_endpoints: bool = False):
        """``(B, 3, T, H, W) -> (B, out_dim)``; with ``return_endpoints`` a dict ``{"stem", "max_pool", "unit_1", ...,
        "Embeddings"}`` whose activations are laid out ``(B, C, T, H', W')`` (as S3D-G's endpoints)."""
        if return_endpoints:
            b, t = x.shape[0], x.shape[2]
            found: dict[str, torch.Tensor] = {}
            frames = x.transpose(1, 2).reshape(b * t, *x.shape[1:2], *x.shape[3:])
            out = self.feature_map(frames, t, found).mean(dim=(2, 3)).view(b, t, -1).mean(dim=1)
            video = {k: v.reshape(b, t, *v.shape[1:]).transpose(1, 2) for k, v in found.items()}
            return {**video, "Embeddings": out}
        if x.dim() == 5:
            if x.shape[1] != 3:
                raise ValueError(f"TSMResNet expects video (B, 3, T, H, W), got shape {tuple(x.shape)}")
            b, _, t, h, w = x.shape
            frames = x.transpose(1, 2).reshape(b * t, 3, h, w)
        elif x.dim() == 4:
            t = num_frames or self.num_frames
            if t is None:
                raise ValueError(
                    "TSMResNet got 4-D input (N, 3, H, W): pass video as (B, 3, T, H, W), give num_frames for frames "
                    "folded as (B * T, 3, H, W), or use mmv_lite.models.deflation.deflate() for single images"
                )
            frames, b = x, x.shape[0] // t
        else:
            raise ValueError(f"TSMResNet expects video (B, 3, T, H, W), got shape {tuple(x.shape)}")
        feats = super().forward(frames, num_frames=t)  # (B * T, C)
        return feats.view(b, t, -1).mean(dim=1)


def tsm_resnet(
    depth: int = 50,
    width: float = 1.0,
    shift_fraction: float = 0.125,
    num_frames=None,
    norm_layer: NormLayer = nn.BatchNorm2d,
    stem_stride: int = 2,
) -> TSMResNet:
    """TSM-ResNet video backbone, ``(B, 3, T, H, W) -> (B, out_dim)``.

    ``out_dim`` is 2048 * width for bottleneck depths (14, 26, 50, ...), 512 * width for basic blocks (10, 18, 34).
    ``tsm_resnet(50, 1)`` and ``tsm_resnet(50, 2)`` are the paper's.
    """
    return TSMResNet(depth, width, shift_fraction, num_frames, norm_layer, stem_stride)


def build_tsm_resnet(cfg: Any, norm_layer: NormLayer) -> TSMResNet:
    """The TSM-ResNet a config asks for (its :data:`mmv_lite.backbones.BACKBONES` entry)."""
    m = cfg.model
    return tsm_resnet(
        depth=m.video_depth,
        width=m.video_width,
        shift_fraction=m.shift_fraction,
        num_frames=cfg.data.num_frames,
        norm_layer=norm_layer,
        stem_stride=m.video_stem_stride,
    )


def deflate_tsm_resnet(video_backbone: TSMResNet, alpha: float = 1.0) -> ResNetV2:
    """The deflated TSM-ResNet (:func:`mmv_lite.models.deflation.deflate`): the same ResNet without the temporal
    shift, the channels it shifts scaled by ``alpha`` (1: the shift switched off)."""
    net = ResNetV2(
        in_channels=3,
        depth=video_backbone.depth,
        width=video_backbone.width,
        shift_fraction=0.0,
        stem_stride=video_backbone.stem_stride,
    )
    if alpha != 1.0 and video_backbone.shift_fraction > 0:
        for unit in net.units:
            for block in unit:
                block.deflated_shift = (video_backbone.shift_fraction, alpha)
    net.load_state_dict({k: v.detach().clone() for k, v in video_backbone.state_dict().items()})
    return net
