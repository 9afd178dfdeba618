"""The network: the embedding graphs (drawn from their table, :data:`mmv_lite.graphs.GRAPHS`), sizes and shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..graphs import MODALITIES, Graph, Head, get_graph
from .common import MODALITY_COLOURS, MODALITY_NAMES, fig_ax

# Where the nodes sit: backbones on the left, spaces on the right (a space not listed here is placed by its sources).
_MODALITY_XY = {"v": (0.0, 1.0), "a": (0.0, 0.0), "t": (0.0, 2.0)}
_SPACE_XY = {"va": (1.6, 0.5), "vt": (1.6, 1.5), "vat": (3.0, 1.2)}
_SPACE_COLOUR = "#6d4c41"


def _node(source: str) -> str:
    return source if source in MODALITIES else f"S_{source}"


def graph_edges(graph: Graph) -> list[tuple[str, str, str, Head]]:
    """``(source node, target node, label, head)`` of every head: nodes are modalities or ``S_<space>``."""
    return [(_node(h.source), f"S_{h.space}", f"g_{h.source}→{h.space}", h) for h in graph.heads]


def _positions(graph: Graph) -> dict[str, tuple[float, float]]:
    xy = {m: _MODALITY_XY[m] for m in MODALITIES}
    for h in graph.heads:  # in table order, so a composed head's source is placed before its target
        if h.space in _SPACE_XY:
            xy[f"S_{h.space}"] = _SPACE_XY[h.space]
        elif f"S_{h.space}" not in xy:
            sources = [xy[_node(g.source)] for g in graph.heads if g.space == h.space and _node(g.source) in xy]
            x = max(p[0] for p in sources) + 1.5
            xy[f"S_{h.space}"] = (x, float(np.mean([p[1] for p in sources])))
    return xy


def _arrow(ax, xy, src: str, dst: str, text: str) -> None:
    (x0, y0), (x1, y1) = xy[src], xy[dst]
    colour = MODALITY_COLOURS.get(src, _SPACE_COLOUR)
    ax.add_patch(
        FancyArrowPatch((x0 + 0.34, y0), (x1 - 0.34, y1), arrowstyle="-|>", mutation_scale=12, color=colour, lw=1.3)
    )
    box = dict(fc="white", ec="none", pad=0.5)
    ax.text((x0 + x1) / 2, (y0 + y1) / 2, text, ha="center", va="center", fontsize=7, color=colour, bbox=box)


def draw_embedding_graph(graph: str, ax=None, show_eval_only: bool = True) -> Figure:
    """Draw one embedding graph: backbones on the left, spaces on the right, heads on the arrows.

    In FAC, audio reaches the coarse space through ``g_va→vat`` only at evaluation (noted in the figure): that is
    how audio and text can be compared although no loss ever put them side by side.
    """
    g = get_graph(graph)
    fig, ax = fig_ax(ax, (4.2, 3))
    xy = _positions(g)
    edges = graph_edges(g)
    for node in sorted({n for e in edges for n in e[:2]}):
        x, y = xy[node]
        if node in MODALITY_COLOURS:
            colour, label = MODALITY_COLOURS[node], f"f_{node}\n{MODALITY_NAMES[node]}"
        else:
            colour, label = _SPACE_COLOUR, "$" + node.replace("S_", "S_{") + "}$"
        corner = (x - 0.32, y - 0.22)
        ax.add_patch(FancyBboxPatch(corner, 0.64, 0.44, boxstyle="round,pad=0.03", fc=colour, alpha=0.18, ec=colour))
        ax.text(x, y, label, ha="center", va="center", fontsize=9, color="black")
    for src, dst, label, head in edges:
        _arrow(ax, xy, src, dst, label)
        for m in head.eval_only if show_eval_only else ():
            (x0, y0), (x1, y1) = xy[src], xy[dst]
            at = (x0 + 0.643 * (x1 - x0), y0 + 0.643 * (y1 - y0))  # on the arrow, past its label
            ax.annotate(
                f"{MODALITY_NAMES[m]} → {head.space} at eval only\n(through {label})",
                xy=at,
                xytext=(at[0] - 0.4, at[1] - 0.9),
                fontsize=7,
                color=MODALITY_COLOURS[m],
                arrowprops=dict(arrowstyle="->", ls="--", color=MODALITY_COLOURS[m]),
            )
    # Which pairs can be compared, and where: derived from the same table.
    pairs = ", ".join(f"{''.join(m for m in MODALITIES if m in p)} in S_{s}" for p, s in g.pairs().items())
    ax.text(1.5, -0.6, f"compared in: {pairs}", ha="center", fontsize=7, color="#424242")
    ax.set_xlim(-0.5, max(3.5, max(x for x, _ in xy.values()) + 0.5))
    ax.set_ylim(-0.8, 2.5)
    ax.set_axis_off()
    ax.set_title(g.title, fontsize=10)
    return fig


def draw_embedding_graphs(graphs: Sequence[str] = ("shared", "disjoint", "fac")) -> Figure:
    """The three graphs of the paper's Figure 1, side by side."""
    fig, axes = plt.subplots(1, len(graphs), figsize=(4.2 * len(graphs), 3.2))
    for ax, g in zip(np.atleast_1d(axes), graphs):
        draw_embedding_graph(g, ax=ax)
    fig.tight_layout()
    return fig


def show_parameter_counts(counts: Mapping[str, Mapping[str, int]], ax=None) -> Figure:
    """Grouped horizontal bars (log scale) of ``{model name: {component: parameters}}``, e.g. lite vs paper sizes."""
    fig, ax = fig_ax(ax, (8, 0.5 + 0.9 * len(counts)))
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
    fig, ax = fig_ax(ax, (10, 3.2))
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
