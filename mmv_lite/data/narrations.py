"""The sample world's narrations: when things are said against when they are shown.

In HowTo100M about half the clip-narration pairs are not aligned (MMV_REFERENCE section 8); the sample world
(``python -m mmv_lite make-samples``) records, for every caption, which ground-truth segment it describes, so the
misalignment can be counted: :func:`misaligned_captions` for one video, :func:`narration_hit_rate` for a dataset
(how often one of the K nearest narrations is about the clip: the case for MIL-NCE's K candidates).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_metadata(root: str | os.PathLike) -> dict:
    """``ROOT/metadata.json`` of a sample folder (videos, their segments, ``caption_segments`` and class names)."""
    path = Path(root) / "metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a folder made by `python -m mmv_lite make-samples` has one")
    with open(path) as f:
        return json.load(f)


def segment_at(segments: Sequence[dict], t: float) -> int:
    """Index of the ground-truth segment shown at time ``t`` (seconds), or -1 when none is."""
    for i, s in enumerate(segments):
        if s["start"] <= t < s["end"]:
            return i
    return -1


def misaligned_captions(video_meta: dict, captions: dict) -> list[int]:
    """Captions that describe a segment other than the one on screen at their own midpoint.

    Args:
        video_meta: one entry of ``metadata["videos"]`` (with ``segments`` and ``caption_segments``: for each caption,
            the segment it describes, -1 for filler).
        captions: the same video's ``captions.json`` entry.
    """
    described = video_meta.get("caption_segments")
    if described is None or len(described) != len(captions["text"]):
        raise ValueError("metadata entry needs 'caption_segments', one per caption of captions.json")
    out = []
    for i, (s, e, d) in enumerate(zip(captions["start"], captions["end"], described)):
        if d >= 0 and segment_at(video_meta["segments"], (s + e) / 2) != d:
            out.append(i)
    return out


def narration_hit_rate(dataset: Any, metadata: dict, ks: Sequence[int] = (1, 2, 3, 4, 5, 6)) -> dict[int, float]:
    """Fraction of narrated clips for which at least one of the ``k`` nearest narrations describes the clip's segment.

    ``dataset`` must offer ``candidate_texts(i)`` with at least ``max(ks)`` candidates (build it with
    ``cfg.num_candidates = max(ks)``). This is the case for several candidates that MIL-NCE makes.
    """
    kmax = max(ks)
    if dataset.cfg.num_candidates < kmax:
        raise ValueError(f"dataset gives {dataset.cfg.num_candidates} candidates; build it with num_candidates>={kmax}")
    hits = {k: 0 for k in ks}
    n = 0
    for i, w in enumerate(dataset.windows):
        meta = metadata["videos"].get(w.video_id, {})
        if meta.get("kind") != "narrated" or w.segment < 0:
            continue
        rec = dataset.videos[w.video_id]
        texts = dataset.candidate_texts(i)
        # Map each candidate text back to the captions with that text; any of them describing the segment counts.
        about = []
        for t in texts:
            idx = [j for j, c in enumerate(rec.caption_text) if c == t]
            about.append(any(meta["caption_segments"][j] == w.segment for j in idx))
        n += 1
        for k in ks:
            hits[k] += any(about[:k])
    if n == 0:
        raise ValueError("no narrated clips with ground-truth segments in this dataset")
    return {k: hits[k] / n for k in ks}
