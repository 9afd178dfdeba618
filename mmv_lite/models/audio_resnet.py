"""Audio backbone: pre-activation ResNet-V2 (2D) on the log-mel spectrogram treated as a 1-channel image.

Input ``(B, 1, F, n_mels)``: F STFT frames over the clip's time span (height) by mel bins (width), as the
official ``AudioModule`` feeds ``[B, time, mel, 1]`` to its ResNet-V2. Output ``(B, 2048 * width)`` for the
paper's depth 50 (23,494,080 parameters), ``(B, 512 * width)`` for basic-block depths.
The block code, the TF SAME padding and the state-dict names are those of ``tsm_resnet.ResNetV2``
(official names ``initial_conv`` -> ``stem``, ``block_group_{i}/~/block_{j}`` -> ``units.{i}.{j}``).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import NormLayer
from .tsm_resnet import ResNetV2


class AudioResNet(ResNetV2):
    """ResNet-V2 on a log-mel spectrogram: ``(B, 1, F, n_mels) -> (B, out_dim)``."""

    def __init__(self, depth: int = 50, width: float = 1.0, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__(in_channels=1, depth=depth, width=width, shift_fraction=0.0, norm_layer=norm_layer)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"AudioResNet expects a log-mel spectrogram (B, 1, F, n_mels), got shape {tuple(x.shape)}")
        return super().forward(x)


def audio_resnet(depth: int = 50, width: float = 1.0, norm_layer: NormLayer = nn.BatchNorm2d) -> AudioResNet:
    """Audio backbone ``(B, 1, F, n_mels) -> (B, out_dim)``; ``audio_resnet(50)`` is the paper's."""
    return AudioResNet(depth=depth, width=width, norm_layer=norm_layer)
