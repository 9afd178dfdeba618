"""Clip-consistent augmentation with ``torchvision.transforms.v2``.

The paper augments with random crops, scale jitter, horizontal flips and colour changes. For a *video* the random
parameters must be drawn once per clip, not once per frame, or the augmentation itself would create motion.
``transforms.v2`` does exactly that when it is given the whole clip as one ``tv_tensors.Video`` of shape
``(T, C, H, W)``: every frame gets the same crop box, the same flip and the same colour factors.

Hue is not jittered by default: colour names are part of the narrations of the sample world.
Horizontal flips keep every sample-world label true (its motion classes do not depend on left/right).

    >>> aug = VideoTransform(get_config("lite").data, train=True)
    >>> aug(torch.zeros(8, 3, 64, 64, dtype=torch.uint8)).shape      # (T, 3, H, W) uint8 -> (3, T, h, w) float
    torch.Size([3, 8, 56, 56])
"""

from __future__ import annotations

import torch

from ..config import DataConfig

# torchvision is imported where a transform is built or applied, not with this module: its import takes about 2 s
# (torchvision.ops pulls in torch._dynamo), which every process that only draws the sample world would pay.


class VideoTransform:
    """``(T, 3, H, W)`` uint8 frames -> ``(3, T, crop, crop)`` float32 in [0, 1].

    train: random resized crop (area ``cfg.crop_min_scale``-1 of the frame, aspect 3/4-4/3; this is the scale
    jitter), horizontal flip (``cfg.hflip``), brightness/contrast/saturation jitter (``cfg.color_jitter``) with
    probability 0.8. eval: resize the shorter side to ``cfg.resize_to``, centre crop ``cfg.crop_size``.
    """

    def __init__(self, cfg: DataConfig, train: bool):
        from torchvision.transforms import v2

        self.train = train
        self.crop = cfg.crop_size
        self.resize_to = cfg.resize_to
        if train:
            ops: list = [v2.RandomResizedCrop(cfg.crop_size, scale=(cfg.crop_min_scale, 1.0), antialias=True)]
            if cfg.hflip:
                ops.append(v2.RandomHorizontalFlip())
            ops.append(v2.ToDtype(torch.float32, scale=True))
            if cfg.color_jitter > 0:
                j = cfg.color_jitter
                ops.append(v2.RandomApply([v2.ColorJitter(brightness=j, contrast=j, saturation=j)], p=0.8))
            self.transform = v2.Compose(ops)
        else:
            self.transform = v2.Compose(
                [
                    v2.Resize(cfg.resize_to, antialias=True),
                    v2.CenterCrop(cfg.crop_size),
                    v2.ToDtype(torch.float32, scale=True),
                ]
            )

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames (T, 3, H, W); got {tuple(frames.shape)}")
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        video = tv_tensors.Video(frames)
        if not self.train and min(frames.shape[-2:]) == self.resize_to:
            video = v2.functional.center_crop(video, [self.crop, self.crop])  # already at size: skip the resize
            out = v2.functional.to_dtype(video, torch.float32, scale=True)
        else:
            out = self.transform(video)
        return out.as_subclass(torch.Tensor).clamp_(0, 1).permute(1, 0, 2, 3).contiguous()
