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


def model_word_vectors(model: torch.nn.Module, vocab: Sequence[str]) -> Any:
    """The tokenizer a trained model was built with: its vocabulary (``load_model``'s third value) and the frozen
    word vectors stored in its text tower, as a :class:`~mmv_lite.data.text.WordVectors`.

    Give it to ``ClipDataset(..., word_vectors=...)`` so narrations and typed queries get the ids the model knows,
    whatever ``word_vectors.bin`` currently sits in the sample folder."""
    from .data.text import WordVectors

    matrix = model.text_backbone.word_vectors.detach().cpu().numpy()
    if len(vocab) != len(matrix):
        raise ValueError(f"vocab has {len(vocab)} words but the model's text tower has {len(matrix)} word vectors")
    return WordVectors(list(vocab), matrix)


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


# --------------------------------------------------------------------------------------------------------------------
# Deflation: the video network applied to single images (notebook 05)
# --------------------------------------------------------------------------------------------------------------------


def relative_l1(x: torch.Tensor, reference: torch.Tensor) -> float:
    """``mean |x - reference| / mean |reference|``: an L1 gap as a fraction of the reference's typical size."""
    if x.shape != reference.shape:
        raise ValueError(f"relative_l1: shapes differ, {tuple(x.shape)} vs {tuple(reference.shape)}")
    return float((x - reference).abs().mean() / reference.abs().mean().clamp_min(1e-12))


def _eval_copy_modes(*nets: torch.nn.Module) -> list[bool]:
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    return modes


@torch.no_grad()
def boundary_profile(
    video_backbone: torch.nn.Module, deflated: torch.nn.Module, images: torch.Tensor, num_frames: int
) -> dict[str, np.ndarray]:
    """Where a static clip and its image disagree: for every endpoint of an S3D-G, the relative L1 difference
    between the video network's activation at each output frame (the image repeated ``num_frames`` times) and the
    deflated network's activation on the image itself.

    Args:
        video_backbone: an S3D-G (``dims=3``); deflated: its deflation (``deflation.deflate``).
        images: ``(B, 3, H, W)`` in [0, 1].

    Returns ``{endpoint: (T_e,) array}`` in network order, ``T_e`` the endpoint's number of frames. An exact
    deflation gives 0 wherever a frame's temporal window saw no zero padding (and no gate averaged over the clip).
    """
    from .models.deflation import static_clip

    if not hasattr(video_backbone, "dims") or getattr(video_backbone, "dims", 3) != 3:
        raise ValueError("boundary_profile needs an S3D-G video backbone (dims=3) with return_endpoints")
    if images.dim() != 4:
        raise ValueError(f"boundary_profile: images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    modes = _eval_copy_modes(video_backbone, deflated)
    try:
        vid = video_backbone(static_clip(images, num_frames), return_endpoints=True)
        img = deflated(images, return_endpoints=True)
    finally:
        video_backbone.train(modes[0]), deflated.train(modes[1])
    out = {}
    for name, v in vid.items():
        if v.dim() != 5:
            continue  # the final embedding has no time axis
        ref = img[name].float()
        scale = ref.abs().mean().clamp_min(1e-12)
        out[name] = ((v.float() - ref.unsqueeze(2)).abs().mean(dim=(0, 1, 3, 4)) / scale).numpy()
    return out


@torch.no_grad()
def gap_by_clip_length(
    video_backbone: torch.nn.Module,
    deflated: torch.nn.Module,
    images: torch.Tensor,
    lengths: Sequence[int] = (4, 8, 16, 32),
    batch_size: int = 16,
) -> dict[int, float]:
    """Relative L1 gap (:func:`relative_l1`) between ``deflated(images)`` and the video network's features of the
    images repeated as static clips of each length in ``lengths``. Returns ``{length: gap}``.

    The deflated network is the video network on an *endless* static clip: the gap shrinks as the clip grows and
    its borders (zero padding in time) weigh less."""
    from .models.deflation import static_clip

    modes = _eval_copy_modes(video_backbone, deflated)
    try:
        target = torch.cat([deflated(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        out = {}
        for t in lengths:
            feats = torch.cat(
                [
                    video_backbone(static_clip(images[i : i + batch_size], int(t)))
                    for i in range(0, len(images), batch_size)
                ]
            )
            out[int(t)] = relative_l1(feats, target)
    finally:
        video_backbone.train(modes[0]), deflated.train(modes[1])
    return out


@torch.no_grad()
def image_embeddings(
    model: torch.nn.Module,
    images: torch.Tensor,
    image_net: torch.nn.Module | None = None,
    num_frames: int | None = None,
    batch_size: int = 32,
) -> dict[str, torch.Tensor]:
    """Embeddings of single images ``(N, 3, H, W)``: ``{"f_v": (N, d_v), "z_v_*": (N, D)}`` on the CPU.

    ``image_net`` given: the model is switched to image mode with it (``model.set_image_mode(image_net)``, one
    call), images go in as they are, and the model's previous mode is restored afterwards. ``image_net=None``: the
    video network on the image repeated as a static clip of ``num_frames`` frames (default: the config's).
    """
    from .models.deflation import static_clip

    if images.dim() != 4:
        raise ValueError(f"image_embeddings: images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    device = next(model.parameters()).device
    num_frames = num_frames or model.cfg.data.num_frames
    previous, was_training = model.image_backbone, model.training
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {}
    try:
        if image_net is not None:
            model.set_image_mode(image_net)
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].to(device)
            out = model(video=x if image_net is not None else static_clip(x, num_frames))
            for k, v in out.items():
                chunks.setdefault(k, []).append(v.float().cpu())
    finally:
        model.set_image_mode(previous)
        model.train(was_training)
    return {k: torch.cat(v) for k, v in chunks.items()}


def own_clip_ranks(query: torch.Tensor, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``i`` is a frame of clip ``i``: where does clip ``i`` rank among all clips for it?

    Args:
        query: ``(N, D)`` embeddings of the images (or anything standing for clip ``i``).
        clips: ``(N, D)`` the clips' video embeddings, same space.

    Returns ``(ranks (N,) int, 1 = found first; cosine (N,) with its own clip)``; ties are ranked pessimistically.
    """
    from .evaluate import positive_ranks

    if query.shape != clips.shape:
        raise ValueError(f"own_clip_ranks: query {tuple(query.shape)} and clips {tuple(clips.shape)} must match")
    sim = cosine_similarity(query, clips)
    eye = torch.eye(len(query), dtype=torch.bool)
    return positive_ranks(sim, eye), sim.diagonal().clone()


def search_embedding(bank: ClipBank, query: torch.Tensor, key: str = "z_v_va", k: int = 5) -> list[Hit]:
    """Clips of ``bank`` ranked by the cosine of their ``key`` embedding with ``query`` ``(D,)`` or ``(1, D)``."""
    if key not in bank.emb:
        raise ValueError(f"the bank has no {key!r}; it has {sorted(x for x in bank.emb if x.startswith('z_'))}")
    sim = cosine_similarity(query.reshape(1, -1), bank.emb[key])[0]
    return [bank.hit(i, s) for i, s in _top(sim, k)]


# --------------------------------------------------------------------------------------------------------------------
# The design tables (notebook 07)
# --------------------------------------------------------------------------------------------------------------------


def _stat(cell: str) -> dict[str, Any]:
    """``"27.2 ± 3.1"`` / ``"14.3"`` / ``"-"`` -> ``{"mean", "std", "n"}`` (n: 0 for "-", else unknown = None)."""
    cell = cell.strip()
    if cell in ("-", ""):
        return {"mean": None, "std": None, "n": 0}
    if "±" in cell:
        mean, std = (float(x) for x in cell.split("±"))
        return {"mean": mean, "std": std, "n": None}
    return {"mean": float(cell), "std": 0.0, "n": None}


def read_results_markdown(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The design tables stored in a results page (``docs/RESULTS.md``), as :func:`mmv_lite.experiments.build_table`
    returns them: ``{table name: {"name", "title", "columns", "paper_columns", "rows"}}``.

    A table is recognised by its bold title line (``**Table 1a analogue: ...**``, the line
    :func:`~mmv_lite.experiments.table_markdown` writes) followed by a markdown table whose header holds our columns,
    ``seeds``, then ``paper: <column>`` entries. Cells ``mean ± std`` become ``{"mean", "std", "n"}`` with ``n`` the
    row's seed count. Tables not found in the file are left out.
    """
    from .experiments import TABLES

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the results page is written from `python -m mmv_lite experiment`")
    lines = path.read_text().splitlines()
    by_title = {t.title: t for t in TABLES.values()}
    out: dict[str, dict[str, Any]] = {}
    for i, line in enumerate(lines):
        title = line.strip().strip("*").strip()
        if not (line.strip().startswith("**") and title in by_title):
            continue
        spec = by_title[title]
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("|"):
            j += 1
        table = []
        while j < len(lines) and lines[j].strip().startswith("|"):
            table.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
            j += 1
        if len(table) < 3:
            raise ValueError(f"{path}: the table under {title!r} has no rows")
        head = table[0]
        if "seeds" not in head:
            raise ValueError(f"{path}: the table under {title!r} has no 'seeds' column: {head}")
        s = head.index("seeds")
        keys = {c.title: c.key for c in spec.columns}
        unknown = [h for h in head[1:s] if h not in keys]
        if unknown:
            raise ValueError(f"{path}: columns {unknown} of {title!r} are not those of experiments.TABLES")
        paper_cols = [h.removeprefix("paper: ") for h in head[s + 1 :]]
        rows = []
        for r in table[2:]:
            n = int(r[s]) if r[s].isdigit() else 0
            cells = {}
            for h, c in zip(head[1:s], r[1:s]):
                st = _stat(c)
                st["n"] = n if st["mean"] is not None and n else (1 if st["mean"] is not None else 0)
                cells[keys[h]] = st
            paper = {p: (None if v == "-" else float(v)) for p, v in zip(paper_cols, r[s + 1 :])}
            rows.append({"label": r[0], "cells": cells, "paper": {k: v for k, v in paper.items() if v is not None}})
        out[spec.name] = {
            "name": spec.name,
            "title": title,
            "columns": [{"title": c.title, "key": c.key, "paper": c.paper} for c in spec.columns],
            "paper_columns": paper_cols,
            "rows": rows,
        }
    return out


def row_differences(table: dict[str, Any]) -> list[dict[str, Any]]:
    """For every metric of a design table: the best row, the runner-up, and whether the gap between them is larger
    than the seed-to-seed noise (the two rows' standard deviations added). Reference rows (chance, supervised) and
    rows without a value are left out.

    Returns one record per column: ``{"metric", "best", "runner-up", "gap", "noise", "verdict"}``; ``verdict`` is
    ``"larger than the noise"``, ``"within the noise"`` or ``"only one row"``.
    """
    out = []
    rows = [r for r in table["rows"] if r["label"] != "chance" and not r["label"].startswith("supervised")]
    for col in table["columns"]:
        vals = [(r["label"], r["cells"][col["key"]]) for r in rows if r["cells"][col["key"]]["mean"] is not None]
        vals.sort(key=lambda x: -x[1]["mean"])
        rec: dict[str, Any] = {"metric": col["title"]}
        if len(vals) < 2:
            rec.update({"best": vals[0][0] if vals else "-", "runner-up": "-", "gap": float("nan")})
            rec.update({"noise": float("nan"), "verdict": "only one row"})
        else:
            (a, sa), (b, sb) = vals[0], vals[1]
            gap, noise = sa["mean"] - sb["mean"], (sa["std"] or 0.0) + (sb["std"] or 0.0)
            verdict = "larger than the noise" if gap > noise else "within the noise"
            rec.update({"best": a, "runner-up": b, "gap": gap, "noise": noise, "verdict": verdict})
        out.append(rec)
    return out
