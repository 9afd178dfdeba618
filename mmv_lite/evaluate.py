"""Evaluation of an MMV network: zero-shot retrieval and linear probes on frozen features.

Retrieval (no training on the downstream task)
----------------------------------------------
Every pair of modalities is compared in the space the embedding graph gives it
(:func:`mmv_lite.config.space_for`): in FAC, video and audio meet in ``va`` and anything with
text meets in ``vat``; audio reaches ``vat`` through ``g_va_to_vat`` although audio and text were never
trained together, which is the paper's zero-shot audio->text retrieval.

    >>> emb = embed_dataset(model, ClipDataset(...))        # every f_* / z_* of every clip, plus labels
    >>> zero_shot_retrieval(emb, "fac")["t2v"]               # {'R@1': .., 'R@5': .., 'R@10': .., 'MedR': ..}

Metric conventions (shared by every number this module reports):

- ``R@k`` is the percentage (0-100) of queries whose best-ranked positive is among the top ``k`` candidates;
  ``MedR`` is the median (numpy convention: mean of the two middle values for an even count) of that rank, 1 = best.
- **Ties are broken pessimistically**: a positive tied with a negative is ranked after it,
  ``rank = 1 + #{negatives with similarity >= the best positive's}``. A collapsed model that maps every
  input to the same vector thus gets the worst rank, not the best one; an index-order rule would instead
  reward or punish it according to the dataset's ordering. Positives tied with each other do not count.
- Queries without any positive candidate are dropped (``num_queries`` says how many were kept).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .config import space_for

KS = (1, 5, 10)
METRIC_KEYS = ("R@1", "R@5", "R@10", "MedR")
# Retrieval directions: "<query><candidate>", v = video, a = audio, t = text.
DIRECTIONS = ("t2v", "v2t", "v2a", "a2v", "a2t", "t2a")

__all__ = [
    "DIRECTIONS",
    "METRIC_KEYS",
    "retrieval_metrics",
    "chance_metrics",
    "embed_dataset",
    "retrieval_tasks",
    "zero_shot_retrieval",
    "chance_levels",
    "cosine_similarity",
    "linear_probe",
]


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
    Returns ``{"R@1", "R@5", "R@10", "MedR", "num_queries", "num_candidates"}``.

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
        out["MedR"] = float(np.median(ranks.numpy()))
    out["num_queries"] = int(ranks.numel())
    out["num_candidates"] = int(sim.shape[1])
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
    out["num_candidates"] = int(n)
    return out


def cosine_similarity(q: Tensor, c: Tensor) -> Tensor:
    """(Nq, D), (Nc, D) -> (Nq, Nc) dot products of L2-normalised rows (embeddings leave the model unnormalised)."""
    q = torch.nn.functional.normalize(q.float(), dim=-1)
    c = torch.nn.functional.normalize(c.float(), dim=-1)
    return q @ c.T


# --------------------------------------------------------------------------------------------------
# Embedding a dataset
# --------------------------------------------------------------------------------------------------

# Per-item keys copied from the batch into the embedding dict (ground truth and bookkeeping, no model input).
_CARRIED_KEYS = (
    "has_audio",
    "has_text",
    "text_valid",
    "text_ids",
    "index",
    "start",
    "end",
    "action_label",
    "sound_label",
    "image_label",
)
_MODEL_INPUTS = ("video", "audio", "text_ids", "text_mask", "text_valid", "has_audio", "has_text")


def _forward(model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
    """Call ``model`` with the batch entries its ``forward`` accepts by name."""
    params = inspect.signature(model.forward).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: batch[k] for k in _MODEL_INPUTS if k in batch and (takes_any or k in params)}
    out = model(**kwargs)
    if not isinstance(out, dict):
        raise TypeError(f"{type(model).__name__}.forward must return a dict of embeddings; got {type(out).__name__}")
    return out


@torch.no_grad()
def embed_dataset(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    modalities: str = "vat",
) -> dict[str, Any]:
    """Run ``model`` in eval mode over every item of ``dataset`` and stack the outputs.

    Returns a dict with every ``f_*`` / ``z_*`` output of the model (N rows, on the CPU; text keeps its
    candidate axis, e.g. ``z_t_vat (N, K, D)``), the modality masks ``has_audio (N,)``, ``has_text (N,)``,
    ``text_valid (N, K)``, ``text_ids (N, K, L)`` (to tell identical narrations apart), the labels
    ``action_label`` / ``sound_label`` / ``image_label (N,)`` (-1 = unknown), ``index``, ``start``, ``end``
    and ``video_id`` (list of N str). ``modalities`` drops model inputs ("va" sends no text).
    The model's train/eval mode is restored afterwards.
    """
    device = torch.device(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = model.training
    model.eval()
    chunks: dict[str, list[Tensor]] = {}
    video_ids: list[str] = []
    try:
        for batch in loader:
            inputs = {
                k: (v.to(device) if isinstance(v, Tensor) else v)
                for k, v in batch.items()
                if k in _MODEL_INPUTS and _modality_of(k) in modalities
            }
            out = _forward(model, inputs)
            for k, v in out.items():
                if (k.startswith("f_") or k.startswith("z_")) and isinstance(v, Tensor):
                    chunks.setdefault(k, []).append(v.detach().float().cpu())
            for k in _CARRIED_KEYS:
                if k in batch:
                    v = batch[k]
                    chunks.setdefault(k, []).append(v if isinstance(v, Tensor) else torch.as_tensor(v))
            video_ids.extend(list(batch.get("video_id", [])))
    finally:
        model.train(was_training)
    emb: dict[str, Any] = {k: torch.cat(v) for k, v in chunks.items()}
    emb["video_id"] = video_ids
    return emb


def _modality_of(key: str) -> str:
    if key.startswith("text"):
        return "t"
    if key in ("audio", "has_audio"):
        return "a"
    if key == "has_text":
        return "t"
    return "v"


# --------------------------------------------------------------------------------------------------
# Zero-shot retrieval between modalities
# --------------------------------------------------------------------------------------------------


def _unique_texts(emb: dict[str, Any], space: str) -> tuple[Tensor, Tensor]:
    """Distinct narrations and which clips list them among their K candidates.

    Nearby clips share candidate narrations, so the same caption appears in several rows. A narration is
    identified by (video_id, token ids). Returns ``z (U, D)`` and ``owner (U, N) bool``: clip i lists text u.
    """
    z_t = emb[f"z_t_{space}"]  # (N, K, D)
    n, k = z_t.shape[:2]
    valid = emb.get("text_valid", torch.ones(n, k, dtype=torch.bool)).bool()
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


def retrieval_tasks(emb: dict[str, Any], graph: str) -> dict[str, tuple[Tensor, Tensor]]:
    """Similarity and positive matrices of every direction the graph and the embeddings allow.

    Positives: for v-a a clip's own audio (clips without audio are left out); for v-t the narrations a clip
    lists among its K candidates (each distinct narration is one item); for a-t the narrations of the same
    clip. A direction is skipped when the graph gives the pair no common space (``disjoint`` has no a-t)
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
        k1, k2 = f"z_{m1}_{space}", f"z_{m2}_{space}"
        if k1 not in emb or k2 not in emb:
            continue
        if pair == "va":
            keep = has_audio.nonzero().squeeze(1)
            z_v, z_a = emb[k1][keep], emb[k2][keep]
            sim = cosine_similarity(z_v, z_a)
            pos = torch.eye(len(keep), dtype=torch.bool)
            tasks["v2a"], tasks["a2v"] = (sim, pos), (sim.T, pos.T)
            continue
        z_u, owner = _unique_texts(emb, space)  # owner (U, N)
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


# --------------------------------------------------------------------------------------------------
# Linear probes on frozen features (the paper's UCF101 / HMDB51 / ESC-50 / PASCAL / ImageNet protocol)
# --------------------------------------------------------------------------------------------------

# C grid for the LinearSVC; the official UCF101 script uses C = 1e-3 on standardised features.
PROBE_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _group_scores(scores: np.ndarray, labels: np.ndarray, groups: Sequence | None) -> tuple[np.ndarray, np.ndarray]:
    """Average decision scores over the windows of each group (video): (n, C) -> (G, C), labels (G,).

    A group's label is its windows' majority label (they agree when groups are labelled segments).
    Without groups every window is its own group.
    """
    if groups is None:
        return scores, labels
    groups = list(groups)
    if len(groups) != len(labels):
        raise ValueError(f"groups has {len(groups)} entries but there are {len(labels)} features")
    order: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(g, []).append(i)
    g_scores = np.stack([scores[idx].mean(axis=0) for idx in order.values()])
    g_labels = np.array([np.bincount(labels[idx]).argmax() for idx in order.values()])
    return g_scores, g_labels


def _scores(clf: Any, x: np.ndarray) -> np.ndarray:
    s = clf.decision_function(x)
    return np.stack([-s, s], axis=1) if s.ndim == 1 else s  # binary problems give one column


def _mean_average_precision(scores: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """One-vs-rest average precision per class present in ``labels``, averaged (PASCAL VOC's mAP), in percent."""
    from sklearn.metrics import average_precision_score

    aps = [average_precision_score(labels == c, scores[:, j]) for j, c in enumerate(classes) if (labels == c).any()]
    return 100.0 * float(np.mean(aps)) if aps else float("nan")


def linear_probe(
    train_x: Any,
    train_y: Any,
    val_x: Any,
    val_y: Any,
    test_x: Any,
    test_y: Any,
    *,
    val_groups: Sequence | None = None,
    test_groups: Sequence | None = None,
    Cs: Sequence[float] = PROBE_CS,
    seed: int = 0,
) -> dict[str, Any]:
    """Linear classification of frozen features with the paper's protocol.

    train_x (N, D), train_y (N,) int; likewise val / test. Labels < 0 (unknown) are dropped.
    StandardScaler fitted on train, then one LinearSVC per C in ``Cs`` (one-vs-rest, squared hinge);
    the C with the best validation accuracy wins (the smallest C on ties: the most regularised).
    The winning classifier (trained on train only) scores the test set; when ``test_groups`` is given
    (one id per window, e.g. the video or segment it came from), decision scores are averaged over the
    windows of a group before the arg-max, as the official script averages 10 clips per video.

    Returns percentages: ``accuracy`` (test top-1), ``mAP`` (test, one-vs-rest average precision), ``val_accuracy``,
    plus ``C``, ``num_train``, ``num_test`` (groups), ``num_classes``, ``chance`` (test accuracy of always answering
    the majority class of train), ``chance_mAP`` (mean class frequency: a random scorer's mAP) and ``val_by_C``.
    """
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    def clean(x: Any, y: Any, groups: Sequence | None, name: str):
        x, y = _as_numpy(x).astype(np.float64), _as_numpy(y).astype(np.int64)
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"{name}: features must be (N, D) with one label each; got {x.shape} and {y.shape}")
        keep = y >= 0
        g = None if groups is None else [grp for grp, k in zip(groups, keep) if k]
        return x[keep], y[keep], g

    xtr, ytr, _ = clean(train_x, train_y, None, "train")
    xva, yva, gva = clean(val_x, val_y, val_groups, "val")
    xte, yte, gte = clean(test_x, test_y, test_groups, "test")
    for name, y in (("train", ytr), ("val", yva), ("test", yte)):
        if len(y) == 0:
            raise ValueError(f"linear_probe: the {name} split has no labelled samples")
    if len(np.unique(ytr)) < 2:
        raise ValueError(f"linear_probe: the train split has a single class ({np.unique(ytr)}); nothing to learn")

    scaler = StandardScaler().fit(xtr)
    xtr, xva, xte = scaler.transform(xtr), scaler.transform(xva), scaler.transform(xte)

    best: tuple[float, float, Any] | None = None
    val_by_c: dict[str, float] = {}
    for c in sorted(Cs):
        clf = LinearSVC(C=c, max_iter=20_000, random_state=seed).fit(xtr, ytr)
        s, y = _group_scores(_scores(clf, xva), yva, gva)
        acc = 100.0 * float((clf.classes_[s.argmax(1)] == y).mean())
        val_by_c[f"{c:g}"] = acc
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    assert best is not None
    val_acc, c, clf = best
    s, y = _group_scores(_scores(clf, xte), yte, gte)
    majority = np.bincount(ytr).argmax()
    return {
        "accuracy": 100.0 * float((clf.classes_[s.argmax(1)] == y).mean()),
        "mAP": _mean_average_precision(s, y, clf.classes_),
        "val_accuracy": val_acc,
        "C": c,
        "num_train": int(len(ytr)),
        "num_test": int(len(y)),
        "num_classes": int(len(np.unique(np.concatenate([ytr, y])))),
        "chance": 100.0 * float((y == majority).mean()),
        # a random scorer's average precision for a class is its frequency
        "chance_mAP": 100.0 * float(np.mean([(y == c).mean() for c in np.unique(y)])),
        "val_by_C": val_by_c,
    }


# Probe tasks: name -> (feature key in the embedding dict, label key, average over windows of a video?).
# Image tasks read single-frame features added by :func:`image_features` (``f_image_<mode>``), one frame per clip,
# scored per image as in PASCAL / ImageNet.
PROBE_TASKS: dict[str, tuple[str, str, bool]] = {
    "action": ("f_v", "action_label", True),  # UCF101 / HMDB51 analogue
    "sound": ("f_a", "sound_label", True),  # ESC-50 analogue
    "image_naive": ("f_image_naive", "image_label", False),  # PASCAL / ImageNet analogue, three modes
    "image_calibrated": ("f_image_calibrated", "image_label", False),
    "image_static": ("f_image_static", "image_label", False),
}


def probe_groups(emb: dict[str, Any], label_key: str) -> list[tuple[str, int]]:
    """The "video" of each window for score averaging: its video file and its label.

    A labelled segment of a long video plays the part of one UCF101 video (one action each); a sound clip is its
    own video. Windows of the same file with the same label are pooled.
    """
    labels = emb[label_key].tolist()
    vids = emb.get("video_id") or [str(i) for i in range(len(labels))]
    return [(v, int(y)) for v, y in zip(vids, labels)]


def probe_suite(
    train: dict[str, Any], val: dict[str, Any], test: dict[str, Any], tasks: Sequence[str] | None = None, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Run every :data:`PROBE_TASKS` entry whose features and labels exist in all three splits.

    ``train`` / ``val`` / ``test``: embedding dicts (:func:`embed_dataset`, plus :func:`image_features`).
    Clips without audio are left out of the sound probe. Returns ``{task: linear_probe(...) result}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for task in tasks or PROBE_TASKS:
        feat, label, grouped = PROBE_TASKS[task]
        if not all(feat in e and label in e for e in (train, val, test)):
            continue
        parts = []
        for e in (train, val, test):
            keep = torch.ones(len(e[label]), dtype=torch.bool)
            if feat == "f_a" and "has_audio" in e:
                keep &= e["has_audio"].bool()
            idx = keep.nonzero().squeeze(1)
            groups = [g for g, k in zip(probe_groups(e, label), keep.tolist()) if k] if grouped else None
            parts.append((e[feat][idx], e[label][idx], groups))
        labelled = [int((p[1] >= 0).sum()) for p in parts]
        if min(labelled) == 0 or len(torch.unique(parts[0][1][parts[0][1] >= 0])) < 2:
            continue  # this data has no such labels (e.g. no sound clips in the split)
        (xtr, ytr, _), (xva, yva, gva), (xte, yte, gte) = parts
        out[task] = linear_probe(xtr, ytr, xva, yva, xte, yte, val_groups=gva, test_groups=gte, seed=seed)
    return out
