"""What the notebooks compute and show: narration alignment in the sample world, and retrieval with a trained model.

Pure functions over a :class:`~mmv_lite.data.clips.ClipDataset`, the sample ``metadata.json`` and the output of
:func:`mmv_lite.evaluate.embed_dataset`; the widgets in :mod:`mmv_lite.widgets` only wire inputs to them.

    >>> bank = ClipBank.build(model, ClipDataset("data_samples", "test"))   # embeds every clip once
    >>> hits = search_text(bank, model, "a small star spins")               # ranked clips, best first
    >>> hits[0].video_id, hits[0].score, hits[0].narrations
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import space_for
from .evaluate import cosine_similarity, embed_dataset

# --------------------------------------------------------------------------------------------------------------------
# The sample world's narrations: how often is the nearest one about what is shown?
# --------------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------------
# Retrieval with a trained model
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Hit:
    """One retrieved clip: its position in the dataset, cosine score and what to show for it."""

    index: int
    score: float
    video_id: str
    start: float
    end: float
    narrations: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ClipBank:
    """A dataset and the embeddings of all its clips (from :func:`mmv_lite.evaluate.embed_dataset`), for search."""

    dataset: Any
    emb: dict[str, Any]
    graph: str

    @classmethod
    def build(cls, model: torch.nn.Module, dataset: Any, device: str | torch.device = "cpu", batch_size: int = 32):
        """Embed every clip of ``dataset`` with ``model`` (eval mode; FAC then also gives ``z_a_vat``)."""
        emb = embed_dataset(model, dataset, batch_size=batch_size, device=device)
        return cls(dataset=dataset, emb=emb, graph=model.cfg.model.graph)

    def __len__(self) -> int:
        return len(self.emb["video_id"])

    def hit(self, i: int, score: float) -> Hit:
        names = getattr(self.dataset, "class_names", {}) or {}
        labels = {}
        for k in ("action", "sound", "image"):
            v = int(self.emb[f"{k}_label"][i]) if f"{k}_label" in self.emb else -1
            if v >= 0 and k in names:
                labels[k] = names[k][v]
        texts = self.dataset.candidate_texts(i) if bool(self.emb.get("has_text", torch.ones(len(self)))[i]) else []
        return Hit(
            index=i,
            score=float(score),
            video_id=self.emb["video_id"][i],
            start=float(self.emb["start"][i]),
            end=float(self.emb["end"][i]),
            narrations=texts,
            labels=labels,
        )

    def key(self, m: str, other: str) -> str:
        """Embedding key of modality ``m`` when compared with ``other`` in this bank's graph, e.g. ``'z_v_vat'``."""
        return f"z_{m}_{space_for(self.graph, m, other)}"


def _top(sim: torch.Tensor, k: int, exclude: int | None = None) -> list[tuple[int, float]]:
    sim = sim.clone()
    if exclude is not None:
        sim[exclude] = -float("inf")
    k = min(k, int(torch.isfinite(sim).sum()))
    vals, idx = sim.topk(k)
    return [(int(i), float(v)) for i, v in zip(idx, vals)]


@torch.no_grad()
def encode_text(model: torch.nn.Module, word_vectors: Any, query: str) -> dict[str, torch.Tensor]:
    """Embed one typed query with the model's text tower: ``{"f_t": (1, d_t), "z_t_*": (1, D)}``.

    ``word_vectors`` is the :class:`~mmv_lite.data.text.WordVectors` the model was built with (its vocabulary gives
    the ids). Raises ``ValueError`` when no word of the query is in the vocabulary (after stop-word removal).
    """
    ids, mask = word_vectors.encode([query], max_words=model.cfg.data.max_words)
    if not mask.any():
        raise ValueError(
            f"none of the words of {query!r} is in the vocabulary of {len(word_vectors) - 1} words "
            "(stop words are dropped); try words the narrations use, e.g. 'red star spins'"
        )
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        return model.embed_text(ids.to(device), mask.to(device))
    finally:
        model.train(was)


def search_text(bank: ClipBank, model: torch.nn.Module, query: str, k: int = 5) -> list[Hit]:
    """Clips ranked by the cosine similarity of their video embedding with the typed ``query`` (text -> video)."""
    key_t, key_v = bank.key("t", "v"), bank.key("v", "t")
    z = encode_text(model, bank.dataset.word_vectors, query)[key_t].cpu()
    sim = cosine_similarity(z, bank.emb[key_v])[0]
    return [bank.hit(i, s) for i, s in _top(sim, k)]


def search_sound(bank: ClipBank, index: int, k: int = 5) -> list[Hit]:
    """Clips whose *video* best matches the *sound* of clip ``index`` (audio -> video), the query clip left out."""
    key_a, key_v = bank.key("a", "v"), bank.key("v", "a")
    if not bool(bank.emb.get("has_audio", torch.ones(len(bank)))[index]):
        raise ValueError(f"clip {index} has no audio track")
    sim = cosine_similarity(bank.emb[key_a][index : index + 1], bank.emb[key_v])[0]
    return [bank.hit(i, s) for i, s in _top(sim, k, exclude=index)]


def sound_to_text(bank: ClipBank, index: int, k: int = 5) -> list[tuple[str, float]]:
    """Narrations ranked for the sound of clip ``index`` (audio -> text), never trained directly: in FAC audio reaches
    the text space only through ``g_va_to_vat``. Candidates are the distinct narrations of the bank's clips."""
    key_a, key_t = bank.key("a", "t"), bank.key("t", "a")
    if key_a not in bank.emb:
        raise ValueError(f"the bank has no {key_a}: embed it in eval mode (ClipBank.build does)")
    texts, rows = [], []
    seen = set()
    valid = bank.emb["text_valid"].bool() & bank.emb["has_text"].bool()[:, None]
    for i in range(len(bank)):
        cand = bank.dataset.candidate_texts(i) if valid[i].any() else []
        for j, t in enumerate(cand):
            if valid[i, j] and t not in seen:
                seen.add(t)
                texts.append(t)
                rows.append(bank.emb[key_t][i, j])
    if not rows:
        raise ValueError("the bank has no narrations to rank")
    sim = cosine_similarity(bank.emb[key_a][index : index + 1], torch.stack(rows))[0]
    return [(texts[i], s) for i, s in _top(sim, k)]


def clip_media(dataset: Any, index: int) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Frames ``(T, H, W, 3)`` uint8 and waveform ``(samples,)`` of clip ``index`` at its evaluation start, and the
    sample rate: what a player shows and plays."""
    w = dataset.windows[index]
    frames, wave = dataset.load_clip(dataset.videos[w.video_id], w.start)
    return frames, wave, dataset.cfg.sample_rate


# --------------------------------------------------------------------------------------------------------------------
# Training logs
# --------------------------------------------------------------------------------------------------------------------


def read_metrics(path: str | os.PathLike, metric: str = "R@5") -> list[dict[str, float]]:
    """The records of a run's ``metrics.jsonl``, flat: training lines as they are (``step``, ``loss``, ``loss_va``,
    ``loss_vt``, ``lr``, ...) and validation lines as ``{"step": s, "val t2v R@5": x, ...}`` for ``metric``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train() writes metrics.jsonl into its output folder")
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if "val" in rec:
            flat = {"step": rec["step"]}
            flat.update({f"val {d} {metric}": m[metric] for d, m in rec["val"].items() if metric in m})
            out.append(flat)
        else:
            out.append({k: v for k, v in rec.items() if isinstance(v, (int, float))})
    return out
