"""``ClipDataset``: clips of video, the audio of the same span, and the narrations nearest in time.

A folder looks like ``data_samples/`` (the layout HowTo100M and AudioSet loaders use)::

    ROOT/videos/<video_id>.mp4   (or media files directly in ROOT; .mp4 .mkv .webm .mov .avi .m4v, and
                                  audio-only .wav .flac .mp3 .m4a .ogg)
    ROOT/captions.json           optional: {video_id: {"start": [...], "end": [...], "text": [...]}}
    ROOT/metadata.json           optional: splits, kinds and ground-truth segments (see ``mmv_lite.data.synth``)
    ROOT/word_vectors.bin        word2vec vectors, needed when there are captions

    >>> ds = ClipDataset("data_samples", "train", get_config("lite").data, train=True)
    >>> item = ds[0]
    >>> item["video"].shape, item["audio"].shape, item["text_ids"].shape     # (3,T,H,W) (1,F,80) (K,L)

Each item (the contract of ``docs/DESIGN.md``, made by :func:`mmv_lite.data.items.clip_item`):
``video (3, T, H, W)`` float32 in [0, 1]; ``audio (1, F, n_mels)`` log-mel of exactly the same time span (zeros
when there is no audio track); ``text_ids / text_mask (K, L)`` and ``text_valid (K,)``, the K captions nearest in
time; ``has_audio``, ``has_text``, ``has_video`` bool; ``video_id``, ``start``, ``end``, ``index``;
``action_label``, ``sound_label``, ``image_label`` (-1 when unknown).

Windows. The list of windows is fixed: with ground-truth segments, ``windows_per_segment`` windows evenly spaced in
each segment (one, at its centre, by default); without, the video is tiled with clip-long windows. In train mode each
window's start is re-drawn uniformly within its segment (temporal jitter) and the frames are augmented
(``mmv_lite.data.augment``); eval mode is deterministic.

Time. Frames and sound are placed by their timestamps (``mmv_lite.data.media``): frame ``i`` of a clip is the frame on
screen at ``start + i / fps``, for constant and variable frame rates alike; audio that starts late or has gaps is
silence there; display rotation is applied. Windows tile the span where the streams really are, not the container's
declared duration. The cached and the uncached path (``cache=False``) decode with the same function and give the same
clips.

Short videos. A clip longer than the video starts at 0 and is *padded*, not looped: the last frame is held and the
audio after the end is silence, so that frames and sound stay in sync.

Cache. The first time a video is read it is decoded whole and kept in ``cache_dir`` (default: the media folder's
``.cache``, i.e. ``ROOT/videos/.cache``, or a user cache folder when it is read-only); later reads memory-map it
(``mmv_lite.data.decode_cache``).

Bad input. A damaged packet costs only its own stream and span: frames that decode are used (the previous frame is
held over a damaged one); a clip that overlaps damaged or cut-off audio gets ``has_audio = False`` and a warning naming
the file, the stream and the span; so does a clip that the audio stream spans for less than half of its part inside
the file (``MIN_AUDIO_COVER``): windows after the sound ends, or before a late sound starts, are silence, not sound. A
truncated file (its index lists packets past the end of the data) serves the clips its data covers; a clip that needs
the video past the end raises :class:`TruncatedClipError` saying which stream ends where. A file with nothing usable
(no stream opens, no frame decodes), or a caption entry that does not parse, raises :class:`BadClipError` naming the
file and the problem. With ``skip_bad=True`` these are logged as warnings instead: a bad video found at construction
is left out, a clip that fails while loading is replaced by the next good window (its ``index`` says which; a
truncated clip leaves the file's other clips in), a bad caption entry leaves that video without narration. No other
item is lost.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..config import DataConfig, get_config
from .audio import LogMel, num_audio_frames, num_audio_samples
from .augment import VideoTransform
from .decode_cache import DecodeCache, default_cache_dir, media_folder
from .items import clip_item, nearest_captions
from .media import (
    TRUNCATION_SLACK,
    BadClipError,
    MediaInfo,
    TruncatedClipError,
    audio_cover,
    cut_clip,
    damage_in,
    decode,
    probe,
)
from .text import WordVectors

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".aac")
SPLITS = ("train", "val", "test", "all")
KINDS = ("narrated", "sound")
MIN_AUDIO_COVER = 0.5  # a clip has sound (has_audio) when the audio stream spans at least this fraction of it
# Ground-truth factors of the sample world (metadata.json): per segment, plus the video's background.
FACTORS = ("kind", "colour", "shade", "size", "motion", "background")


# --------------------------------------------------------------------------------------------------- files
def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise BadClipError(f"{path}: malformed {what} JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e
    except UnicodeDecodeError as e:
        raise BadClipError(f"{path}: {what} file is not UTF-8 text ({e})") from e


def _check_caption_entry(path: Path, vid: str, entry: Any) -> dict[str, list]:
    """Validate one HowTo100M caption entry; raise BadClipError naming the file, video and field."""
    if not isinstance(entry, dict) or not all(k in entry for k in ("start", "end", "text")):
        raise BadClipError(f"{path}: captions of {vid!r} must be an object with 'start', 'end' and 'text' lists")
    start, end, text = entry["start"], entry["end"], entry["text"]
    if not all(isinstance(x, list) for x in (start, end, text)):
        raise BadClipError(f"{path}: captions of {vid!r}: 'start', 'end' and 'text' must be lists")
    if not len(start) == len(end) == len(text):
        raise BadClipError(
            f"{path}: captions of {vid!r}: 'start', 'end' and 'text' have different lengths "
            f"({len(start)}, {len(end)}, {len(text)})"
        )
    for i, (s, e, t) in enumerate(zip(start, end, text)):
        if not isinstance(s, (int, float)) or not isinstance(e, (int, float)) or not isinstance(t, str):
            raise BadClipError(f"{path}: captions of {vid!r}, entry {i}: expected numbers start/end and a text string")
        if e < s:
            raise BadClipError(f"{path}: captions of {vid!r}, entry {i}: end {e} is before start {s}")
    return {"start": [float(s) for s in start], "end": [float(e) for e in end], "text": list(text)}


@dataclass(frozen=True)
class Window:
    """One clip window: ``[start, start + clip_seconds)``; train mode re-draws the start in ``[lo, hi]``."""

    video_id: str
    start: float
    lo: float
    hi: float
    segment: int  # index into the video's ground-truth segments, -1 without metadata
    action_label: int = -1
    sound_label: int = -1
    image_label: int = -1


@dataclass
class VideoRecord:
    video_id: str
    path: Path
    split: str
    kind: str
    duration: float
    has_video: bool
    has_audio: bool
    segments: list[dict] = field(default_factory=list)
    truncated: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (data ends, index promises) s
    seekable: bool = False  # clips may be decoded after a seek (MediaInfo.seekable)
    background: str = ""  # the scene, from metadata.json ("" when unknown)
    caption_start: np.ndarray | None = None  # (C,)
    caption_end: np.ndarray | None = None
    caption_text: list[str] = field(default_factory=list)
    caption_ids: torch.Tensor | None = None  # (C, L)
    caption_valid: np.ndarray | None = None  # (C,) some word is in the vocabulary


def media_files(root: str | os.PathLike) -> dict[str, Path]:
    """``{video_id: path}`` of the media files of a folder (``ROOT/videos/`` if it exists, else ``ROOT``), sorted.

    The id is the file name without its extension; when two files share it (``a.mp4``, ``a.webm``), the later one
    keeps its extension in the id (``a.webm``), so that no file is left out."""
    files: dict[str, Path] = {}
    for p in sorted(media_folder(root).iterdir()):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS and not p.name.startswith("."):
            files[p.stem if p.stem not in files else p.name] = p
    return files


def folder_word_vectors(root: str | os.PathLike, text: bool = True) -> WordVectors | None:
    """``ROOT/word_vectors.bin`` when the folder's narrations are to be read, else None (no word vectors needed).

    They are needed when the folder has ``captions.json`` and the model reads text (``text``: ``"t"`` in
    ``train.modalities``); then a missing file raises ``FileNotFoundError`` naming it. A file that is there is read."""
    path = Path(root) / "word_vectors.bin"
    if path.is_file() or (text and (Path(root) / "captions.json").is_file()):
        return WordVectors.load(path)
    return None


def hash_split(video_id: str) -> str:
    """Deterministic 70 / 15 / 15 split for folders without metadata, from a checksum of the video id."""
    h = zlib.crc32(video_id.encode()) % 100
    return "train" if h < 70 else "val" if h < 85 else "test"


# --------------------------------------------------------------------------------------------------- dataset
class ClipDataset(Dataset):
    """Clips of a folder of videos with captions; see the module docstring for layout, windows, cache and errors.

    Args:
        root: the folder (e.g. ``data_samples``).
        split: "train", "val", "test" (from metadata.json; without it a checksum split of the ids) or "all".
        cfg: the data configuration (default: the ``lite`` preset's).
        train: random temporal jitter and augmentation; False = deterministic evaluation clips.
        word_vectors: a :class:`WordVectors`, a path, or None for ``ROOT/word_vectors.bin`` (needed only with captions).
        kinds: which kinds of video to use ("narrated", "sound"); without metadata a video with captions is
            "narrated", else "sound".
        skip_bad: warn and skip bad files/entries instead of raising :class:`BadClipError`.
        cache_dir: where decoded clips are kept (default :func:`default_cache_dir`); ``cache=False`` decodes every time.
        windows_per_segment: fixed windows per ground-truth segment (evenly spaced).
        annotations: read ``captions.json`` and ``metadata.json``; False treats ROOT as a plain folder of media files
            (every video tiled with clip-long windows, no narrations, no labels).
        narrations: False leaves ``captions.json`` unread (no item has text; no word vectors are needed), for a model
            that never reads text (``train.modalities="va"``). Kinds and splits still come from ``metadata.json``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        cfg: DataConfig | None = None,
        train: bool = False,
        word_vectors: WordVectors | str | os.PathLike | None = None,
        kinds: Sequence[str] = KINDS,
        skip_bad: bool = False,
        cache_dir: str | os.PathLike | None = None,
        windows_per_segment: int = 1,
        cache: bool = True,
        annotations: bool = True,
        narrations: bool = True,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"dataset folder {str(self.root)!r} does not exist; make the samples with "
                f"`python -m mmv_lite make-samples --out {self.root}` or point to a folder of videos"
            )
        if split not in SPLITS:
            raise ValueError(f"split={split!r}; expected one of {SPLITS}")
        bad_kinds = set(kinds) - set(KINDS)
        if bad_kinds:
            raise ValueError(f"kinds={tuple(kinds)!r}: unknown {sorted(bad_kinds)}; expected a subset of {KINDS}")
        if windows_per_segment < 1:
            raise ValueError(f"windows_per_segment must be >= 1; got {windows_per_segment}")
        self.cfg = cfg if cfg is not None else get_config("lite").data
        self.split, self.train, self.skip_bad = split, train, skip_bad
        self.windows_per_segment = windows_per_segment
        self.clip_seconds = self.cfg.clip_seconds
        self.num_samples = num_audio_samples(self.cfg)
        self.use_cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(self.root)
        self.logmel = LogMel(self.cfg)
        self.transform = VideoTransform(self.cfg, train)
        self.cache = DecodeCache(self.cache_dir, self.cfg.sample_rate, self.cfg.resize_to)
        self._bad: set[str] = set()  # video ids with nothing usable
        self._bad_windows: set[int] = set()  # windows that need a truncated file past its end
        self._warned: set[tuple[str, str]] = set()

        self.skipped: list[str] = []  # what was left out and why (with skip_bad), in the order it happened
        metadata = self._load_metadata() if annotations else None
        captions = self._load_captions() if annotations and narrations else {}
        self.class_names: dict[str, list[str]] = dict(metadata.get("classes", {})) if metadata else {}
        self.videos: dict[str, VideoRecord] = self._index_videos(metadata, captions, kinds)

        need_words = any(captions.get(v) for v in self.videos)
        if isinstance(word_vectors, WordVectors):
            self.word_vectors: WordVectors | None = word_vectors
        elif word_vectors is not None or need_words:
            self.word_vectors = WordVectors.load(word_vectors or self.root / "word_vectors.bin")
        else:
            self.word_vectors = None
        if self.word_vectors is not None:
            for vid, rec in self.videos.items():
                if captions.get(vid):
                    self._attach_captions(rec, captions[vid])

        self.windows: list[Window] = [w for rec in self.videos.values() for w in self._windows_of(rec)]
        if not self.windows:
            log.warning("ClipDataset(%s, split=%r, kinds=%r) has no clips", self.root, split, tuple(kinds))

    # -------------------------------------------------------------------------------------- construction
    def _bad_input(self, message: str) -> None:
        if not self.skip_bad:
            raise BadClipError(message)
        self.skipped.append(message)
        log.warning("skipping: %s", message)

    def _load_metadata(self) -> dict | None:
        path = self.root / "metadata.json"
        if not path.is_file():
            return None
        try:
            meta = _read_json(path, "metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("videos", {}), dict):
                raise BadClipError(f"{path}: expected an object with a 'videos' object (video_id -> entry)")
            return meta
        except BadClipError as e:
            self._bad_input(f"{e}; continuing without metadata (no splits, labels -1)")
            return None

    def _load_captions(self) -> dict[str, dict[str, list]]:
        path = self.root / "captions.json"
        if not path.is_file():
            return {}
        try:
            raw = _read_json(path, "caption")
            if not isinstance(raw, dict):
                raise BadClipError(f"{path}: expected an object {{video_id: {{start, end, text}}}} (HowTo100M layout)")
        except BadClipError as e:
            self._bad_input(f"{e}; continuing without any narration")
            return {}
        out = {}
        for vid, entry in raw.items():
            try:
                out[vid] = _check_caption_entry(path, vid, entry)
            except BadClipError as e:
                self._bad_input(f"{e}; video {vid!r} gets no narration")
        return out

    def _index_videos(self, metadata: dict | None, captions: dict, kinds: Sequence[str]) -> dict[str, VideoRecord]:
        files = media_files(self.root)
        meta_videos = metadata.get("videos", {}) if metadata else {}
        if metadata:
            missing = [v for v in meta_videos if v not in files]
            for v in missing:
                self._bad_input(f"{self.root / 'metadata.json'} lists {v!r} but no media file {v}.* was found")
            ids = [v for v in meta_videos if v in files]
        else:
            ids = list(files)
            if self.split != "all":
                log.info("%s has no metadata.json: using a checksum split of the video ids", self.root)
        records = {}
        for vid in ids:
            m = meta_videos.get(vid, {})
            split = m.get("split") or hash_split(vid)
            kind = m.get("kind") or ("narrated" if captions.get(vid) else "sound")
            if (self.split != "all" and split != self.split) or kind not in kinds:
                continue
            try:
                info = probe(files[vid])
            except BadClipError as e:
                self._bad_input(str(e))
                continue
            duration = m.get("duration") or info.duration
            self._note_duration(files[vid], info)
            records[vid] = VideoRecord(
                video_id=vid,
                path=files[vid],
                split=split,
                kind=kind,
                duration=float(duration),
                has_video=info.has_video,
                has_audio=info.has_audio,
                segments=list(m.get("segments", [])),
                background=str(m.get("background", "")),
                truncated=dict(info.truncated),
                seekable=info.seekable,
            )
        return records

    @staticmethod
    def _note_duration(path: Path, info: MediaInfo) -> None:
        """Say when a file's declared duration and its streams disagree (the streams win), or it is truncated."""
        for kind, (ends, promised) in info.truncated.items():
            log.warning(
                "%s: truncated: the %s stream's data ends at %.2f s, its index lists packets up to %.2f s; "
                "clips after the end are refused",
                path,
                kind,
                ends,
                promised,
            )
        if not info.truncated and info.declared and abs(info.declared - info.duration) > max(1.0, 0.1 * info.duration):
            log.info(
                "%s declares %.2f s, its streams end at %.2f s: using %.2f s",
                path,
                info.declared,
                info.duration,
                info.duration,
            )

    def _attach_captions(self, rec: VideoRecord, cap: dict[str, list]) -> None:
        rec.caption_start = np.asarray(cap["start"], np.float64)
        rec.caption_end = np.asarray(cap["end"], np.float64)
        rec.caption_text = list(cap["text"])
        ids, mask = self.word_vectors.encode(rec.caption_text, self.cfg.max_words)
        rec.caption_ids = ids
        rec.caption_valid = mask.any(1).numpy()  # a caption with no known word cannot be embedded

    def _windows_of(self, rec: VideoRecord) -> list[Window]:
        clip, last = self.clip_seconds, max(0.0, rec.duration - self.clip_seconds)
        out = []
        if rec.segments:
            for si, seg in enumerate(rec.segments):
                s0, s1 = float(seg["start"]), float(seg["end"])
                lo = min(max(0.0, s0), last)
                hi = max(lo, min(s1 - clip, last))
                n = self.windows_per_segment
                for k in range(n):
                    centre = s0 + (k + 0.5) / n * (s1 - s0)
                    start = min(max(centre - clip / 2, 0.0), last)
                    out.append(
                        Window(
                            rec.video_id,
                            round(start, 4),
                            lo,
                            hi,
                            si,
                            int(seg.get("action_label", -1)),
                            int(seg.get("sound_label", -1)),
                            int(seg.get("image_label", -1)),
                        )
                    )
        else:
            n = max(1, int(rec.duration // clip))
            offset = (rec.duration - n * clip) / 2 if rec.duration > clip else 0.0
            for k in range(n):
                start = offset + k * clip
                out.append(
                    Window(rec.video_id, round(start, 4), max(0.0, start - clip / 2), min(last, start + clip / 2), -1)
                )
        return out

    # -------------------------------------------------------------------------------------- tables
    @property
    def vocab(self) -> list[str] | None:
        return None if self.word_vectors is None else self.word_vectors.vocab

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """Ground truth of every window without decoding: ``{"action": (N,), "sound": (N,), "image": (N,)}`` int64."""
        return {
            name: np.array([getattr(w, f"{name}_label") for w in self.windows], dtype=np.int64)
            for name in ("action", "sound", "image")
        }

    @property
    def factors(self) -> dict[str, list[str]]:
        """Every :data:`FACTORS` value of every window without decoding, ``{"kind": [N str], ...}``; "" = unknown.

        The sample world's metadata names each segment's kind, colour, shade, size and motion and each video's
        background; other folders give "" throughout.
        """
        out: dict[str, list[str]] = {f: [] for f in FACTORS}
        for w in self.windows:
            rec = self.videos[w.video_id]
            seg = rec.segments[w.segment] if 0 <= w.segment < len(rec.segments) else {}
            for f in FACTORS:
                out[f].append(rec.background if f == "background" else str(seg.get(f, "")))
        return out

    def candidate_texts(self, index: int, start: float | None = None) -> list[str]:
        """The raw texts of the K narrations of window ``index`` (at its eval start unless ``start`` is given)."""
        w = self.windows[index]
        rec = self.videos[w.video_id]
        picks = self._nearest_captions(rec, w.start if start is None else start)
        return [rec.caption_text[i] for i in picks]

    def __len__(self) -> int:
        return len(self.windows)

    def __repr__(self) -> str:
        kinds = sorted({r.kind for r in self.videos.values()})
        return (
            f"ClipDataset({str(self.root)!r}, split={self.split!r}, train={self.train}, "
            f"videos={len(self.videos)}, windows={len(self.windows)}, kinds={kinds})"
        )

    # -------------------------------------------------------------------------------------- loading
    def load_clip(self, rec: VideoRecord, start: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Raw frames ``(T, H, W, 3)`` uint8 at ``cfg.fps`` and waveform ``(samples,)`` float32 of one window.

        The waveform is None when the file has no audio stream, when its audio is damaged or cut off within the
        window, or when the audio stream spans less than :data:`MIN_AUDIO_COVER` of the window's part inside the
        file (the sound starts later or has ended: the rest is silence the file never held); a warning says why.
        Raises :class:`TruncatedClipError` when the window needs the video of a truncated file past its end.
        """
        end = start + self.clip_seconds
        audio_lost = self._check_truncation(rec, start, end)
        if self.use_cache:
            d = self.cache.load(rec.path)
        else:
            d = decode(rec.path, self.cfg.sample_rate, self.cfg.resize_to, start, end + 0.2, rec.seekable)
        frames, wave = cut_clip(d, start, self.cfg.num_frames, self.cfg.fps, self.num_samples)
        lost = audio_lost + [x.describe() for x in damage_in(d, "audio", start, end)]
        cover = audio_cover(d, start, min(end, max(rec.duration, start + 1e-3)))  # of the part of it in the file
        if wave is not None and cover < MIN_AUDIO_COVER:
            a0, a1 = d.audio_t0, d.audio_t0 + len(d.audio) / d.audio_rate
            lost.append(f"the audio stream spans {a0:.2f}-{a1:.2f} s, {100 * cover:.0f}% of the clip")
        if wave is not None and lost:
            self._warn_once(rec, f"{'; '.join(lost)}: clip {start:.2f}-{end:.2f} s has no audio (has_audio=False)")
            wave = None
        held = damage_in(d, "video", start, end)
        if frames is not None and held:
            self._warn_once(rec, f"{held[0].describe()}: the frames before it are held there")
        return frames, wave

    def _check_truncation(self, rec: VideoRecord, start: float, end: float) -> list[str]:
        """Raise when the window needs truncated video past its end; return why its audio is lost, if it is."""
        need = min(end, rec.duration)
        lost = []
        for kind, (ends, promised) in rec.truncated.items():
            if need <= ends + TRUNCATION_SLACK:
                continue
            why = (
                f"the {kind} stream ends at {ends:.2f} s (the file's index lists {kind} up to {promised:.2f} s: "
                "the rest of the file is missing)"
            )
            if kind == "video" or not rec.has_video:
                raise TruncatedClipError(f"{rec.path}: truncated: {why}; the clip needs {start:.2f}-{end:.2f} s")
            lost.append(why)
        return lost

    def _warn_once(self, rec: VideoRecord, message: str) -> None:
        if (rec.video_id, message) not in self._warned:
            self._warned.add((rec.video_id, message))
            log.warning("%s: %s", rec.path, message)

    def _nearest_captions(self, rec: VideoRecord, start: float) -> list[int]:
        """Indices of the K usable captions nearest in time to the window (:func:`.items.nearest_captions`)."""
        if rec.caption_ids is None:
            return []
        end = start + self.clip_seconds
        k = self.cfg.num_candidates
        return nearest_captions(rec.caption_start, rec.caption_end, start, end, k, usable=rec.caption_valid)

    def _item(self, index: int) -> dict[str, Any]:
        w = self.windows[index]
        rec = self.videos[w.video_id]
        start = w.start
        if self.train and w.hi > w.lo:
            start = w.lo + float(torch.rand(())) * (w.hi - w.lo)
        frames, wave = self.load_clip(rec, start)

        cfg = self.cfg
        if frames is not None:
            video = self.transform(torch.from_numpy(frames).permute(0, 3, 1, 2))
        else:
            video = torch.zeros(3, cfg.num_frames, cfg.crop_size, cfg.crop_size)
        has_audio = wave is not None
        audio = self.logmel(torch.from_numpy(wave)) if has_audio else torch.zeros(1, num_audio_frames(cfg), cfg.n_mels)

        picks = self._nearest_captions(rec, start)
        return clip_item(
            video,
            audio,
            rec.caption_ids[picks] if picks else None,
            cfg.num_candidates,
            cfg.max_words,
            has_audio=has_audio,
            has_video=frames is not None,
            video_id=w.video_id,
            start=start,
            end=start + self.clip_seconds,
            index=index,
            labels=(w.action_label, w.sound_label, w.image_label),
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.windows):
            raise IndexError(f"index {index} out of range for {len(self.windows)} clips")
        for k in range(len(self.windows)):
            i = (index + k) % len(self.windows)
            vid = self.windows[i].video_id
            if vid in self._bad or i in self._bad_windows:
                continue
            try:
                return self._item(i)
            except TruncatedClipError as e:  # this window only: the file's other windows may be fine
                if not self.skip_bad:
                    raise
                self._bad_windows.add(i)
                self.skipped.append(str(e))
                log.warning("skipping clip %d of %s (replaced by the next good one): %s", i, vid, e)
            except BadClipError as e:
                if not self.skip_bad:
                    raise
                self._bad.add(vid)
                self.skipped.append(str(e))
                log.warning("skipping %s (clip %d replaced by the next good one): %s", vid, i, e)
        raise BadClipError(f"{self.root}: every video of this dataset failed to load (see the warnings above)")

    @staticmethod
    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        """``default_collate``, with ``video_id`` kept as a list of str. Items that are None are dropped."""
        items = [it for it in items if it is not None]
        return default_collate(items) if items else {}

    def warm_cache(self) -> int:
        """Decode every video of the dataset into the cache now (e.g. before timing); returns how many were read."""
        n = 0
        for rec in self.videos.values():
            try:
                self.cache.load(rec.path)
                n += 1
            except BadClipError as e:
                if not self.skip_bad:
                    raise
                self._bad.add(rec.video_id)
                self.skipped.append(str(e))
                log.warning("skipping %s: %s", rec.video_id, e)
        return n
