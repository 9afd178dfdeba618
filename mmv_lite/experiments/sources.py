"""Where the arms train and are measured: the sample world's stream and fixed held-out sets (:class:`World`, the
findings), or a folder of clips (:class:`ClipFolder`, the design tables on any folder). Either is built once and
shared by every run of an invocation, its evaluation splits held in memory (:class:`InMemory`).

A source tells :func:`~mmv_lite.experiments.measure.measure` what to read: the probe tasks of its labels, the
ground-truth factors, the retrieval metrics kept, and which arms have their single frames measured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import Config, get_config
from ..data import synth
from ..data.clips import ClipDataset
from ..data.text import WordVectors
from ..data.world import WorldClips, world_word_vectors
from ..embedding import window_groups
from ..evaluate import load_eval_datasets
from ..train import WORLD
from .arms import IMAGE_ARMS, PROBE_FEATURES, PROBED, SUPERVISED, arm_config
from .budget import Budget

TEST_WINDOWS = 3  # windows per test segment of a folder of clips, averaged by the action / sound probes


class InMemory(torch.utils.data.Dataset):
    """Every item of an evaluation-mode dataset, rendered or decoded once. Keeps the dataset's ``factors`` and its
    ``windows`` (``(video_id, segment, start)`` per item), so that factor probes and window averaging still work."""

    def __init__(self, ds: torch.utils.data.Dataset):
        self.items = [ds[i] for i in range(len(ds))]  # type: ignore[arg-type]
        if hasattr(ds, "factors"):
            self.factors = ds.factors
        info = window_groups(ds)
        if info is not None:
            self.windows = [_Win(vid, seg, float(it["start"])) for (vid, seg), it in zip(info[0], self.items)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


@dataclass(frozen=True)
class _Win:
    video_id: str
    segment: Any
    start: float


class World:
    """The sample world: every arm trains on the stream, and is measured on the fixed probe, val and test sets
    (shared by every arm: the narration dials never change them) for retrieval, the factors and, for
    :data:`~mmv_lite.experiments.arms.IMAGE_ARMS`, single frames."""

    data = WORLD
    tasks: tuple[str, ...] = ()  # the factors are what the world's probes read
    factors = {PROBE_FEATURES: PROBED, ("f_image_naive", "f_image_calibrated", "f_image_static"): ("colour",)}
    retrieval = (("t2v", "R@10"), ("v2t", "R@10"), ("v2a", "R@1"), ("v2a", "R@10"), ("a2t", "R@10"))
    image_arms = IMAGE_ARMS
    image_mAP = False  # one label per frame (the kind): its accuracy is what the findings read
    num_classes = {"action": len(synth.MOTIONS), "sound": 2 * len(synth.KINDS), "image": len(synth.KINDS)}

    def __init__(self, budget: Budget):
        cfg = arm_config("vat_fac", 0, budget)
        self.words = world_word_vectors()
        self.sets = {
            name: InMemory(WorldClips(cfg.data, split, cfg.world, self.words))
            for name, split in (("train", "probe"), ("val", "val"), ("test", "test"))
        }

    def modalities(self, arm_modalities: str) -> str:
        return "vat"  # every arm's retrieval is compared with chance, text included

    def training_set(self, cfg: Config, out_dir: str | Path) -> torch.utils.data.Dataset:
        """The arm's stream. Every arm of a seed sees the same clips: the pictures (and most sounds) are rendered once,
        by the first, into ``<out_dir>/stream_cache``."""
        return WorldClips(cfg.data, "train", cfg.world, self.words, cache_dir=Path(out_dir) / "stream_cache")


class ClipFolder:
    """A folder of clips (``make-samples`` or your own): the arms train on its train split and are measured on its
    train, val and test splits (at most ``budget.num_eval`` segments each, :data:`TEST_WINDOWS` windows per test
    segment) for retrieval, the action and sound probes and, for ``vat_fac`` and the supervised reference, single
    frames (the design tables' Table 3)."""

    tasks = ("action", "sound")
    factors = None
    retrieval = None  # every direction and metric
    image_arms = ("vat_fac", SUPERVISED)
    image_mAP = True  # Table 3 has an mAP column (PASCAL's)

    def __init__(self, data_dir: str | os.PathLike, budget: Budget):
        self.cfg = get_config("lite", **dict(budget.config))
        self.data = str(data_dir)
        self.words = WordVectors.load(Path(data_dir) / "word_vectors.bin")
        self.train = ClipDataset(data_dir, "train", self.cfg.data, train=True, word_vectors=self.words)
        evals = load_eval_datasets(
            data_dir,
            self.cfg,
            ["train", "val", "test"],
            self.words.vocab,
            self.words.as_tensor(),
            windows={"test": TEST_WINDOWS},
            max_segments=budget.num_eval,
        )
        self.sets = {name: InMemory(ds) for name, ds in evals.items()}
        self.num_classes = {k: len(v) for k, v in self.train.class_names.items()} or None

    def modalities(self, arm_modalities: str) -> str:
        return arm_modalities  # an arm is asked only about the modalities it trained on

    def training_set(self, cfg: Config, out_dir: str | Path) -> torch.utils.data.Dataset:
        """The folder's train split, augmented; read again only for an arm that changes the data settings."""
        if cfg.data == self.cfg.data:
            return self.train
        return ClipDataset(self.data, "train", cfg.data, train=True, word_vectors=self.words)


def make_source(data: str | os.PathLike, budget: Budget) -> World | ClipFolder:
    """``data`` = ``"world"`` (the sample world) or a folder of clips."""
    return World(budget) if str(data) == WORLD else ClipFolder(data, budget)


HeldOut = World  # the findings' name: the world's held-out sets (and its stream)
