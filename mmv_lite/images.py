"""Single images through a video network (the paper's section 3.3 and Table 3): features and diagnostics.

Three ways to read an image ``(N, 3, H, W)`` with a video network (:data:`IMAGE_MODES`):

- ``naive``: :func:`~mmv_lite.models.deflation.deflate` of the video backbone (the config's
  ``model.deflation_alpha``), on the image;
- ``calibrated``: the same, with BatchNorm gamma/beta learned by
  :func:`~mmv_lite.models.deflation.calibrate_deflated_bn`;
- ``static``: the video backbone on the image repeated as a static clip.

:func:`image_features` adds all three to embedding dicts for the image probes; :func:`image_embeddings` gives a
model's embeddings of images; :func:`boundary_profile` and :func:`gap_by_clip_length` show where and why naive
deflation differs from the video network; :func:`own_clip_ranks` asks whether a frame finds its own clip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .models.deflation import CALIB_STEPS, calibrate_deflated_bn, deflate, static_clip
from .models.layers import batched, eval_mode
from .retrieval import cosine_similarity, positive_ranks
from .runtime import to_numpy

IMAGE_MODES = ("naive", "calibrated", "static")


def on_static_clips(video_backbone: nn.Module, num_frames: int) -> Callable[[Tensor], Tensor]:
    """``images (B, 3, H, W) -> video_backbone(each image repeated as a static clip of num_frames frames)``."""
    return lambda x: video_backbone(static_clip(x, num_frames))


def _calibration_frames(frames: Tensor, count: int) -> Tensor:
    """At most ``count`` evenly spaced rows of ``frames``."""
    if len(frames) <= count:
        return frames
    return frames[np.linspace(0, len(frames) - 1, count).round().astype(int)]


def image_features(
    model: nn.Module,
    splits: dict[str, dict[str, Any]],
    calibrate_on: str = "train",
    calib_steps: int = CALIB_STEPS,
    calib_images: int = 128,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Add single-frame features ``f_image_naive``, ``f_image_calibrated``, ``f_image_static`` to every split.

    ``splits``: ``{name: embedding dict with "frames" (N, 3, H, W)}`` (``embed_dataset`` with ``keep_frames``),
    modified in place. The calibrated network learns its BatchNorm for ``calib_steps`` steps on at most
    ``calib_images`` evenly spaced frames of the ``calibrate_on`` split (never the scored split); the static clips
    have ``data.num_frames`` frames.

    Returns the calibration report (``{"before": L1, "after": L1, ...}`` on the calibration frames, no history) and
    the TSM deflation's ``"alpha"`` (the config's ``model.deflation_alpha``).
    """
    device = torch.device(device)
    video_backbone = model.video_backbone
    num_frames, alpha = model.cfg.data.num_frames, model.cfg.model.deflation_alpha
    with eval_mode(video_backbone):
        naive = deflate(video_backbone, alpha).eval()
        calibrated = deflate(video_backbone, alpha).eval()
        report = calibrate_deflated_bn(
            calibrated,
            video_backbone,
            _calibration_frames(splits[calibrate_on]["frames"], calib_images).to(device),
            steps=calib_steps,
            num_frames=num_frames,
            batch_size=min(16, batch_size),
            seed=seed,
        )
        nets = {"naive": naive, "calibrated": calibrated.eval(), "static": on_static_clips(video_backbone, num_frames)}
        for emb in splits.values():
            for mode, net in nets.items():
                emb[f"f_image_{mode}"] = batched(net, emb["frames"], batch_size, device).float().cpu()
    return {**{k: v for k, v in report.items() if k != "history"}, "alpha": alpha}


@torch.no_grad()
def image_embeddings(
    model: nn.Module,
    images: Tensor,
    image_net: nn.Module | None = None,
    num_frames: int | None = None,
    batch_size: int = 32,
) -> dict[str, Tensor]:
    """Embeddings of single images ``(N, 3, H, W)``: ``{"f_v": (N, d_v), "z_v_*": (N, D)}`` on the CPU, eval mode.

    ``image_net`` given: the images go through it (a deflated backbone, :meth:`MMV.embed_image`); ``None``: the video
    network on the image repeated as a static clip of ``num_frames`` frames (default: the config's).
    """
    if images.dim() != 4:
        raise ValueError(f"image_embeddings: images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    device = next(model.parameters()).device
    num_frames = num_frames or model.cfg.data.num_frames
    chunks: dict[str, list[Tensor]] = {}
    with eval_mode(model, *([image_net] if image_net is not None else [])):
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].to(device)
            out = model.embed_image(x, image_net) if image_net is not None else model(video=static_clip(x, num_frames))
            for k, v in out.items():
                chunks.setdefault(k, []).append(v.float().cpu())
    return {k: torch.cat(v) for k, v in chunks.items()}


def relative_l1(x: Tensor, reference: Tensor) -> float:
    """``mean |x - reference| / mean |reference|``: an L1 gap as a fraction of the reference's typical size."""
    if x.shape != reference.shape:
        raise ValueError(f"relative_l1: shapes differ, {tuple(x.shape)} vs {tuple(reference.shape)}")
    return float(to_numpy((x - reference).abs().mean() / reference.abs().mean().clamp_min(1e-12)))


@torch.no_grad()
def boundary_profile(
    video_backbone: nn.Module, deflated: nn.Module, images: Tensor, num_frames: int
) -> dict[str, np.ndarray]:
    """Where a static clip and its image disagree: for every endpoint of a video backbone, the relative L1 difference
    between the video network's activation at each output frame (the image repeated ``num_frames`` times) and the
    deflated network's activation on the image itself.

    Args:
        video_backbone: an S3D-G or a TSM-ResNet (a video network with ``return_endpoints``); deflated: its
            deflation (``deflation.deflate``).
        images: ``(B, 3, H, W)`` in [0, 1].

    Returns ``{endpoint: (T_e,) array}`` in network order, ``T_e`` the endpoint's number of frames. An exact
    deflation gives 0 wherever a frame saw no zero padding in time: for S3D-G, where a kernel's temporal window
    stayed inside the clip (and no gate averaged over the clip); for TSM-ResNet, where no shifted channel came from
    beyond the clip's first or last frame.
    """
    if getattr(video_backbone, "dims", 3) != 3:
        raise ValueError("boundary_profile needs a video backbone (S3D-G with dims=3, or TSM-ResNet)")
    if images.dim() != 4:
        raise ValueError(f"boundary_profile: images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    with eval_mode(video_backbone, deflated):
        vid = video_backbone(static_clip(images, num_frames), return_endpoints=True)
        img = deflated(images, return_endpoints=True)
    out = {}
    for name, v in vid.items():
        if v.dim() != 5:
            continue  # the final embedding has no time axis
        ref = img[name].float()
        scale = ref.abs().mean().clamp_min(1e-12)
        out[name] = to_numpy((v.float() - ref.unsqueeze(2)).abs().mean(dim=(0, 1, 3, 4)) / scale)
    return out


@torch.no_grad()
def gap_by_clip_length(
    video_backbone: nn.Module,
    deflated: nn.Module,
    images: Tensor,
    lengths: Sequence[int] = (4, 8, 16, 32),
    batch_size: int = 16,
) -> dict[int, float]:
    """Relative L1 gap (:func:`relative_l1`) between ``deflated(images)`` and the video network's features of the
    images repeated as static clips of each length in ``lengths``. Returns ``{length: gap}``.

    The deflated network is the video network on an *endless* static clip: the gap shrinks as the clip grows and
    its borders (zero padding in time) weigh less."""
    with eval_mode(video_backbone, deflated):
        target = batched(deflated, images, batch_size)
        return {
            int(t): relative_l1(batched(on_static_clips(video_backbone, int(t)), images, batch_size), target)
            for t in lengths
        }


def own_clip_ranks(query: Tensor, clips: Tensor) -> tuple[Tensor, Tensor]:
    """Image ``i`` is a frame of clip ``i``: where does clip ``i`` rank among all clips for it?

    Args:
        query: ``(N, D)`` embeddings of the images (or anything standing for clip ``i``).
        clips: ``(N, D)`` the clips' video embeddings, same space.

    Returns ``(ranks (N,) int, 1 = found first; cosine (N,) with its own clip)``; ties are ranked pessimistically.
    """
    if query.shape != clips.shape:
        raise ValueError(f"own_clip_ranks: query {tuple(query.shape)} and clips {tuple(clips.shape)} must match")
    sim = cosine_similarity(query, clips)
    eye = torch.eye(len(query), dtype=torch.bool, device=sim.device)
    return positive_ranks(sim, eye), sim.diagonal().clone()
