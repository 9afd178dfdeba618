"""The arms of the findings (:mod:`mmv_lite.experiments.findings`): pretraining runs of the ``lite`` preset on the
world stream that differ in one thing, trained with one equal :class:`Budget`, measured on the world's fixed
held-out sets (:func:`measure`) and cached per arm and seed (:func:`run_arm`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import load_model
from ..config import Config, budget_overrides, get_config
from ..data.world import WorldClips, world_word_vectors
from ..embedding import embed_dataset
from ..files import atomic_write
from ..images import image_features
from ..models.deflation import CALIB_STEPS
from ..models.mmv import build_model
from ..probes import attach_factors, factor_probes, probe_suite
from ..retrieval import chance_levels, zero_shot_retrieval
from ..runtime import machine
from ..train import WORLD, train

# --------------------------------------------------------------------------------------------------------------------
# What is trained: the arms
# --------------------------------------------------------------------------------------------------------------------

RANDOM_INIT = "random_init"  # the lite network at random initialisation: nothing is trained
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
    # Arms of the conditions (CONDITIONS below): the modality checks with aligned narrations; FAC and shared with a
    # common space too narrow for every factor; deflation of a 3D CNN (the earlier lite S3D-G: x0.25, the official
    # 7-frame stride-2 stem, whose temporal padding reaches across an 8-frame clip).
    "vt_aligned": {"train.modalities": "vt", "model.graph": "disjoint", "world.misalignment": 0.0},
    "vat_fac_narrow": {"model.d_vat": 8},
    "vat_shared_narrow": {"model.graph": "shared", "model.d_vat": 8},
    "s3dg_vat_fac": {"model.video_backbone": "s3dg", "model.video_width": 0.25, "model.video_stem_stride": 2},
    # Trained as vat_fac; deflated with the shifted channels scaled by 0.3 (DeepMind's later TSM code) instead of 1.
    "vat_fac_alpha03": {"model.deflation_alpha": 0.3},
}
# The arms whose single-frame (deflation) probes are measured.
IMAGE_ARMS = ("vat_fac", RANDOM_INIT, "s3dg_vat_fac", "vat_fac_alpha03")
PROBED = ("kind", "motion", "colour", "size")  # ground-truth factors read by the linear probes
PROBE_FEATURES = ("f_v", "z_v_va", "z_v_vat")


@dataclass(frozen=True)
class Budget:
    """Equal for every arm: the training length and the size of the held-out sets."""

    steps: int = 800  # the main job's (the lite preset's) length: the vat_fac arm is the main job without validation
    batch_size: int = 32
    warmup_steps: int = 30
    lr: float = 2e-3
    num_probe: int = 1000
    num_eval: int = 500
    calib_steps: int = CALIB_STEPS  # only the image arms calibrate (run_key)
    num_workers: int = 1
    config: tuple[tuple[str, Any], ...] = ()  # overrides for every arm, e.g. smaller clips in the quick variant


FULL = Budget()
# The quick variant checks the pipeline, not the science: a few steps on small clips and small held-out sets.
QUICK = Budget(
    steps=3,
    batch_size=8,
    warmup_steps=1,
    num_probe=48,
    num_eval=24,
    calib_steps=2,
    num_workers=0,
    config=(("data.num_frames", 4), ("data.crop_size", 24)),
)


def arm_config(arm: str, seed: int, budget: Budget) -> Config:
    """The lite preset with the budget, the arm's changes and the seed; no periodic validation or checkpoints."""
    over = {
        **budget_overrides(budget, seed),
        "world.num_probe": budget.num_probe,
        "world.num_eval": budget.num_eval,
        **dict(budget.config),
        **ARMS.get(arm, {}),
    }
    return get_config("lite", **over)


# --------------------------------------------------------------------------------------------------------------------
# What is measured: one run's metrics
# --------------------------------------------------------------------------------------------------------------------


class HeldOut:
    """The world's fixed probe, val and test sets, rendered once and kept in memory (shared by every arm: the narration
    dials never change them)."""

    def __init__(self, budget: Budget):
        cfg = arm_config("vat_fac", 0, budget)
        self.words = world_word_vectors()
        self.sets = {
            name: _InMemory(WorldClips(cfg.data, split, cfg.world, self.words))
            for name, split in (("train", "probe"), ("val", "val"), ("test", "test"))
        }


class _InMemory(torch.utils.data.Dataset):
    def __init__(self, ds: WorldClips):
        self.items = [ds[i] for i in range(len(ds))]
        self.factors = ds.factors

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def measure(model: torch.nn.Module, held: HeldOut, images: bool, budget: Budget, seed: int) -> dict[str, float]:
    """Flat metrics of one network on the held-out sets: ``t2v_R@10``, ``v2a_R@1``, ``a2t_R@10`` (test, with
    ``chance_*``), ``<feature>.<factor>`` probe accuracies (``f_v.kind``, ``z_v_va.size``, ...; fitted on the probe set,
    C chosen on val, scored on test, with ``chance_<feature>.<factor>``), and with ``images`` ``image_<mode>`` (the
    kind from single frames through the deflated network) and the calibration's L1 gap."""
    embs = {s: attach_factors(embed_dataset(model, ds, 32, keep_frames=images), ds) for s, ds in held.sets.items()}
    graph = model.cfg.model.graph
    flat: dict[str, float] = {}
    retrieval, chance = zero_shot_retrieval(embs["test"], graph), chance_levels(embs["test"], graph)
    for d, k in (("t2v", "R@10"), ("v2t", "R@10"), ("v2a", "R@1"), ("v2a", "R@10"), ("a2t", "R@10")):
        if d in retrieval:
            flat[f"{d}_{k}"], flat[f"chance_{d}_{k}"] = retrieval[d][k], chance[d][k]
    probes = factor_probes(embs["train"], embs["val"], embs["test"], features=PROBE_FEATURES, factors=PROBED, seed=seed)
    for feature, by_factor in probes.items():
        for factor, res in by_factor.items():
            flat[f"{feature}.{factor}"], flat[f"chance_{feature}.{factor}"] = res["accuracy"], res["chance"]
    if images:
        report = image_features(model, embs, calib_steps=budget.calib_steps, seed=seed)
        for task, res in probe_suite(embs["train"], embs["val"], embs["test"], _IMAGE_TASKS, seed).items():
            flat[task], flat[f"chance_{task}"] = res["accuracy"], res["chance"]
        by_frame = factor_probes(embs["train"], embs["val"], embs["test"], _IMAGE_FEATURES, ("colour",), seed)
        for feature, by_factor in by_frame.items():  # the colour from one frame, too (f_image_naive.colour, ...)
            for factor, res in by_factor.items():
                flat[f"{feature}.{factor}"], flat[f"chance_{feature}.{factor}"] = res["accuracy"], res["chance"]
        flat["deflation_l1_before"], flat["deflation_l1_after"] = report["before"], report["after"]
        flat |= {f"deflation_l1_step{s}": v for s, v in report["by_step"].items()}  # has the calibration converged?
    return flat


_IMAGE_TASKS = ("image_naive", "image_calibrated", "image_static")
_IMAGE_FEATURES = ("f_image_naive", "f_image_calibrated", "f_image_static")


def run_key(arm: str, seed: int, budget: Budget) -> dict[str, Any]:
    """What a cached run must match: the arm, its changes, the seed and the budget (its calibration steps only for
    the image arms, the only ones that calibrate)."""
    spent = {k: v for k, v in asdict(budget).items() if k != "calib_steps" or arm in IMAGE_ARMS}
    return json.loads(json.dumps({"arm": arm, "changes": ARMS.get(arm, {}), "budget": spent, "seed": seed}))


def run_arm(
    arm: str, seed: int, budget: Budget, held: HeldOut, out_dir: str | Path, force: bool = False, log=print
) -> dict[str, Any]:
    """Train (unless ``arm`` is the random initialisation) and measure one arm; cached in
    ``<out_dir>/runs/<arm>-seed<seed>/result.json``. Returns ``{"arm", "seed", "flat", "train_seconds",
    "eval_seconds"}``."""
    run_dir = Path(out_dir) / "runs" / f"{arm}-seed{seed}"
    cache = run_dir / "result.json"
    key = run_key(arm, seed, budget)
    if cache.exists() and not force:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            log(f"  {arm} seed {seed}: cached")
            return {**saved, "cached": True}
    cfg = arm_config(arm, seed, budget)
    t0 = time.perf_counter()
    if arm == RANDOM_INIT:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = build_model(cfg, word_vectors=held.words.as_tensor())
    else:
        # Every arm of a seed sees the same clips: the pictures (and most sounds) are rendered once, by the first.
        stream = WorldClips(cfg.data, "train", cfg.world, held.words, cache_dir=Path(out_dir) / "stream_cache")
        summary = train(cfg, WORLD, run_dir, datasets=(stream, None, held.words), progress=False, verbose=False)
        model, _, _ = load_model(summary["checkpoint"])
        Path(summary["checkpoint"]).unlink()  # the measurements below are what is kept
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = measure(model.eval(), held, arm in IMAGE_ARMS, budget, seed)
    result = {
        "key": key,
        "arm": arm,
        "seed": seed,
        "flat": flat,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - t0,
        "machine": machine(),
    }
    atomic_write(cache, json.dumps(result, indent=2))
    log(f"  {arm} seed {seed}: train {train_seconds:.0f} s, eval {result['eval_seconds']:.0f} s")
    return result
