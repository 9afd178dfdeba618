"""Losses and training: what the temperature does, similarity matrices, training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..config import TEMPERATURE
from ..losses import anchor_nce, candidate_weights
from ..runtime import to_numpy
from .common import MODALITY_COLOURS, as_numpy, fig_ax


def show_temperature(
    scores: Any, positive: int, tau: float = TEMPERATURE, taus: Sequence[float] | None = None, names=None
) -> Figure:
    """Two panels: the softmax over candidates at ``tau`` (left) and the loss as a function of the temperature (right).

    Args:
        scores: ``(N,)`` cosine similarities of one anchor with N candidates, one of them the positive.
        positive: index of the positive candidate.
        tau: the temperature shown on the left and marked on the right.
    """
    s = as_numpy(scores)
    if s.ndim != 1 or not 0 <= positive < len(s):
        raise ValueError(f"scores must be (N,) with 0 <= positive < N; got shape {s.shape}, positive={positive}")
    if tau <= 0:
        raise ValueError(f"tau must be positive; got {tau}")
    taus = np.geomspace(0.01, 1.0, 60) if taus is None else np.asarray(taus)
    order = np.argsort(-s)
    p = to_numpy(candidate_weights(s, tau))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1.6, 1]})
    colours = [MODALITY_COLOURS["t"] if i == positive else "#9e9e9e" for i in order]
    a1.bar(np.arange(len(s)), p[order], color=colours)
    a1.set_xticks(np.arange(len(s)))
    labels = [names[i] for i in order] if names is not None else [f"{s[i]:.2f}" for i in order]
    a1.set_xticklabels(labels, rotation=90 if names is not None else 0, fontsize=7)
    a1.set_xlabel("candidates, sorted by cosine similarity" + ("" if names is not None else " (value shown)"))
    a1.set_ylabel("softmax weight")
    a1.set_ylim(0, 1)
    a1.set_title(f"τ = {tau:.3f}: positive (green) gets {p[positive]:.0%}", fontsize=10, loc="left")
    losses = [anchor_nce(s, positive, t) for t in taus]
    a2.plot(taus, losses, color="black")
    a2.axvline(tau, color=MODALITY_COLOURS["v"], ls="--", label=f"τ = {tau:.3f}")
    a2.axvline(TEMPERATURE, color="#9e9e9e", ls=":", label=f"paper: {TEMPERATURE}")
    a2.axhline(np.log(len(s)), color="#bdbdbd", lw=0.8, label="log N (chance)")
    a2.set_xscale("log")
    a2.set_xlabel("temperature τ")
    a2.set_ylabel("loss of this anchor")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def show_similarity(
    sim: Any,
    positive: Any,
    ax=None,
    row_label: str = "video i",
    col_label: str = "audio j",
    title: str | None = None,
    col_groups: int = 1,
) -> Figure:
    """Heatmap of a similarity matrix ``(N, M)`` with the positive pairs outlined.

    Args:
        sim: cosine similarities ``(N, M)``.
        positive: ``(N, M)`` bool, the pairs the loss pulls together (the rest are negatives).
        col_groups: columns per clip (K for MIL-NCE's candidate narrations); thin lines separate the clips.
    """
    S, P = as_numpy(sim), as_numpy(positive).astype(bool)
    if S.ndim != 2 or S.shape != P.shape:
        raise ValueError(f"sim and positive must be (N, M) of the same shape; got {S.shape} and {P.shape}")
    fig, ax = fig_ax(ax, (0.45 * S.shape[1] + 2, 0.45 * S.shape[0] + 1))
    im = ax.imshow(S, cmap="RdBu_r", vmin=-1, vmax=1)
    for i, j in zip(*np.nonzero(P)):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=2))
    if col_groups > 1:
        for x in np.arange(col_groups, S.shape[1], col_groups):
            ax.axvline(x - 0.5, color="white", lw=2)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_xticks(range(S.shape[1]))
    ax.set_yticks(range(S.shape[0]))
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, fraction=0.04, label="cosine similarity")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------------------------------


def show_history(
    history: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None, ax=None, title=None
) -> Figure:
    """Plot logged values against ``step`` from a list of records ``{"step": int, key: float, ...}``.

    Missing values (a key logged only every few steps) are skipped, so losses and evaluation metrics can share a list.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    if keys is None:
        keys = sorted({k for r in history for k, v in r.items() if k != "step" and isinstance(v, (int, float))})
    fig, ax = fig_ax(ax, (6, 3))
    for k in keys:
        pts = [(r["step"], r[k]) for r in history if k in r and r[k] is not None]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, marker="o" if len(pts) < 15 else None, ms=3, label=k)
    ax.set_xlabel("training step")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig
