"""Checks of the exercises on the embedding spaces: centring and the modality gap (04), Recall@K and the median
rank (06)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..embedding import centred, modality_gap
from ..retrieval import retrieval_metrics
from .core import as_tensor, call, fn_name, randn, register, to_numpy
from .solutions import centre_modalities, recall_and_median_rank


def _same_directions(a: np.ndarray, b: np.ndarray) -> bool:
    """Row by row the same direction (so that re-normalising after centring is accepted)."""
    if a.shape != b.shape:
        return False
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if not (np.all(na > 1e-9) and np.all(nb > 1e-9)):
        return np.allclose(a, b, atol=1e-5)
    return bool(np.all(np.sum(a * b, axis=1) / (na * nb) > 1 - 1e-5))


@register(
    "gap",
    "04_spaces_umap",
    "centring and the modality gap",
    centre_modalities,
    "it agrees with mmv_lite.embedding.centred and modality_gap",
)
def _check_gap(fn: Callable) -> str | None:

    gen = torch.Generator().manual_seed(5)
    for N, M, D in ((20, 14, 8), (9, 12, 5)):
        offset = 1.5 * randn(gen, D)
        z_a = (randn(gen, N, D) + offset) * (0.5 + 3 * torch.rand(N, 1, generator=gen))
        z_b = (randn(gen, M, D) - offset) * (0.5 + 3 * torch.rand(M, 1, generator=gen))
        out = call(fn, z_a.clone(), z_b.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            return f"{fn_name(fn)} should return three things, (c_a, c_b, gap); got {type(out).__name__}."
        c_a, c_b = to_numpy(out[0], "c_a"), to_numpy(out[1], "c_b")
        gap_t = as_tensor(out[2], "gap")
        if gap_t.numel() != 1:
            return f"gap should be one number; got shape {tuple(gap_t.shape)}."
        gap = gap_t.item()
        want_a, want_b, want_gap = centred(z_a), centred(z_b), modality_gap(z_a, z_b)
        u_a, u_b = F.normalize(z_a.double(), dim=-1).numpy(), F.normalize(z_b.double(), dim=-1).numpy()
        m_a, m_b = u_a.mean(0), u_b.mean(0)
        if c_a.shape != want_a.shape or c_b.shape != want_b.shape:
            if c_a.shape == want_b.shape and c_b.shape == want_a.shape:
                return "c_a and c_b are swapped: return (c_a, c_b, gap), in the order of the arguments."
            return (
                f"c_a and c_b should have the shapes of z_a and z_b, {want_a.shape} and {want_b.shape}; "
                f"got {c_a.shape} and {c_b.shape}."
            )
        for c, want, z, name in ((c_a, want_a, z_a, "c_a"), (c_b, want_b, z_b, "c_b")):
            if _same_directions(c, want):
                continue
            raw = z.double().numpy()
            joint = np.concatenate([u_a, u_b]).mean(0)
            u = F.normalize(z.double(), dim=-1).numpy()
            if _same_directions(c, raw - raw.mean(0)):
                return (
                    f"{name}: the rows were centred without being L2-normalised first. Normalise each row (the map, "
                    "the losses and retrieval compare directions), then subtract the modality's mean direction."
                )
            if _same_directions(c, u - joint):
                return (
                    f"{name}: you subtracted the mean of BOTH modalities together. That keeps the gap: each modality "
                    "must be centred by its own mean (its own centre)."
                )
            if _same_directions(c, u):
                return f"{name}: the rows are normalised but not centred: subtract the modality's mean direction."
            return f"{name} differs from mmv_lite.embedding.centred (unit rows minus their own mean)."
        if math.isclose(gap, want_gap, rel_tol=1e-4, abs_tol=1e-6):
            continue
        raw_gap = float(np.linalg.norm(z_a.double().numpy().mean(0) - z_b.double().numpy().mean(0)))
        cos = float(m_a @ m_b / (np.linalg.norm(m_a) * np.linalg.norm(m_b)))
        unit_gap = float(np.linalg.norm(m_a / np.linalg.norm(m_a) - m_b / np.linalg.norm(m_b)))
        if math.isclose(gap, raw_gap, rel_tol=1e-4):
            return "gap: the means were taken of the raw embeddings; take them of the L2-normalised rows."
        if math.isclose(gap, want_gap**2, rel_tol=1e-4):
            return "gap is the squared distance; take the square root (the Euclidean distance between the centres)."
        if math.isclose(gap, cos, rel_tol=1e-4) or math.isclose(gap, 1 - cos, rel_tol=1e-4):
            return (
                "gap is a cosine of the two centres; the gap is the DISTANCE between them, |centre_a - centre_b|: "
                "it also sees how far each centre is from the sphere (how tightly a modality is bunched)."
            )
        if math.isclose(gap, unit_gap, rel_tol=1e-4):
            return (
                "gap: the centres were normalised before the distance. Keep their length: a mean of unit vectors is "
                "shorter than 1, and how much shorter says how spread out the modality is."
            )
        return f"gap = {gap:.4f}, expected {want_gap:.4f} (mmv_lite.embedding.modality_gap)."
    return None


def _recall_cases(gen: torch.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    cases = []
    sim = torch.rand(9, 14, generator=gen)  # no ties, one positive per query, an odd count
    pos = torch.zeros(9, 14, dtype=torch.bool)
    pos[torch.arange(9), torch.randperm(14, generator=gen)[:9]] = True
    cases.append(("one positive per query, no ties", sim, pos))
    sim = (torch.rand(12, 15, generator=gen) * 4).round() / 4  # five levels: many ties
    pos = torch.zeros(12, 15, dtype=torch.bool)
    pos[torch.arange(12), torch.randint(0, 15, (12,), generator=gen)] = True
    cases.append(("tied similarities", sim, pos))
    sim = torch.rand(10, 16, generator=gen)
    pos = torch.rand(10, 16, generator=gen) < 0.2
    pos[0] = False  # a query without any positive
    pos[1, :3] = True
    cases.append(("several positives per query, one query without any", sim, pos))
    sim = torch.rand(6, 20, generator=gen)  # an even count of queries whose best positives rank 1, 3, 4, 8, 11, 15
    order = sim.argsort(dim=1, descending=True)
    pos = torch.zeros(6, 20, dtype=torch.bool)
    pos[torch.arange(6), order[torch.arange(6), torch.tensor([0, 2, 3, 7, 10, 14])]] = True
    cases.append(("an even number of queries", sim, pos))
    return cases


def _recall_variant(sim, positive, kind: str) -> dict[str, float]:
    """Recall@K and MedR with one thing changed (see the hints)."""
    sim, positive = sim.double(), positive.bool()
    best = sim.masked_fill(~positive, -math.inf).max(dim=1).values[:, None]
    keep = positive.any(dim=1)
    if kind == "optimistic":
        rank = 1 + ((sim > best) & ~positive).sum(dim=1)
    elif kind == "zero_based":
        rank = ((sim >= best) & ~positive).sum(dim=1)
    elif kind == "index_order":
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices
        hit = torch.gather(positive, 1, order)
        rank = hit.double().argmax(dim=1) + 1
    elif kind == "first_positive":
        first = positive.double().argmax(dim=1)
        score = sim.gather(1, first[:, None])
        rank = 1 + ((sim >= score) & ~positive).sum(dim=1)
    else:
        rank = 1 + ((sim >= best) & ~positive).sum(dim=1)
    if kind != "keep_empty":
        rank = rank[keep]
    rank = rank.double()
    lt = kind == "strict_k"
    out = {f"R@{k}": 100.0 * ((rank < k) if lt else (rank <= k)).double().mean().item() for k in (1, 5, 10)}
    if kind == "fraction":
        out = {k: v / 100 for k, v in out.items()}
    if kind == "lower_median":
        out["MedR"] = rank.median().item()
    elif kind == "mean_rank":
        out["MedR"] = rank.mean().item()
    else:
        out["MedR"] = float(np.median(rank.numpy()))
    return out


_RECALL_MISTAKES = (
    (
        "optimistic",
        "ties are broken optimistically: a negative with the SAME similarity as the best positive must be ranked "
        "before it (count negatives with sim >= the positive's, not >). Otherwise a collapsed model that gives every "
        "candidate the same score gets rank 1 for every query.",
    ),
    (
        "index_order",
        "ties are broken by position (the order argsort/sort leaves tied candidates in): a negative tied with the best "
        "positive must count as ranked before it, wherever it sits.",
    ),
    ("zero_based", "ranks start at 1: the best candidate has rank 1 (count the negatives above it, then add one)."),
    (
        "first_positive",
        "the rank of the FIRST positive was used; a query with several positives is ranked by its BEST positive "
        "(the highest similarity among them).",
    ),
    ("keep_empty", "queries without any positive must be left out; they were counted."),
    ("strict_k", "R@k counts ranks <= k (rank k is in the top k); you counted rank < k."),
    ("fraction", "R@k is a percentage (0-100): multiply the fraction by 100."),
    (
        "lower_median",
        "MedR: torch.median returns the lower of the two middle values for an even count; the median is their mean "
        "(np.median, or torch.quantile(rank, 0.5)).",
    ),
    ("mean_rank", "MedR is the median rank, not the mean."),
)


@register(
    "recall",
    "06_retrieval",
    "Recall@K and median rank",
    recall_and_median_rank,
    "it matches mmv_lite.retrieval.retrieval_metrics, ties and several positives included",
)
def _check_recall(fn: Callable) -> str | None:

    keys = ("R@1", "R@5", "R@10", "MedR")
    cases = _recall_cases(torch.Generator().manual_seed(7))
    got_all = []
    for i, (what, sim, pos) in enumerate(cases):
        out = call(fn, sim.clone(), pos.clone())
        if not isinstance(out, dict):
            return f"{fn_name(fn)} should return a dict with the keys {', '.join(keys)}; got {type(out).__name__}."
        missing = [k for k in keys if k not in out]
        if missing:
            return f"the result has no {', '.join(missing)}; expected the keys {', '.join(keys)}."
        got = {k: as_tensor(out[k], k).item() for k in keys}
        got_all.append(got)
        ref = retrieval_metrics(sim, pos)
        if all(math.isclose(got[k], ref[k], rel_tol=1e-6, abs_tol=1e-6) for k in keys):
            continue
        for kind, hint in _RECALL_MISTAKES:
            matches = True
            for g, (_, s, p) in zip(got_all, cases[: i + 1]):
                var = _recall_variant(s, p, kind)
                if not all(math.isclose(g[k], var[k], rel_tol=1e-6, abs_tol=1e-6) for k in keys):
                    matches = False
                    break
            if matches:
                return f"{hint}\n  (case: {what})"
        diff = ", ".join(f"{k} yours {got[k]:.2f} vs {ref[k]:.2f}" for k in keys if not math.isclose(got[k], ref[k]))
        return f"on a case with {what}: {diff} (mmv_lite.retrieval.retrieval_metrics)."
    return None
