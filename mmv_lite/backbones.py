"""The video backbones of MMV, declared once as a table (like :mod:`mmv_lite.graphs`).

An entry of :data:`BACKBONES` says everything the rest of the library needs of a video network:

* ``network``: its class (what :func:`mmv_lite.models.deflation.deflate` looks a given network up by);
* ``build(cfg, norm_layer) -> nn.Module``: the network a config asks for (``(B, 3, T, H, W) -> (B, out_dim)``; the
  feature dimension ``out_dim`` is an attribute of the built network, which the heads read);
* ``norm_dims``: the BatchNorm of its layers (3 for 3D convolutions, 2 for per-frame ones);
* ``deflate(net, alpha) -> nn.Module``: its image network ``(B, 3, H, W) -> (B, out_dim)`` (MMV section 3.3);
* ``check(model_config) -> str | None``: what a config may not ask of this backbone (None: nothing wrong), read by
  :func:`mmv_lite.config.validate` before anything is built.

``network``, ``build`` and ``deflate`` are callables, or ``"module:attribute"`` names imported on first use:
:mod:`mmv_lite.config` reads this table, and stays free of torch. Adding a backbone is one module (the network,
its builder and its deflation) and one entry here (``tests/test_backbones.py`` registers a made-up one and trains,
evaluates and deflates it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Ref = Callable[..., Any] | type | str


@dataclass(frozen=True)
class Backbone:
    """One video backbone (module docstring)."""

    network: Ref
    build: Ref
    deflate: Ref
    norm_dims: int
    check: Callable[[Any], str | None] = lambda m: None


def _s3dg_check(m: Any) -> str | None:
    if m.deflation_alpha != 1.0:  # checked before training, not when the image network is first made (after it)
        return (
            f"model.deflation_alpha={m.deflation_alpha!r} scales a TSM-ResNet's shifted channels; "
            f"model.video_backbone={m.video_backbone!r} has none (keep 1.0)"
        )
    return None


def _tsm_check(m: Any) -> str | None:
    if m.video_stem == "space_to_depth":
        return "model.video_stem='space_to_depth' exists only for model.video_backbone='s3dg'"
    return None


BACKBONES: dict[str, Backbone] = {
    "s3dg": Backbone(
        network="mmv_lite.models.s3dg:S3DG",
        build="mmv_lite.models.s3dg:build_s3dg",
        deflate="mmv_lite.models.s3dg:deflate_s3dg",
        norm_dims=3,
        check=_s3dg_check,
    ),
    "tsm_resnet": Backbone(
        network="mmv_lite.models.tsm_resnet:TSMResNet",
        build="mmv_lite.models.tsm_resnet:build_tsm_resnet",
        deflate="mmv_lite.models.tsm_resnet:deflate_tsm_resnet",
        norm_dims=2,
        check=_tsm_check,
    ),
}


def get_backbone(name: str) -> Backbone:
    """The entry of ``name``; a ``ValueError`` naming the choices for any other."""
    if name not in BACKBONES:
        raise ValueError(f"model.video_backbone={name!r}; expected one of {tuple(BACKBONES)}")
    return BACKBONES[name]


def resolve(ref: Ref) -> Any:
    """A callable or class of an entry: itself, or the ``"module:attribute"`` it names, imported."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
