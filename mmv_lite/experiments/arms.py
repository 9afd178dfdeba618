"""The arms every experiment compares: a name and the config overrides of the ``lite`` preset that make it.

An arm differs from ``vat_fac`` (the main job) in one thing: the loss, the embedding graph, the modalities, one dial
of the sample world, or how it is trained at all. Two arms are not pretrained: :data:`RANDOM_INIT`, the network at
random initialisation, and :data:`SUPERVISED`, the backbones trained on the ground-truth labels with the same budget
(:mod:`mmv_lite.experiments.supervised`). Every arm is trained with one :class:`~mmv_lite.experiments.budget.Budget`
and measured by :func:`~mmv_lite.experiments.measure.measure`; :func:`run_key` is what a cached run must match.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..config import Config, budget_overrides, get_config
from .budget import Budget

RANDOM_INIT = "random_init"  # the lite network at random initialisation: nothing is trained
SUPERVISED = "supervised"  # the backbones trained on the ground-truth labels (a reference, not self-supervised)
# Arm name -> config overrides of the lite preset (the default world: misalignment 0.5, the size never said).
ARMS: dict[str, dict[str, Any]] = {
    "vat_fac": {},
    "vat_fac_nce": {"data.num_candidates": 1},
    "vat_fac_aligned": {"world.misalignment": 0.0},
    "vat_fac_nce_aligned": {"world.misalignment": 0.0, "data.num_candidates": 1},
    "vat_shared": {"model.graph": "shared"},
    "vat_fac_size_said": {"world.size_said": 1.0},
    "vat_shared_size_said": {"model.graph": "shared", "world.size_said": 1.0},
    "va": {"train.modalities": "va", "model.graph": "disjoint"},
    "vt": {"train.modalities": "vt", "model.graph": "disjoint"},
    "vat_fac_motion_unsaid": {"world.motion_said": 0.0},
    "vat_fac_shuffled": {"world.text_correspondence": 0.0, "world.av_correspondence": 0.0},
    "vat_fac_offscreen": {"world.av_correspondence": 0.0},
    # Arms of the findings' conditions: the modality checks with aligned narrations; FAC and shared with a common
    # space too narrow for every factor; deflation of a 3D CNN (the earlier lite S3D-G: x0.25, the official 7-frame
    # stride-2 stem, whose temporal padding reaches across an 8-frame clip).
    "vt_aligned": {"train.modalities": "vt", "model.graph": "disjoint", "world.misalignment": 0.0},
    "vat_fac_narrow": {"model.d_vat": 8},
    "vat_shared_narrow": {"model.graph": "shared", "model.d_vat": 8},
    "s3dg_vat_fac": {"model.video_backbone": "s3dg", "model.video_width": 0.25, "model.video_stem_stride": 2},
    # Trained as vat_fac; deflated with the shifted channels scaled by 0.3 (DeepMind's later TSM code) instead of 1.
    "vat_fac_alpha03": {"model.deflation_alpha": 0.3},
    # The third graph of the design tables (Table 1b): a space per pair of modalities.
    "vat_disjoint": {"model.graph": "disjoint"},
}
# The arms whose single-frame (deflation) probes are measured in the world.
IMAGE_ARMS = ("vat_fac", RANDOM_INIT, "s3dg_vat_fac", "vat_fac_alpha03")
PROBED = ("kind", "motion", "colour", "size")  # ground-truth factors of the world read by the linear probes
PROBE_FEATURES = ("f_v", "z_v_va", "z_v_vat")


def check_arm(arm: str) -> None:
    """Raise a one-line ``ValueError`` for a name that is no arm."""
    if arm not in ARMS and arm not in (RANDOM_INIT, SUPERVISED):
        raise ValueError(f"unknown arm {arm!r}; expected one of {[*ARMS, RANDOM_INIT, SUPERVISED]}")


def arm_config(arm: str, seed: int, budget: Budget) -> Config:
    """The lite preset with the budget, the arm's changes and the seed; no periodic validation or checkpoints."""
    check_arm(arm)
    over = {
        **budget_overrides(budget, seed),
        "world.num_probe": budget.num_probe,
        "world.num_eval": budget.num_eval,
        **dict(budget.config),
        **ARMS.get(arm, {}),
    }
    return get_config("lite", **over)


def run_key(arm: str, seed: int, budget: Budget, images: bool | None = None, data: str | None = None) -> dict[str, Any]:
    """What a cached run must match: the arm, its changes, the seed and the budget (its calibration steps only where
    ``images`` are measured, the only runs that calibrate; by default the world's :data:`IMAGE_ARMS`), and for runs
    on a folder of clips the folder (``data``; the world's runs have none)."""
    images = arm in IMAGE_ARMS if images is None else images
    spent = {k: v for k, v in asdict(budget).items() if k != "calib_steps" or images}
    key = {"arm": arm, "changes": ARMS.get(arm, {}), "budget": spent, "seed": seed}
    return json.loads(json.dumps(key if data is None else {**key, "data": data}))
