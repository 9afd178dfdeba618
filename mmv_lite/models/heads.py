"""Projection heads, and the module that holds the heads of one embedding graph.

A head ``g_{m->s}`` maps a backbone feature ``f_m`` into a space ``s``; the embedding of modality ``m`` in
space ``s`` is ``z_{m}_{s}``. Which heads a graph has, and what feeds them, is declared in
:data:`mmv_lite.graphs.GRAPHS`; :class:`EmbeddingGraph` builds the heads from that table. Embeddings are not
normalised here.

Released head forms (official ``config.py``, graph ``fac_relu``):

============== ================== ============================================================
head           maps               form
============== ================== ============================================================
g_v_to_va      d_v -> d_va        ``mlp``: Linear + BN + ReLU, Linear (no bias) + BN
g_a_to_va      d_a -> d_va        Linear
g_va_to_vat    d_va -> d_vat      Linear + BN
g_t_to_vat     d_t -> d_vat       Linear
============== ================== ============================================================

``head="linear"`` (the paper's linear-vs-MLP ablation) replaces every video ``mlp`` head by Linear + BN, i.e.
the official ``EmbeddingModule`` with ``mode="linear"`` and the same BN-after setting.

Graphs (``forward``-style methods return dicts keyed ``z_{m}_{space}``):

* ``fac``: ``z_v_va = g_v_to_va(f_v)``, ``z_a_va = g_a_to_va(f_a)``, ``z_v_vat = g_va_to_vat(relu(z_v_va))``,
  ``z_t_vat = g_t_to_vat(f_t)``; ``z_a_vat = g_va_to_vat(relu(z_a_va))`` is computed **only in eval mode**, so in
  training audio never touches the BatchNorm statistics of ``g_va_to_vat`` (as in the official code).
* ``shared``: one head per modality into the single space ``vat`` (``g_v_to_vat`` serves both the audio and the
  text target: one module): ``z_v_vat``, ``z_a_vat``, ``z_t_vat``.
* ``disjoint``: ``g_v_to_va``, ``g_a_to_va`` into ``va``; ``g_v_to_vt`` (same form as ``g_v_to_va``), ``g_t_to_vt``
  into ``vt``: ``z_v_va``, ``z_a_va``, ``z_v_vt``, ``z_t_vt``. Audio and text share no space.

Official names (``EmbeddingModule``): ``final_projection_inner`` -> ``inner``, its ``batch_norm`` -> ``inner_bn``,
``final_projection`` -> ``proj``, the BN after it -> ``bn`` (``OFFICIAL_NAMES`` of each head class). The official
module of each fac head is in the graph table (``Head.official``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..graphs import get_graph
from .layers import NormLayer


def _bn_flat(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # BatchNorm over the last axis of (..., D): statistics over every leading position.
    return bn(x.reshape(-1, x.shape[-1])).view_as(x)


class LinearHead(nn.Module):
    """``Linear(d_in, d_out)`` (with bias) and optionally BN after: ``(..., d_in) -> (..., d_out)``."""

    OFFICIAL_NAMES = {"proj": "final_projection", "bn": "bn"}

    def __init__(self, d_in: int, d_out: int, bn_after: bool = False, norm_layer: NormLayer = nn.BatchNorm1d):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)
        self.bn = norm_layer(d_out) if bn_after else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return x if self.bn is None else _bn_flat(self.bn, x)


class MLPHead(nn.Module):
    """Released video head: ``Linear + BN + ReLU, Linear (no bias) + BN``: ``(..., d_in) -> (..., d_out)``."""

    OFFICIAL_NAMES = {"inner": "final_projection_inner", "inner_bn": "bn", "proj": "final_projection", "bn": "bn_1"}

    def __init__(self, d_in: int, d_out: int, d_hidden: int | None = None, norm_layer: NormLayer = nn.BatchNorm1d):
        super().__init__()
        d_hidden = d_hidden or d_out
        self.inner = nn.Linear(d_in, d_hidden)
        self.inner_bn = norm_layer(d_hidden)
        self.proj = nn.Linear(d_hidden, d_out, bias=False)
        self.bn = norm_layer(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(_bn_flat(self.inner_bn, self.inner(x)))
        return _bn_flat(self.bn, self.proj(x))


def build_head(form: str, d_in: int, d_out: int, video_head: str = "mlp", norm_layer: NormLayer = nn.BatchNorm1d):
    """The head module of a table form (``mmv_lite.graphs.HEAD_FORMS``); ``video_head`` is ``model.head``."""
    if form == "video" and video_head == "mlp":
        return MLPHead(d_in, d_out, norm_layer=norm_layer)
    return LinearHead(d_in, d_out, bn_after=form != "linear", norm_layer=norm_layer)


class EmbeddingGraph(nn.Module):
    """The heads of one embedding graph, built from its table. ``heads[name]`` holds ``g_v_to_va``, ... by paper name.

    Args:
        graph: a name of :data:`mmv_lite.graphs.GRAPHS` (``"fac"``, ``"shared"``, ``"disjoint"``).
        d_v, d_a, d_t: backbone feature sizes.
        d_va, d_vt, d_vat: space sizes (``d_vat`` is the single space of ``shared``).
        head: form of the video heads, ``"mlp"`` (released) or ``"linear"``.
        norm_layer: the BatchNorm of the heads, ``(num_features) -> module`` (default ``nn.BatchNorm1d``).
    """

    def __init__(
        self,
        graph: str,
        d_v: int,
        d_a: int,
        d_t: int,
        d_va: int = 512,
        d_vt: int = 256,
        d_vat: int = 256,
        head: str = "mlp",
        norm_layer: NormLayer = nn.BatchNorm1d,
    ):
        super().__init__()
        self.table = get_graph(graph)
        if head not in ("mlp", "linear"):
            raise ValueError(f"EmbeddingGraph: head={head!r}; expected 'mlp' or 'linear'")
        self.graph = graph
        dims: Mapping[str, int] = {"v": d_v, "a": d_a, "t": d_t, "va": d_va, "vt": d_vt, "vat": d_vat}
        self.heads = nn.ModuleDict(
            {h.name: build_head(h.form, dims[h.source], dims[h.space], head, norm_layer) for h in self.table.heads}
        )
        self._steps = {m: self.table.steps(m) for m in "vat"}

    def embed(self, m: str, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f (..., d_m)``, the feature of modality ``m`` -> ``{z_m_space: (..., D_space)}`` for each space it reaches.

        Eval-only steps (FAC's audio -> vat) run only in eval mode (see the module docstring)."""
        out: dict[str, torch.Tensor] = {}
        for s in self._steps[m]:
            if s.eval_only and self.training:
                continue
            head = self.heads[s.head.name]
            out[s.output] = head(f) if s.input == "f" else head(F.relu(out[s.input]))
        return out

    def video(self, f_v: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f_v (B, d_v)`` -> video embeddings of this graph, each ``(B, D_space)``."""
        return self.embed("v", f_v)

    def audio(self, f_a: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f_a (B, d_a)`` -> audio embeddings. FAC's ``z_a_vat`` only in eval mode (see module docstring)."""
        return self.embed("a", f_a)

    def text(self, f_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f_t (B, K, d_t)`` or ``(B, d_t)`` -> text embeddings with the same leading axes."""
        return self.embed("t", f_t)
