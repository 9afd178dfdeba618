"""Figures for the notebooks: clips, the embedding graphs, losses, 2-D maps of the shared spaces, retrieval results.

Every function takes plain arrays or tensors and returns a matplotlib ``Figure`` (or draws on the ``ax`` it is given),
so notebooks stay thin and the figures can be tested without a notebook. Nothing here trains or loads a model.

Shapes follow docs/DESIGN.md: a clip's video is ``(3, T, H, W)`` in [0, 1], its audio a log-mel ``(1, F, n_mels)``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .config import GRAPHS, SPACES, TEMPERATURE

# One colour per modality, used in every figure (v = video, a = audio, t = text).
MODALITY_COLOURS = {"v": "#1f77b4", "a": "#d62728", "t": "#2ca02c"}
MODALITY_NAMES = {"v": "video", "a": "audio", "t": "text"}


def _np(x: Any) -> np.ndarray:
    """A numpy copy of a tensor or array (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _fig_ax(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


# --------------------------------------------------------------------------------------------------------------------
# Clips: frames, spectrograms, narrations
# --------------------------------------------------------------------------------------------------------------------


def frame_strip_image(video: Any, max_frames: int = 8, gap: int = 2) -> np.ndarray:
    """Frames of one clip side by side, as one ``(H, n * (W + gap) - gap, 3)`` image in [0, 1].

    Args:
        video: ``(3, T, H, W)`` float in [0, 1] (the dataset layout), or ``(T, H, W, 3)`` uint8 / float frames.
        max_frames: at most this many frames, evenly spaced over the clip.
    """
    v = _np(video)
    if v.ndim != 4:
        raise ValueError(f"video must be (3, T, H, W) or (T, H, W, 3); got shape {v.shape}")
    if v.shape[0] == 3 and v.shape[-1] != 3:
        v = v.transpose(1, 2, 3, 0)  # (T, H, W, 3)
    if v.dtype == np.uint8:
        v = v.astype(np.float32) / 255.0
    T, H, W, _ = v.shape
    idx = np.linspace(0, T - 1, min(T, max_frames)).round().astype(int)
    out = np.ones((H, len(idx) * (W + gap) - gap, 3), dtype=np.float32)
    for j, t in enumerate(idx):
        out[:, j * (W + gap) : j * (W + gap) + W] = np.clip(v[t], 0, 1)
    return out


def show_frames(video: Any, ax=None, max_frames: int = 8, title: str | None = None, fps: float | None = None) -> Figure:
    """Draw a clip's frames as a strip; with ``fps`` the x axis is labelled in seconds."""
    strip = frame_strip_image(video, max_frames=max_frames)
    fig, ax = _fig_ax(ax, (1.4 * max_frames, 1.8))
    ax.imshow(strip, interpolation="nearest")
    ax.set_yticks([])
    v = _np(video)
    T = v.shape[1] if v.shape[0] == 3 and v.shape[-1] != 3 else v.shape[0]
    idx = np.linspace(0, T - 1, min(T, max_frames)).round().astype(int)
    W = (strip.shape[1] + 2) / len(idx)
    ax.set_xticks([(j + 0.5) * W for j in range(len(idx))])
    ax.set_xticklabels([f"{t / fps:.1f}s" if fps else f"frame {t}" for t in idx], fontsize=7)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


def show_spectrogram(
    logmel: Any, ax=None, seconds: float | None = None, title: str | None = None, colorbar: bool = False
) -> Figure:
    """Draw a log-mel spectrogram ``(1, F, n_mels)`` or ``(F, n_mels)``: time left to right, low pitch at the bottom."""
    m = _np(logmel)
    if m.ndim == 3:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"logmel must be (1, F, n_mels) or (F, n_mels); got shape {_np(logmel).shape}")
    fig, ax = _fig_ax(ax, (5, 2))
    extent = (0, seconds if seconds else m.shape[0], 0, m.shape[1])
    im = ax.imshow(m.T, origin="lower", aspect="auto", cmap="magma", extent=extent, interpolation="nearest")
    ax.set_xlabel("time (s)" if seconds else "STFT frame")
    ax.set_ylabel("mel bin")
    if colorbar:
        fig.colorbar(im, ax=ax, label="log energy")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


def show_narration_timeline(
    captions: Mapping[str, Sequence],
    clip: tuple[float, float] | None = None,
    events: Sequence[tuple[float, float, str]] = (),
    candidates: Sequence[int] = (),
    misaligned: Sequence[int] = (),
    ax=None,
    title: str | None = None,
    max_chars: int = 38,
) -> Figure:
    """When things are said versus when they are shown, for one video.

    Args:
        captions: one video's entry of ``captions.json``: ``{"start": [...], "end": [...], "text": [...]}`` (seconds).
        clip: ``(start, end)`` of a training clip, shaded.
        events: ``(start, end, label)`` of what the video really shows (from ``metadata.json``), drawn on a top row.
        candidates: indices of the narrations chosen as the clip's candidates (MIL-NCE's positive bag), highlighted.
        misaligned: indices of narrations that talk about another moment than the one on screen, marked with a cross.
    """
    starts, ends, texts = list(captions["start"]), list(captions["end"]), list(captions["text"])
    if not (len(starts) == len(ends) == len(texts)):
        raise ValueError("captions must have equal-length 'start', 'end' and 'text' lists")
    n = len(texts)
    fig, ax = _fig_ax(ax, (10, 0.9 + 0.32 * (n + 2)))
    top = n + 1.2
    for s, e, label in events:
        ax.add_patch(FancyBboxPatch((s, top - 0.5), e - s, 1.0, boxstyle="round,pad=0.02", fc="#ffe9b3", ec="#b8860b"))
        ax.text((s + e) / 2, top, label.replace(" ", "\n"), ha="center", va="center", fontsize=6.5, linespacing=0.9)
    chosen = set(int(c) for c in candidates)
    bad = set(int(c) for c in misaligned)
    for i, (s, e, t) in enumerate(zip(starts, ends, texts)):
        y = n - i
        colour = MODALITY_COLOURS["t"] if i in chosen else "#9e9e9e"
        ax.plot([s, e], [y, y], lw=5, color=colour, solid_capstyle="butt")
        short = t if len(t) <= max_chars else t[: max_chars - 1] + "…"
        ax.text(e + 0.1, y, short, va="center", fontsize=7, color="black" if i in chosen else "#616161")
        if i in bad:
            ax.plot([s - 0.25], [y], marker="x", color="#c62828", ms=6, mew=2)
    if clip is not None:
        ax.axvspan(clip[0], clip[1], color=MODALITY_COLOURS["v"], alpha=0.15, label="training clip")
    if chosen:
        ax.plot([], [], lw=5, color=MODALITY_COLOURS["t"], label="the clip's K candidate narrations")
    if bad:
        ax.plot([], [], ls="", marker="x", color="#c62828", mew=2, label="talks about another moment")
    if clip is not None or chosen or bad:
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, -0.2), ncol=3, fontsize=7, frameon=False)
    t_max = max([*ends, *(e for _, e, _ in events), clip[1] if clip else 0])
    ax.set_xlim(-0.6, t_max * 1.35)
    ax.set_ylim(0.3, top + 0.7)
    ax.set_yticks([top] + ([n / 2 + 0.5] if n else []))
    ax.set_yticklabels(["shown"] + (["said"] if n else []))
    ax.set_xlabel("time in the video (s)")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


def show_clips(
    videos: Sequence[Any],
    logmels: Sequence[Any] | None = None,
    titles: Sequence[str] | None = None,
    fps: float | None = None,
    seconds: float | None = None,
    max_frames: int = 8,
) -> Figure:
    """Several clips, one per row: the frame strip, and the spectrogram of the same span beside it when given."""
    n = len(videos)
    if n == 0:
        raise ValueError("no clips to show")
    if logmels is not None and len(logmels) != n:
        raise ValueError(f"got {n} videos but {len(logmels)} spectrograms")
    cols = 1 if logmels is None else 2
    fig, axes = plt.subplots(
        n,
        cols,
        figsize=(1.3 * max_frames + 3.2 * (cols - 1), 1.6 * n + 0.3),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.3 * max_frames, 3.2][:cols]},
    )
    for i in range(n):
        title = titles[i] if titles is not None else None
        show_frames(videos[i], ax=axes[i, 0], max_frames=max_frames, title=title, fps=fps)
        if logmels is not None:
            show_spectrogram(logmels[i], ax=axes[i, 1], seconds=seconds)
            if i < n - 1:
                axes[i, 1].set_xlabel("")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------------------
# The three embedding graphs (MMV_REFERENCE section 1)
# --------------------------------------------------------------------------------------------------------------------

# Edges (source, target, head name, drawn style). "eval" edges exist only at evaluation time.
GRAPH_EDGES: dict[str, list[tuple[str, str, str, str]]] = {
    "shared": [
        ("v", "S_vat", "g_v→vat", "train"),
        ("a", "S_vat", "g_a→vat", "train"),
        ("t", "S_vat", "g_t→vat", "train"),
    ],
    "disjoint": [
        ("v", "S_va", "g_v→va", "train"),
        ("a", "S_va", "g_a→va", "train"),
        ("v", "S_vt", "g_v→vt", "train"),
        ("t", "S_vt", "g_t→vt", "train"),
    ],
    "fac": [
        ("v", "S_va", "g_v→va", "train"),
        ("a", "S_va", "g_a→va", "train"),
        ("S_va", "S_vat", "g_va→vat", "train"),
        ("t", "S_vat", "g_t→vat", "train"),
    ],
}

_NODE_XY = {
    "v": (0.0, 1.0),
    "a": (0.0, 0.0),
    "t": (0.0, 2.0),
    "S_va": (1.6, 0.5),
    "S_vt": (1.6, 1.5),
    "S_vat": (3.0, 1.2),
}
_GRAPH_TITLES = {
    "shared": "shared: one space for all three",
    "disjoint": "disjoint: one space per pair",
    "fac": "FAC: fine (va) then coarse (vat)",
}


def reachable_spaces(graph: str, modality: str) -> set[str]:
    """Spaces that ``modality`` ('v', 'a', 't') reaches along the training edges of ``graph``'s diagram."""
    edges = GRAPH_EDGES[graph]
    seen, frontier = set(), {modality}
    while frontier:
        node = frontier.pop()
        for src, dst, _, _ in edges:
            if src == node and dst not in seen:
                seen.add(dst)
                frontier.add(dst)
    return seen


def draw_embedding_graph(graph: str, ax=None, show_audio_to_vat: bool = True) -> Figure:
    """Draw one embedding graph: backbones on the left, spaces on the right, heads on the arrows.

    In FAC, audio reaches the coarse space through ``g_va→vat`` only at evaluation (dashed): that is how audio and text
    can be compared although no loss ever put them side by side.
    """
    if graph not in GRAPH_EDGES:
        raise ValueError(f"unknown graph {graph!r}; expected one of {GRAPHS}")
    fig, ax = _fig_ax(ax, (4.2, 3))
    edges = GRAPH_EDGES[graph]
    nodes = {m for e in edges for m in e[:2]}
    for node in nodes:
        x, y = _NODE_XY[node]
        if node in MODALITY_COLOURS:
            colour, label = MODALITY_COLOURS[node], f"f_{node}\n{MODALITY_NAMES[node]}"
        else:
            colour, label = "#6d4c41", node.replace("S_", "S_{") + "}"
            label = f"${label}$"
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.32, y - 0.22), 0.64, 0.44, boxstyle="round,pad=0.03", fc=colour, alpha=0.18, ec=colour
            )
        )
        ax.text(x, y, label, ha="center", va="center", fontsize=9, color="black")

    def arrow(src, dst, text, dashed=False):
        (x0, y0), (x1, y1) = _NODE_XY[src], _NODE_XY[dst]
        colour = MODALITY_COLOURS.get(src, "#6d4c41")
        ax.add_patch(
            FancyArrowPatch(
                (x0 + 0.34, y0),
                (x1 - 0.34, y1),
                arrowstyle="-|>",
                mutation_scale=12,
                color=colour,
                linestyle="--" if dashed else "-",
                lw=1.3,
            )
        )
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            text,
            ha="center",
            va="center",
            fontsize=7,
            color=colour,
            bbox=dict(fc="white", ec="none", pad=0.5),
        )

    for src, dst, head, _ in edges:
        arrow(src, dst, head)
    if graph == "fac" and show_audio_to_vat:
        ax.annotate(
            "audio → vat at eval only\n(through g_va→vat)",
            xy=(2.5, 0.95),
            xytext=(2.1, 0.05),
            fontsize=7,
            color=MODALITY_COLOURS["a"],
            arrowprops=dict(arrowstyle="->", ls="--", color=MODALITY_COLOURS["a"]),
        )
    # Which pairs can be compared, straight from config.SPACES.
    pairs = ", ".join(f"{''.join(m for m in 'vat' if m in p)} in S_{s}" for p, s in SPACES[graph].items())
    ax.text(1.5, -0.6, f"compared in: {pairs}", ha="center", fontsize=7, color="#424242")
    ax.set_xlim(-0.5, 3.5)
    ax.set_ylim(-0.8, 2.5)
    ax.set_axis_off()
    ax.set_title(_GRAPH_TITLES[graph], fontsize=10)
    return fig


def draw_embedding_graphs(graphs: Sequence[str] = ("shared", "disjoint", "fac")) -> Figure:
    """The three graphs of the paper's Figure 1, side by side."""
    fig, axes = plt.subplots(1, len(graphs), figsize=(4.2 * len(graphs), 3.2))
    for ax, g in zip(np.atleast_1d(axes), graphs):
        draw_embedding_graph(g, ax=ax)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------------------
# The network: sizes and shapes
# --------------------------------------------------------------------------------------------------------------------

COMPONENTS = ("video_backbone", "audio_backbone", "text_backbone", "heads")


def parameter_counts(model: Any) -> dict[str, int]:
    """Trainable parameters of each part of an :class:`~mmv_lite.models.mmv.MMV` (the frozen word vectors excluded).

    Works on a model built on the ``meta`` device (no memory used), which is how paper-size models are counted.
    """
    out = {}
    for name in COMPONENTS:
        part = getattr(model, name, None)
        if part is None:
            raise ValueError(f"model has no {name!r}: expected an mmv_lite MMV network")
        out[name] = sum(p.numel() for p in part.parameters() if p.requires_grad)
    return out


def show_parameter_counts(counts: Mapping[str, Mapping[str, int]], ax=None) -> Figure:
    """Grouped horizontal bars (log scale) of ``{model name: {component: parameters}}``, e.g. lite vs paper sizes."""
    fig, ax = _fig_ax(ax, (8, 0.5 + 0.9 * len(counts)))
    names = list(counts)
    comps = list(next(iter(counts.values())))
    h = 0.8 / len(comps)
    colours = {"video_backbone": MODALITY_COLOURS["v"], "audio_backbone": MODALITY_COLOURS["a"]}
    colours |= {"text_backbone": MODALITY_COLOURS["t"], "heads": "#6d4c41"}
    for j, c in enumerate(comps):
        vals = [counts[n][c] for n in names]
        ys = np.arange(len(names)) + (j - (len(comps) - 1) / 2) * h
        ax.barh(ys, vals, height=h, color=colours.get(c), label=c.replace("_", " "))
        for y, v in zip(ys, vals):
            ax.text(v * 1.05, y, f"{v / 1e6:.2f}M" if v >= 1e5 else f"{v / 1e3:.0f}k", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_xlim(right=max(v for c in counts.values() for v in c.values()) * 5)  # room for the value labels
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def show_endpoint_shapes(endpoints: Mapping[str, Any], ax=None, title: str | None = None) -> Figure:
    """How a video backbone trades resolution for channels, block by block.

    Args:
        endpoints: ``{block: (B, C, T, H, W) tensor}`` in order, e.g. from ``S3DG.forward(x, return_endpoints=True)``.
    """
    names, chans, vols, labels = [], [], [], []
    for k, v in endpoints.items():
        shape = tuple(v.shape)
        if len(shape) != 5:
            continue
        _, c, t, h, w = shape
        names.append(k)
        chans.append(c)
        vols.append(t * h * w)
        labels.append(f"{t}×{h}×{w}")
    if not names:
        raise ValueError("endpoints must hold (B, C, T, H, W) tensors")
    fig, ax = _fig_ax(ax, (10, 3.2))
    x = np.arange(len(names))
    ax.bar(x, chans, color=MODALITY_COLOURS["v"], alpha=0.7, label="channels C")
    ax.set_ylabel("channels C", color=MODALITY_COLOURS["v"])
    ax2 = ax.twinx()
    ax2.plot(x, vols, color="black", marker="o", label="positions T×H×W")
    ax2.set_yscale("log")
    ax2.set_ylabel("positions T×H×W (log)")
    for xi, v, lab in zip(x, vols, labels):
        ax2.annotate(lab, (xi, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels([n.replace("_", "\n", 1) for n in names], fontsize=6)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Losses: what the temperature does
# --------------------------------------------------------------------------------------------------------------------


def softmax_over_candidates(scores: Any, tau: float) -> np.ndarray:
    """``softmax(scores / tau)``: how the contrastive loss shares one anchor's attention among the candidates (N,)."""
    s = _np(scores).astype(np.float64) / tau
    s = s - s.max()
    p = np.exp(s)
    return p / p.sum()


def nce_loss_of_row(scores: Any, positive: int, tau: float) -> float:
    """One anchor's NCE loss ``-log softmax(scores / tau)[positive]`` for cosine ``scores`` (N,)."""
    s = _np(scores).astype(np.float64) / tau
    return float(np.logaddexp.reduce(s) - s[positive])


def show_temperature(
    scores: Any, positive: int, tau: float = TEMPERATURE, taus: Sequence[float] | None = None, names=None
) -> Figure:
    """Two panels: the softmax over candidates at ``tau`` (left) and the loss as a function of the temperature (right).

    Args:
        scores: ``(N,)`` cosine similarities of one anchor with N candidates, one of them the positive.
        positive: index of the positive candidate.
        tau: the temperature shown on the left and marked on the right.
    """
    s = _np(scores)
    if s.ndim != 1 or not 0 <= positive < len(s):
        raise ValueError(f"scores must be (N,) with 0 <= positive < N; got shape {s.shape}, positive={positive}")
    if tau <= 0:
        raise ValueError(f"tau must be positive; got {tau}")
    taus = np.geomspace(0.01, 1.0, 60) if taus is None else np.asarray(taus)
    order = np.argsort(-s)
    p = softmax_over_candidates(s, tau)
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
    losses = [nce_loss_of_row(s, positive, t) for t in taus]
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
    S, P = _np(sim), _np(positive).astype(bool)
    if S.ndim != 2 or S.shape != P.shape:
        raise ValueError(f"sim and positive must be (N, M) of the same shape; got {S.shape} and {P.shape}")
    fig, ax = _fig_ax(ax, (0.45 * S.shape[1] + 2, 0.45 * S.shape[0] + 1))
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
    fig, ax = _fig_ax(ax, (6, 3))
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


def show_retrieval(
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    chance: Mapping[str, Mapping[str, float]] | None = None,
    metric: str = "R@5",
    ax=None,
    title: str | None = None,
) -> Figure:
    """Grouped bars of one retrieval metric per direction for several models, with the chance level as a tick.

    Args:
        results: ``{model name: {direction: {metric: value}}}`` as returned by ``evaluate.zero_shot_retrieval``.
        chance: ``{direction: {metric: value}}`` (``evaluate.chance_levels``), drawn as black dashes.
    """
    if not results:
        raise ValueError("no results to plot")
    dirs = [d for d in next(iter(results.values())) if all(d in r for r in results.values())]
    fig, ax = _fig_ax(ax, (1.2 * len(dirs) + 2.5, 3.2))
    w = 0.8 / len(results)
    x = np.arange(len(dirs))
    for j, (name, res) in enumerate(results.items()):
        ax.bar(x + (j - (len(results) - 1) / 2) * w, [res[d][metric] for d in dirs], width=w, label=name)
    if chance is not None:
        for xi, d in zip(x, dirs):
            if d in chance:
                ax.plot([xi - 0.42, xi + 0.42], [chance[d][metric]] * 2, color="black", ls="--", lw=1)
        ax.plot([], [], color="black", ls="--", lw=1, label="chance")
    pretty = {"t": "text", "v": "video", "a": "audio"}
    ax.set_xticks(x)
    ax.set_xticklabels([f"{pretty.get(d[0], d[0])}→{pretty.get(d[2], d[2])}" for d in dirs], fontsize=8)
    ax.set_ylabel(f"{metric} (%)" if metric.startswith("R@") else metric)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return fig


FEATURE_NAMES = {
    "f_v": "video backbone f_v",
    "f_a": "audio backbone f_a",
    "z_t_vat": "narration z_t_vat",
    "z_t_vt": "narration z_t_vt",
}


def show_factor_probes(
    probes: Mapping[str, Mapping[str, Mapping[str, Any]]], ax=None, title: str | None = None
) -> Figure:
    """Grouped bars of factor-probe accuracy: one group per factor, one bar per feature, chance as a dash.

    Args:
        probes: ``{feature: {factor: linear_probe result}}`` as returned by ``evaluate.factor_probes``.
    """
    if not probes:
        raise ValueError("no factor probes to plot")
    factors = list(dict.fromkeys(f for per in probes.values() for f in per))
    fig, ax = _fig_ax(ax, (1.1 * len(factors) + 3.0, 3.2))
    w = 0.8 / len(probes)
    x = np.arange(len(factors))
    for j, (key, per) in enumerate(probes.items()):
        xs = [xi + (j - (len(probes) - 1) / 2) * w for xi, f in zip(x, factors) if f in per]
        ax.bar(xs, [per[f]["accuracy"] for f in factors if f in per], width=w, label=FEATURE_NAMES.get(key, key))
    for xi, f in zip(x, factors):
        chance = max(per[f]["chance"] for per in probes.values() if f in per)
        ax.plot([xi - 0.42, xi + 0.42], [chance] * 2, color="black", ls="--", lw=1)
    ax.plot([], [], color="black", ls="--", lw=1, label="chance (majority class)")
    ax.set_xticks(x)
    ax.set_xticklabels(factors, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------------------
# 2-D maps of the shared spaces
# --------------------------------------------------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


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
        center: subtract each group's mean direction first. Contrastively trained modalities sit in separate regions
            of the sphere (the *modality gap*: retrieval only needs each query's candidates in the right order);
            centring removes that offset so the structure the groups share can be compared on one map.

    Returns:
        ``{name: (N_i, 2)}``.
    """
    names = list(embeddings)
    arrays = [_np(embeddings[k]).reshape(len(embeddings[k]), -1) for k in names]
    dims = {a.shape[1] for a in arrays}
    if len(dims) != 1:
        raise ValueError(
            f"all groups must live in one space (same dimension); got {dict(zip(names, [a.shape for a in arrays]))}"
        )
    if center:
        arrays = [_unit(a.astype(np.float32)) - _unit(a.astype(np.float32)).mean(0, keepdims=True) for a in arrays]
    X = _unit(np.concatenate(arrays).astype(np.float32))
    if method == "pca":
        Xc = X - X.mean(0)
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        Y = Xc @ vt[:2].T
    elif method == "umap":
        import umap  # imported here: ~1.6 s, and its first fit compiles with numba

        Y = umap.UMAP(
            n_neighbors=min(n_neighbors, len(X) - 1), min_dist=min_dist, metric="cosine", random_state=seed, n_jobs=1
        ).fit_transform(X)
    else:
        raise ValueError(f"method must be 'umap' or 'pca'; got {method!r}")
    out, i = {}, 0
    for k, a in zip(names, arrays):
        out[k] = np.asarray(Y[i : i + len(a)])
        i += len(a)
    return out


def show_map(
    points: Mapping[str, np.ndarray],
    labels: Mapping[str, Any] | Any | None = None,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    ax=None,
    title: str | None = None,
    markers: Mapping[str, str] | None = None,
    legend: bool = True,
    s: float = 18,
) -> Figure:
    """Scatter 2-D points of several groups (marker per group), coloured by a label (e.g. the action or the sound).

    Args:
        points: ``{group: (N, 2)}`` from :func:`project_2d`.
        labels: ``{group: (N,) int}`` (or one array when there is one group); ``-1`` = unknown, drawn grey.
        label_names: names of the label values, for the legend.
    """
    fig, ax = _fig_ax(ax, (5, 4.5))
    default_markers = ["o", "^", "s", "D", "P"]
    markers = dict(markers or {})
    if labels is not None and not isinstance(labels, Mapping):
        labels = {next(iter(points)): labels}
    n_classes = len(label_names) if label_names is not None else 10
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    ncol = cmap.N
    seen: dict[Any, Any] = {}
    for gi, (group, xy) in enumerate(points.items()):
        m = markers.get(group, default_markers[gi % len(default_markers)])
        lab = None if labels is None else _np(labels[group]).astype(int)
        if lab is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=s, marker=m, label=group, alpha=0.8)
            continue
        colours = np.array([cmap(v % ncol) if v >= 0 else (0.7, 0.7, 0.7, 1.0) for v in lab])
        ax.scatter(xy[:, 0], xy[:, 1], s=s, marker=m, c=colours, alpha=0.85, edgecolors="none")
        ax.scatter([], [], marker=m, c="black", label=group, s=s)  # legend entry for the group's marker
        for v in np.unique(lab):
            seen.setdefault(int(v), cmap(v % ncol) if v >= 0 else (0.7, 0.7, 0.7, 1.0))
    if legend:
        handles, names = ax.get_legend_handles_labels()
        for v, colour in sorted(seen.items()):
            name = "unknown" if v < 0 else (label_names[v] if label_names is not None else str(v))
            handles.append(plt.Line2D([], [], marker="o", ls="", color=colour))
            names.append(name)
        ax.legend(handles, names, fontsize=7, loc="best", framealpha=0.7)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Small tables (no pandas needed)
# --------------------------------------------------------------------------------------------------------------------


def html_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = "{:.3g}"
) -> str:
    """An HTML table of a list of records; floats formatted with ``floatfmt``. Display with ``IPython.display.HTML``."""
    if not rows:
        return "<table></table>"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, float):
            return floatfmt.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------------------------------------------------
# Deflation: video network -> image network (notebook 05)
# --------------------------------------------------------------------------------------------------------------------

DEFLATION_COLOURS = {"video": MODALITY_COLOURS["v"], "naive": "#e65100", "calibrated": "#2e7d32", "static": "#6a1b9a"}


def show_boundary_profile(
    profile: Mapping[str, Any], num_frames: int, endpoints: Sequence[str] | None = None, axes=None
) -> Figure:
    """Two panels on where a static clip and its deflated image disagree (``demo.boundary_profile``).

    Left: per output frame, the relative difference at a few ``endpoints`` (x = the frame's centre in input frames),
    so the clip borders stand out. Right: at every endpoint, in network order, the difference at the outermost frames
    and at the middle frame: zero in the middle of the first layers, not deeper.

    Args:
        profile: ``{endpoint: (T_e,) relative L1 per frame}``.
        num_frames: frames of the static clip that produced ``profile``.
    """
    if not profile:
        raise ValueError("profile is empty: nothing to draw")
    names = list(profile)
    endpoints = list(endpoints or [names[0], names[len(names) // 2], names[-1]])
    missing = [e for e in endpoints if e not in profile]
    if missing:
        raise ValueError(f"endpoints {missing} are not in the profile; it has {names}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [1, 1.3]})
    fig = axes[0].figure
    cmap = plt.get_cmap("viridis")
    for j, name in enumerate(endpoints):
        err = 100 * np.asarray(profile[name], dtype=float)
        x = (np.arange(len(err)) + 0.5) * num_frames / len(err)
        axes[0].plot(
            x, err, marker="o", color=cmap(j / max(1, len(endpoints) - 1)), label=f"{name} ({len(err)} frames)"
        )
    axes[0].axvspan(0, num_frames, color="#eeeeee", zorder=0)
    axes[0].set_xlim(0, num_frames)
    axes[0].set_xlabel(f"position in the {num_frames}-frame static clip (input frames)")
    axes[0].set_ylabel("difference to the image (%)")
    axes[0].set_title("per frame: the borders differ", fontsize=10, loc="left")
    axes[0].legend(fontsize=7)
    # Right: the outermost frames against the most central one, layer by layer (the middle of an even count is the
    # better of its two central frames).
    border = [100 * float(max(profile[n][0], profile[n][-1])) for n in names]
    middle = []
    for n in names:
        p = np.asarray(profile[n], dtype=float)
        c = len(p) // 2
        middle.append(100 * float(p[c] if len(p) % 2 else min(p[c - 1], p[c])))
    x = np.arange(len(names))
    axes[1].bar(x - 0.2, border, width=0.4, color=DEFLATION_COLOURS["naive"], label="first / last frame")
    axes[1].bar(x + 0.2, middle, width=0.4, color="#455a64", label="middle frame")
    axes[1].set_xticks(x)
    axes[1].set_xticklabels([n.replace("_", "\n", 1) for n in names], fontsize=6)
    axes[1].set_ylabel("difference to the image (%)")
    axes[1].set_title("by depth: the borders reach the middle", fontsize=10, loc="left")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def show_gap_by_length(gaps: Mapping[int, float], trained_length: int | None = None, ax=None) -> Figure:
    """Relative L1 gap between the deflated network and the video network on static clips of growing length
    (``demo.gap_by_clip_length``), with the clip length the network was trained on marked."""
    if not gaps:
        raise ValueError("gaps is empty: nothing to draw")
    fig, ax = _fig_ax(ax, (5, 3.2))
    lengths = sorted(gaps)
    ax.plot(lengths, [100 * gaps[t] for t in lengths], marker="o", color=DEFLATION_COLOURS["naive"])
    for t in lengths:
        ax.annotate(f"{100 * gaps[t]:.0f}%", (t, 100 * gaps[t]), textcoords="offset points", xytext=(0, 6), fontsize=7)
    if trained_length is not None:
        ax.axvline(trained_length, color="grey", ls=":", label=f"clip length used in training ({trained_length})")
        ax.legend(fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(t) for t in lengths])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("frames in the static clip")
    ax.set_ylabel("feature gap to the deflated net (%)")
    ax.set_title("naive deflation = an endless static clip", fontsize=10, loc="left")
    return fig


def show_calibration(
    history: Sequence[float],
    before: float,
    after: float,
    held_out: tuple[float, float] | None = None,
    ax=None,
) -> Figure:
    """The L1 gap during BatchNorm calibration (``calibrate_deflated_bn``'s ``history``), with the naive gap (before)
    and the calibrated gap (after) on the calibration images, and optionally on held-out images."""
    if not len(history):
        raise ValueError("history is empty: nothing to draw")
    fig, ax = _fig_ax(ax, (6.5, 3.2))
    h = np.asarray(history, dtype=float)
    ax.plot(np.arange(1, len(h) + 1), h, color="#bdbdbd", lw=1, label="L1 of each step's batch")
    if len(h) >= 10:  # batches differ: a running mean shows the trend
        w = max(3, len(h) // 10)
        smooth = np.convolve(h, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w, len(h) + 1), smooth, color="black", lw=1.5, label=f"running mean over {w} steps")
    ax.axhline(before, color=DEFLATION_COLOURS["naive"], ls="--", label=f"naive: {before:.4f}")
    ax.axhline(after, color=DEFLATION_COLOURS["calibrated"], ls="--", label=f"calibrated: {after:.4f}")
    if held_out is not None:
        ax.plot([len(history)] * 2, held_out, ls="", marker="D", color="black", ms=5)
        ax.plot(
            [], [], ls="", marker="D", color="black", label=f"held-out images: {held_out[0]:.4f} → {held_out[1]:.4f}"
        )
    ax.set_yscale("log")
    ax.set_xlabel("calibration step (only BatchNorm scale and offset change)")
    ax.set_ylabel("L1 gap to the video net")
    ax.set_title("learning BatchNorm's γ, β closes the gap", fontsize=10, loc="left")
    ax.legend(fontsize=7)
    return fig


def show_mode_bars(
    values: Mapping[str, float],
    ylabel: str,
    chance: float | None = None,
    paper: Mapping[str, float] | None = None,
    paper_label: str = "paper",
    errors: Mapping[str, float] | None = None,
    ax=None,
    title: str | None = None,
    fmt: str = "{:.0f}",
) -> Figure:
    """One bar per mode (``naive``, ``calibrated``, ``static``, ...) coloured by :data:`DEFLATION_COLOURS`, with an
    optional chance line and the paper's numbers as grey bars beside (a different task: compare the order)."""
    if not values:
        raise ValueError("values is empty: nothing to draw")
    fig, ax = _fig_ax(ax, (5.5, 3.2))
    modes = list(values)
    x = np.arange(len(modes))
    w = 0.38 if paper else 0.7
    err = [errors.get(m, 0.0) for m in modes] if errors else None
    bars = ax.bar(
        x - (w / 2 if paper else 0),
        [values[m] for m in modes],
        width=w,
        yerr=err,
        color=[DEFLATION_COLOURS.get(m, "#607d8b") for m in modes],
        label="ours",
    )
    for b, m in zip(bars, modes):
        ax.annotate(
            fmt.format(values[m]), (b.get_x() + b.get_width() / 2, values[m]), ha="center", va="bottom", fontsize=7
        )
    if paper:
        pv = [paper.get(m, np.nan) for m in modes]
        ax.bar(x + w / 2, pv, width=w, color="#bdbdbd", hatch="//", edgecolor="white", label=paper_label)
    if chance is not None:
        ax.axhline(chance, color="black", ls="--", lw=1, label=f"chance: {chance:.0f}")
    ax.set_xticks(x)
    ax.set_xticklabels(modes)
    ax.set_ylabel(ylabel)
    if paper or chance is not None:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return fig


def show_query_and_hits(
    query: Any,
    videos: Sequence[Any],
    titles: Sequence[str],
    query_title: str = "query",
    fps: float | None = None,
    max_frames: int = 8,
) -> Figure:
    """A query (one image ``(3, H, W)`` / ``(H, W, 3)``, or a clip) on the first row, then one ranked clip per row."""
    if len(videos) != len(titles):
        raise ValueError(f"got {len(videos)} clips but {len(titles)} titles")
    q = _np(query)
    if q.ndim == 3:  # one image: show it as a one-frame strip
        q = q[:, None] if q.shape[0] == 3 and q.shape[-1] != 3 else q[None]
    n = len(videos) + 1
    fig, axes = plt.subplots(n, 1, figsize=(1.3 * max_frames, 1.6 * n + 0.3), squeeze=False)
    show_frames(q, ax=axes[0, 0], max_frames=max_frames, title=query_title, fps=fps if q.shape[0] > 1 else None)
    if q.shape[0] == 1 or (q.shape[0] == 3 and q.shape[1] == 1):
        axes[0, 0].set_xticks([])
    for i, (v, t) in enumerate(zip(videos, titles)):
        show_frames(v, ax=axes[i + 1, 0], max_frames=max_frames, title=t, fps=fps)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Design tables: the paper's Table 1 in miniature (notebook 07)
# --------------------------------------------------------------------------------------------------------------------

# Which of the paper's columns answers the same question as one of ours (experiments.TABLES column keys).
PAPER_COLUMN_FOR = {"probe_action": "UCF101", "probe_sound": "ESC-50", "t2v_R@10": "YC2 R@10"}
_REFERENCE_ROWS = ("chance", "supervised")


def show_design_table(
    table: Mapping[str, Any],
    columns: Sequence[str] | None = None,
    paper_for: Mapping[str, str] | None = None,
    axes=None,
) -> Figure:
    """One panel per metric of a design table (``experiments.build_table`` / ``demo.read_results_markdown``).

    In each panel: our rows as bars (mean, with the seed-to-seed standard deviation as an error bar), the chance and
    supervised rows as horizontal lines, and, where the paper has a matching column (``paper_for``, default
    :data:`PAPER_COLUMN_FOR`), the paper's number for the same row as a grey hatched bar beside ours. The paper's
    task is another one: compare the order of the rows, not the values.
    """
    paper_for = PAPER_COLUMN_FOR if paper_for is None else paper_for
    cols = [c for c in table["columns"] if columns is None or c["key"] in columns]
    if not cols:
        raise ValueError(f"none of the columns {columns} is in the table {table.get('name')!r}")
    rows = [r for r in table["rows"] if r["label"] not in _REFERENCE_ROWS and not r["label"].startswith("supervised")]
    refs = {r["label"]: r for r in table["rows"] if r["label"] in _REFERENCE_ROWS}
    if axes is None:
        fig, axes = plt.subplots(1, len(cols), figsize=(2.9 * len(cols) + 0.6, 4.0), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    x = np.arange(len(rows))
    palette = plt.get_cmap("tab10")
    for ax, col in zip(axes, cols):
        key, pcol = col["key"], paper_for.get(col["key"])
        has_paper = pcol is not None and any(r["paper"].get(pcol) is not None for r in rows)
        w = 0.4 if has_paper else 0.7
        means = [r["cells"][key]["mean"] for r in rows]
        stds = [r["cells"][key]["std"] or 0.0 for r in rows]
        for i, (m, s) in enumerate(zip(means, stds)):
            if m is None:
                ax.text(x[i], 0, "n/a", ha="center", va="bottom", fontsize=7, color="#757575")
                continue
            ax.bar(x[i] - (w / 2 if has_paper else 0), m, width=w, yerr=s, capsize=3, color=palette(i))
        if has_paper:
            ax.bar(
                x + w / 2,
                [r["paper"].get(pcol) or 0.0 for r in rows],
                width=w,
                color="#bdbdbd",
                hatch="//",
                edgecolor="white",
                label=f"paper: {pcol}",
            )
        for name, style in (("chance", "--"), ("supervised", ":")):
            ref = refs.get(name, {}).get("cells", {}).get(key, {})
            if ref.get("mean") is not None:
                ax.axhline(ref["mean"], color="black", ls=style, lw=1, label=f"{name}: {ref['mean']:.0f}")
        ax.set_xticks(x)
        ax.set_xticklabels([r["label"] for r in rows], fontsize=8)
        ax.set_title(col["title"], fontsize=9)
        tops = [m + s for m, s in zip(means, stds) if m is not None]
        tops += [r["paper"].get(pcol) or 0.0 for r in rows] if has_paper else []
        tops += [refs.get(n, {}).get("cells", {}).get(key, {}).get("mean") or 0.0 for n in _REFERENCE_ROWS]
        ax.set_ylim(0, min(100.0, 1.3 * max(tops + [1.0])))
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    axes[0].set_ylabel("%  (bars: mean ± std over seeds)")
    fig.suptitle(table.get("title", ""), fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    return fig
