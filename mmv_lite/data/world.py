"""The sample world as an unlimited stream of clips, with dials that make the paper's findings appear and vanish.

    >>> world = WorldConfig(misalignment=0.5)                   # HowTo100M-like narrations
    >>> train = WorldClips(get_config("lite").data, "train", world, word_vectors=wv)
    >>> item = train[123_456]                                    # any index: a new clip, the same one every time

Every item is rendered on the fly from the factors of :mod:`mmv_lite.data.synth` (the same objects, sounds and
narrations that ``make-samples`` writes into mp4 files), with the contract of
:class:`~mmv_lite.data.clips.ClipDataset` (both made by :func:`mmv_lite.data.items.clip_item`): ``video (3, T, H,
W)`` in [0, 1], ``audio (1, F, n_mels)`` log-mel of the same span, ``text_ids / text_mask (K, L)`` and
``text_valid (K,)`` (the K narrations nearest in time), the modality masks, ``video_id``, ``start``, ``end``,
``index`` and the ground-truth labels (evaluation only).

Planning and drawing. ``train[i]`` plans the item (below) and draws its picture and sound with the per-clip NumPy
renderer of :mod:`mmv_lite.data.synth`. ``train.planned(i)`` only plans it: the item without ``video`` and ``audio``,
plus the few numbers they are drawn from; :meth:`WorldClips.render_batch` then draws a collated batch of them at
once, on any device (:mod:`mmv_lite.data.render`: the same clips within its stated tolerance). Training on CUDA does
that on the GPU (:func:`mmv_lite.data.sampling.step_loader`).

How an item is made. Index ``i`` of a split is a short narrated video of its own (``SEGMENTS_PER_VIDEO`` segments,
each one object doing one thing, each with one narration), drawn from the random stream ``(world.seed, split, i)``;
the clip is a window inside one of its segments. Only that window is rendered. The ``train`` split is unlimited:
every index is a new video. ``probe``, ``val`` and ``test`` are fixed sets of held-out videos (their own random
streams), and they never depend on the narration dials: they are the benchmark every training world is scored on,
the way YouCook2 and MSR-VTT score a network trained on HowTo100M. In them each clip's narration is the one that
describes it (aligned), and its sound is its own.

The dials (:class:`WorldConfig`) change only how the *training* stream is narrated and heard:

=================== ================================================================================================
misalignment        fraction of narrations spoken at another moment (before or after what they describe), moved by
                    ``misalignment_offset`` seconds (x 0.7-1.3). HowTo100M is often quoted at about half.
narration_noise     scales the speech-recognition noise of the narrations (filler, sound-alike errors); 0 = clean.
text_correspondence fraction of videos narrated about themselves; the rest carry another video's narrations.
av_correspondence   fraction of clips whose sound is the object on screen; the rest hear something off screen.
size_said           probability that a narration names the object's size, which is always *heard* (pitch):
                    0 = a factor heard but never said.
motion_said         probability that a narration names the motion (1 = always).
object_scale        size of the objects on screen (visibility); the sound does not change with it.
=================== ================================================================================================
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..config import DataConfig, WorldConfig
from ..files import atomic_write
from . import items, render, stream, synth
from .audio import LogMel, num_audio_samples
from .stream import Stream
from .text import WordVectors

WORDS_FILE = Path(__file__).with_name("world_words.bin")  # the world's word vectors, made by make_world_words
CACHE_VERSION = 1  # bump when the rendering changes: cached clips of older versions are then never read
SPLIT_CODES = {"train": 10, "probe": 11, "val": 12, "test": 13}
SEGMENTS_PER_VIDEO = synth.SEGMENTS_PER_VIDEO
FACTORS = ("kind", "colour", "shade", "size", "motion", "background")
# Configuration fields that change no clip's picture or sound (the narration dials, the sizes of the fixed sets, the
# text and augmentation settings, which the stream does not use), and those that change the sound alone. Every other
# field, present or future, is part of the cache key (WorldClips._cache_keys).
NOT_DRAWN = frozenset(
    {f"world.{k}" for k in ("misalignment", "misalignment_offset", "narration_noise", "text_correspondence")}
    | {f"world.{k}" for k in ("size_said", "motion_said", "num_probe", "num_eval")}
    | {f"data.{k}" for k in ("resize_to", "max_words", "num_candidates", "word_dim", "crop_min_scale", "hflip")}
    | {"data.color_jitter"}
)
NOT_SEEN = frozenset(
    {"world.av_correspondence", "world.scene_sound"}
    | {f"data.{k}" for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max")}
)


def eval_world(world: WorldConfig) -> WorldConfig:
    """The world of the held-out sets: the same objects, narrated and heard as they are (no narration dials)."""
    return WorldConfig(
        seed=world.seed,
        object_scale=world.object_scale,
        object_continuity=world.object_continuity,
        num_probe=world.num_probe,
        num_eval=world.num_eval,
    )


@dataclass
class ClipPlan:
    """One item's factors, before rendering: its video's segments and narrations, and the clip's window."""

    segments: list[synth.Segment]
    background: str
    segment: int  # the segment the clip shows
    start: float  # seconds in the video
    narration: synth.Narration  # when each caption is spoken, what it is about, and its words (on demand)
    sound: synth.Segment  # what is heard (the segment shown, or something off screen)
    phase: float  # seconds: where the clip's middle falls in the motion, around the object's resting place
    noise: str  # the background noise heard: the scene's own (``background``) or another scene's

    @property
    def captions(self) -> dict[str, list]:
        """The video's whole narration in HowTo100M layout (every caption's words made)."""
        return self.narration.captions

    @property
    def about(self) -> list[int]:
        """The segment each caption describes (-1: filler only)."""
        return self.narration.about


def _segments(rng: np.random.Generator, world: WorldConfig) -> tuple[list[synth.Segment], str]:
    return synth.plan_segments(rng, world), synth.BACKGROUNDS[rng.integers(len(synth.BACKGROUNDS))]


def _video_plan(w: WorldConfig, split: str, video: int) -> tuple[list[synth.Segment], str, synth.Narration]:
    """Video ``video``'s segments, background and narration, from its own random stream. The last few videos are
    remembered, for callers that plan consecutive items (the clips of a video, e.g. :func:`bag_hit_rate`): the video
    is half of what planning a clip costs. Training batches draw each clip from a video of its own
    (:class:`~mmv_lite.data.sampling.StepBatchSampler` with ``group=1``), so there every clip plans its video."""
    key = (type(w), tuple(vars(w).values()), split, video)  # every dial, as a tuple of scalars: cheap to hash
    if key in _VIDEO_PLANS:
        return _VIDEO_PLANS[key]
    rng = Stream(_video_entropy(w, split, video))  # np.random.default_rng's numbers, made faster
    segments, background = _segments(rng, w)
    told = segments
    if rng.random() >= w.text_correspondence:  # narrations of an unrelated video
        told, _ = _segments(rng, w)
    narration = synth.narrate_segments(told, synth.narration_style(w, held_out=split != "train"), rng)
    if len(_VIDEO_PLANS) >= _VIDEO_PLANS_KEPT:
        del _VIDEO_PLANS[next(iter(_VIDEO_PLANS))]  # the oldest
    _VIDEO_PLANS[key] = segments, background, narration
    return _VIDEO_PLANS[key]


_VIDEO_PLANS: dict[tuple, tuple[list[synth.Segment], str, synth.Narration]] = {}  # per process, oldest first
_VIDEO_PLANS_KEPT = 64


def _video_entropy(world: WorldConfig, split: str, video: int) -> list[int]:
    return [world.seed, SPLIT_CODES[split], video]


def _video_and_part(world: WorldConfig, split: str, index: int) -> tuple[WorldConfig, int, int]:
    """The world item ``index`` of ``split`` comes from, its video, and which of the video's clips it is."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split={split!r}; expected one of {sorted(SPLIT_CODES)}")
    w = world if split == "train" else eval_world(world)
    return (w, *divmod(index, w.clips_per_video if split == "train" else 1))


def plan_entropies(world: WorldConfig, split: str, index: int) -> list[list[int]]:
    """The random streams item ``index`` is planned and drawn from: its video's, its clip's, its picture's and its
    sound's (each ``np.random.default_rng(entropy)``'s numbers; its captions' words have streams of their own)."""
    _, video, part = _video_and_part(world, split, index)
    code = [world.seed, SPLIT_CODES[split]]
    return [_video_entropy(world, split, video), code + [video, 1 + part], code + [index, 1], code + [index, 2]]


def plan_clip(world: WorldConfig, split: str, index: int, clip_seconds: float) -> ClipPlan:
    """The factors of item ``index`` of ``split`` (deterministic); nothing is rendered.

    In ``train``, items ``C * v ... C * v + C - 1`` (``C = world.clips_per_video``) are clips of the same video ``v``,
    each from its own part of the video; every held-out item is a video of its own."""
    w, video, part = _video_and_part(world, split, index)
    per_video = w.clips_per_video if split == "train" else 1
    segments, background, narration = _video_plan(w, split, video)
    rng = Stream(plan_entropies(world, split, index)[1])  # this clip of it
    size, extra = divmod(len(segments), per_video)  # part `part` of np.array_split(segments, per_video) ...
    first = part * size + min(part, extra)
    shown = first + int(rng.integers(size + (part < extra)))  # ... and the draw of rng.choice over it
    seg = segments[shown]
    start = float(seg.start + rng.uniform(0.0, max(seg.end - seg.start - clip_seconds, 0.0)))
    phase = float(rng.uniform(-0.5, 0.5))  # drawn before the sound's dials: the picture never depends on them
    noise = background
    if rng.random() >= w.scene_sound:  # the room sounds like another room
        noise = synth.BACKGROUNDS[rng.integers(len(synth.BACKGROUNDS))]
    sound = seg
    if rng.random() >= w.av_correspondence:  # the sound of something off screen
        sound = synth.draw_segment(rng, seg.start, seg.end, None, w.object_scale)
    return ClipPlan(segments, background, shown, start, narration, sound, phase, noise)


def nearest_captions(captions: dict[str, list] | synth.Narration, start: float, end: float, k: int) -> list[int]:
    """Indices of the ``k`` captions nearest in time to ``[start, end)`` (overlap = distance 0), nearest first.

    ``captions``: HowTo100M's layout (``{"start": [...], "end": [...], ...}``) or a :class:`~synth.Narration`."""
    if isinstance(captions, synth.Narration):
        captions = {"start": captions.start, "end": captions.end}
    return items.nearest_captions(captions["start"], captions["end"], start, end, k)


def bag_hit_rate(
    world: WorldConfig, clip_seconds: float, ks: Sequence[int] = (1, 2, 3, 4, 6), n: int = 400
) -> dict[int, float]:
    """How often MIL-NCE's bag holds a right narration: of ``n`` training clips, the percentage whose ``k`` nearest
    captions include one about the segment shown, for each ``k`` (``k = 1`` is NCE's single nearest caption)."""
    hits = dict.fromkeys(ks, 0)
    for i in range(n):
        p = plan_clip(world, "train", i, clip_seconds)
        order = nearest_captions(p.narration, p.start, p.start + clip_seconds, max(ks))
        for k in ks:
            hits[k] += any(p.about[j] == p.segment for j in order[:k])
    return {k: 100.0 * h / n for k, h in hits.items()}


_NOTHING = torch.empty(0)  # the place of the video and audio of a planned item, which has neither


class WorldClips(Dataset):
    """Clips of the sample world, rendered on demand (see the module docstring for the item contract).

    Args:
        cfg: the data configuration (frame count, fps, crop size, audio front-end, K, words per caption).
        split: ``"train"`` (unlimited), ``"probe"``, ``"val"`` or ``"test"`` (fixed sets).
        world: the dials.
        word_vectors: the vocabulary narrations are encoded with.
        length: how many items ``len()`` reports for ``train`` (any index works).
        cache_dir: keep every rendered picture and sound here (``.npy`` per item, in folders named after what they
            depend on), so that runs which differ only in narrations, loss or network render each clip once.
    """

    def __init__(
        self,
        cfg: DataConfig,
        split: str,
        world: WorldConfig,
        word_vectors: WordVectors,
        length: int | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        if split not in SPLIT_CODES:
            raise ValueError(f"split={split!r}; expected one of {sorted(SPLIT_CODES)}")
        self.cfg, self.split, self.world, self.word_vectors = cfg, split, world, word_vectors
        self.clip_seconds = cfg.clip_seconds
        self.num_samples = num_audio_samples(cfg)
        self.logmel = LogMel(cfg)
        fixed = {"probe": world.num_probe, "val": world.num_eval, "test": world.num_eval}
        self.unlimited = split == "train"
        self._len = int(length if length is not None else fixed.get(split, 2**62))
        self.train = split == "train"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._keys = self._cache_keys()

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"WorldClips(split={self.split!r}, clips={'unlimited' if self.unlimited else self._len}, {self.world})"

    @property
    def vocab(self) -> list[str]:
        return self.word_vectors.vocab

    def plan(self, index: int) -> ClipPlan:
        return plan_clip(self.world, self.split, index, self.clip_seconds)

    @property
    def factors(self) -> dict[str, list[str]]:
        """Ground-truth factors of every clip of a fixed split (``{"kind": [N str], ...}``), without rendering."""
        if self.unlimited:
            raise ValueError("the train stream is unlimited: factors exist only for the probe, val and test sets")
        out: dict[str, list[str]] = {f: [] for f in FACTORS}
        for i in range(len(self)):
            p = self.plan(i)
            seg = p.segments[p.segment]
            for f in FACTORS:
                out[f].append(p.background if f == "background" else str(getattr(seg, f)))
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        p = self._plan_checked(index)
        frames = self._cached("frames", index, lambda: self._frames(p, index))
        video = torch.from_numpy(frames).permute(3, 0, 1, 2).float().div_(255.0)
        audio = torch.from_numpy(self._cached("audio", index, lambda: self._logmel(p, index)))
        return self._item(p, index, video, audio)

    def planned(self, index: int) -> dict[str, Any]:
        """Item ``index`` planned, not drawn: the item contract without ``video`` and ``audio``, plus ``render``,
        the parameters they are drawn from (:func:`mmv_lite.data.render.clip_params`). Collate a batch of them,
        then :meth:`render_batch` draws the whole batch at once, on any device (the cache is not used)."""
        p = self._plan_checked(index)
        return self._planned_item(p, index)

    def planned_many(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """``[self.planned(i) for i in indices]``, item for item, with the random streams of the batch seeded
        together (:func:`mmv_lite.data.stream.prepare`): a fifth less work for a worker that plans a training batch."""
        stream.prepare(e for i in indices for e in plan_entropies(self.world, self.split, i))
        plans = [self._plan_checked(i) for i in indices]
        picks = [self._picks(p) for p in plans]
        stream.prepare([p.narration.seed, j] for p, js in zip(plans, picks) for j in js)  # the captions' words
        return [self._planned_item(p, i, js) for p, i, js in zip(plans, indices, picks)]

    def _planned_item(self, p: ClipPlan, index: int, picks: list[int] | None = None) -> dict[str, Any]:
        item = self._item(p, index, _NOTHING, _NOTHING, picks)
        del item["video"], item["audio"]
        item["render"] = self.render_params(p, index)
        return item

    def render_batch(
        self, batch: dict[str, Any], device: str | torch.device | None = None, engine: str = "auto"
    ) -> dict[str, Any]:
        """A collated batch of :meth:`planned` items with ``video`` and ``audio`` drawn on ``device`` (default: the
        CPU) by ``engine`` (:data:`mmv_lite.data.render.ENGINES`); equal to the items of ``self[i]`` within
        :mod:`mmv_lite.data.render`'s stated tolerance."""
        batch = dict(batch)
        batch["video"], batch["audio"] = render.render_batch(batch.pop("render"), self.cfg, device, engine)
        return batch

    def _plan_checked(self, index: int) -> ClipPlan:
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} clips")
        return self.plan(index)

    def _picks(self, p: ClipPlan) -> list[int]:
        """The captions of the item: the K nearest in time (training), or one that describes the clip (its first)."""
        if self.train:
            return nearest_captions(p.narration, p.start, p.start + self.clip_seconds, self.cfg.num_candidates)
        return [p.narration.about.index(p.segment)]

    def _item(
        self, p: ClipPlan, index: int, video: torch.Tensor, audio: torch.Tensor, picks: list[int] | None = None
    ) -> dict[str, Any]:
        cfg, seg = self.cfg, p.segments[p.segment]
        end = p.start + self.clip_seconds
        picks = self._picks(p) if picks is None else picks
        ids, _ = self.word_vectors.encode([p.narration.text(i) for i in picks], cfg.max_words)
        labels = seg.labels
        return items.clip_item(
            video,
            audio,
            ids,
            cfg.num_candidates,
            cfg.max_words,
            video_id=f"{self.split}_{index}",
            start=p.start,
            end=end,
            index=index,
            labels=(labels["action"], labels["sound"], labels["image"]),
        )

    @staticmethod
    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(items)

    # -------------------------------------------------------------------------------------- rendering
    def _t0(self, p: ClipPlan) -> float:
        # The object passes its resting place mid-clip (give or take 0.5 s), so a moving object stays in view.
        return -self.clip_seconds / 2 + p.phase

    def _frames(self, p: ClipPlan, index: int) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 frames of item ``index``."""
        rng = np.random.default_rng([self.world.seed, SPLIT_CODES[self.split], index, 1])  # the picture's own stream
        bg = synth.make_background(p.background, rng, self.cfg.crop_size)
        return synth.render_frames(p.segments[p.segment], bg, self.cfg.num_frames, self.cfg.fps, t0=self._t0(p))

    def render_params(self, p: ClipPlan, index: int) -> dict[str, int | float | np.ndarray]:
        """What :func:`mmv_lite.data.render.render_batch` needs to draw item ``index`` (planned as ``p``): the same
        factors and the same random streams as :meth:`_frames` and :meth:`_logmel`."""
        streams = [Stream(e) for e in plan_entropies(self.world, self.split, index)[2:]]  # picture, sound
        return render.clip_params(
            self.cfg, p.segments[p.segment], p.background, p.sound, p.noise, self._t0(p), *streams
        )

    def _logmel(self, p: ClipPlan, index: int) -> np.ndarray:
        """``(1, F, n_mels)`` float32 log-mel of item ``index``'s sound."""
        cfg = self.cfg
        rng = np.random.default_rng([self.world.seed, SPLIT_CODES[self.split], index, 2])  # the sound's own stream
        wave = synth.render_sound(p.sound, self.num_samples, rng, cfg.sample_rate, t0=self._t0(p))
        wave = wave + synth.background_noise(p.noise, self.num_samples, rng, cfg.sample_rate)
        return self.logmel(torch.from_numpy(wave)).numpy()

    def _cache_keys(self) -> dict[str, str]:
        """What the picture and the sound of an item depend on, hashed into the names of their cache folders: every
        field of the world and data configurations (a subclass's too) but those :data:`NOT_DRAWN` and, for the
        picture, :data:`NOT_SEEN`. A new dial is in the key unless it is listed there: at worst a clip is drawn
        twice, never served stale."""
        picture, sound = {"split": self.split, "version": CACHE_VERSION}, {}
        for section, cfg in (("world", self.world), ("data", self.cfg)):
            for f in dataclasses.fields(cfg):
                name = f"{section}.{f.name}"
                if name not in NOT_DRAWN:
                    (sound if name in NOT_SEEN else picture)[name] = getattr(cfg, f.name)
        sound = {**picture, **sound}
        digest = lambda key: hashlib.sha1(repr(sorted(key.items())).encode()).hexdigest()[:16]  # noqa: E731
        return {"frames": f"frames-{digest(picture)}", "audio": f"audio-{digest(sound)}"}

    def _cached(self, kind: str, index: int, make: Any) -> np.ndarray:
        """``make()``, read from / written to ``cache_dir`` when there is one (every array as it was rendered)."""
        if self.cache_dir is None:
            return make()
        path = self.cache_dir / self._keys[kind] / f"{index}.npy"
        if path.is_file():
            try:
                return np.load(path)
            except (OSError, ValueError):  # a damaged entry: render again and replace it
                pass
        array = make()
        atomic_write(path, lambda f: np.save(f, array))
        return array


def world_word_vectors() -> WordVectors:
    """The frozen word vectors of the world's narrations (shipped with the package, see :func:`make_world_words`)."""
    return WordVectors.load(WORDS_FILE)


def make_world_words(path: Path = WORDS_FILE, seed: int = 0) -> WordVectors:
    """Train the world's word vectors (word2vec on narration-style sentences and glossary word lists, as an external
    text corpus would give) and save them to ``path``. Deterministic: the shipped file is what this writes."""
    corpus = synth.text_corpus(synth.CORPUS_SENTENCES, seed) + synth.glossary_corpus(synth.GLOSSARY_PER_CONCEPT, seed)
    wv = WordVectors.from_texts(corpus, seed=seed, dim=300)
    wv.save(path)
    return wv
