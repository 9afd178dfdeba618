"""Deflation (notebook 05): where a static clip and its image differ, BatchNorm calibration, the three image modes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import MODALITY_COLOURS, fig_ax

DEFLATION_COLOURS = {"video": MODALITY_COLOURS["v"], "naive": "#e65100", "calibrated": "#2e7d32", "static": "#6a1b9a"}


def show_boundary_profile(
    profile: Mapping[str, Any], num_frames: int, endpoints: Sequence[str] | None = None, axes=None
) -> Figure:
    """Two panels on where a static clip and its deflated image disagree (``mmv_lite.images.boundary_profile``).

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
    (``mmv_lite.images.gap_by_clip_length``), with the clip length the network was trained on marked."""
    if not gaps:
        raise ValueError("gaps is empty: nothing to draw")
    fig, ax = fig_ax(ax, (5, 3.2))
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
    fig, ax = fig_ax(ax, (6.5, 3.2))
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
    fig, ax = fig_ax(ax, (5.5, 3.2))
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
