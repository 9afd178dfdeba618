"""Clips: frames, spectrograms, narrations against what is shown, a query and its ranked clips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .common import MODALITY_COLOURS, as_numpy, fig_ax


def frame_strip_image(video: Any, max_frames: int = 8, gap: int = 2) -> np.ndarray:
    """Frames of one clip side by side, as one ``(H, n * (W + gap) - gap, 3)`` image in [0, 1].

    Args:
        video: ``(3, T, H, W)`` float in [0, 1] (the dataset layout), or ``(T, H, W, 3)`` uint8 / float frames.
        max_frames: at most this many frames, evenly spaced over the clip.
    """
    v = as_numpy(video)
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
    fig, ax = fig_ax(ax, (1.4 * max_frames, 1.8))
    ax.imshow(strip, interpolation="nearest")
    ax.set_yticks([])
    v = as_numpy(video)
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
    m = as_numpy(logmel)
    if m.ndim == 3:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"logmel must be (1, F, n_mels) or (F, n_mels); got shape {as_numpy(logmel).shape}")
    fig, ax = fig_ax(ax, (5, 2))
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
    fig, ax = fig_ax(ax, (10, 0.9 + 0.32 * (n + 2)))
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
    q = as_numpy(query)
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
