"""Configurations: one dataclass per stage, and the named presets.

A paper-size model and a laptop-size model are the same code with different
numbers: every size lives here, once, as data.

    >>> cfg = get_config("lite")                      # trains on 2 CPU cores in minutes
    >>> cfg = get_config("s3dg", graph="disjoint")    # the paper's S3D-G, another graph
    >>> cfg = get_config("lite", **{"train.steps": 50})
    >>> cfg2 = apply_overrides(cfg, {"model.d_va": 64})   # a new config; cfg is unchanged

Presets
-------
``lite``       small TSM-ResNet + small audio ResNet, 8 frames at 40 px, on the sample-world stream: the
               notebooks' model.
``s3dg``       S3D-G, 32 frames at 10 fps, 200 x 200 crops, 48 kHz audio (the paper).
``tsm_r50``    TSM-ResNet50, same data settings.
``tsm_r50x2``  TSM-ResNet50x2, same data settings.
"""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from math import inf, isfinite
from typing import Any

from .backbones import get_backbone
from .graphs import GRAPHS

# The temperature of every contrastive loss in the paper (MMV_REFERENCE section 3).
TEMPERATURE = 0.07

MODALITY_SETS = ("va", "vt", "vat")
SECTIONS = ("data", "model", "train", "world")


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

    ``video_backbone`` names an entry of :data:`mmv_lite.backbones.BACKBONES` (``"s3dg"``, ``"tsm_resnet"``);
    ``width`` multiplies every channel count of the video backbone (TSM-ResNet50x2 is ``tsm_resnet`` with
    ``video_depth=50, video_width=2``).
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
    graph: str = "fac"  # a name of mmv_lite.graphs.GRAPHS: "fac" | "shared" | "disjoint"
    head: str = "mlp"  # video head form: "mlp" (released) or "linear" (ablation)
    # S3D-G first convolution: "rgb" (7x7x7, stride 2) or "space_to_depth" (the released checkpoint's stem,
    # an equivalent 4x8x8 stride-2 convolution on RGB frames; see mmv_lite.official).
    video_stem: str = "rgb"
    # The video backbone's first convolution: spatial stride (official 2; both backbones) and temporal size (S3D-G,
    # official 7). Small frames of small objects need stride 1, or shape is lost in the first layers (BENCHMARKS.md).
    video_stem_stride: int = 2
    video_stem_frames: int = 7
    # TSM deflation (mmv_lite.models.deflation.deflate): the image network scales the shifted channels by this.
    # 1: the shift switched off; 0: the zeros a one-frame clip's shift brings in; DeepMind's later TSM code uses 0.3.
    deflation_alpha: float = 1.0
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
    amp_dtype: str = "auto"  # "auto" (CUDA only: native bf16, else fp16), "bf16" (any device, CPU too), "fp16"
    sync_bn: bool = True  # several GPUs: SyncBatchNorm, the paper's cross-replica BatchNorm


@dataclass
class WorldConfig:
    """The sample world's dials (:mod:`mmv_lite.data.world` says what each one does). They change how the
    *training* stream is narrated and heard; the held-out sets depend only on ``seed`` and ``object_scale``."""

    seed: int = 0
    object_continuity: float = 0.5  # fraction of a video's segments that go on with its object (1: one per video)
    clips_per_video: int = 2  # training clips cut from each video, each from its own part (C * v + part)
    misalignment: float = 0.5  # fraction of narrations spoken at another moment (HowTo100M: about half)
    misalignment_offset: float = 3.0  # seconds a misaligned narration is moved (x 0.7-1.3)
    narration_noise: float = 1.0  # scales the speech-recognition noise (0 = clean narrations)
    text_correspondence: float = 1.0  # fraction of videos narrated about themselves
    av_correspondence: float = 1.0  # fraction of clips whose sound is the object on screen
    scene_sound: float = 0.0  # fraction of clips whose background noise follows the scene (a shortcut when 1)
    size_said: float = 0.0  # how often a narration names the size, which is always heard (pitch)
    motion_said: float = 1.0  # how often a narration names the motion
    object_scale: float = 1.5  # size of the objects on screen (the sound does not change with it)
    num_probe: int = 1000  # clips of the fixed set that linear probes are fitted on
    num_eval: int = 500  # clips of each of the fixed val and test sets


@dataclass
class Config:
    preset: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    world: WorldConfig = field(default_factory=WorldConfig)

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
                world=WorldConfig(**d.get("world", {})),
            )
        except TypeError as e:
            raise ValueError(f"config dictionary does not match mmv_lite.config.Config: {e}") from e


def _paper(name: str, **model: Any) -> Config:
    return Config(preset=name, data=DataConfig(), model=ModelConfig(**model), train=TrainConfig(), world=WorldConfig())


PRESETS: dict[str, Config] = {
    "lite": Config(
        preset="lite",
        data=DataConfig(
            num_frames=8,
            fps=5.0,
            crop_size=32,
            resize_to=36,
            sample_rate=16_000,
            n_fft=1024,
            hop_length=512,  # 32 ms frames and 40 mel bands: a third of the audio network's work of 16 ms and 80
            n_mels=40,
            f_min=80.0,
            f_max=7600.0,
            max_words=16,
            num_candidates=4,  # K: MIL-NCE over the 4 narrations nearest in time, as the paper
        ),
        model=ModelConfig(
            # A small TSM-ResNet: per-frame 2D convolutions with the temporal shift learn the objects' shapes
            # several times faster than a small S3D-G on these frames (docs/BENCHMARKS.md, "Legible to the
            # lite networks"); its stem keeps full resolution on 40-pixel frames.
            video_backbone="tsm_resnet",
            video_depth=10,
            video_width=0.25,
            video_stem_stride=1,
            audio_depth=26,
            audio_width=0.25,
            text_dim=256,
            d_va=128,
            d_vt=64,
            d_vat=64,
        ),
        train=TrainConfig(
            batch_size=32,
            steps=800,
            lr=2e-3,
            warmup_steps=30,
            num_workers=2,
            eval_every=400,
            checkpoint_every=100,
            log_every=10,
            weight_va=1.0,
            weight_vt=1.0,
        ),
        world=WorldConfig(),
    ),
    "s3dg": _paper("s3dg", video_backbone="s3dg"),
    "tsm_r50": _paper("tsm_r50", video_backbone="tsm_resnet", video_depth=50, video_width=1.0),
    "tsm_r50x2": _paper("tsm_r50x2", video_backbone="tsm_resnet", video_depth=50, video_width=2.0),
}


def get_config(preset: str = "lite", **overrides: Any) -> Config:
    """A fresh copy of a preset, with overrides (:func:`apply_overrides`).

    >>> get_config("lite", graph="shared", **{"train.lr": 1e-3}).train.lr
    0.001
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return apply_overrides(PRESETS[preset], overrides)


def budget_overrides(budget: Any, seed: int) -> dict[str, Any]:
    """The ``train.*`` overrides of one experiment run from a budget (anything with ``steps``, ``batch_size``,
    ``warmup_steps``, ``lr``, ``num_workers``): its schedule and seed, no periodic validation or intermediate
    checkpoints (a run is evaluated once, after training), a log line every tenth of the run."""
    return {
        "train.steps": budget.steps,
        "train.batch_size": budget.batch_size,
        "train.warmup_steps": budget.warmup_steps,
        "train.lr": budget.lr,
        "train.seed": seed,
        "train.eval_every": 0,
        "train.checkpoint_every": 0,
        "train.log_every": max(1, budget.steps // 10),
        "train.num_workers": budget.num_workers,
    }


def apply_overrides(cfg: Config, overrides: Mapping[str, Any]) -> Config:
    """A validated copy of ``cfg`` with ``overrides`` set; ``cfg`` itself is never changed.

    The one rule for every override (presets, ``build_model``, the command line's ``--set``): a key is dotted,
    ``"train.lr"``, or a bare field name, ``"lr"``, when exactly one section has that field. A value must have the
    field's type (an int is accepted, as a float, for a float field). Errors name the field.
    """
    new = copy.deepcopy(cfg)
    for key, value in overrides.items():
        section, name = _field_of(key)
        setattr(getattr(new, section), name, _typed(f"{section}.{name}", _FIELD_TYPES[section][name], value))
    validate(new)
    return new


def parse_set_options(items: Sequence[str]) -> dict[str, Any]:
    """The command line's ``--set SECTION.NAME=VALUE`` options as overrides for :func:`apply_overrides`
    (``train --set`` and ``evaluate --set`` alike). A value is read as JSON (``7``, ``0.5``, ``true``,
    ``"s3dg"``) and else kept as text (``--set model.graph=mmv``)."""
    over: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected SECTION.NAME=VALUE, e.g. --set model.d_va=64")
        key, text = (x.strip() for x in item.split("=", 1))
        try:
            over[key] = json.loads(text)
        except json.JSONDecodeError:
            over[key] = text
    return over


def override_key(key: str) -> str:
    """The dotted name an override sets (``"lr"`` -> ``"train.lr"``), with :func:`apply_overrides`'s errors."""
    return ".".join(_field_of(key))


def _field_of(key: str) -> tuple[str, str]:
    """``"train.lr"`` or ``"lr"`` -> ``("train", "lr")``, with an error naming what does not exist."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise ValueError(f"override {key!r}: section must be one of {list(SECTIONS)}")
        if name not in _FIELD_TYPES[section]:
            raise ValueError(f"override {key!r}: the {section} section has no field {name!r}")
        return section, name
    owners = [s for s in SECTIONS if key in _FIELD_TYPES[s]]
    if len(owners) != 1:
        where = "no section" if not owners else f"several sections ({owners}); use 'section.{key}'"
        raise ValueError(f"override {key!r} matches {where}")
    return owners[0], key


def _typed(where: str, kind: type, value: Any) -> Any:
    """``value`` checked against the field type ``kind`` (bool, int, float or str)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ValueError(f"{where}={value!r}: expected {kind.__name__}, got {type(value).__name__}")


def validate(cfg: Config) -> None:
    """Raise ``ValueError`` naming the field when a config cannot work: a name that is not one of the choices (graph,
    backbone, ...), or a number out of its range (``_RANGES``: e.g. ``train.steps >= 1``, ``train.lr > 0``,
    ``train.num_workers >= 0``; never NaN or infinite)."""
    m, t = cfg.model, cfg.train
    if m.graph not in GRAPHS:
        raise ValueError(f"model.graph={m.graph!r}; expected one of {tuple(GRAPHS)}")
    backbone = get_backbone(m.video_backbone)
    if m.video_stem not in ("rgb", "space_to_depth"):
        raise ValueError(f"model.video_stem={m.video_stem!r}; expected 'rgb' or 'space_to_depth'")
    if m.head not in ("mlp", "linear"):
        raise ValueError(f"model.head={m.head!r}; expected 'mlp' or 'linear'")
    if t.modalities not in MODALITY_SETS:
        raise ValueError(f"train.modalities={t.modalities!r}; expected one of {MODALITY_SETS}")
    if t.amp_dtype not in ("auto", "bf16", "fp16"):
        raise ValueError(f"train.amp_dtype={t.amp_dtype!r}; expected 'auto', 'bf16' or 'fp16'")
    if t.batch_size < 2:
        raise ValueError(f"train.batch_size={t.batch_size!r}: expected >= 2 (contrastive losses need negatives)")
    _validate_ranges(cfg)
    if m.video_stem_stride not in (1, 2) or m.video_stem_frames not in (1, 3, 5, 7):
        raise ValueError("model.video_stem_stride must be 1 or 2 and model.video_stem_frames 1, 3, 5 or 7")
    if m.video_stem == "space_to_depth" and (m.video_stem_stride, m.video_stem_frames) != (2, 7):
        raise ValueError("model.video_stem='space_to_depth' is the released stride-2 stem: keep the stem defaults")
    problem = backbone.check(m)  # what this backbone cannot do (mmv_lite.backbones)
    if problem:
        raise ValueError(problem)
    _validate_world(cfg.world)


# The numbers a config cannot work without: {section: {field: (lowest, highest, whether lowest itself is allowed)}}.
# Nothing may be NaN or infinite. The world's dials are checked by _validate_world.
_RANGES: dict[str, dict[str, tuple[float, float, bool]]] = {
    "data": {
        **dict.fromkeys(("num_frames", "crop_size", "resize_to", "sample_rate", "n_fft", "hop_length"), (1, inf, True)),
        **dict.fromkeys(("n_mels", "max_words", "num_candidates", "word_dim"), (1, inf, True)),
        "fps": (0, inf, False),
        "f_min": (0, inf, True),
        "crop_min_scale": (0, 1, False),
        "color_jitter": (0, inf, True),
    },
    "model": {
        **dict.fromkeys(("video_depth", "audio_depth", "text_dim", "d_va", "d_vt", "d_vat"), (1, inf, True)),
        **dict.fromkeys(("video_width", "audio_width", "bn_eps"), (0, inf, False)),
        "shift_fraction": (0, 0.5, True),
        "deflation_alpha": (0, 1, True),
        "bn_momentum": (0, 1, True),
    },
    "train": {
        "steps": (1, inf, True),
        "lr": (0, inf, False),
        "temperature": (0, inf, False),
        "log_every": (1, inf, True),
        **dict.fromkeys(("warmup_steps", "weight_decay", "weight_va", "weight_vt"), (0, inf, True)),
        **dict.fromkeys(("num_workers", "eval_every", "checkpoint_every"), (0, inf, True)),
    },
}


def _validate_ranges(cfg: Config) -> None:
    for section, fields in _RANGES.items():
        for name, (low, high, low_allowed) in fields.items():
            v = getattr(getattr(cfg, section), name)
            above = v >= low if low_allowed else v > low
            if not (above and v <= high and isfinite(v)):
                bound = f"{'>=' if low_allowed else '>'} {low}" + ("" if high == inf else f" and <= {high}")
                raise ValueError(f"{section}.{name}={v!r}: expected a number {bound}")
    if not cfg.data.f_max > cfg.data.f_min:
        raise ValueError(f"data.f_max={cfg.data.f_max!r}: expected above data.f_min={cfg.data.f_min!r}")


def _validate_world(w: WorldConfig) -> None:
    fractions = ("object_continuity", "misalignment", "text_correspondence", "av_correspondence", "scene_sound")
    for name in (*fractions, "size_said", "motion_said"):
        v = getattr(w, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"world.{name}={v!r}: expected a fraction in [0, 1]")
    if w.narration_noise < 0 or w.misalignment_offset < 0:
        raise ValueError("world.narration_noise and world.misalignment_offset must be >= 0")
    if w.object_scale <= 0:
        raise ValueError(f"world.object_scale={w.object_scale!r}: expected > 0")
    if w.clips_per_video < 1:
        raise ValueError(f"world.clips_per_video={w.clips_per_video!r}: expected >= 1")
    if w.num_probe < 2 or w.num_eval < 2:
        raise ValueError("world.num_probe and world.num_eval must be at least 2 clips")


# {section: {field: type}}: what an override may set, and to what type.
_FIELD_TYPES: dict[str, dict[str, type]] = {
    section: typing.get_type_hints(cls)
    for section, cls in zip(SECTIONS, (DataConfig, ModelConfig, TrainConfig, WorldConfig))
}
