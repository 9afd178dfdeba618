"""Projection heads and the three embedding graphs of MMV: ``fac``, ``shared``, ``disjoint``.

A head ``g_{m->s}`` maps a backbone feature ``f_m`` into a space ``s``; the embedding of modality ``m`` in
space ``s`` is ``z_{m}_{s}`` (keys follow ``mmv_lite.config.SPACES``). Embeddings are not normalised here.

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
``final_projection`` -> ``proj``, the BN after it -> ``bn``. Official module per head (fac): ``vid2audio_embd`` =
g_v_to_va, ``audio_embd`` = g_a_to_va, ``vis_embd`` = g_va_to_vat, ``txt_embd`` = g_t_to_vat.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GRAPHS


def _bn_flat(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    # BatchNorm1d over the last axis of (..., D): statistics over every leading position.
    return bn(x.reshape(-1, x.shape[-1])).view_as(x)


class LinearHead(nn.Module):
    """``Linear(d_in, d_out)`` (with bias) and optionally BN after: ``(..., d_in) -> (..., d_out)``."""

    def __init__(self, d_in: int, d_out: int, bn_after: bool = False, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out, eps=eps, momentum=momentum) if bn_after else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return x if self.bn is None else _bn_flat(self.bn, x)


class MLPHead(nn.Module):
    """Released video head: ``Linear + BN + ReLU, Linear (no bias) + BN``: ``(..., d_in) -> (..., d_out)``."""

    def __init__(self, d_in: int, d_out: int, d_hidden: int | None = None, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        d_hidden = d_hidden or d_out
        self.inner = nn.Linear(d_in, d_hidden)
        self.inner_bn = nn.BatchNorm1d(d_hidden, eps=eps, momentum=momentum)
        self.proj = nn.Linear(d_hidden, d_out, bias=False)
        self.bn = nn.BatchNorm1d(d_out, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(_bn_flat(self.inner_bn, self.inner(x)))
        return _bn_flat(self.bn, self.proj(x))


class EmbeddingGraph(nn.Module):
    """The heads of one embedding graph. ``heads[name]`` holds ``g_v_to_va``, ``g_va_to_vat``, ... by paper name.

    Args:
        graph: ``"fac"``, ``"shared"`` or ``"disjoint"``.
        d_v, d_a, d_t: backbone feature sizes.
        d_va, d_vt, d_vat: space sizes (``d_vat`` is the single space of ``shared``).
        head: form of the video heads, ``"mlp"`` (released) or ``"linear"``.
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
        eps: float = 1e-5,
        momentum: float = 0.1,
    ):
        super().__init__()
        if graph not in GRAPHS:
            raise ValueError(f"EmbeddingGraph: graph={graph!r}; expected one of {GRAPHS}")
        if head not in ("mlp", "linear"):
            raise ValueError(f"EmbeddingGraph: head={head!r}; expected 'mlp' or 'linear'")
        self.graph = graph
        bn = dict(eps=eps, momentum=momentum)

        def video_head(d_out: int) -> nn.Module:
            return MLPHead(d_v, d_out, **bn) if head == "mlp" else LinearHead(d_v, d_out, bn_after=True, **bn)

        h: dict[str, nn.Module] = {}
        if graph == "fac":
            h["g_v_to_va"] = video_head(d_va)
            h["g_a_to_va"] = LinearHead(d_a, d_va)
            h["g_va_to_vat"] = LinearHead(d_va, d_vat, bn_after=True, **bn)
            h["g_t_to_vat"] = LinearHead(d_t, d_vat)
        elif graph == "shared":
            h["g_v_to_vat"] = video_head(d_vat)
            h["g_a_to_vat"] = LinearHead(d_a, d_vat)
            h["g_t_to_vat"] = LinearHead(d_t, d_vat)
        else:  # disjoint
            h["g_v_to_va"] = video_head(d_va)
            h["g_a_to_va"] = LinearHead(d_a, d_va)
            h["g_v_to_vt"] = video_head(d_vt)
            h["g_t_to_vt"] = LinearHead(d_t, d_vt)
        self.heads = nn.ModuleDict(h)

    def video(self, f_v: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f_v (B, d_v)`` -> video embeddings of this graph, each ``(B, D_space)``."""
        h = self.heads
        if self.graph == "fac":
            z_v_va = h["g_v_to_va"](f_v)
            return {"z_v_va": z_v_va, "z_v_vat": h["g_va_to_vat"](F.relu(z_v_va))}
        if self.graph == "shared":
            return {"z_v_vat": h["g_v_to_vat"](f_v)}
        return {"z_v_va": h["g_v_to_va"](f_v), "z_v_vt": h["g_v_to_vt"](f_v)}

    def audio(self, f_a: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f_a (B, d_a)`` -> audio embeddings. FAC's ``z_a_vat`` only in eval mode (see module docstring)."""
        h = self.heads
        if self.graph == "fac":
            z_a_va = h["g_a_to_va"](f_a)
            out = {"z_a_va": z_a_va}
            if not self.training:
                out["z_a_vat"] = h["g_va_to_vat"](F.relu(z_a_va))
            return out
        if self.graph == "shared":
            return {"z_a_vat": h["g_a_to_vat"](f_a)}
        return {"z_a_va": h["g_a_to_va"](f_a)}

    def text(self, f_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """``f_t (B, K, d_t)`` or ``(B, d_t)`` -> text embeddings with the same leading axes."""
        if self.graph == "disjoint":
            return {"z_t_vt": self.heads["g_t_to_vt"](f_t)}
        return {"z_t_vat": self.heads["g_t_to_vat"](f_t)}
