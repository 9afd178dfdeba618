"""Zero-shot retrieval between modalities: ranking metrics, chance levels, and the retrieval tasks of a graph.

Every pair of modalities is compared in the space the embedding graph gives it
(:func:`mmv_lite.graphs.space_for`): in FAC, video and audio meet in ``va`` and anything with
text meets in ``vat``; audio reaches ``vat`` through ``g_va_to_vat`` although audio and text were never
trained together, which is the paper's zero-shot audio->text retrieval.

    >>> emb = embed_dataset(model, ClipDataset(...))        # mmv_lite.embedding: every f_* / z_* of every clip
    >>> zero_shot_retrieval(emb, "fac")["t2v"]               # {'R@1': .., 'R@5': .., 'R@10': .., 'MedR': ..}

Metric conventions (shared by every number this module reports):

- ``R@k`` is the percentage (0-100) of queries whose best-ranked positive is among the top ``k`` candidates;
  ``MedR`` is the median (numpy convention: mean of the two middle values for an even count) of that rank, 1 = best.
- **Ties are broken pessimistically**: a positive tied with a negative is ranked after it,
  ``rank = 1 + #{negatives with similarity >= the best positive's}``. A collapsed model that maps every
  input to the same vector thus gets the worst rank, not the best one; an index-order rule would instead
  reward or punish it according to the dataset's ordering. Positives tied with each other do not count.
- Queries without any positive candidate are dropped (``num_queries`` says how many were kept); ``gallery_size`` is
  the number of candidates each query is ranked against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .graphs import space_for, z_key
from .runtime import to_numpy

KS = (1, 5, 10)
METRIC_KEYS = ("R@1", "R@5", "R@10", "MedR")
# Retrieval directions: "<query><candidate>", v = video, a = audio, t = text; tables print them in this order.
DIRECTIONS = ("t2v", "v2t", "v2a", "a2v", "a2t", "t2a")


# --------------------------------------------------------------------------------------------------
# Ranking metrics
# --------------------------------------------------------------------------------------------------


def positive_ranks(sim: Tensor, positive: Tensor) -> Tensor:
    """1-based rank of each query's best-ranked positive, ties broken pessimistically.

    sim: (Nq, Nc) float, higher = more similar. positive: (Nq, Nc) bool.
    Returns (Nq,) int64; 0 for a query with no positive.
    """
    if sim.ndim != 2 or sim.shape != positive.shape:
        raise ValueError(
            "sim and positive must be 2-D and of equal shape (Nq, Nc); "
            f"got {tuple(sim.shape)} and {tuple(positive.shape)}"
        )
    if positive.dtype != torch.bool:
        raise ValueError(f"positive must be a bool tensor; got {positive.dtype}")
    sim = sim.detach().float()
    if torch.isnan(sim).any():
        raise ValueError("sim contains NaN: the embeddings are not finite")
    best_pos = sim.masked_fill(~positive, -math.inf).amax(dim=1, keepdim=True)  # (Nq, 1)
    beaten_by = ((sim >= best_pos) & ~positive).sum(dim=1)  # negatives at or above the best positive
    has_pos = positive.any(dim=1)
    return torch.where(has_pos, beaten_by + 1, torch.zeros_like(beaten_by))


def retrieval_metrics(sim: Tensor, positive: Tensor, ks: Sequence[int] = KS) -> dict[str, float]:
    """R@k (percent) and median rank of the best-ranked positive of each query.

    sim: (Nq, Nc) float similarities; positive: (Nq, Nc) bool, True where candidate c is a right answer for query q.
    Ties are broken pessimistically (see the module docstring). Queries without a positive are dropped.
    Returns ``{"R@1", "R@5", "R@10", "MedR", "num_queries", "gallery_size"}``.

    >>> sim = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    >>> pos = torch.tensor([[True, False], [False, True]])
    >>> retrieval_metrics(sim, pos)["R@1"], retrieval_metrics(sim, pos)["MedR"]
    (50.0, 1.5)
    """
    ranks = positive_ranks(sim, positive)
    ranks = ranks[ranks > 0].double()
    out: dict[str, float] = {}
    if ranks.numel() == 0:
        out.update({f"R@{k}": float("nan") for k in ks})
        out["MedR"] = float("nan")
    else:
        for k in ks:
            out[f"R@{k}"] = 100.0 * (ranks <= k).double().mean().item()
        out["MedR"] = float(np.median(to_numpy(ranks)))
    out["num_queries"] = int(ranks.numel())
    out["gallery_size"] = int(sim.shape[1])
    return out


def _min_rank_cdf(n: int, p: int, r: int) -> float:
    """P(best of p positives is within the top r of n candidates) under a uniformly random order."""
    if r >= n - p + 1:
        return 1.0
    # P(no positive in top r) = C(n - p, r) / C(n, r), computed in logs to avoid huge integers.
    log_none = math.lgamma(n - p + 1) - math.lgamma(n - p - r + 1) - math.lgamma(n + 1) + math.lgamma(n - r + 1)
    return 1.0 - math.exp(log_none)


def chance_metrics(positive: Tensor, ks: Sequence[int] = KS) -> dict[str, float]:
    """Expected :func:`retrieval_metrics` of a ranker that orders candidates uniformly at random.

    positive: (Nq, Nc) bool. R@k is exact (hypergeometric: a query with P positives among N candidates
    has its best positive in the top k with probability 1 - C(N-P, k) / C(N, k)); MedR is the median over
    queries of each query's median best-positive rank (the mean of the two middle ranks when the
    distribution splits exactly in half, as numpy's median does: 10.5 for one positive among 20).
    """
    if positive.ndim != 2 or positive.dtype != torch.bool:
        raise ValueError(f"positive must be a 2-D bool tensor; got {tuple(positive.shape)} {positive.dtype}")
    n = positive.shape[1]
    counts = [int(c) for c in positive.sum(dim=1).tolist() if c > 0]
    out: dict[str, float] = {}
    if not counts:
        out.update({f"R@{k}": float("nan") for k in ks})
        out["MedR"] = float("nan")
    else:
        for k in ks:
            out[f"R@{k}"] = 100.0 * float(np.mean([_min_rank_cdf(n, p, k) for p in counts]))
        medians = []
        for p in counts:
            r = 1
            while _min_rank_cdf(n, p, r) < 0.5 - 1e-9:
                r += 1
            # CDF exactly 0.5 at r: the median lies between r and r + 1 (numpy's convention for an even count).
            medians.append(r + 0.5 if abs(_min_rank_cdf(n, p, r) - 0.5) < 1e-9 else r)
        out["MedR"] = float(np.median(medians))
    out["num_queries"] = len(counts)
    out["gallery_size"] = int(n)
    return out


def cosine_similarity(q: Tensor, c: Tensor) -> Tensor:
    """(Nq, D), (Nc, D) -> (Nq, Nc) dot products of L2-normalised rows (embeddings leave the model unnormalised)."""
    q = torch.nn.functional.normalize(q.float(), dim=-1)
    c = torch.nn.functional.normalize(c.float(), dim=-1)
    return q @ c.T


# --------------------------------------------------------------------------------------------------
# Zero-shot retrieval between modalities
# --------------------------------------------------------------------------------------------------


def _unique_texts(emb: dict[str, Any], space: str, candidates: int = 1) -> tuple[Tensor, Tensor]:
    """Distinct narrations and the clips they belong to.

    A clip's narration is its nearest caption in time (candidate 0; ``candidates`` > 1 also counts the next ones),
    as YouCook2 and MSR-VTT pair each clip with its own caption. Nearby clips can share a caption, so the same
    narration can appear in several rows: a narration is identified by (video_id, token ids).
    Returns ``z (U, D)`` and ``owner (U, N) bool``: text u belongs to clip i.
    """
    z_t = emb[z_key("t", space)]  # (N, K, D)
    n = z_t.shape[0]
    k = min(candidates, z_t.shape[1])
    valid = emb.get("text_valid", torch.ones(n, z_t.shape[1], dtype=torch.bool)).bool()[:, :k]
    if "has_text" in emb:
        valid = valid & emb["has_text"].bool()[:, None]
    ids = emb.get("text_ids")
    vids = emb.get("video_id") or [str(i) for i in range(n)]
    index: dict[tuple, int] = {}
    rows: list[Tensor] = []
    owners: list[list[int]] = []
    for i in range(n):
        for j in range(k):
            if not valid[i, j]:
                continue
            # Without token ids every candidate counts as its own narration.
            key = (vids[i], tuple(ids[i, j].tolist())) if ids is not None else (i, j)
            if key not in index:
                index[key] = len(rows)
                rows.append(z_t[i, j])
                owners.append([])
            owners[index[key]].append(i)
    owner = torch.zeros(len(rows), n, dtype=torch.bool)
    for u, clips in enumerate(owners):
        owner[u, clips] = True
    z = torch.stack(rows) if rows else z_t.new_zeros(0, z_t.shape[-1])
    return z, owner


def retrieval_tasks(emb: dict[str, Any], graph: str, candidates: int = 1) -> dict[str, tuple[Tensor, Tensor]]:
    """Similarity and positive matrices of every direction the graph and the embeddings allow.

    Positives: for v-a a clip's own audio (clips without audio are left out); for v-t a clip's own narration,
    the caption nearest in time (each distinct narration is one item; training's other K - 1 candidates are not
    counted, as they mostly describe neighbouring moments); for a-t the narration of the same clip.
    ``candidates`` > 1 also counts a clip's next-nearest captions as its narrations.
    A direction is skipped when the graph gives the pair no common space (``disjoint`` has no a-t)
    or when the embedding dict lacks a modality (a VA model has no text).
    Returns ``{direction: (sim (Nq, Nc), positive (Nq, Nc) bool)}``.
    """
    n = len(emb["video_id"]) if emb.get("video_id") else next(v.shape[0] for v in emb.values() if isinstance(v, Tensor))
    has_audio = emb.get("has_audio", torch.ones(n, dtype=torch.bool)).bool()
    tasks: dict[str, tuple[Tensor, Tensor]] = {}
    for pair in ("va", "vt", "at"):
        m1, m2 = pair
        try:
            space = space_for(graph, m1, m2)
        except ValueError:
            continue
        k1, k2 = z_key(m1, space), z_key(m2, space)
        if k1 not in emb or k2 not in emb:
            continue
        if pair == "va":
            keep = has_audio.nonzero().squeeze(1)
            z_v, z_a = emb[k1][keep], emb[k2][keep]
            sim = cosine_similarity(z_v, z_a)
            pos = torch.eye(len(keep), dtype=torch.bool)
            tasks["v2a"], tasks["a2v"] = (sim, pos), (sim.T, pos.T)
            continue
        z_u, owner = _unique_texts(emb, space, candidates)  # owner (U, N)
        if z_u.shape[0] == 0:
            continue
        if pair == "vt":
            keep = owner.any(dim=0).nonzero().squeeze(1)  # clips with at least one narration
            sim = cosine_similarity(z_u, emb[k1][keep])
            pos = owner[:, keep]
            tasks["t2v"], tasks["v2t"] = (sim, pos), (sim.T, pos.T)
        else:  # "at"
            keep = (owner.any(dim=0) & has_audio).nonzero().squeeze(1)
            sim = cosine_similarity(emb[k1][keep], z_u)
            pos = owner[:, keep].T
            tasks["a2t"], tasks["t2a"] = (sim, pos), (sim.T, pos.T)
    return {d: tasks[d] for d in DIRECTIONS if d in tasks}


def zero_shot_retrieval(emb: dict[str, Any], graph: str, directions: Iterable[str] = DIRECTIONS) -> dict[str, dict]:
    """:func:`retrieval_metrics` for each direction of :func:`retrieval_tasks` (those in ``directions``)."""
    wanted = set(directions)
    return {d: retrieval_metrics(sim, pos) for d, (sim, pos) in retrieval_tasks(emb, graph).items() if d in wanted}


def chance_levels(emb: dict[str, Any], graph: str, directions: Iterable[str] = DIRECTIONS) -> dict[str, dict]:
    """The chance level of every entry of :func:`zero_shot_retrieval` (same keys), from :func:`chance_metrics`."""
    wanted = set(directions)
    return {d: chance_metrics(pos) for d, (_, pos) in retrieval_tasks(emb, graph).items() if d in wanted}


def format_retrieval(
    metrics: dict[str, dict], chance: dict[str, dict] | None = None, title: str = "", gallery: bool = False
) -> str:
    """A text table of zero-shot retrieval: one row per direction, chance in brackets; ``gallery``: its size too."""
    extra = ("queries",) + (("gallery",) if gallery else ())
    lines = [title] if title else []
    lines.append(f"{'':<6}" + "".join(f"{c:>16}" for c in METRIC_KEYS) + "".join(f"{c:>9}" for c in extra))
    for d in DIRECTIONS:
        if d not in metrics:
            continue
        row = f"{d:<6}"
        for c in METRIC_KEYS:
            ch = (chance or {}).get(d, {}).get(c)
            cell = f"{metrics[d][c]:.1f}" + (f" ({ch:.1f})" if ch is not None else "")
            row += f"{cell:>16}"
        counts = [metrics[d].get("num_queries", "")] + ([metrics[d].get("gallery_size", "")] if gallery else [])
        lines.append(row + "".join(f"{n:>9}" for n in counts))
    if chance:
        lines.append("(in brackets: chance level of a random ranking)")
    return "\n".join(lines)
