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
from pathlib import Path
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
    "attach_factors",
    "factor_probes",
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
    keep_frames: bool = False,
) -> dict[str, Any]:
    """Run ``model`` in eval mode over every item of ``dataset`` and stack the outputs.

    Returns a dict with every ``f_*`` / ``z_*`` output of the model (N rows, on the CPU; text keeps its
    candidate axis, e.g. ``z_t_vat (N, K, D)``), the modality masks ``has_audio (N,)``, ``has_text (N,)``,
    ``text_valid (N, K)``, ``text_ids (N, K, L)`` (to tell identical narrations apart), the labels
    ``action_label`` / ``sound_label`` / ``image_label (N,)`` (-1 = unknown), ``index``, ``start``, ``end``
    and ``video_id`` (list of N str). ``modalities`` drops model inputs ("va" sends no text).
    ``keep_frames`` also keeps each clip's middle frame, ``frames (N, 3, H, W)``, for the image probes.
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
            if keep_frames:
                video = batch["video"]  # (B, 3, T, H, W)
                chunks.setdefault("frames", []).append(video[:, :, video.shape[2] // 2].float())
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


def _unique_texts(emb: dict[str, Any], space: str, candidates: int = 1) -> tuple[Tensor, Tensor]:
    """Distinct narrations and the clips they belong to.

    A clip's narration is its nearest caption in time (candidate 0; ``candidates`` > 1 also counts the next ones),
    as YouCook2 and MSR-VTT pair each clip with its own caption. Nearby clips can share a caption, so the same
    narration can appear in several rows: a narration is identified by (video_id, token ids).
    Returns ``z (U, D)`` and ``owner (U, N) bool``: text u belongs to clip i.
    """
    z_t = emb[f"z_t_{space}"]  # (N, K, D)
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


def probe_groups(emb: dict[str, Any], label_key: str) -> list[Any]:
    """The "video" of each window, whose windows' scores are averaged (the official script's 10 clips per video).

    ``emb["group"]`` when present (:func:`window_groups`: one labelled segment of a long video plays the part of
    one UCF101 video, a sound clip is its own video); otherwise the video file and the label, so windows of the same
    file with the same label are pooled.
    """
    if "group" in emb:
        return list(emb["group"])
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


# --------------------------------------------------------------------------------------------------
# Factor probes: which ground-truth factors of the world does a feature encode?
# --------------------------------------------------------------------------------------------------

# Features read by default: the video and audio backbones and a clip's nearest narration in each text space.
FACTOR_FEATURES = ("f_v", "f_a", "z_t_vat", "z_t_vt")


def attach_factors(emb: dict[str, Any], dataset: torch.utils.data.Dataset) -> dict[str, Any]:
    """Add ``emb["factors"] = {name: [str per row]}`` from ``dataset.factors`` (a ClipDataset or a Subset of one).

    Rows are matched through ``emb["index"]`` (the window index :func:`embed_dataset` carries), so any order or
    subset works. Returns ``emb``. Raises ``ValueError`` for a dataset without ground-truth factors.
    """
    base = dataset
    while isinstance(base, torch.utils.data.Subset):
        base = base.dataset
    table = getattr(base, "factors", None)
    if not isinstance(table, dict):
        raise ValueError(
            f"attach_factors: {type(base).__name__} has no .factors table (a ClipDataset of a folder with "
            "metadata.json has one)"
        )
    index = emb["index"].tolist()
    emb["factors"] = {name: [values[i] for i in index] for name, values in table.items()}
    return emb


def _factor_rows(emb: dict[str, Any], key: str) -> tuple[Tensor, Tensor] | None:
    """The feature rows of ``key`` and which rows have it: text keys (N, K, D) give the nearest narration."""
    x = emb.get(key)
    if not isinstance(x, Tensor):
        return None
    n = x.shape[0]
    keep = torch.ones(n, dtype=torch.bool)
    if x.dim() == 3:  # text: candidate 0 is the caption nearest in time
        x = x[:, 0]
        if "text_valid" in emb:
            keep &= emb["text_valid"][:, 0].bool()
        if "has_text" in emb:
            keep &= emb["has_text"].bool()
    elif key.startswith("f_a") or key.startswith("z_a"):
        if "has_audio" in emb:
            keep &= emb["has_audio"].bool()
    return x, keep


def factor_probes(
    train: dict[str, Any],
    val: dict[str, Any],
    test: dict[str, Any],
    features: Sequence[str] = FACTOR_FEATURES,
    factors: Sequence[str] | None = None,
    seed: int = 0,
    Cs: Sequence[float] = PROBE_CS,
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`linear_probe` of each feature for each ground-truth factor (kind, colour, motion, background, ...).

    The embedding dicts need ``factors`` (:func:`attach_factors`). A probe tells what a frozen feature makes
    linearly readable: a video feature that reads the background but not the object's kind or motion has learnt
    the scene, not the object. Clips without the modality (no audio, no narration) and unknown values ("") are left
    out; a factor with fewer than two values in train is skipped, and so is a feature missing from any split.
    ``Cs``: the C grid of every probe (one value skips the choice on val, for a quick look).
    Returns ``{feature: {factor: linear_probe result}}`` (percentages; ``chance`` is the train-majority answer).
    """
    for name, e in (("train", train), ("val", val), ("test", test)):
        if "factors" not in e:
            raise ValueError(f"factor_probes: the {name} embeddings have no 'factors'; call attach_factors first")
    names = list(factors) if factors is not None else list(train["factors"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in features:
        rows = [_factor_rows(e, key) for e in (train, val, test)]
        if any(r is None for r in rows):
            continue
        for f in names:
            values = sorted({v for e in (train, val, test) for v in e["factors"].get(f, []) if v})
            code = {v: i for i, v in enumerate(values)}
            parts = []
            for e, (x, keep) in zip((train, val, test), rows):
                raw = e["factors"].get(f, [""] * len(keep))
                y = torch.tensor([code.get(v, -1) if k else -1 for v, k in zip(raw, keep.tolist())])
                parts.append((x, y))
            ytr = parts[0][1]
            if len(torch.unique(ytr[ytr >= 0])) < 2 or any(int((y >= 0).sum()) == 0 for _, y in parts[1:]):
                continue
            (xtr, ytr), (xva, yva), (xte, yte) = parts
            res = linear_probe(xtr, ytr, xva, yva, xte, yte, Cs=Cs, seed=seed)
            res["classes"] = values
            out.setdefault(key, {})[f] = res
    return out


def window_groups(dataset: torch.utils.data.Dataset) -> tuple[list[Any], Tensor] | None:
    """For a :class:`~mmv_lite.data.clips.ClipDataset` (or a ``Subset`` of one): each item's ground-truth segment
    ``(video_id, segment)`` and whether it is its segment's centre window (the one retrieval uses).

    Returns ``(groups (N,), centre (N,) bool)``, or None for a dataset without a window list.
    """
    indices: list[int] | None = None
    ds = dataset
    if isinstance(ds, torch.utils.data.Subset):
        indices, ds = list(ds.indices), ds.dataset
    windows = getattr(ds, "windows", None)
    if windows is None:
        return None
    indices = list(range(len(windows))) if indices is None else indices
    keys = []
    for i in indices:
        w = windows[i]
        keys.append((w.video_id, w.segment) if w.segment >= 0 else (w.video_id, f"{w.start:.3f}"))
    members: dict[Any, list[int]] = {}
    for row, key in enumerate(keys):
        members.setdefault(key, []).append(row)
    centre = torch.zeros(len(keys), dtype=torch.bool)
    for rows in members.values():
        centre[rows[len(rows) // 2]] = True
    return keys, centre


def subset_embeddings(emb: dict[str, Any], keep: Tensor) -> dict[str, Any]:
    """The rows of an embedding dict where ``keep (N,) bool`` is True (tensors and per-item lists alike)."""
    idx = keep.nonzero().squeeze(1)
    out: dict[str, Any] = {}
    for k, v in emb.items():
        if isinstance(v, Tensor) and v.shape[:1] == keep.shape:
            out[k] = v[idx]
        elif isinstance(v, list) and len(v) == len(keep):
            out[k] = [v[i] for i in idx.tolist()]
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------------------------------
# Images through the deflated network (the paper's Table 3)
# --------------------------------------------------------------------------------------------------------------------

IMAGE_MODES = ("naive", "calibrated", "static")


@torch.no_grad()
def _batched(net: torch.nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    return torch.cat([net(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def image_features(
    model: torch.nn.Module,
    splits: dict[str, dict[str, Any]],
    calibrate_on: str = "train",
    calib_steps: int = 100,
    calib_images: int = 128,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Add single-frame features ``f_image_naive``, ``f_image_calibrated``, ``f_image_static`` to every split.

    ``splits``: ``{name: embedding dict with "frames" (N, 3, H, W)}`` (:func:`embed_dataset` with ``keep_frames``),
    modified in place. The three modes of the paper's Table 3:

    - ``naive``: :func:`~mmv_lite.models.deflation.deflate` of the video backbone, on the image;
    - ``calibrated``: the same, with BatchNorm gamma/beta learned by
      :func:`~mmv_lite.models.deflation.calibrate_deflated_bn` for ``calib_steps`` steps on at most ``calib_images``
      evenly spaced frames of the ``calibrate_on`` split (never the scored split);
    - ``static``: the video backbone on the image repeated as a static clip of ``data.num_frames`` frames.

    Returns the calibration report (``{"before": L1, "after": L1, ...}`` on the calibration frames, no history).
    """
    from .models.deflation import calibrate_deflated_bn, deflate, static_clip

    device = torch.device(device)
    video_backbone = model.video_backbone
    num_frames = model.cfg.data.num_frames
    was_training = video_backbone.training
    video_backbone.eval()
    try:
        naive = deflate(video_backbone).eval()
        calibrated = deflate(video_backbone).eval()
        frames = splits[calibrate_on]["frames"]
        if len(frames) > calib_images:
            frames = frames[np.linspace(0, len(frames) - 1, calib_images).round().astype(int)]
        report = calibrate_deflated_bn(
            calibrated,
            video_backbone,
            frames.to(device),
            steps=calib_steps,
            num_frames=num_frames,
            batch_size=min(16, batch_size),
            seed=seed,
        )
        calibrated.eval()
        for emb in splits.values():
            frames = emb["frames"]
            emb["f_image_naive"] = _batched(naive, frames, batch_size, device)
            emb["f_image_calibrated"] = _batched(calibrated, frames, batch_size, device)
            emb["f_image_static"] = _batched(
                lambda x: video_backbone(static_clip(x, num_frames)), frames, batch_size, device
            )
    finally:
        video_backbone.train(was_training)
    return {k: v for k, v in report.items() if k != "history"}


# --------------------------------------------------------------------------------------------------------------------
# The whole evaluation of a model
# --------------------------------------------------------------------------------------------------------------------


def evaluate_model(
    model: torch.nn.Module,
    datasets: dict[str, torch.utils.data.Dataset],
    *,
    split: str = "test",
    probes: bool = True,
    images: bool = True,
    retrieval: bool = True,
    calib_steps: int = 100,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    modalities: str = "vat",
    seed: int = 0,
    factors: bool = False,
) -> dict[str, Any]:
    """Zero-shot retrieval on ``datasets[split]``; linear probes fitted on "train", tuned on "val", scored on ``split``.

    ``datasets``: ``{"train", "val", split}`` of evaluation-mode datasets (only ``split`` without probes). With
    several windows per segment (``ClipDataset(windows_per_segment=W)``) the action and sound probes average their
    scores over a segment's windows, while retrieval and the image probes use each segment's centre window only
    (one clip per segment, one frame per image). ``modalities``: the inputs given to the model ("va" for a model
    that never saw text).

    Returns ``{"graph", "split", "retrieval": {direction: metrics}, "chance": {direction: chance metrics},
    "probes": {task: linear_probe result}, "deflation": calibration report, "num_clips": {split: N},
    "seconds": {stage: s}}``; with ``factors`` (and ``probes``) also ``"factors"``: :func:`factor_probes` of the
    backbone features and the narrations on each segment's centre window.
    """
    import time

    graph = model.cfg.model.graph
    needed = list(dict.fromkeys([split] + (["train", "val"] if probes else [])))
    missing = [s for s in needed if s not in datasets]
    if missing:
        raise ValueError(f"evaluate_model: datasets lacks the split(s) {missing}; it has {sorted(datasets)}")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    embs, centres = {}, {}
    for s in needed:
        emb = embed_dataset(
            model, datasets[s], batch_size, device, modalities=modalities, keep_frames=probes and images
        )
        info = window_groups(datasets[s])
        if info is not None:
            emb["group"] = info[0]
        centre = info[1] if info is not None else torch.ones(len(emb["video_id"]), dtype=torch.bool)
        embs[s], centres[s] = emb, subset_embeddings(emb, centre)
    times["embed"] = time.perf_counter() - t0
    result: dict[str, Any] = {
        "graph": graph,
        "split": split,
        "num_clips": {s: len(e["video_id"]) for s, e in embs.items()},
    }
    if retrieval:
        result["retrieval"] = zero_shot_retrieval(centres[split], graph)
        result["chance"] = chance_levels(centres[split], graph)
    if probes:
        t0 = time.perf_counter()
        result["probes"] = probe_suite(embs["train"], embs["val"], embs[split], tasks=("action", "sound"), seed=seed)
        times["probes"] = time.perf_counter() - t0
        if images:
            t0 = time.perf_counter()
            result["deflation"] = image_features(
                model, centres, calib_steps=calib_steps, batch_size=batch_size, device=device, seed=seed
            )
            image_tasks = [f"image_{m}" for m in IMAGE_MODES]
            result["probes"].update(probe_suite(centres["train"], centres["val"], centres[split], image_tasks, seed))
            times["images"] = time.perf_counter() - t0
        if factors:
            t0 = time.perf_counter()
            for s in needed:
                attach_factors(centres[s], datasets[s])
            result["factors"] = factor_probes(centres["train"], centres["val"], centres[split], seed=seed)
            times["factors"] = time.perf_counter() - t0
    result["seconds"] = times
    return result


def format_report(result: dict[str, Any]) -> str:
    """:func:`evaluate_model`'s result as plain-text tables (retrieval with chance in brackets, then the probes)."""
    lines: list[str] = []
    if result.get("retrieval"):
        lines.append(f"zero-shot retrieval on {result['split']} ({result['graph']} graph; %, chance in brackets)")
        lines.append(f"{'':<6}" + "".join(f"{c:>16}" for c in METRIC_KEYS) + f"{'queries':>9}{'candidates':>12}")
        for d, m in result["retrieval"].items():
            ch = result.get("chance", {}).get(d, {})
            cells = "".join(f"{m[c]:.1f} ({ch.get(c, math.nan):.1f})".rjust(16) for c in METRIC_KEYS)
            lines.append(f"{d:<6}{cells}{m['num_queries']:>9}{m['num_candidates']:>12}")
        lines.append("")
    if result.get("probes"):
        lines.append(f"linear probes (StandardScaler + LinearSVC, C on val; scored on {result['split']})")
        head = ("task", "acc %", "chance %", "mAP %", "chance mAP", "C", "train", "test", "classes")
        lines.append(f"{head[0]:<18}" + "".join(f"{h:>11}" for h in head[1:]))
        for task, p in result["probes"].items():
            vals = (p["accuracy"], p["chance"], p["mAP"], p["chance_mAP"])
            lines.append(
                f"{task:<18}" + "".join(f"{v:>11.1f}" for v in vals) + f"{p['C']:>11g}{p['num_train']:>11}"
                f"{p['num_test']:>11}{p['num_classes']:>11}"
            )
        if result.get("deflation"):
            d = result["deflation"]
            lines.append(
                f"deflation L1 gap to the video network on static clips (train frames): "
                f"{d['before']:.4f} naive -> {d['after']:.4f} calibrated"
            )
    if result.get("factors"):
        lines.append("")
        lines.append(format_factor_table(result["factors"], "factor probes (test accuracy %, chance in brackets)"))
    return "\n".join(lines)


def format_factor_table(probes: dict[str, dict[str, dict[str, Any]]], title: str = "") -> str:
    """:func:`factor_probes`' result as a text table: one row per feature, one column per factor."""
    names = list(dict.fromkeys(f for per in probes.values() for f in per))
    lines = [title] if title else []
    lines.append(f"{'feature':<10}" + "".join(f"{n:>14}" for n in names))
    for key, per in probes.items():
        cells = "".join(
            (f"{per[n]['accuracy']:.0f} ({per[n]['chance']:.0f})" if n in per else "-").rjust(14) for n in names
        )
        lines.append(f"{key:<10}{cells}")
    return "\n".join(lines)


def load_eval_datasets(
    data_dir: str | Path,
    cfg: Any,
    splits: Sequence[str],
    vocab: Sequence[str] | None = None,
    word_matrix: Tensor | None = None,
    windows: dict[str, int] | None = None,
    max_segments: int | None = None,
) -> dict[str, torch.utils.data.Dataset]:
    """Evaluation-mode :class:`~mmv_lite.data.clips.ClipDataset` of each split of ``data_dir``.

    Narrations are tokenised with the model's own vocabulary when ``vocab`` and ``word_matrix`` are given (a
    checkpoint's), else with ``data_dir/word_vectors.bin``. ``windows``: windows per ground-truth segment of each
    split (default 1; the scored split usually gets several, as the official protocol averages several clips per
    test video). ``max_segments`` keeps that many evenly spaced segments per split (all their windows), for quick runs.
    """
    from .data.clips import ClipDataset
    from .data.text import WordVectors

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data {str(data_dir)!r} is not a folder of clips (videos/, captions.json, ...)")
    if vocab and word_matrix is not None and len(vocab) == word_matrix.shape[0]:
        wv = WordVectors(list(vocab), word_matrix.detach().cpu().numpy())
    else:
        wv = WordVectors.load(data_dir / "word_vectors.bin")
    out: dict[str, torch.utils.data.Dataset] = {}
    for s in splits:
        w = (windows or {}).get(s, 1)
        ds: torch.utils.data.Dataset = ClipDataset(
            data_dir, s, cfg.data, train=False, word_vectors=wv, windows_per_segment=w
        )
        info = window_groups(ds)
        if max_segments is not None and info is not None:
            segments = list(dict.fromkeys(info[0]))
            if len(segments) > max_segments:
                picked = {segments[i] for i in np.linspace(0, len(segments) - 1, max_segments).round().astype(int)}
                ds = torch.utils.data.Subset(ds, [i for i, g in enumerate(info[0]) if g in picked])
        out[s] = ds
    return out


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmv_lite evaluate --checkpoint PATH --data DIR [--split test] [--json OUT]``."""
    import argparse
    import json
    import time

    ap = argparse.ArgumentParser(
        prog="python -m mmv_lite evaluate",
        description="Zero-shot retrieval and linear probes (video actions, sounds, images through the deflated "
        "network) of a trained mmv_lite checkpoint.",
    )
    ap.add_argument("--checkpoint", required=True, help="an mmv_lite checkpoint (.pt) written by the train command")
    ap.add_argument("--data", default="data_samples", help="folder of clips (default: data_samples)")
    ap.add_argument("--split", default="test", help="split to score (default: test); probes train on train, C on val")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    ap.add_argument("--no-probes", action="store_true", help="retrieval only")
    ap.add_argument("--no-images", action="store_true", help="skip the deflated-network image probes")
    ap.add_argument("--calib-steps", type=int, default=100, help="BatchNorm calibration steps (default 100)")
    ap.add_argument(
        "--windows", type=int, default=3, help="windows per segment of the scored split, averaged by the probes"
    )
    ap.add_argument("--max-segments", type=int, default=None, help="evenly spaced segments per split (quick look)")
    ap.add_argument(
        "--factors",
        action="store_true",
        help="also probe which ground-truth factors (kind, colour, motion, background, ...) each feature encodes",
    )
    args = ap.parse_args(list(argv) if argv is not None else None)

    from .checkpoints import load_model

    t0 = time.perf_counter()
    model, cfg, vocab = load_model(args.checkpoint, device=args.device)
    splits = [args.split] + ([] if args.no_probes else ["train", "val"])
    datasets = load_eval_datasets(
        args.data,
        cfg,
        list(dict.fromkeys(splits)),
        vocab,
        model.text_backbone.word_vectors,
        windows={args.split: args.windows},
        max_segments=args.max_segments,
    )
    result = evaluate_model(
        model,
        datasets,
        split=args.split,
        probes=not args.no_probes,
        images=not args.no_images,
        calib_steps=args.calib_steps,
        batch_size=args.batch_size,
        device=args.device,
        modalities=cfg.train.modalities,
        factors=args.factors,
    )
    result["checkpoint"] = str(args.checkpoint)
    result["data"] = str(args.data)
    result["seconds"]["total"] = time.perf_counter() - t0
    print(format_report(result))
    print(f"\n({result['seconds']['total']:.0f} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0
