"""The item every dataset of the kit returns, made in one place for :class:`~mmv_lite.data.clips.ClipDataset` (video
files) and :class:`~mmv_lite.data.world.WorldClips` (the sample world's stream), and the rule that picks a clip's
narrations.

An item (the contract of ``docs/DESIGN.md``)::

    video        (3, T, H, W) float32 in [0, 1]
    audio        (1, F, n_mels) log-mel of exactly the same time span
    text_ids     (K, L) long, word ids of the K narrations nearest in time (0 = padding)
    text_mask    (K, L) bool, text_ids != 0
    text_valid   (K,) bool, the candidate exists and has a known word (MIL-NCE's bag)
    has_audio, has_text, has_video   () bool, the modality masks of the losses
    video_id (str), start, end (s), index (int)
    action_label, sound_label, image_label   int ground truth for evaluation only (-1 when unknown)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def nearest_captions(
    starts: Sequence[float] | np.ndarray,
    ends: Sequence[float] | np.ndarray,
    start: float,
    end: float,
    k: int,
    usable: Sequence[bool] | np.ndarray | None = None,
) -> list[int]:
    """Indices of the ``k`` captions nearest in time to the clip ``[start, end)``, nearest first.

    ``starts, ends``: ``(C,)`` seconds of every caption of the video. Distance is the gap between the two spans
    (0 when they overlap), ties broken by the distance between their centres: MIL-NCE's K candidates. ``usable``
    ``(C,)`` leaves out captions that cannot be embedded (no known word)."""
    s, e = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    gap = np.maximum(0.0, np.maximum(s - end, start - e))
    centre_gap = np.abs((s + e) / 2 - (start + end) / 2)
    order = np.lexsort((centre_gap, gap))
    if usable is not None:
        order = order[np.asarray(usable, dtype=bool)[order]]
    return [int(i) for i in order[:k]]


def clip_item(
    video: torch.Tensor,
    audio: torch.Tensor,
    caption_ids: torch.Tensor | None,
    num_candidates: int,
    max_words: int,
    *,
    has_audio: bool = True,
    has_video: bool = True,
    video_id: str,
    start: float,
    end: float,
    index: int,
    labels: tuple[int, int, int] = (-1, -1, -1),
) -> dict[str, Any]:
    """One item of the contract above. ``caption_ids``: ``(n, max_words)`` word ids of the clip's ``n <= K``
    candidate narrations, nearest first (None or ``n = 0``: no narration); ``labels``: (action, sound, image)."""
    # Built in NumPy and handed to torch once per field: torch's per-op cost is most of an item's cost in the world
    # stream, where planning has to keep up with a GPU (docs/BENCHMARKS.md, "The world drawn a batch at a time").
    text_ids = np.zeros((num_candidates, max_words), dtype=np.int64)
    if caption_ids is not None and len(caption_ids):
        text_ids[: len(caption_ids)] = np.asarray(caption_ids)
    text_mask = text_ids != 0
    text_valid = text_mask.any(1)  # a candidate with no word in the vocabulary is no candidate
    action, sound, image = labels
    return {
        "video": video,
        "audio": audio,
        "text_ids": torch.from_numpy(text_ids),
        "text_mask": torch.from_numpy(text_mask),
        "text_valid": torch.from_numpy(text_valid),
        "has_audio": torch.from_numpy(np.array(bool(has_audio))),
        "has_text": torch.from_numpy(np.array(bool(text_valid.any()))),
        "has_video": torch.from_numpy(np.array(bool(has_video))),
        "video_id": video_id,
        "start": float(start),
        "end": float(end),
        "index": index,
        "action_label": action,
        "sound_label": sound,
        "image_label": image,
    }
