"""Embedding a dataset with a model, selecting rows of the result, and 2-D maps of one embedding space.

    >>> emb = embed_dataset(model, ClipDataset("data_samples", "val"))   # {"f_v": (N, d_v), "z_v_va": (N, D), ...}
    >>> pts = project_2d({"video": emb["z_v_vat"], "text": emb["z_t_vat"][:, 0]})   # {"video": (N, 2), ...}

An *embedding dict* holds, for N clips, every ``f_*`` / ``z_*`` output of the model and the clips' ground truth
(see :func:`embed_dataset`); :mod:`mmv_lite.retrieval` and :mod:`mmv_lite.probes` read it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .models.layers import eval_mode
from .models.mmv import model_inputs
from .runtime import to_numpy

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


def _forward(model: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, Tensor]:
    """Call ``model`` with the entries of ``inputs`` its ``forward`` accepts by name."""
    params = inspect.signature(model.forward).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    out = model(**{k: v for k, v in inputs.items() if takes_any or k in params})
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
    progress: str | None = None,
) -> dict[str, Any]:
    """Run ``model`` in eval mode over every item of ``dataset`` and stack the outputs.

    Returns a dict with every ``f_*`` / ``z_*`` output of the model (N rows, on the CPU; text keeps its
    candidate axis, e.g. ``z_t_vat (N, K, D)``), the modality masks ``has_audio (N,)``, ``has_text (N,)``,
    ``text_valid (N, K)``, ``text_ids (N, K, L)`` (to tell identical narrations apart), the labels
    ``action_label`` / ``sound_label`` / ``image_label (N,)`` (-1 = unknown), ``index``, ``start``, ``end``
    and ``video_id`` (list of N str). ``modalities`` drops model inputs ("va" sends no text).
    ``keep_frames`` also keeps each clip's middle frame, ``frames (N, 3, H, W)``, for the image probes.
    The model's train/eval mode is restored afterwards. ``progress``: a label for a progress bar over the clips
    (tqdm; in a notebook, a widget), for embeddings that take a while on a busy laptop; None shows nothing.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks: dict[str, list[Tensor]] = {}
    video_ids: list[str] = []
    bar = tqdm(total=len(dataset), unit="clip", desc=progress, disable=progress is None, dynamic_ncols=True)
    with eval_mode(model), bar:
        for batch in loader:
            inputs = {k: v.to(device) for k, v in model_inputs(batch, modalities).items()}
            for k, v in _forward(model, inputs).items():
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
            bar.update(next((len(v) for v in batch.values() if isinstance(v, Tensor)), 0))
    emb: dict[str, Any] = {k: torch.cat(v) for k, v in chunks.items()}
    emb["video_id"] = video_ids
    return emb


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
# 2-D maps of one space
# --------------------------------------------------------------------------------------------------------------------


def _numpy(x: Any) -> np.ndarray:
    return to_numpy(x.float() if isinstance(x, Tensor) else x)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centred(z: Any) -> np.ndarray:
    """One modality's embeddings ``z (N, D)``, each row L2-normalised, minus their mean direction: ``(N, D)``.

    The mean of the normalised rows is the modality's *centre* on the sphere; subtracting it removes the offset that
    keeps contrastively trained modalities apart (the modality gap, :func:`modality_gap`). This is what
    :func:`project_2d` does with ``center=True``, before it compares directions.
    """
    u = _unit(_numpy(z).reshape(len(z), -1).astype(np.float32))
    return u - u.mean(0, keepdims=True)


def modality_gap(z_a: Any, z_b: Any) -> float:
    """The *modality gap* of two modalities in one space: the distance between their centres.

    ``z_a (N, D)`` and ``z_b (M, D)`` are embeddings of two modalities (e.g. ``z_v_va`` and ``z_a_va``); each row is
    L2-normalised and each modality's centre is the mean of its rows, so the gap lies in [0, 2]: 0 when the two
    clouds share a centre, near 2 when they sit at opposite poles (Liang et al., "Mind the Gap", NeurIPS 2022).
    """
    a = _unit(_numpy(z_a).reshape(len(z_a), -1).astype(np.float64)).mean(0)
    b = _unit(_numpy(z_b).reshape(len(z_b), -1).astype(np.float64)).mean(0)
    return float(np.linalg.norm(a - b))


_UMAP_EXACT_BELOW = 4096  # UMAP computes every distance for fewer points than this, and its kNN from them


def _umap_knn(X: np.ndarray, k: int) -> dict[str, Any]:
    """UMAP's own neighbours of a small set, ``{"precomputed_knn": (indices, distances)}`` (nothing for a large set).

    Below 4,096 points UMAP computes every cosine distance, then each point's ``k`` nearest with a parallel numba
    kernel that it compiles on its first fit (handed these neighbours, a first fit took 8.2-8.7 s instead of
    15.4-15.5 s on a 2-core CPU: ``bench/bench_umap.py``). The same distances sorted here give the same graph and
    the same map, bit for bit, unless two distances tie at the k-th neighbour, where either choice is UMAP's own."""
    if len(X) >= _UMAP_EXACT_BELOW:
        return {}
    from sklearn.metrics import pairwise_distances
    from umap.distances import cosine

    d = pairwise_distances(X, metric=cosine)  # UMAP's small-data path, distance for distance
    indices = np.argsort(d, axis=1, kind="stable")[:, :k]
    return {"precomputed_knn": (indices, np.take_along_axis(d, indices, axis=1))}


def project_2d(
    embeddings: Mapping[str, Any],
    method: str = "umap",
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.3,
    center: bool = False,
) -> dict[str, np.ndarray]:
    """Project several groups of embeddings of ONE space into one 2-D map (fitted jointly, so groups are comparable).

    Args:
        embeddings: ``{name: (N_i, D)}``, e.g. ``{"video": z_v_vat, "text": z_t_vat}``; all with the same D.
        method: ``"umap"`` (cosine metric, as the losses compare directions) or ``"pca"`` (fast, linear).
        center: subtract each group's mean direction first (:func:`centred`). Contrastively trained modalities sit in
            separate regions of the sphere (the *modality gap*, :func:`modality_gap`: retrieval only needs each
            query's candidates in the right order); centring removes that offset so the structure the groups share
            can be compared on one map.

    Returns:
        ``{name: (N_i, 2)}``.
    """
    names = list(embeddings)
    arrays = [_numpy(embeddings[k]).reshape(len(embeddings[k]), -1) for k in names]
    dims = {a.shape[1] for a in arrays}
    if len(dims) != 1:
        raise ValueError(
            f"all groups must live in one space (same dimension); got {dict(zip(names, [a.shape for a in arrays]))}"
        )
    if center:
        arrays = [centred(a) for a in arrays]
    X = _unit(np.concatenate(arrays).astype(np.float32))
    if method == "pca":
        Xc = X - X.mean(0)
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        Y = Xc @ vt[:2].T
    elif method == "umap":
        import umap  # only here: it takes ~1.6 s to import, and its first fit compiles with numba

        k = min(n_neighbors, len(X) - 1)
        with warnings.catch_warnings():  # no search index comes with our neighbours: we never call transform
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
            Y = umap.UMAP(
                n_neighbors=k, min_dist=min_dist, metric="cosine", random_state=seed, n_jobs=1, **_umap_knn(X, k)
            ).fit_transform(X)
    else:
        raise ValueError(f"method must be 'umap' or 'pca'; got {method!r}")
    out, i = {}, 0
    for k, a in zip(names, arrays):
        out[k] = np.asarray(Y[i : i + len(a)])
        i += len(a)
    return out
