"""Configurations: one dataclass per stage, and the named presets.

A paper-size model and a laptop-size model are the same code with different
numbers: every size lives here, once, as data.

    >>> cfg = get_config("lite")                      # trains on 2 CPU cores in minutes
    >>> cfg = get_config("s3dg", graph="disjoint")    # the paper's S3D-G, another graph
    >>> cfg = get_config("lite", **{"train.steps": 50})

Presets
-------
``lite``       small S3D-G + small audio ResNet, 8 frames at 56 px: the notebooks' model.
``s3dg``       S3D-G, 32 frames at 10 fps, 200 x 200 crops, 48 kHz audio (the paper).
``tsm_r50``    TSM-ResNet50, same data settings.
``tsm_r50x2``  TSM-ResNet50x2, same data settings.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

# The temperature of every contrastive loss in the paper (MMV_REFERENCE section 3).
TEMPERATURE = 0.07

GRAPHS = ("fac", "shared", "disjoint")
MODALITY_SETS = ("va", "vt", "vat")

# Which space each pair of modalities is compared in, per embedding graph (MMV_REFERENCE section 1).
# v = video, a = audio, t = text. A pair missing from a graph has no common space there.
# Embedding keys follow the paper: the embedding of modality m in space s is ``f"z_{m}_{s}"``.
SPACES: dict[str, dict[frozenset, str]] = {
    "fac": {frozenset("va"): "va", frozenset("vt"): "vat", frozenset("at"): "vat"},
    "shared": {frozenset("va"): "vat", frozenset("vt"): "vat", frozenset("at"): "vat"},
    "disjoint": {frozenset("va"): "va", frozenset("vt"): "vt"},
}


def space_for(graph: str, m1: str, m2: str) -> str:
    """The space in which modalities ``m1`` and ``m2`` ("v", "a", "t") are compared.

    >>> space_for("fac", "v", "t")
    'vat'
    """
    if graph not in SPACES:
        raise ValueError(f"unknown graph {graph!r}; expected one of {GRAPHS}")
    pair = frozenset((m1, m2))
    if len(pair) != 2 or not pair <= set("vat"):
        raise ValueError(f"modalities must be two different letters of 'v', 'a', 't'; got {m1!r}, {m2!r}")
    if pair not in SPACES[graph]:
        raise ValueError(
            f"in the {graph!r} graph {m1} and {m2} share no space "
            f"(its spaces: {sorted(set(SPACES[graph].values()))}); use the 'fac' or 'shared' graph to compare them"
        )
    return SPACES[graph][pair]


def embedding_key(graph: str, m: str, other: str) -> str:
    """Key of modality ``m``'s embedding when compared with ``other``, e.g. ``'z_v_va'``."""
    return f"z_{m}_{space_for(graph, m, other)}"


@dataclass
class DataConfig:
    """How a training example is cut out of a video file.

    A clip spans ``num_frames / fps`` seconds; the audio window spans exactly the same time.
    """

    num_frames: int = 32  # T: frames per clip
    fps: float = 10.0  # frames are sampled at this rate
    crop_size: int = 200  # H = W of the network input
    resize_to: int = 224  # shorter side before cropping (eval: centre crop)
    sample_rate: int = 48_000  # audio is resampled to this rate
    n_fft: int = 2048  # STFT window (samples)
    hop_length: int = 1024  # STFT hop (samples)
    n_mels: int = 80
    f_min: float = 80.0
    f_max: float = 7600.0
    max_words: int = 16  # narration tokens kept per caption (pad / truncate)
    num_candidates: int = 4  # K: narrations per clip for MIL-NCE (nearest in time)
    word_dim: int = 300  # size of the frozen word vectors
    crop_min_scale: float = 0.35  # train: random resized crop keeps 35-100% of the frame area (scale jitter)
    hflip: bool = True  # train: horizontal flip, the same for every frame of a clip
    color_jitter: float = 0.3  # train: brightness / contrast / saturation jitter (0 = off; hue is never jittered)

    @property
    def clip_seconds(self) -> float:
        return self.num_frames / self.fps


@dataclass
class ModelConfig:
    """The network: backbones, heads and the embedding graph.

    ``video_backbone`` is ``"s3dg"`` or ``"tsm_resnet"``; ``width`` multiplies every channel count
    of the video backbone (TSM-ResNet50x2 is ``tsm_resnet`` with ``video_depth=50, video_width=2``).
    """

    video_backbone: str = "s3dg"
    video_depth: int = 50  # TSM-ResNet depth (ignored by S3D-G)
    video_width: float = 1.0  # channel multiplier of the video backbone
    shift_fraction: float = 0.125  # TSM: fraction of channels shifted each way (0 = plain ResNet)
    audio_depth: int = 50  # ResNet-V2 depth of the audio backbone
    audio_width: float = 1.0  # channel multiplier of the audio backbone
    text_dim: int = 2048  # per-token Linear(word_dim -> text_dim) + ReLU + max
    d_va: int = 512  # fine space S_va (FAC, disjoint)
    d_vt: int = 256  # S_vt (disjoint only)
    d_vat: int = 256  # coarse space S_vat (FAC), or the single space (shared)
    graph: str = "fac"  # "fac" | "shared" | "disjoint"
    head: str = "mlp"  # video head form: "mlp" (released) or "linear" (ablation)
    # S3D-G first convolution: "rgb" (7x7x7, stride 2) or "space_to_depth" (the released checkpoint's stem,
    # an equivalent 4x8x8 stride-2 convolution on RGB frames; see mmv_lite.official).
    video_stem: str = "rgb"
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


@dataclass
class TrainConfig:
    """Optimisation: Adam, linear warm-up then half-period cosine decay (MMV_REFERENCE section 4)."""

    modalities: str = "vat"  # "va" | "vt" | "vat": which loss terms are on
    batch_size: int = 32
    steps: int = 500_000
    lr: float = 2e-3
    warmup_steps: int = 5_000
    weight_decay: float = 0.0
    weight_va: float = 1.0  # lambda_va
    weight_vt: float = 1.0  # lambda_vt
    temperature: float = TEMPERATURE
    num_workers: int = 2
    eval_every: int = 5_000  # steps between validation retrieval runs
    checkpoint_every: int = 1_000  # steps between checkpoints
    log_every: int = 50
    seed: int = 0
    amp: bool = True  # mixed precision on CUDA (bf16 where supported)
    amp_dtype: str = "auto"  # "auto" (CUDA only: bf16, else fp16), "bf16" (any device, CPU too), "fp16" (CUDA)
    sync_bn: bool = True  # several GPUs: SyncBatchNorm, the paper's cross-replica BatchNorm


@dataclass
class Config:
    preset: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Rebuild a config saved with :meth:`to_dict` (unknown keys are an error)."""
        try:
            return cls(
                preset=d.get("preset", "custom"),
                data=DataConfig(**d.get("data", {})),
                model=ModelConfig(**d.get("model", {})),
                train=TrainConfig(**d.get("train", {})),
            )
        except TypeError as e:
            raise ValueError(f"config dictionary does not match mmv_lite.config.Config: {e}") from e


def _paper(name: str, **model: Any) -> Config:
    return Config(preset=name, data=DataConfig(), model=ModelConfig(**model), train=TrainConfig())


PRESETS: dict[str, Config] = {
    "lite": Config(
        preset="lite",
        data=DataConfig(
            num_frames=8,
            fps=5.0,
            crop_size=56,
            resize_to=64,
            sample_rate=16_000,
            n_fft=512,
            hop_length=256,
            n_mels=80,
            f_min=80.0,
            f_max=7600.0,
            max_words=16,
            # K = 1: a 1.6 s clip sits inside one 2-5 s narration; the next-nearest ones already talk about other
            # objects, and with 42 narrated videos a bag of them drowns the signal (docs/BENCHMARKS.md).
            num_candidates=1,
        ),
        model=ModelConfig(
            video_backbone="s3dg",
            video_width=0.25,
            audio_depth=26,
            audio_width=0.25,
            text_dim=256,
            d_va=128,
            d_vt=64,
            d_vat=64,
        ),
        train=TrainConfig(
            batch_size=32,
            steps=600,
            lr=5e-3,  # above the paper's 2e-3: 600 small steps from scratch learn faster with it
            warmup_steps=30,
            num_workers=2,
            eval_every=200,
            checkpoint_every=100,
            log_every=10,
            weight_va=1.0,
            weight_vt=1.0,
        ),
    ),
    "s3dg": _paper("s3dg", video_backbone="s3dg"),
    "tsm_r50": _paper("tsm_r50", video_backbone="tsm_resnet", video_depth=50, video_width=1.0),
    "tsm_r50x2": _paper("tsm_r50x2", video_backbone="tsm_resnet", video_depth=50, video_width=2.0),
}


def get_config(preset: str = "lite", **overrides: Any) -> Config:
    """A fresh copy of a preset, with overrides.

    Overrides are either top-level model/train/data field names (``graph="shared"``,
    ``steps=10``) when the name is unambiguous, or dotted (``**{"train.lr": 1e-3}``).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    cfg = copy.deepcopy(PRESETS[preset])
    sections = {"data": cfg.data, "model": cfg.model, "train": cfg.train}
    for key, value in overrides.items():
        if "." in key:
            sec, name = key.split(".", 1)
            if sec not in sections:
                raise ValueError(f"override {key!r}: section must be one of {sorted(sections)}")
            targets = [sections[sec]]
        else:
            name = key
            targets = [s for s in sections.values() if name in {f.name for f in dataclasses.fields(s)}]
            if len(targets) != 1:
                where = "no section" if not targets else "several sections; use 'section.name'"
                raise ValueError(f"override {key!r} matches {where}")
        target = targets[0]
        if name not in {f.name for f in dataclasses.fields(target)}:
            raise ValueError(f"override {key!r}: {type(target).__name__} has no field {name!r}")
        setattr(target, name, value)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Raise ``ValueError`` naming the field when a config cannot work."""
    m, t, d = cfg.model, cfg.train, cfg.data
    if m.graph not in GRAPHS:
        raise ValueError(f"model.graph={m.graph!r}; expected one of {GRAPHS}")
    if m.video_backbone not in ("s3dg", "tsm_resnet"):
        raise ValueError(f"model.video_backbone={m.video_backbone!r}; expected 's3dg' or 'tsm_resnet'")
    if m.video_stem not in ("rgb", "space_to_depth"):
        raise ValueError(f"model.video_stem={m.video_stem!r}; expected 'rgb' or 'space_to_depth'")
    if m.video_stem == "space_to_depth" and m.video_backbone != "s3dg":
        raise ValueError("model.video_stem='space_to_depth' exists only for model.video_backbone='s3dg'")
    if m.head not in ("mlp", "linear"):
        raise ValueError(f"model.head={m.head!r}; expected 'mlp' or 'linear'")
    if t.modalities not in MODALITY_SETS:
        raise ValueError(f"train.modalities={t.modalities!r}; expected one of {MODALITY_SETS}")
    if m.graph == "disjoint" and t.modalities == "vat":
        pass  # fine: va and vt terms live in separate spaces
    if t.amp_dtype not in ("auto", "bf16", "fp16"):
        raise ValueError(f"train.amp_dtype={t.amp_dtype!r}; expected 'auto', 'bf16' or 'fp16'")
    if d.num_frames < 1 or d.fps <= 0:
        raise ValueError("data.num_frames must be >= 1 and data.fps > 0")
    if t.batch_size < 2:
        raise ValueError("train.batch_size must be >= 2: contrastive losses need negatives")
