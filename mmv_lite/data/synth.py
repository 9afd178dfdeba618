"""The sample world: a generator of small narrated videos and sound clips with real cross-modal structure.

    python -m mmv_lite make-samples --out data_samples --videos 60 --seed 0

Each *segment* of a video shows one object on a background and plays its sound. The factors, and which modality
carries each, so that every pair of modalities shares some information and keeps some private:

=========== =========================================== ===================== ===============================
factor      values                                      seen in               heard in / said in
=========== =========================================== ===================== ===============================
kind        circle square triangle star cross diamond   one frame (shape)     timbre (instrument); said
colour      red green blue yellow purple orange         one frame             said usually
shade       dark light                                  one frame             pitch (+1 semitone); rarely said
size        small large (continuous radius)             one frame             pitch (smaller = higher)
motion      slide rise fall spin pulse bounce orbit     only across frames    rhythm, loudness, glide; said
speed       continuous factor 0.8-1.25                  across frames         rate of the rhythm
background  plain stripes checker gradient (per video)  one frame             colour of the background noise
=========== =========================================== ===================== ===============================

Every motion class is unchanged by a horizontal flip (slide = either direction, spin and orbit = either way round),
so flip augmentation keeps labels and narrations true. A small marker dot on every object makes rotation visible.

Two kinds of video, like the paper's data:
- *narrated* (HowTo100M-like): 20-30 s, several segments, ASR-like captions with timestamps. Captions name the kind
  and the motion with synonyms, usually the colour, sometimes size or the sound; they carry filler and stop words,
  word errors, and about one in twelve describes a *neighbouring* segment (the misalignment MIL-NCE is built for).
- *sound* (AudioSet-like): a few seconds, one segment, no narration.

Ground truth per segment (for evaluation only): ``action_label`` (motion, needs several frames),
``sound_label`` (instrument x register), ``image_label`` (kind, visible in one frame).

Everything is deterministic for a seed: each video draws from its own random stream (seed, kind, index), frames and
audio are synthesised with NumPy, x264 runs single-threaded, and the word vectors are trained with one worker.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import WorldConfig
from .stream import Stream

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FPS = 10
FRAME_SIZE = 64
SAMPLE_RATE = 16_000
CORPUS_SENTENCES = 20_000  # narration-style sentences of the word-vector corpus (see text_corpus)
GLOSSARY_PER_CONCEPT = 300  # word lists per concept added to the word-vector corpus (see glossary_corpus)

KINDS = ("circle", "square", "triangle", "star", "cross", "diamond")
INSTRUMENTS = ("flute", "organ", "bell", "horn", "buzzer", "clarinet")  # timbre of each kind, same order
COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 170, 60),
    "blue": (45, 85, 225),
    "yellow": (230, 205, 35),
    "purple": (150, 55, 195),
    "orange": (240, 130, 25),
}
SHADES = ("dark", "light")
SIZES = ("small", "large")
MOTIONS = ("slide", "rise", "fall", "spin", "pulse", "bounce", "orbit")
BACKGROUNDS = ("plain", "stripes", "checker", "gradient")

ACTION_CLASSES = list(MOTIONS)
SOUND_CLASSES = [f"{inst} {reg}" for inst in INSTRUMENTS for reg in ("low", "high")]
IMAGE_CLASSES = list(KINDS)

SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.15), ("test", 0.15))


# --------------------------------------------------------------------------------------------------- the factors
@dataclass
class Segment:
    """One object doing one thing for ``end - start`` seconds (times in the video's timeline)."""

    start: float
    end: float
    kind: str
    colour: str
    shade: str
    size: str
    radius: float  # pixels at FRAME_SIZE = 64
    motion: str
    direction: int  # +1 / -1: left/right for slide, clockwise or not for spin/orbit (flip-invariant classes)
    speed: float
    x: float  # resting centre, pixels
    y: float
    angle: float  # resting orientation, radians
    gain: float  # loudness of the sound
    scale: float = 1.0  # the world's object scale: ``radius`` is the heard radius times it
    pitch_hz: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "labels"}
        for k in ("start", "end"):
            d[k] = round(d[k], 3)
        for k in ("radius", "speed", "x", "y", "angle", "gain", "pitch_hz"):
            d[k] = round(float(d[k]), 4)
        d.update({f"{k}_label": v for k, v in self.labels.items()})
        return d


def base_pitch(kind: str, radius: float, shade: str) -> float:
    """Fundamental frequency: set by size (fine, continuous) and shade (a semitone); kind sets only the timbre."""
    f0 = 220.0 * 2.0 ** (2.4 * (13.0 - radius) / 6.5)  # radius 13 px -> 220 Hz, 6.5 px -> ~1160 Hz
    return f0 * (2 ** (1 / 12) if shade == "light" else 1.0)


def draw_segment(
    rng: np.random.Generator,
    start: float,
    end: float,
    prev: Segment | None,
    object_scale: float = 1.0,
    same_object: bool = False,
) -> Segment:
    """Draw one segment's factors. ``object_scale`` enlarges the object on screen; its pitch follows the unscaled
    radius, so the sound does not change with it. ``same_object``: the object of ``prev`` (kind, colour, shade,
    size) goes on with another motion, as when a video is about one thing."""
    if same_object and prev is not None:
        kind, colour, shade, size = prev.kind, prev.colour, prev.shade, prev.size
        heard_radius = prev.radius / prev.scale
        motion = MOTIONS[rng.integers(len(MOTIONS) - 1)]
        motion = MOTIONS[-1] if motion == prev.motion else motion  # another motion than the last one
    else:
        while True:
            kind = KINDS[rng.integers(len(KINDS))]
            motion = MOTIONS[rng.integers(len(MOTIONS))]
            if prev is None or (kind, motion) != (prev.kind, prev.motion):
                break
        size = SIZES[rng.integers(2)]
        heard_radius = float(rng.uniform(6.5, 8.5) if size == "small" else rng.uniform(10.5, 13.0))
        shade = SHADES[rng.integers(2)]
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
    seg = Segment(
        start=start,
        end=end,
        kind=kind,
        colour=colour,
        shade=shade,
        size=size,
        radius=heard_radius * object_scale,
        motion=motion,
        direction=(-1, 1)[rng.integers(2)],  # the draw of rng.choice([-1, 1]), without its overhead
        speed=float(rng.uniform(0.8, 1.25)),
        x=float(rng.uniform(24, 40)),
        y=float(rng.uniform(24, 40)),
        angle=float(rng.uniform(-0.3, 0.3)),  # objects rest upright (give or take 17 degrees); spin turns them
        gain=float(rng.uniform(0.5, 0.9)),
        scale=object_scale,
    )
    seg.pitch_hz = base_pitch(kind, heard_radius, shade)
    seg.labels = {
        "action": MOTIONS.index(motion),
        "sound": KINDS.index(kind) * 2 + (0 if size == "large" else 1),
        "image": KINDS.index(kind),
    }
    return seg


# --------------------------------------------------------------------------------------------------- vision
def _trajectory(seg: Segment, t: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Centre (x, y), orientation and scale of the object at times ``t`` (seconds since the segment start)."""
    s = size / FRAME_SIZE
    n = len(t)
    x, y = np.full(n, seg.x * s), np.full(n, seg.y * s)
    angle, scale = np.full(n, seg.angle), np.ones(n)
    r = seg.radius * s
    period = size + 2 * r  # wrap-around domain: the object leaves one side and comes back on the other
    v = 14.0 * s * seg.speed  # px / s
    if seg.motion == "slide":
        x = (seg.x * s + seg.direction * v * t + r) % period - r
    elif seg.motion == "rise":
        y = (seg.y * s - v * t + r) % period - r
    elif seg.motion == "fall":
        y = (seg.y * s + v * t + r) % period - r
    elif seg.motion == "spin":
        angle = seg.angle + seg.direction * 2 * np.pi * 0.45 * seg.speed * t
    elif seg.motion == "pulse":
        scale = 1.0 + 0.35 * np.sin(2 * np.pi * 0.8 * seg.speed * t)
    elif seg.motion == "bounce":
        floor = min(seg.y * s + 10 * s, size - r - 1)
        y = floor - 18 * s * np.abs(np.sin(np.pi * 1.0 * seg.speed * t))
    elif seg.motion == "orbit":
        w = 2 * np.pi * 0.6 * seg.speed * t
        x = seg.x * s + 9 * s * np.cos(w)
        y = seg.y * s + seg.direction * 9 * s * np.sin(w)
    return x, y, angle, scale


def _shape_distance(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance-like field of a unit-size shape in object coordinates (negative inside)."""
    au, av = np.abs(u), np.abs(v)
    if kind == "circle":
        return np.sqrt(u * u + v * v) - 0.9
    if kind == "square":
        return np.maximum(au, av) - 0.78
    if kind == "diamond":  # an elongated rhombus, so that it never looks like a rotated square
        return (au + av / 0.6 - 1.0) * 0.55
    if kind == "triangle":  # equilateral, one vertex along +u, inradius 0.5
        d = -u - 0.5
        for a in (np.pi / 3, -np.pi / 3):
            d = np.maximum(d, np.cos(a) * u + np.sin(a) * v - 0.5)
        return d
    if kind == "star":
        rho, phi = np.sqrt(u * u + v * v), np.arctan2(v, u)
        return (rho - (0.68 + 0.32 * np.cos(5 * phi))) * 0.6
    if kind == "cross":
        return np.minimum(np.maximum(au - 1.0, av - 0.34), np.maximum(au - 0.34, av - 1.0))
    raise ValueError(f"unknown kind {kind!r}")


def _object_rgb(seg: Segment) -> tuple[np.ndarray, np.ndarray]:
    base = np.array(COLOURS[seg.colour], np.float32)
    if seg.shade == "dark":
        body = base * 0.62
        marker = body + (255 - body) * 0.65
    else:
        body = base + (255 - base) * 0.45
        marker = body * 0.35
    return body, marker


def make_background(name: str, rng: np.random.Generator, size: int = FRAME_SIZE) -> np.ndarray:
    """A muted static background ``(size, size, 3)`` float32 in [0, 255], so the objects' colours stand out."""
    tint = rng.uniform(70, 120) + rng.uniform(-12, 12, size=3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) * (FRAME_SIZE / size)
    if name == "plain":
        pattern = np.zeros_like(xx)
    elif name == "stripes":
        pattern = 14 * np.sign(np.sin(2 * np.pi * (xx + yy) / 12.0 + rng.uniform(0, 6)))
    elif name == "checker":
        pattern = 12 * (2 * (((xx // 8) + (yy // 8)) % 2) - 1)
    elif name == "gradient":
        pattern = 40 * (yy / FRAME_SIZE - 0.5)
    else:
        raise ValueError(f"unknown background {name!r}")
    return np.clip(tint[None, None, :] + pattern[..., None], 0, 255).astype(np.float32)


def render_frames(seg: Segment, background: np.ndarray, n_frames: int, fps: float = FPS, t0: float = 0.0) -> np.ndarray:
    """The segment's frames ``(n_frames, H, W, 3)`` uint8 from ``t0`` seconds into the segment, vectorised over
    time and pixels (anti-aliased edges)."""
    size = background.shape[0]
    t = t0 + np.arange(n_frames, dtype=np.float64) / fps
    cx, cy, angle, scale = _trajectory(seg, t, size)
    r = seg.radius * size / FRAME_SIZE * scale  # (T,)
    grid = np.arange(size, dtype=np.float64) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]  # (T, 1, W)
    dy = grid[None, :, None] - cy[:, None, None]  # (T, H, 1)
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    rr = r[:, None, None]
    u = (c * dx + s * dy) / rr  # object coordinates, unit size
    v = (-s * dx + c * dy) / rr
    alpha = np.clip(0.5 - _shape_distance(seg.kind, u, v) * rr, 0, 1)  # ~1 px soft edge
    marker = np.clip(0.5 - (np.sqrt((u - 0.5) ** 2 + v**2) - 0.2) * rr, 0, 1) * alpha
    body, mark = _object_rgb(seg)
    a, m = alpha[..., None].astype(np.float32), marker[..., None].astype(np.float32)
    frames = background[None] * (1 - a) + body * a
    frames = frames * (1 - m) + mark * m
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------- audio
# Partials (frequency ratio, amplitude) of each instrument: the timbre that names the kind.
TIMBRES: dict[str, list[tuple[float, float]]] = {
    "flute": [(1, 1.0), (2, 0.25), (3, 0.06)],
    "organ": [(k, 1 / k) for k in (1, 3, 5, 7, 9)],
    "bell": [(1, 1.0), (2.76, 0.6), (5.40, 0.4), (8.93, 0.25)],
    "horn": [(k, 1 / k) for k in range(1, 9)],
    "buzzer": [(k, 1 / math.sqrt(k)) for k in range(1, 9)],
    "clarinet": [(k, 1 / k**2) for k in (1, 3, 5, 7)],
}


def _timbre_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ratios = np.zeros((len(INSTRUMENTS), MAX_PARTIALS), np.float32)
    amps = np.zeros((len(INSTRUMENTS), MAX_PARTIALS), np.float32)
    norms = np.zeros(len(INSTRUMENTS), np.float32)
    for i, name in enumerate(INSTRUMENTS):
        partials = TIMBRES[name]
        ratios[i, : len(partials)] = [r for r, _ in partials]
        amps[i, : len(partials)] = [a for _, a in partials]
        norms[i] = np.sqrt(sum(a * a for _, a in partials) / 2)
    return ratios, amps, norms


# The timbres as tables for the batched renderers (mmv_lite.data.render): per instrument, in INSTRUMENTS order, each
# partial's frequency ratio and float32 amplitude padded with zeros ``(instruments, MAX_PARTIALS)``, and the loudness
# norm that render_sound divides by.
MAX_PARTIALS = max(len(p) for p in TIMBRES.values())
PARTIAL_RATIOS, PARTIAL_AMPS, TIMBRE_NORMS = _timbre_tables()


def _envelope_and_pitch(seg: Segment, t: np.ndarray, size: int = FRAME_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Loudness envelope and pitch multiplier over time ``t``, driven by the same trajectory the frames use."""
    env, bend = np.ones_like(t), np.ones_like(t)
    m, sp = seg.motion, seg.speed
    if m in ("rise", "fall"):  # pitch follows height on screen: rising object -> rising glide, reset at the wrap
        _, y, _, _ = _trajectory(seg, t, size)
        bend = 2.0 ** (0.6 * (0.5 - y / size))
    elif m == "slide":
        bend = 1.0 + 0.01 * np.sin(2 * np.pi * 5.0 * t)
    elif m == "spin":  # tremolo twice per turn
        env = 0.55 + 0.45 * np.cos(2 * 2 * np.pi * 0.45 * sp * t) ** 2
    elif m == "pulse":  # louder when bigger
        _, _, _, scale = _trajectory(seg, t, size)
        env = 0.25 + 0.75 * (scale - 0.65) / 0.7
    elif m == "bounce":  # a struck note at every impact with the floor (|sin| = 0)
        since = (t * sp * 1.0) % 1.0 / (sp * 1.0)
        env = np.exp(-since / 0.12)
    elif m == "orbit":  # regular staccato beats, 4 per turn
        env = ((t * 4 * 0.6 * sp) % 1.0 < 0.4).astype(np.float64)
        env = np.convolve(env, np.hanning(161) / np.hanning(161).sum(), mode="same")  # no clicks
    return env, bend


def render_sound(
    seg: Segment, n_samples: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE, t0: float = 0.0
) -> np.ndarray:
    """The object's sound ``(n_samples,)`` float32 from ``t0`` seconds into the segment: additive synthesis of the
    kind's timbre at the segment's pitch."""
    t = np.arange(n_samples, dtype=np.float64) / sample_rate
    env, bend = _envelope_and_pitch(seg, t0 + t)
    f = seg.pitch_hz * bend
    # The phase accumulates in float64, then one turn of it is enough in float32 (sines in float32 are twice as fast).
    phase = (2 * np.pi * np.cumsum(f) / sample_rate % (2 * np.pi)).astype(np.float32)
    out = np.zeros(n_samples, np.float32)
    partials = TIMBRES[INSTRUMENTS[KINDS.index(seg.kind)]]
    for ratio, amp in partials:
        if ratio * f.max() < 0.45 * sample_rate:
            out += np.float32(amp) * np.sin(np.float32(ratio) * phase + np.float32(rng.uniform(0, 2 * np.pi)))
    out /= np.sqrt(sum(a * a for _, a in partials) / 2)  # same loudness for every timbre
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)  # 10 ms fades: no click at segment edges
    return (0.3 * seg.gain * env * ramp * out).astype(np.float32)


NOISE_BANK_SECONDS = 16.0
_NOISE_BANKS: dict[tuple[str, int], np.ndarray] = {}


def _coloured_noise(name: str, n_samples: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    white = rng.standard_normal(n_samples)
    if name == "gradient":  # mains hum and a little hiss
        t = np.arange(n_samples) / sample_rate
        noise = sum(np.sin(2 * np.pi * 100 * k * t) / k for k in (1, 2, 3)) + 0.3 * white
    else:
        alpha = {"plain": 0.0, "stripes": 1.0, "checker": 2.0}[name]  # white, pink, brown: power ~ 1/f^alpha
        spec = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n_samples, 1 / sample_rate)
        spec *= 1.0 / np.maximum(freqs, 20.0) ** (alpha / 2)
        noise = np.fft.irfft(spec, n_samples)
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def background_noise(name: str, n_samples: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The scene's noise: its colour follows the background (shared by vision and audio, invisible to narration).

    A window of ``n_samples`` at a random place of a 16-second bank of that noise (made once per process, from a
    fixed seed: the same bank everywhere); longer recordings are synthesised whole."""
    if n_samples > NOISE_BANK_SECONDS * sample_rate / 2:
        return 0.025 * _coloured_noise(name, n_samples, rng, sample_rate)
    key = (name, sample_rate)
    if key not in _NOISE_BANKS:
        bank_rng = np.random.default_rng([BACKGROUNDS.index(name), sample_rate])
        _NOISE_BANKS[key] = _coloured_noise(name, int(NOISE_BANK_SECONDS * sample_rate), bank_rng, sample_rate)
    bank = _NOISE_BANKS[key]
    start = int(rng.integers(len(bank) - n_samples + 1))
    return 0.025 * bank[start : start + n_samples]


# --------------------------------------------------------------------------------------------------- narration
DETERMINERS = ("the", "a", "this", "our")
FILLERS = ("so", "okay so", "um", "uh", "now", "alright", "and then", "next", "right so", "okay now", "um so", "here")
FILLER_ONLY = (
    "okay so lets get started",
    "alright um lets see",
    "so yeah thats basically it",
    "um give me a second here",
    "right okay",
    "thanks for watching",
    "and uh yeah",
    "so as you can see",
)
TAILS = ("right here", "like this", "you see", "again", "on the screen", "for a while", "just like that")
KIND_WORDS = {
    "circle": ("circle", "ball", "disc"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge", "pyramid"),
    "star": ("star", "starfish"),
    "cross": ("cross", "plus sign"),
    "diamond": ("diamond", "rhombus", "gem"),
}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("big", "large", "huge")}
SHADE_WORDS = {"dark": ("dark", "deep"), "light": ("light", "pale", "bright")}


def _verb_forms(verb: str) -> tuple[str, str, str]:
    """(bare, third person, -ing) of one English verb of the motion phrases: "go" -> goes, "slide" -> sliding,
    "spin" -> spinning (a one-syllable verb ending consonant-vowel-consonant doubles its last letter)."""
    third = verb + ("es" if verb.endswith(("o", "sh", "ss")) else "s")
    if verb.endswith("e"):
        ing = verb[:-1] + "ing"
    elif len(re.findall("[aeiou]+", verb)) == 1 and re.search("[^aeiou][aeiou][^aeiouwy]$", verb):
        ing = verb + verb[-1] + "ing"
    else:
        ing = verb + "ing"
    return verb, third, ing


def _forms(*phrases: str) -> tuple[tuple[str, str, str], ...]:
    """(bare, third person, -ing) of each phrase: its verbs (the first word, and the word after an "and") conjugated."""
    out = []
    for phrase in phrases:
        parts = [p.split(" ", 1) for p in phrase.split(" and ")]  # [[verb, rest?], ...]
        forms = [[_verb_forms(verb)[i] + "".join(" " + r for r in rest) for verb, *rest in parts] for i in range(3)]
        out.append(tuple(" and ".join(f) for f in forms))
    return tuple(out)  # type: ignore[return-value]


# (bare, third person, -ing) forms of each motion's synonyms
MOTION_WORDS = {
    "slide": _forms("slide across", "glide sideways", "move sideways", "drift across"),
    "rise": _forms("rise", "go up", "float up", "climb"),
    "fall": _forms("fall", "drop", "sink", "go down"),
    "spin": _forms("spin", "rotate", "turn around", "twirl"),
    "pulse": _forms("pulse", "grow and shrink", "swell", "throb"),
    "bounce": _forms("bounce", "hop", "jump"),
    "orbit": _forms("orbit", "go round", "loop around", "revolve"),
}
# ASR-style mis-recognitions: real words that sound alike
ASR_ERRORS = {
    "square": ("swear", "squared"),
    "circle": ("circus", "sparkle"),
    "triangle": ("tangle", "strangle"),
    "star": ("stare", "start"),
    "cross": ("crust", "course"),
    "diamond": ("diamonds", "dime"),
    "box": ("bucks", "fox"),
    "ball": ("bowl", "fall"),
    "red": ("read", "bread"),
    "blue": ("blew", "glue"),
    "green": ("screen", "grin"),
    "yellow": ("hello", "mellow"),
    "purple": ("people", "turtle"),
    "orange": ("arrange", "range"),
    "spins": ("pins", "spends"),
    "bounces": ("announces", "ounces"),
    "rises": ("prizes", "raises"),
    "falls": ("calls", "false"),
    "slides": ("sides", "slights"),
    "pulses": ("pulls", "puzzles"),
    "orbits": ("orbit", "habits"),
    "small": ("smell", "mall"),
    "big": ("pig", "bag"),
    "flute": ("fruit", "flu"),
    "bell": ("belle", "spell"),
    "horn": ("corn", "born"),
    "organ": ("oregon", "organic"),
}


def _pick(rng: np.random.Generator, options):
    return options[rng.integers(len(options))]


@dataclass(frozen=True)
class NarrationStyle:
    """How a narrator talks. ``misalignment``: fraction of captions spoken at another moment than what they describe,
    moved ``offset`` seconds (x 0.7-1.3) earlier or later; ``noise`` scales the speech-recognition noise (filler,
    sound-alike errors, dropped and inserted words, filler-only captions); ``size_said``, ``motion_said``,
    ``colour_said``: how often a caption names the size, the motion and the colour."""

    misalignment: float = 0.0
    offset: float = 3.0
    noise: float = 1.0
    size_said: float = 0.3
    motion_said: float = 1.0
    colour_said: float = 0.8
    filler_only: float = 0.05  # captions that say nothing (times ``noise``)
    every: float = 1.5  # seconds between captions: a segment gets about its length / every of them


def describe(seg: Segment, rng: np.random.Generator, style: NarrationStyle = NarrationStyle()) -> str:
    """One clean sentence about a segment: names the kind, usually the motion and colour, sometimes shade, size or
    the sound (rates from ``style``). Narrators name what they show: the instrument alone in 1 sentence of 20.
    """
    if rng.random() < 0.05:
        inst = INSTRUMENTS[KINDS.index(seg.kind)]
        return _pick(rng, (f"listen to that {inst}", f"you can hear the {inst}", f"that sounds like a {inst}"))
    words = [_pick(rng, DETERMINERS)]
    if rng.random() < style.colour_said:
        if rng.random() < 0.3:
            words.append(_pick(rng, SHADE_WORDS[seg.shade]))
        words.append(seg.colour)
    if rng.random() < style.size_said:
        words.insert(1, _pick(rng, SIZE_WORDS[seg.size]))
    words.append(_pick(rng, KIND_WORDS[seg.kind]))
    subject = " ".join(words)
    bare, third, ing = _pick(rng, MOTION_WORDS[seg.motion])
    form = rng.integers(5)
    if style.motion_said < 1.0 and rng.random() >= style.motion_said:
        text = (
            f"watch {subject}",
            f"you can see {subject}",
            f"{subject} is here",
            f"here we have {subject}",
            f"look at {subject}",
        )[form]
    elif form == 0:
        text = f"watch {subject} {bare}"
    elif form == 1:
        text = f"you can see {subject} {ing}"
    elif form == 2:
        text = f"{subject} is {ing}"
    elif form == 3:
        text = f"here we have {subject} that {third}"
    else:
        text = f"{subject} {third}"
    if rng.random() < 0.3:
        text += " " + _pick(rng, TAILS)
    return text


def asr_noise(text: str, rng: np.random.Generator, error_rate: float = 0.08, noise: float = 1.0) -> str:
    """Speech-recognition noise: leading filler, sound-alike substitutions, dropped and inserted words.

    ``noise`` scales every rate (0: the text as spoken)."""
    out = [_pick(rng, FILLERS)] if rng.random() < 0.6 * noise else []
    for w in text.split():
        r = rng.random()
        if w in ASR_ERRORS and r < error_rate * noise:
            w = _pick(rng, ASR_ERRORS[w])
        elif r > 1 - 0.02 * noise:
            continue
        out.append(w)
        if rng.random() < 0.03 * noise:
            out.append(_pick(rng, ("uh", "um", "like", "you know")))
    return " ".join(out)


@dataclass
class Narration:
    """A video's captions: when each is spoken (``start``, ``end``, seconds), which segment it describes (``about``,
    -1 for filler only), and its words, made on demand (:meth:`text`): a clip needs the few nearest captions only.
    ``captions`` is the whole narration in HowTo100M layout."""

    start: list[float]
    end: list[float]
    about: list[int]
    segments: list[Segment]
    style: NarrationStyle
    seed: int  # each caption's words come from the random stream (seed, caption index)
    _texts: dict[int, str] = field(default_factory=dict, repr=False, compare=False)  # captions worded so far

    def text(self, i: int) -> str:
        if i not in self._texts:  # the clips of a video share its captions: each is worded once
            rng = Stream([self.seed, i])  # np.random.default_rng([self.seed, i])'s numbers
            if self.about[i] < 0:
                self._texts[i] = _pick(rng, FILLER_ONLY)
            else:
                segment = self.segments[self.about[i]]
                self._texts[i] = asr_noise(describe(segment, rng, self.style), rng, noise=self.style.noise)
        return self._texts[i]

    @property
    def captions(self) -> dict[str, list]:
        return {
            "start": list(self.start),
            "end": list(self.end),
            "text": [self.text(i) for i in range(len(self.start))],
        }


def narrate_segments(segments: list[Segment], style: NarrationStyle, rng: np.random.Generator) -> Narration:
    """The narration of a video (:class:`Narration`), captions in the order they are spoken.

    A narrator speaks about every ``style.every`` seconds: a segment gets that many captions, each spanning its share
    of the segment (edges jittered by up to 0.3 s) and each worded anew. With probability ``style.misalignment`` a
    caption is spoken ``style.offset`` seconds (x 0.7-1.3) before or after, so that it sits over another moment of the
    video; with probability ``style.filler_only`` (times the noise) it says nothing about anything.
    """
    duration = segments[-1].end
    rows = []
    for i, seg in enumerate(segments):
        n = max(1, int(round((seg.end - seg.start) / style.every)))
        step = (seg.end - seg.start) / n
        edges = [k * step + seg.start for k in range(n)] + [seg.end]  # np.linspace's values, without its overhead
        for a, b in zip(edges[:-1], edges[1:]):
            rows.append(_spoken(i, a, b, duration, style, rng))
    rows.sort(key=lambda r: r[0])
    return Narration(
        start=[round(r[0], 2) for r in rows],
        end=[round(r[1], 2) for r in rows],
        about=[r[2] for r in rows],
        segments=segments,
        style=style,
        seed=int(rng.integers(2**62)),
    )


def _spoken(
    index: int, a: float, b: float, duration: float, style: NarrationStyle, rng: np.random.Generator
) -> tuple[float, float, int]:
    """When a caption about segment ``index`` (its span ``[a, b)``) is spoken, perhaps at another moment, and what it
    is about (-1: filler only): ``(start, end, about)``."""
    shift = 0.0
    if rng.random() < style.misalignment:
        shift = _pick(rng, (-1.0, 1.0)) * style.offset * rng.uniform(0.7, 1.3)
        if not 0.0 <= (a + b) / 2 + shift <= duration:  # spoken within the video: the other way
            shift = -shift
    start = min(max(a + shift + rng.uniform(-0.3, 0.3), 0.0), duration - 0.5)  # np.clip's result, on floats
    end = min(max(b + shift + rng.uniform(-0.3, 0.3), start + 0.5), duration)
    return start, end, -1 if rng.random() < style.filler_only * style.noise else index


def text_corpus(n_sentences: int, seed: int) -> list[str]:
    """Extra narration-style sentences about random objects, for training the word vectors."""
    rng = np.random.default_rng([seed, 7, 7])
    out = []
    for _ in range(n_sentences):
        seg = draw_segment(rng, 0.0, 1.0, None)
        out.append(asr_noise(describe(seg, rng), rng) if rng.random() < 0.9 else _pick(rng, FILLER_ONLY))
    return out


# Words that real text puts near each colour (a real corpus such as GoogleNews separates colour words this way).
COLOUR_WORDS = {
    "red": ("red", "crimson", "scarlet", "cherry"),
    "green": ("green", "emerald", "lime", "grass"),
    "blue": ("blue", "navy", "azure", "sky"),
    "yellow": ("yellow", "lemon", "golden", "sun"),
    "purple": ("purple", "violet", "lilac", "plum"),
    "orange": ("orange", "tangerine", "amber", "carrot"),
}


def glossary_corpus(n_per_concept: int, seed: int) -> list[str]:
    """Short dictionary-like word lists, one concept each: ``"ball disc circle flute"``, ``"drops sinks fall"``.

    Narrations put every shape word in the same contexts ("the ___ is spinning"), so word2vec trained on them alone
    gives near-identical vectors to circle, square, ... (cosine 0.95), and a frozen text tower can hardly tell them
    apart. In a real corpus, words of different meaning appear with different neighbours; these lists play that part
    (shape-word cosine about 0.4 with them).
    """
    rng = np.random.default_rng([seed, 9, 9])
    filler = {"and", "across", "sideways", "up", "down", "around", "round"}
    groups = [[w for p in KIND_WORDS[k] for w in p.split()] + [inst] for k, inst in zip(KINDS, INSTRUMENTS)]
    groups += [sorted({w for syn in forms for f in syn for w in f.split()} - filler) for forms in MOTION_WORDS.values()]
    groups += [list(words) for words in COLOUR_WORDS.values()]
    out = []
    for group in groups:
        for _ in range(n_per_concept):
            out.append(" ".join(rng.choice(group, size=4, replace=len(group) < 4)))
    return out


# --------------------------------------------------------------------------------------------------- files
def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: float = FPS,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 20,
    gop: int = 10,
    audio_bitrate: int = 32_000,
) -> None:
    """Write ``frames (T, H, W, 3) uint8`` as H.264 yuv420p and ``audio (samples,) float32`` as AAC mono with PyAV.

    ``audio=None`` writes a file with no audio stream. Single-threaded x264 and bit-exact flags make the bytes
    depend only on the inputs. A keyframe every ``gop`` frames keeps seeking cheap; ``faststart`` puts the index first.
    """
    import av

    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8; got {frames.shape} {frames.dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart", "fflags": "+bitexact"}) as out:
        vs = out.add_stream("libx264", rate=int(fps))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.options = {
            "crf": str(crf),
            "preset": "medium",
            "threads": "1",
            "bf": "0",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "flags": "+bitexact",
        }
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=sample_rate, layout="mono")
            astream.bit_rate = audio_bitrate
            astream.options = {"flags": "+bitexact"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        if astream is not None:
            audio = np.clip(np.asarray(audio, np.float32), -1, 1)
            hop = 1024
            for i in range(0, len(audio), hop):
                af = av.AudioFrame.from_ndarray(audio[None, i : i + hop], format="fltp", layout="mono")
                af.sample_rate, af.pts = sample_rate, i
                out.mux(astream.encode(af))
            out.mux(astream.encode(None))
    os.replace(tmp, path)


def _video_specs(n_narrated: int, n_sound: int, seed: int) -> list[tuple[str, str, int]]:
    specs = [(f"narrated_{i:03d}", "narrated", i) for i in range(n_narrated)]
    return specs + [(f"sound_{i:03d}", "sound", i) for i in range(n_sound)]


def assign_splits(ids: list[str], seed: int) -> dict[str, str]:
    """Fixed train / val / test split by video, 70 / 15 / 15 (at least one val and test video when there are 3+)."""
    order = list(np.random.default_rng([seed, 99]).permutation(len(ids)))
    n = len(ids)
    n_val = max(1, round(n * 0.15)) if n >= 3 else 0
    n_test = max(1, round(n * 0.15)) if n >= 3 else 0
    split = {}
    for rank, i in enumerate(order):
        split[ids[i]] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return split


SEGMENTS_PER_VIDEO = 10  # segments of a narrated video (each one object doing one thing)
SEGMENT_SECONDS = (2.5, 4.5)  # range of a segment's length


def plan_segments(rng: np.random.Generator, world: WorldConfig, n: int = SEGMENTS_PER_VIDEO) -> list[Segment]:
    """``n`` consecutive segments of a video; with probability ``world.object_continuity`` a segment goes on with the
    previous segment's object (doing something else)."""
    lengths = np.round(rng.uniform(*SEGMENT_SECONDS, size=n), 1)  # whole frames at 10 fps (make-samples)
    bounds = np.concatenate([[0.0], np.cumsum(lengths)])
    segments: list[Segment] = []
    for i in range(n):
        prev = segments[-1] if segments else None
        same = prev is not None and rng.random() < world.object_continuity
        segments.append(draw_segment(rng, float(bounds[i]), float(bounds[i + 1]), prev, world.object_scale, same))
    return segments


def narration_style(world: WorldConfig, held_out: bool = False) -> NarrationStyle:
    """How the world's training videos are narrated (its dials); ``held_out``: the fixed style of the held-out sets
    (aligned, every caption about its segment, the size never said)."""
    if held_out:
        return NarrationStyle(misalignment=0.0, size_said=0.0, filler_only=0.0)
    return NarrationStyle(
        misalignment=world.misalignment,
        offset=world.misalignment_offset,
        noise=world.narration_noise,
        size_said=world.size_said,
        motion_said=world.motion_said,
    )


def plan_video(kind: str, index: int, seed: int, world: WorldConfig | None = None) -> dict[str, Any]:
    """The factors of one video file without rendering it: segments, background, duration and (narrated) captions.

    A narrated video is planned as the world stream plans its videos (:func:`plan_segments`, :func:`narrate_segments`
    with the world's narration dials); a sound clip is one segment with no narration.
    Returns ``{"segments": [Segment], "background": str, "noise": str, "duration": float, "captions": dict | None,
    "caption_segments": list[int] | None}``; ``caption_segments[i]`` is the segment caption i talks about (-1: filler).
    """
    world = world or WorldConfig()
    rng = np.random.default_rng([seed, 0 if kind == "narrated" else 1, index])
    segments = plan_segments(rng, world, SEGMENTS_PER_VIDEO if kind == "narrated" else 1)
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    noise = background if rng.random() < world.scene_sound else BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    captions, about = None, None
    if kind == "narrated":
        narration = narrate_segments(segments, narration_style(world), np.random.default_rng([seed, 2, index]))
        captions, about = narration.captions, narration.about
    return {
        "segments": segments,
        "background": background,
        "noise": noise,
        "duration": float(segments[-1].end),
        "captions": captions,
        "caption_segments": about,
    }


def make_video(
    kind: str,
    index: int,
    seed: int,
    size: int = FRAME_SIZE,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
    world: WorldConfig | None = None,
) -> dict[str, Any]:
    """One video, rendered: :func:`plan_video` plus ``"frames": (T, H, W, 3) uint8`` and
    ``"audio": (T * sample_rate / fps,) float32``."""
    plan = plan_video(kind, index, seed, world)
    rng = np.random.default_rng([seed, 3 if kind == "narrated" else 4, index])  # rendering randomness only
    background = make_background(plan["background"], rng, size)
    frames, sound = [], []
    for seg in plan["segments"]:
        n_frames = int(round((seg.end - seg.start) * fps))
        t0 = -(seg.end - seg.start) / 2  # the object passes its resting place mid-segment, as in the world stream
        frames.append(render_frames(seg, background, n_frames, fps, t0=t0))
        sound.append(render_sound(seg, n_frames * sample_rate // fps, rng, sample_rate, t0=t0))
    audio = np.concatenate(sound)
    audio = audio + background_noise(plan["noise"], len(audio), rng, sample_rate)
    return {**plan, "frames": np.concatenate(frames), "audio": audio}


def make_samples(
    out: str | os.PathLike,
    num_videos: int = 60,
    num_sound: int | None = None,
    seed: int = 0,
    size: int = FRAME_SIZE,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
    word_dim: int = 300,
    corpus_sentences: int = 20_000,
    progress: bool = True,
    world: WorldConfig | None = None,
) -> dict[str, Any]:
    """Generate the sample folder ``out``: ``videos/*.mp4``, ``captions.json``, ``metadata.json``, ``word_vectors.bin``.

    Other files in ``out`` (e.g. a checkpoint) are left alone; stale generated videos are removed.
    Returns the metadata dictionary written to ``metadata.json``.
    """
    from .text import WordVectors

    out = Path(out)
    num_sound = num_videos if num_sound is None else num_sound
    specs = _video_specs(num_videos, num_sound, seed)
    splits = {}
    for kind in ("narrated", "sound"):  # split each kind separately so both are in every split
        splits.update(assign_splits([vid for vid, k, _ in specs if k == kind], seed))
    video_dir = out / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    wanted = {f"{vid}.mp4" for vid, _, _ in specs}
    for old in video_dir.glob("*.mp4"):
        if old.name not in wanted and old.name.startswith(("narrated_", "sound_")):
            old.unlink()

    videos, captions = {}, {}
    t0 = time.time()
    for n, (vid, kind, index) in enumerate(specs):
        v = make_video(kind, index, seed, size, fps, sample_rate, world)
        write_mp4(video_dir / f"{vid}.mp4", v["frames"], v["audio"], fps, sample_rate)
        entry = {
            "split": splits[vid],
            "kind": kind,
            "duration": v["duration"],
            "background": v["background"],
            "segments": [s.to_json() for s in v["segments"]],
        }
        if v["captions"] is not None:
            captions[vid] = v["captions"]
            entry["caption_segments"] = v["caption_segments"]
        videos[vid] = entry
        if progress and (n + 1) % 20 == 0:
            print(f"  {n + 1}/{len(specs)} videos ({time.time() - t0:.0f} s)", flush=True)

    # Word vectors: narration-style sentences and glossary lists, like an external text corpus; with the defaults
    # (seed 0) these are the world stream's own words (mmv_lite/data/world_words.bin).
    corpus = text_corpus(corpus_sentences, seed) + glossary_corpus(GLOSSARY_PER_CONCEPT, seed)
    wv = WordVectors.from_texts(corpus, seed=seed, dim=word_dim)
    wv.save(out / "word_vectors.bin")

    metadata = {
        "format_version": FORMAT_VERSION,
        "generator": "mmv_lite.data.synth",
        "seed": seed,
        "fps": fps,
        "frame_size": size,
        "sample_rate": sample_rate,
        "classes": {"action": ACTION_CLASSES, "sound": SOUND_CLASSES, "image": IMAGE_CLASSES},
        "factors": {
            "kind": list(KINDS),
            "instrument": list(INSTRUMENTS),
            "colour": list(COLOURS),
            "shade": list(SHADES),
            "size": list(SIZES),
            "motion": list(MOTIONS),
            "background": list(BACKGROUNDS),
        },
        "videos": videos,
    }
    _write_json(out / "captions.json", captions)
    _write_json(out / "metadata.json", metadata)
    if progress:
        counts = {s: sum(1 for v in videos.values() if v["split"] == s) for s, _ in SPLIT_FRACTIONS}
        print(f"wrote {len(videos)} videos to {out} {counts}, {len(wv) - 1} words, {time.time() - t0:.0f} s")
    return metadata


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def cli_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmv_lite make-samples", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (created; other files in it are kept)")
    p.add_argument("--videos", type=int, default=60, help="number of narrated videos (HowTo100M-like)")
    p.add_argument(
        "--sound-clips", type=int, default=None, help="number of sound clips (AudioSet-like); default: --videos"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=FRAME_SIZE, help="frame height and width in pixels")
    p.add_argument("--fps", type=int, default=FPS)
    p.add_argument("--sample-rate", type=int, default=SAMPLE_RATE)
    p.add_argument("--word-dim", type=int, default=300)
    p.add_argument("--corpus-sentences", type=int, default=20_000, help="extra sentences for the word vectors")
    p.add_argument("--overwrite", action="store_true", help="remove the whole output folder first")
    args = p.parse_args(argv)
    if args.videos < 0 or (args.sound_clips or 0) < 0 or args.videos + (args.sound_clips or args.videos) == 0:
        p.error("--videos and --sound-clips must be >= 0 and not both 0")
    if args.size < 16 or args.size % 2:
        p.error(f"--size {args.size}: expected an even number of pixels >= 16 (H.264 yuv420p)")
    if args.fps < 1:
        p.error(f"--fps {args.fps}: expected >= 1 frame per second")
    if args.sample_rate < 8000:
        p.error(f"--sample-rate {args.sample_rate}: expected >= 8000 Hz (the objects' sounds reach a few kHz)")
    if args.word_dim < 1 or args.corpus_sentences < 0:
        p.error("--word-dim must be >= 1 and --corpus-sentences >= 0")
    if args.overwrite and Path(args.out).exists():
        shutil.rmtree(args.out)
    make_samples(
        args.out,
        args.videos,
        args.sound_clips,
        args.seed,
        args.size,
        args.fps,
        args.sample_rate,
        args.word_dim,
        args.corpus_sentences,
    )
    return 0
