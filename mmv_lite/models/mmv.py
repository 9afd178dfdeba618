"""MMV: the whole network. Backbones for video, audio and text, and the heads of one embedding graph.

    >>> model = build_model("lite", graph="fac", word_vectors=wv)           # wv: (V, 300)
    >>> out = model(video=video, audio=audio, text_ids=ids, text_mask=mask)
    >>> sorted(out)   # fac, training mode
    ['f_a', 'f_t', 'f_v', 'z_a_va', 'z_t_vat', 'z_v_va', 'z_v_vat']

Inputs (any subset; see docs/DESIGN.md):

* ``video (B, 3, T, H, W)`` float in [0, 1], fed as is (the released models take [0, 1] frames; no mean/std
  normalisation happens inside). In image mode (:meth:`MMV.set_image_mode`) ``video`` is ``(B, 3, H, W)`` images.
* ``audio (B, 1, F, n_mels)`` log-mel.
* ``text_ids (B, K, L)`` or ``(B, L)`` int64 (0 = padding), ``text_mask`` of the same shape (default ``ids != 0``).

Outputs: backbone features ``f_v (B, d_v)``, ``f_a (B, d_a)``, ``f_t (B, K, d_t)`` and the embeddings
``z_{m}_{space}`` of the graph (unnormalised; text keeps its K axis): ``fac``: ``z_v_va, z_v_vat, z_a_va,
z_t_vat`` and, in eval mode only, ``z_a_vat``; ``shared``: ``z_v_vat, z_a_vat, z_t_vat``; ``disjoint``:
``z_v_va, z_v_vt, z_a_va, z_t_vt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import get_backbone, resolve
from ..config import Config, apply_overrides, get_config
from ..graphs import get_graph
from ..graphs import space_for as _space_for
from .audio_resnet import audio_resnet
from .deflation import deflate
from .heads import EmbeddingGraph
from .layers import NormLayer, batch_norm, count_parameters, init_like_haiku
from .text import TextTower

# The forward arguments that carry each modality (v = video, a = audio, t = text).
MODALITY_INPUTS: dict[str, tuple[str, ...]] = {"v": ("video",), "a": ("audio",), "t": ("text_ids", "text_mask")}
# The parts of the network, as ``parameter_counts`` reports them.
COMPONENTS = ("video_backbone", "audio_backbone", "text_backbone", "heads")


def model_inputs(batch: Mapping[str, Any], modalities: str = "vat") -> dict[str, Any]:
    """The entries of ``batch`` that ``MMV.forward`` takes for ``modalities`` (video always, audio, text)."""
    keys = [k for m in dict.fromkeys("v" + modalities) for k in MODALITY_INPUTS[m]]
    return {k: batch[k] for k in keys if k in batch}


def build_video_backbone(cfg: Config, norm_layer: NormLayer | None = None) -> nn.Module:
    """The video backbone a config asks for (``model.video_backbone``, an entry of
    :data:`mmv_lite.backbones.BACKBONES`); ``norm_layer`` as in :class:`MMV` (default: the entry's BatchNorm)."""
    m = cfg.model
    entry = get_backbone(m.video_backbone)
    net = resolve(entry.build)(cfg, norm_layer or batch_norm(entry.norm_dims, m.bn_eps, m.bn_momentum))
    if not isinstance(getattr(net, "out_dim", None), int):
        raise TypeError(f"the builder of video backbone {m.video_backbone!r} gave a network without an int out_dim")
    return net


class MMV(nn.Module):
    """The MMV network for one config. ``model.cfg`` is its :class:`~mmv_lite.config.Config`.

    Sub-modules: ``video_backbone``, ``audio_backbone``, ``text_backbone`` (:class:`TextTower`),
    ``heads`` (:class:`EmbeddingGraph`, heads in ``heads.heads[<paper name>]``) and, in image mode only,
    ``image_backbone`` (a deflated video backbone).

    Every BatchNorm has the config's ``model.bn_eps`` and ``model.bn_momentum``; ``sync_bn`` makes them
    ``nn.SyncBatchNorm`` (statistics over every process of a multi-GPU run, the paper's cross-replica BatchNorm).
    """

    def __init__(self, cfg: Config, word_vectors: torch.Tensor | np.ndarray, sync_bn: bool = False):
        super().__init__()
        self.cfg = cfg
        m = cfg.model

        def norm(dims: int) -> NormLayer:
            return batch_norm(dims, m.bn_eps, m.bn_momentum, sync=sync_bn)

        self.video_backbone = build_video_backbone(cfg, norm(get_backbone(m.video_backbone).norm_dims))
        self.audio_backbone = audio_resnet(depth=m.audio_depth, width=m.audio_width, norm_layer=norm(2))
        self.text_backbone = TextTower(word_vectors, out_dim=m.text_dim)
        if self.text_backbone.word_dim != cfg.data.word_dim:
            raise ValueError(
                f"word_vectors have {self.text_backbone.word_dim} columns but data.word_dim={cfg.data.word_dim}"
            )
        self.heads = EmbeddingGraph(
            m.graph,
            d_v=self.video_backbone.out_dim,
            d_a=self.audio_backbone.out_dim,
            d_t=m.text_dim,
            d_va=m.d_va,
            d_vt=m.d_vt,
            d_vat=m.d_vat,
            head=m.head,
            norm_layer=norm(1),
        )
        init_like_haiku(self.text_backbone)
        init_like_haiku(self.heads)
        self.image_backbone: nn.Module | None = None

    # ----------------------------------------------------------------------------------------- the graph
    @property
    def graph(self) -> str:
        return self.cfg.model.graph

    def space_for(self, m1: str, m2: str) -> str:
        """Space in which modalities ``m1`` and ``m2`` (``"v"``, ``"a"``, ``"t"``) are compared in this graph."""
        return _space_for(self.graph, m1, m2)

    # ----------------------------------------------------------------------------------------- forward
    def forward(
        self,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        text_ids: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Features and embeddings of the modalities given (see the module docstring for shapes and keys)."""
        out: dict[str, torch.Tensor] = {}
        if video is not None:
            out["f_v"] = self._video_features(video)
            out.update(self.heads.embed("v", out["f_v"]))
        if audio is not None:
            out["f_a"] = self.audio_backbone(audio)
            out.update(self.heads.embed("a", out["f_a"]))
        if text_ids is not None:
            out["f_t"] = self.text_backbone(text_ids, text_mask)
            out.update(self.heads.embed("t", out["f_t"]))
        elif text_mask is not None:
            raise ValueError("MMV.forward: text_mask given without text_ids")
        return out

    def _video_features(self, video: torch.Tensor) -> torch.Tensor:
        if self.image_backbone is not None:
            if video.dim() != 4:
                raise ValueError(
                    f"the model is in image mode and expects images (B, 3, H, W), got shape {tuple(video.shape)}; "
                    "call model.set_image_mode(None) to go back to video"
                )
            return self.image_backbone(video)
        if video.dim() != 5:
            raise ValueError(
                f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}; for images (B, 3, H, W) switch the "
                "model to image mode first: model.set_image_mode(True) (naive deflation) or model.set_image_mode(net)"
            )
        return self.video_backbone(video)

    def embed_video(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """``video (B, 3, T, H, W)`` (images ``(B, 3, H, W)`` in image mode) -> ``{"f_v", "z_v_*"}``."""
        return self.forward(video=video)

    def embed_audio(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """``audio (B, 1, F, n_mels)`` -> ``{"f_a", "z_a_*"}``."""
        return self.forward(audio=audio)

    def embed_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``text_ids (B, K, L)`` or ``(B, L)`` -> ``{"f_t", "z_t_*"}`` with the same leading axes."""
        return self.forward(text_ids=text_ids, text_mask=text_mask)

    def embed_image(self, images: torch.Tensor, deflated: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """``images (B, 3, H, W)`` -> ``{"f_v", "z_v_*"}`` through a deflated video backbone.

        Uses ``deflated`` if given, else the model's image backbone (:meth:`set_image_mode`).
        """
        net = deflated if deflated is not None else self.image_backbone
        if net is None:
            raise ValueError(
                "embed_image needs a deflated network: call model.set_image_mode(True) (naive deflation), "
                "model.set_image_mode(calibrated_net), or pass deflated=..."
            )
        if images.dim() != 4:
            raise ValueError(f"embed_image expects images (B, 3, H, W), got shape {tuple(images.shape)}")
        f_v = net(images)
        return {"f_v": f_v, **self.heads.embed("v", f_v)}

    # ----------------------------------------------------------------------------------------- image mode
    def set_image_mode(self, image_backbone: nn.Module | bool | None = True) -> MMV:
        """Switch the video input between clips and images; one call toggles it.

        ``True``: images go through a naive deflation of ``video_backbone`` (``deflation.deflate``, with the config's
        ``model.deflation_alpha``);
        a module: that image network (e.g. one tuned with ``calibrate_deflated_bn``);
        ``None`` / ``False``: back to video. In image mode ``forward(video=images)`` takes ``(B, 3, H, W)`` and
        returns the same keys as for video. The image network is a registered sub-module (it follows
        ``.to()``/``.eval()`` and appears in the state dict as ``image_backbone.*`` while set). Returns ``self``.
        """
        if image_backbone is True:
            ref = next(self.video_backbone.parameters())
            image_backbone = deflate(self.video_backbone, alpha=self.cfg.model.deflation_alpha).to(ref.device)
            image_backbone.train(self.training)
        elif image_backbone is False:
            image_backbone = None
        if image_backbone is not None and not isinstance(image_backbone, nn.Module):
            raise TypeError(f"set_image_mode expects True, None or an nn.Module, got {type(image_backbone).__name__}")
        self.image_backbone = image_backbone
        return self

    @property
    def image_mode(self) -> bool:
        return self.image_backbone is not None

    # ----------------------------------------------------------------------------------------- similarity
    def similarity(self, out_a: dict[str, torch.Tensor], out_b: dict[str, torch.Tensor], m1: str, m2: str):
        """Cosine similarity between modality ``m1`` of ``out_a`` and ``m2`` of ``out_b``, in their common space.

        ``out_a``/``out_b`` are ``forward`` outputs. Embeddings ``(..., D)`` are L2-normalised; the result has shape
        ``lead_a + lead_b``, e.g. video ``(B1, D)`` x text ``(B2, K, D)`` -> ``(B1, B2, K)``.
        Raises ``ValueError`` when the pair has no common space in this graph.
        """
        space = self.space_for(m1, m2)
        za, zb = _pick(out_a, m1, space, self.graph), _pick(out_b, m2, space, self.graph)
        za, zb = F.normalize(za, dim=-1), F.normalize(zb, dim=-1)
        lead_a, lead_b = za.shape[:-1], zb.shape[:-1]
        sim = za.reshape(-1, za.shape[-1]) @ zb.reshape(-1, zb.shape[-1]).T
        return sim.view(*lead_a, *lead_b)


def _pick(out: dict[str, torch.Tensor], m: str, space: str, graph: str) -> torch.Tensor:
    key = f"z_{m}_{space}"
    if key not in out:
        head = get_graph(graph).head_of(key)
        hint = ""
        if head is not None and m in head.eval_only:
            hint = f" (in the {graph} graph {key} is computed only in eval mode: call model.eval() first)"
        raise KeyError(f"{key} is not in the model output (keys: {sorted(out)}){hint}")
    return out[key]


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable parameters of each part of an :class:`MMV` (the frozen word vectors excluded).

    Works on a model built on the ``meta`` device (no memory used), which is how paper-size models are counted.
    """
    out = {}
    for name in COMPONENTS:
        part = getattr(model, name, None)
        if part is None:
            raise ValueError(f"model has no {name!r}: expected an mmv_lite MMV network")
        out[name] = count_parameters(part)
    return out


def build_model(
    preset: str | Config = "lite",
    graph: str | None = None,
    word_vectors: torch.Tensor | np.ndarray | None = None,
    vocab_size: int | None = None,
    sync_bn: bool = False,
    **overrides: Any,
) -> MMV:
    """Build an :class:`MMV` from a preset name or a :class:`Config`.

    Args:
        preset: ``"lite"``, ``"s3dg"``, ``"tsm_r50"``, ``"tsm_r50x2"`` or a ``Config`` (never modified).
        graph: a name of :data:`mmv_lite.graphs.GRAPHS` (default: the config's ``model.graph``).
        word_vectors: the frozen word matrix ``(V, data.word_dim)``, row 0 = padding. If ``None``, a zero matrix of
            ``(vocab_size or 1, word_dim)`` rows stands in (a checkpoint's state dict then fills it).
        vocab_size: rows of the placeholder matrix when ``word_vectors`` is None.
        sync_bn: ``nn.SyncBatchNorm`` everywhere (several GPUs under ``torchrun``).
        **overrides: config fields, as in :func:`~mmv_lite.config.apply_overrides` (``video_width=0.5``,
            ``**{"model.d_va": 64}``).
    """
    if graph is not None:
        overrides = {**overrides, "model.graph": graph}
    if isinstance(preset, Config):
        cfg = apply_overrides(preset, overrides)
    elif isinstance(preset, str):
        cfg = get_config(preset, **overrides)
    else:
        raise TypeError(f"build_model: preset must be a preset name or a Config, got {type(preset).__name__}")
    if word_vectors is None:
        word_vectors = torch.zeros(vocab_size or 1, cfg.data.word_dim)
    elif vocab_size is not None and len(word_vectors) != vocab_size:
        raise ValueError(f"build_model: vocab_size={vocab_size} but word_vectors has {len(word_vectors)} rows")
    return MMV(cfg, word_vectors, sync_bn=sync_bn)
