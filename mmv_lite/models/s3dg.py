"""S3D-G: separable 3D inception network with self-gating (Xie et al. 2018), the MMV video backbone.

Input ``(B, 3, T, H, W)`` float (the released models take frames in [0, 1] as they are: no mean/std
normalisation, the first BatchNorm absorbs the scale). Output ``(B, 1024 * width)``.

Architecture, as in the official Haiku model (``mmv/models/s3d.py``):

* every unit (``SUnit``) is conv -> BatchNorm (scale and offset) -> ReLU, no conv bias; a *separable* unit is
  a ``1 x k x k`` spatial conv -> BN -> ReLU followed by a ``k x 1 x 1`` temporal conv -> BN -> ReLU;
* ``Conv2d_1a_7x7`` is a full (not separable) ``7 x 7 x 7`` conv with stride 2 in time and space;
* temporal kernels of 3 and self-gating ``x * sigmoid(Linear(mean_{T,H,W} x))`` start at ``Conv2d_2c_3x3``;
  inside an inception block the gate follows each branch's last unit (not the inner ``0a`` 1x1 units);
* every conv and max-pool uses TensorFlow SAME padding (asymmetric for stride 2 on even sizes);
* the embedding is the mean over T, H and W of ``Mixed_5c``.

Any ``T, H, W >= 1`` works (SAME padding keeps every size at least 1, and the end is a global mean): an
8 x 56 x 56 clip reaches ``Mixed_5c`` as 1 x 2 x 2. Endpoints of a 2 x 3 x 16 x 224 x 224 input at width 1
(the official test): 1a 8x112x112 (64 ch), 2a 8x56x56 (64), 2c 8x56x56 (192), 3a 8x28x28 (192), 3b 256, 3c 480,
4a 4x14x14 (480), 4b-4d 512, 4e 528, 4f 832, 5a 2x7x7 (832), 5c 2x7x7 (1024).

Module names mirror the official endpoints and Haiku sub-modules so a checkpoint importer can map them::

    official (Haiku)                                 here (PyTorch state_dict)
    .../<Unit>/~/conv3_d/w    [kT,kH,kW,in,out]      <Unit>.conv.weight    [out,in,kT,kH,kW] (permute 4,3,0,1,2)
    .../<Unit>/~/batch_norm/{scale,offset}           <Unit>.bn.{weight,bias}   (state mean_ema/var_ema -> running_*)
    .../<Unit>/~/conv3_d_1/w  (separable: temporal)  <Unit>.conv_t.weight
    .../<Unit>/~/batch_norm_1                        <Unit>.bn_t
    .../<Unit>/~/self_gating/{w [in,out], b}         <Unit>.self_gating.{weight [out,in], bias}

where ``<Unit>`` is ``Conv2d_1a_7x7``, ``Conv2d_2b_1x1``, ``Conv2d_2c_3x3`` or ``Mixed_4b.Branch_1_Conv2d_0b_3x3``
(official ``Mixed_4b/~/Branch_1_Conv2d_0b_3x3``), etc.

The same classes with ``dims=2`` build the *deflated* image network (see ``deflation.py``): 2D convs,
the temporal conv of a separable unit becomes a 1x1 conv, pools lose their temporal axis, gating averages
over H and W.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .deflation import DeflatedConv3d
from .layers import Conv2dSame, Conv3dSame, NormLayer, batch_norm, init_like_haiku, max_pool_same

# Inception channel sizes, ordered as in the official code:
# (Branch_0 1x1, Branch_1 1x1, Branch_1 3x3, Branch_2 1x1, Branch_2 3x3, Branch_3 1x1 after the max-pool).
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# (kernel, stride) of the max-pools, over (T, H, W).
POOLS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "MaxPool_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}

# Endpoints in order (as the official VALID_ENDPOINTS, without the final 'Embeddings').
ENDPOINTS = (
    "Conv2d_1a_7x7",
    "MaxPool_2a_3x3",
    "Conv2d_2b_1x1",
    "Conv2d_2c_3x3",
    "MaxPool_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, rounded, at least 1."""
    return max(1, int(round(channels * width)))


class MaxPoolSame(nn.Module):
    """Max-pool with TensorFlow SAME padding; ``dims=2`` drops the temporal axis (deflated network)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int], dims: int = 3):
        super().__init__()
        self.kernel = tuple(kernel) if dims == 3 else tuple(kernel[1:])
        self.stride = tuple(stride) if dims == 3 else tuple(stride[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_same(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=SAME"


class SUnit(nn.Module):
    """Conv (+ optional separable temporal conv), each followed by BN + ReLU, then optional self-gating.

    ``kernel``/``stride`` are given over (T, H, W). ``separable`` splits a ``kT x k x k`` kernel into
    ``1 x k x k`` then ``kT x 1 x 1`` (only when the spatial kernel is larger than 1, as in the official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        separable: bool = False,
        gating: bool = False,
        dims: int = 3,
        norm_layer: NormLayer | None = None,
    ):
        super().__init__()
        self.dims = dims
        kt, kh, kw = kernel
        st, sh, sw = stride
        conv = Conv3dSame if dims == 3 else Conv2dSame
        bn = norm_layer or batch_norm(dims)

        def k3(t, h, w):  # a (T, H, W) tuple, or its spatial part for the 2D network
            return (t, h, w) if dims == 3 else (h, w)

        if separable and kh != 1:
            self.conv = conv(in_channels, out_channels, k3(1, kh, kw), k3(1, sh, sw))
            self.bn = bn(out_channels)
            # Deflated: a temporal kernel summed over time is a 1x1 channel mixing.
            self.conv_t = conv(out_channels, out_channels, k3(kt, 1, 1), k3(st, 1, 1))
            self.bn_t = bn(out_channels)
        else:
            self.conv = conv(in_channels, out_channels, k3(kt, kh, kw), k3(st, sh, sw))
            self.bn = bn(out_channels)
            self.conv_t = None
            self.bn_t = None
        self.self_gating = nn.Linear(out_channels, out_channels) if gating else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        if self.conv_t is not None:
            x = self.relu(self.bn_t(self.conv_t(x)))
        if self.self_gating is not None:
            # S3D-G self-gating: one weight per channel from the mean over all positions (T, H, W or H, W).
            pooled = x.mean(dim=tuple(range(2, x.dim())))
            gate = torch.sigmoid(self.self_gating(pooled))
            x = x * gate.view(*gate.shape, *([1] * (x.dim() - 2)))
        return x


class InceptionBlock(nn.Module):
    """Inception-v1 block with separable 3D convs, gating after each branch's last unit; branches concatenated."""

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        gating: bool = True,
        dims: int = 3,
        norm_layer: NormLayer | None = None,
        stem_stride: int = 2,
    ):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        unit = dict(dims=dims, norm_layer=norm_layer)
        self.Branch_0_Conv2d_0a_1x1 = SUnit(in_channels, c0, gating=gating, **unit)
        self.Branch_1_Conv2d_0a_1x1 = SUnit(in_channels, c1a, **unit)
        self.Branch_1_Conv2d_0b_3x3 = SUnit(c1a, c1b, (3, 3, 3), separable=True, gating=gating, **unit)
        self.Branch_2_Conv2d_0a_1x1 = SUnit(in_channels, c2a, **unit)
        self.Branch_2_Conv2d_0b_3x3 = SUnit(c2a, c2b, (3, 3, 3), separable=True, gating=gating, **unit)
        self.Branch_3_MaxPool_0a_3x3 = MaxPoolSame((3, 3, 3), (1, 1, 1), dims=dims)
        self.Branch_3_Conv2d_0b_1x1 = SUnit(in_channels, c3, gating=gating, **unit)
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.Branch_0_Conv2d_0a_1x1(x)
        b1 = self.Branch_1_Conv2d_0b_3x3(self.Branch_1_Conv2d_0a_1x1(x))
        b2 = self.Branch_2_Conv2d_0b_3x3(self.Branch_2_Conv2d_0a_1x1(x))
        b3 = self.Branch_3_Conv2d_0b_1x1(self.Branch_3_MaxPool_0a_3x3(x))
        return torch.cat((b0, b1, b2, b3), dim=1)


class S3DG(nn.Module):
    """S3D-G backbone. ``forward(x)``: ``(B, 3, T, H, W) -> (B, out_dim)`` (``dims=2``: ``(B, 3, H, W)``).

    Args:
        width: multiplies every channel count (1.0 = the paper's 9,162,704 parameters, output 1024).
        first_temporal_kernel: temporal size of ``Conv2d_1a_7x7`` (official default 7; 1, 3, 5 or 7).
        gating: self-gating from ``Conv2d_2c_3x3`` on (False gives plain S3D).
        stem_stride: spatial stride of ``Conv2d_1a_7x7`` (official 2). Small frames keep detail with 1: at 2, the
            first two layers leave a 56-pixel frame 14 x 14 cells, too coarse to tell small shapes apart.
        dims: 3 for video; 2 builds the deflated image network (use ``deflation.deflate`` to get its weights).
        norm_layer: the BatchNorm of every unit, ``(num_features) -> module`` (default: ``BatchNorm3d``, or
            ``BatchNorm2d`` for ``dims=2``, with PyTorch's eps and momentum).
    """

    def __init__(
        self,
        width: float = 1.0,
        first_temporal_kernel: int = 7,
        gating: bool = True,
        dims: int = 3,
        norm_layer: NormLayer | None = None,
        stem_stride: int = 2,
    ):
        super().__init__()
        if width <= 0:
            raise ValueError(f"s3dg: width must be > 0, got {width}")
        if first_temporal_kernel not in (1, 3, 5, 7):
            raise ValueError(f"s3dg: first_temporal_kernel must be 1, 3, 5 or 7, got {first_temporal_kernel}")
        if dims not in (2, 3):
            raise ValueError(f"s3dg: dims must be 3 (video) or 2 (deflated image network), got {dims}")
        if stem_stride not in (1, 2):
            raise ValueError(f"s3dg: stem_stride must be 1 or 2, got {stem_stride}")
        self.width, self.dims, self.gating, self.stem_stride = width, dims, gating, stem_stride
        self.first_temporal_kernel = first_temporal_kernel
        kt = first_temporal_kernel
        c64, c192 = scaled(64, width), scaled(192, width)
        unit = dict(dims=dims, norm_layer=norm_layer)
        self.Conv2d_1a_7x7 = SUnit(3, c64, (kt, 7, 7), (2, stem_stride, stem_stride), **unit)
        self.MaxPool_2a_3x3 = MaxPoolSame(*POOLS["MaxPool_2a_3x3"], dims=dims)
        self.Conv2d_2b_1x1 = SUnit(c64, c64, **unit)
        self.Conv2d_2c_3x3 = SUnit(c64, c192, (3, 3, 3), separable=True, gating=gating, **unit)
        channels = c192
        for name in ENDPOINTS[4:]:
            if name in POOLS:
                setattr(self, name, MaxPoolSame(*POOLS[name], dims=dims))
            else:
                block = InceptionBlock(
                    channels, tuple(scaled(c, width) for c in INCEPTION_CHANNELS[name]), gating=gating, **unit
                )
                setattr(self, name, block)
                channels = block.out_channels
        self.out_dim = channels
        # Channels-last activations: about 2x faster convs and max-pools on CPU (oneDNN); set False to disable.
        self.channels_last = True
        init_like_haiku(self)

    def forward(self, x: torch.Tensor, return_endpoints: bool = False):
        """``x``: ``(B, 3, T, H, W)`` (``dims=2``: ``(B, 3, H, W)``). Returns ``(B, out_dim)``,
        or with ``return_endpoints`` a dict ``{endpoint name: activation, ..., "Embeddings": (B, out_dim)}``."""
        want = 2 + self.dims
        if x.dim() != want or x.shape[1] != 3:
            layout = "(B, 3, T, H, W)" if self.dims == 3 else "(B, 3, H, W)"
            raise ValueError(f"S3DG (dims={self.dims}) expects input {layout}, got shape {tuple(x.shape)}")
        endpoints = {}
        fmt = torch.channels_last_3d if self.dims == 3 else torch.channels_last
        for name in ENDPOINTS:
            if self.channels_last and name in ("Conv2d_1a_7x7", "MaxPool_2a_3x3"):
                x = x.contiguous(memory_format=fmt)  # no-op when already channels-last
            x = getattr(self, name)(x)
            if return_endpoints:
                endpoints[name] = x
        out = x.mean(dim=tuple(range(2, x.dim())))
        if return_endpoints:
            endpoints["Embeddings"] = out
            return endpoints
        return out


def s3dg(
    width: float = 1.0,
    first_temporal_kernel: int = 7,
    gating: bool = True,
    norm_layer: NormLayer | None = None,
    stem_stride: int = 2,
) -> S3DG:
    """S3D-G video backbone: ``(B, 3, T, H, W) -> (B, round(1024 * width))``. ``width=1`` is the paper's model."""
    return S3DG(
        width=width,
        first_temporal_kernel=first_temporal_kernel,
        gating=gating,
        dims=3,
        norm_layer=norm_layer,
        stem_stride=stem_stride,
    )


class ReleasedS3DGStem(nn.Conv3d):
    """The released S3D-G's first convolution, on RGB frames ``(B, 3, T, H, W) -> (B, C, T/2, H/2, W/2)``.

    The release folds every 2 x 2 x 2 block of the clip into 24 channels and applies a ``2 x 4 x 4`` kernel
    with stride 1 and TensorFlow SAME padding. On the unfolded clip that is a ``4 x 8 x 8`` kernel with stride 2,
    padding ``(0, 2)`` in time and ``(2, 4)`` in height and width: same numbers, no folding step. Identical to
    the release for even T, H, W (the only sizes the release accepts); odd sizes give ``ceil(n / 2)`` outputs.
    Its weight is ``[C, 3, 4, 8, 8]`` (``mmv_lite.official.space_to_depth_kernel`` unfolds the released one).
    It replaces ``Conv2d_1a_7x7.conv`` when ``model.video_stem = "space_to_depth"``.
    """

    def __init__(self, out_channels: int = 64):
        super().__init__(3, out_channels, (4, 8, 8), stride=2, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.pad takes the last axis first: (W_before, W_after, H_before, H_after, T_before, T_after).
        return F.conv3d(F.pad(x, (2, 4, 2, 4, 0, 2)), self.weight, None, self.stride)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", padding=(T 0-2, H 2-4, W 2-4): the released space-to-depth stem"


def build_s3dg(cfg: Any, norm_layer: NormLayer) -> S3DG:
    """The S3D-G a config asks for (its :data:`mmv_lite.backbones.BACKBONES` entry): ``model.video_width``, the stem's
    frames and stride, and with ``model.video_stem = "space_to_depth"`` the released stem."""
    m = cfg.model
    net = s3dg(m.video_width, m.video_stem_frames, norm_layer=norm_layer, stem_stride=m.video_stem_stride)
    if m.video_stem == "space_to_depth":
        # The released S3D-G's first layer (a 4x8x8 stride-2 conv equal to its space-to-depth stem).
        net.Conv2d_1a_7x7.conv = ReleasedS3DGStem(net.Conv2d_1a_7x7.conv.out_channels)
    return net


def deflate_s3dg(video_backbone: S3DG, alpha: float = 1.0) -> S3DG:
    """The deflated S3D-G (:func:`mmv_lite.models.deflation.deflate`): every 3D kernel summed over its temporal axis
    to a 2D kernel, a true 2D network on ``(B, 3, H, W)`` with the same parameter names. ``alpha`` must be 1 (an
    S3D-G has no shifted channels)."""
    if alpha != 1.0:
        raise ValueError(f"deflate: alpha scales a TSM's shifted channels; an S3D-G has none (got alpha={alpha})")
    if video_backbone.dims != 3:
        raise ValueError("deflate: this S3DG is already a 2D (deflated) network")
    net = S3DG(
        width=video_backbone.width,
        first_temporal_kernel=video_backbone.first_temporal_kernel,
        gating=video_backbone.gating,
        dims=2,
        stem_stride=video_backbone.stem_stride,
    )
    # Conv3d weight (out, in, kT, kH, kW) -> Conv2d (out, in, kH, kW): sum over time. Names are identical.
    state = {k: (v.sum(dim=2) if v.dim() == 5 else v) for k, v in video_backbone.state_dict().items()}
    stem = video_backbone.Conv2d_1a_7x7.conv
    if type(stem) is not Conv3dSame:  # a replaced stem, e.g. the released space-to-depth one
        net.Conv2d_1a_7x7.conv = DeflatedConv3d(stem)
        state = {k: v for k, v in state.items() if not k.startswith("Conv2d_1a_7x7.conv.")}
        state.update({k: v for k, v in net.state_dict().items() if k.startswith("Conv2d_1a_7x7.conv.")})
    net.load_state_dict({k: v.detach().clone() for k, v in state.items()})
    return net
