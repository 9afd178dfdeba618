"""What is measured of one arm: :func:`~mmv_lite.evaluate.evaluate_model` on the source's held-out sets, as flat
metrics (:func:`flat_metrics`) that the findings' checks and the design tables read."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..evaluate import evaluate_model
from .arms import SUPERVISED
from .budget import Budget
from .sources import ClipFolder, World


def measure(
    model: nn.Module, source: World | ClipFolder, arm: str, budget: Budget, seed: int, device: str = "cpu"
) -> dict[str, float]:
    """Flat metrics of one arm's network on ``source``'s held-out sets (:func:`flat_metrics`): zero-shot retrieval
    on the test set (not for the supervised reference, which has no embedding spaces), the source's label and
    factor probes (fitted on its train / probe set, C chosen on val, scored on test), and for the source's
    ``image_arms`` the single-frame probes through the deflated network with the calibration's L1 gap."""
    supervised = arm == SUPERVISED
    result = evaluate_model(
        model,
        source.sets,
        retrieval=not supervised,
        images=arm in source.image_arms,
        calib_steps=budget.calib_steps,
        probe_cs=budget.probe_cs,
        batch_size=32,
        device=device,
        modalities="va" if supervised else source.modalities(model.cfg.train.modalities),
        seed=seed,
        factors=source.factors or False,
        tasks=source.tasks,
    )
    return flat_metrics(result, source.retrieval, source.image_mAP)


def flat_metrics(
    result: dict[str, Any], retrieval: tuple[tuple[str, str], ...] | None = None, image_mAP: bool = True
) -> dict[str, float]:
    """:func:`~mmv_lite.evaluate.evaluate_model`'s nested result as flat keys, each beside its ``chance_<key>``:

    - ``<direction>_<R@k|MedR>`` (``t2v_R@10``, ...; only the ``(direction, metric)`` pairs of ``retrieval`` when
      given);
    - ``probe_<task>`` (``probe_action``, ``probe_sound``: test accuracy %);
    - ``image_<mode>`` and, with ``image_mAP``, ``image_<mode>_mAP`` (the image label from single frames: naive /
      calibrated deflation, the video network on the static clip);
    - ``<feature>.<factor>`` (``f_v.kind``, ``z_v_va.size``, ``f_image_naive.colour``, ...: factor probes);
    - ``deflation_l1_before`` / ``_after`` and ``deflation_l1_step<s>`` (has the calibration converged?).
    """
    flat: dict[str, float] = {}
    found = result.get("retrieval") or {}
    pairs = retrieval or [(d, k) for d in found for k in ("R@1", "R@5", "R@10", "MedR")]
    for d, k in pairs:
        if d in found:
            flat[f"{d}_{k}"], flat[f"chance_{d}_{k}"] = found[d][k], result["chance"][d][k]
    for task, p in (result.get("probes") or {}).items():
        key = task if task.startswith("image_") else f"probe_{task}"
        flat[key], flat[f"chance_{key}"] = p["accuracy"], p["chance"]
        if task.startswith("image_") and image_mAP:
            flat[f"{key}_mAP"], flat[f"chance_{key}_mAP"] = p["mAP"], p["chance_mAP"]
    for feature, by_factor in (result.get("factors") or {}).items():
        for factor, res in by_factor.items():
            flat[f"{feature}.{factor}"], flat[f"chance_{feature}.{factor}"] = res["accuracy"], res["chance"]
    if result.get("deflation"):
        report = result["deflation"]
        flat["deflation_l1_before"], flat["deflation_l1_after"] = report["before"], report["after"]
        flat |= {f"deflation_l1_step{s}": v for s, v in report["by_step"].items()}
    return flat
