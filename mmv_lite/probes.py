"""Linear probes on frozen features (the paper's UCF101 / HMDB51 / ESC-50 / PASCAL / ImageNet protocol), and
factor probes: which ground-truth factors of the sample world a feature makes linearly readable.

    >>> probe_suite(emb_train, emb_val, emb_test)["action"]["accuracy"]     # embedding dicts (mmv_lite.embedding)
    >>> factor_probes(*(attach_factors(e, ds) for e, ds in ...))["f_v"]["kind"]["accuracy"]

Protocol (official ``eval_ucf101.py``): StandardScaler fitted on train, LinearSVC with C chosen on val, test
scores averaged over the windows of a video.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .runtime import to_numpy

# C grid for the LinearSVC; the official UCF101 script uses C = 1e-3 on standardised features.
PROBE_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _as_numpy(x: Any) -> np.ndarray:
    return to_numpy(x)


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


def _average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Average precision of one binary problem: the sum over distinct score thresholds of (recall step x precision).

    scikit-learn's ``average_precision_score``, operation for operation (its results are equal bit for bit, tested),
    without its input checks, which made a call 18 times slower on 300 scores (docs/BENCHMARKS.md, "Tests and CI").
    """
    order = np.argsort(score, kind="mergesort")[::-1]
    score, hit = score[order], positive[order].astype(np.float64)
    last = np.r_[np.where(np.diff(score))[0], hit.size - 1]  # the last index of each run of tied scores
    tps = np.cumsum(hit)[last]
    fps = 1 + last - tps
    precision, recall = tps / (tps + fps), tps / tps[-1]
    precision, recall = np.hstack((precision[::-1], 1)), np.hstack((recall[::-1], 0))
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def _mean_average_precision(scores: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """One-vs-rest average precision per class present in ``labels``, averaged (PASCAL VOC's mAP), in percent."""
    aps = [_average_precision(labels == c, scores[:, j]) for j, c in enumerate(classes) if (labels == c).any()]
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
    from sklearn.preprocessing import StandardScaler  # scikit-learn takes ~1 s to import: only probes need it
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
    train: dict[str, Any],
    val: dict[str, Any],
    test: dict[str, Any],
    tasks: Sequence[str] | None = None,
    seed: int = 0,
    Cs: Sequence[float] = PROBE_CS,
) -> dict[str, dict[str, Any]]:
    """Run every :data:`PROBE_TASKS` entry whose features and labels exist in all three splits.

    ``train`` / ``val`` / ``test``: embedding dicts (:func:`embed_dataset`, plus :func:`image_features`).
    Clips without audio are left out of the sound probe. ``Cs``: the C grid of every probe.
    Returns ``{task: linear_probe(...) result}``.
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
        out[task] = linear_probe(xtr, ytr, xva, yva, xte, yte, val_groups=gva, test_groups=gte, Cs=Cs, seed=seed)
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


def format_probes(probes: dict[str, dict[str, Any]], split: str = "test") -> str:
    """:func:`probe_suite`'s result as a text table: accuracy and mAP with their chance levels, C, sizes."""
    lines = [f"linear probes (StandardScaler + LinearSVC, C on val; scored on {split})"]
    head = ("task", "acc %", "chance %", "mAP %", "chance mAP", "C", "train", "test", "classes")
    lines.append(f"{head[0]:<18}" + "".join(f"{h:>11}" for h in head[1:]))
    for task, p in probes.items():
        vals = (p["accuracy"], p["chance"], p["mAP"], p["chance_mAP"])
        lines.append(
            f"{task:<18}" + "".join(f"{v:>11.1f}" for v in vals) + f"{p['C']:>11g}{p['num_train']:>11}"
            f"{p['num_test']:>11}{p['num_classes']:>11}"
        )
    return "\n".join(lines)
