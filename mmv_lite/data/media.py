"""Reading media files with PyAV: frames placed at their timestamps, sound cut by its own, damage kept local.

One rule decides where everything in a file belongs, whatever the container or the frame rate:

- **Video.** Every decoded frame is placed at its presentation timestamp (``times[i]``, seconds). A clip samples the
  frame *on screen* at each of its instants ``start + i / fps`` (the last frame shown at or before it), so constant
  and variable frame rates (phone recordings, screen captures, encoders that skip unchanged frames) are read alike.
  Display rotation metadata is applied the way FFmpeg's own tools do: frames come out upright.
- **Audio.** Decoded audio frames are resampled to mono ``int16`` and each run of contiguous frames is placed at its
  own timestamp on one sample grid, so a stream that starts late or has gaps stays in sync with the picture (silence
  where there is no sound).
- **Damage.** A packet that fails to decode costs only its own stream over its own time span (a :class:`Damage`):
  frames that decode are used, an audio span that does not is reported so that clips overlapping it can be treated
  as having no audio. A file ends where its data ends.
- **Durations.** A container's declared duration is a hint. :func:`probe` measures where each stream's packets end;
  a stream is *truncated* only when the file's own index lists packets beyond the end of the file (the rest of the
  file is missing), and a clip is refused only when it needs a truncated stream past the point where it ends.

    >>> info = probe("data_samples/videos/narrated_000.mp4")           # MediaInfo: streams, duration, truncation
    >>> d = decode("data_samples/videos/narrated_000.mp4", 16_000, 64)  # the whole file, frames <= 64 px short side
    >>> frames, wave = cut_clip(d, start=2.0, num_frames=8, fps=5.0, num_samples=25_600)  # (8, H, W, 3), (25600,)

``decode(path, ..., start, stop)`` decodes only ``[start, stop)`` (after a seek, with a warm-up margin) and gives the
same clips as decoding the whole file: the dataset's cached and uncached paths both go through it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SEEK_MARGIN = 1.0  # s decoded before a clip after a seek: the decoder and resampler warm up there
AUDIO_GAP = 0.005  # s of timestamp jump between audio frames that starts a new run (ms-rounded timestamps jitter ~1 ms)
TRUNCATION_SLACK = 0.5  # s a clip may reach past a truncated stream's end before it is refused (last frame held)
TAIL_SCAN = 3.0  # s before the declared end where the packet scan of probe() starts
INDEX_TAIL = 256  # last index entries of a stream that probe() checks against the file's size


def _keep_garbage_in_the_parent() -> None:
    """Around every fork (DataLoader workers): the child never collects the garbage it inherits.

    FFmpeg objects run threads (an audio resampler's filter graph, a scaler). One that is garbage in a reference cycle
    when a DataLoader forks is copied into the worker without its threads, and a worker whose collector frees it waits
    forever for them (``avfilter_graph_free`` -> ``pthread_cond_destroy``, seen with gdb in hung test runs). Frozen
    objects are never collected: the parent collects them after the fork, the child never does."""
    import gc

    os.register_at_fork(before=gc.freeze, after_in_parent=gc.unfreeze)


if hasattr(os, "register_at_fork"):  # POSIX; Windows does not fork
    _keep_garbage_in_the_parent()


class BadClipError(RuntimeError):
    """A media, caption or metadata file that cannot be used; the message names the file and the problem."""


class TruncatedClipError(BadClipError):
    """One clip needs a stream past the point where a truncated file's data ends (other clips of the file are fine)."""


@dataclass(frozen=True)
class Damage:
    """A time span of one stream that could not be decoded."""

    kind: str  # "video", "audio", or "file" (the container's data stops: every stream ends there)
    stream: str  # e.g. "audio stream #1 (ac3)"
    start: float  # seconds
    end: float
    error: str

    def describe(self) -> str:
        return f"{self.stream} at {self.start:.2f}-{self.end:.2f} s ({self.error})"


@dataclass
class MediaInfo:
    """What :func:`probe` learns without decoding: streams, where their packets end, and truncation."""

    has_video: bool
    has_audio: bool
    duration: float  # seconds: the span clips are planned on (where the streams end; see ``truncated``)
    declared: float | None  # the container's declared duration (a hint)
    ends: dict[str, float]  # "video"/"audio" -> end of the stream's last packet (seconds)
    truncated: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (data ends, index promises)
    fps: float | None = None  # the stream's average frame rate (informational; frames are placed by timestamp)
    seekable: bool = False  # a seek was checked to keep the index's timestamps: clips may be decoded after one


@dataclass
class Decoded:
    """A decoded stretch of a file.

    ``frames[i]`` (``(N, H, W, 3)`` uint8, upright) is shown from ``times[i]`` seconds (``(N,)`` float64, sorted) until
    the next frame; ``audio[j]`` (``(S,)`` int16 mono, or float32) plays at ``audio_t0 + j / audio_rate`` (the
    stream's own rate; :func:`cut_clip` resamples clips to ``sample_rate``). ``frames``/``times`` are None without a
    video stream, ``audio`` None without an audio one. ``damage`` lists the spans that failed to decode.
    """

    frames: np.ndarray | None
    times: np.ndarray | None
    audio: np.ndarray | None
    audio_t0: float
    audio_rate: int
    sample_rate: int
    damage: list[Damage] = field(default_factory=list)


def _target_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """Downscale so that the shorter side is at most ``max_short_side`` (even sizes); never upscale."""
    short = min(width, height)
    if short <= max_short_side:
        return width, height
    s = max_short_side / short
    return max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)


def _first_streams(container: Any) -> tuple[Any, Any]:
    vs = container.streams.video[0] if container.streams.video else None
    ast = container.streams.audio[0] if container.streams.audio else None
    return vs, ast


def stream_name(stream: Any) -> str:
    """``"audio stream #1 (aac)"``: how messages name a stream."""
    codec = getattr(getattr(stream, "codec_context", None), "name", None) or "unknown codec"
    return f"{stream.type} stream #{stream.index} ({codec})"


def _frame_period(stream: Any) -> float:
    """Seconds one frame of a video stream lasts when its packets do not say: 1 / the stream's frame rate."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return 1.0 / float(rate) if rate else 0.04


# --------------------------------------------------------------------------------------------------- probe
def _index_promise(stream: Any, file_size: int) -> float | None:
    """Where the file's index says ``stream`` ends, when it lists packets beyond the end of the file; else None.

    Only the last entries are read: a file cut short loses its last packets (a long mp4 indexes 100 000 of them).
    """
    try:
        entries = stream.index_entries
        n = len(entries)
    except (AttributeError, TypeError):
        return None
    tail = [entries[i] for i in range(max(0, n - INDEX_TAIL), n)]
    if not any(e.pos + e.size > file_size for e in tail):
        return None
    period = _frame_period(stream) if stream.type == "video" else 0.0
    return float(max(e.timestamp for e in tail) * stream.time_base) + period


def _listed(stream: Any, timestamp: int) -> bool:
    """Whether the file's index has an entry at ``timestamp`` (True when the stream has no index to ask)."""
    try:
        entries = stream.index_entries
        if not len(entries):
            return True
        i = entries.search_timestamp(timestamp, backward=True, any_frame=True)
        return i >= 0 and entries[i].timestamp == timestamp
    except (AttributeError, TypeError):
        return True


def _packet_ends(container: Any, streams: list[Any], from_time: float) -> tuple[dict[str, float], bool]:
    """End time (s) of the last packet of each stream, reading packets (not decoding) from ``from_time``; and
    whether seeking there kept the timestamps the file's index gives (some AVI files renumber frames after a seek)."""
    import av

    if from_time > 0:
        try:
            container.seek(int(from_time * av.time_base), backward=True, any_frame=False)
        except av.error.FFmpegError:
            return {}, False  # cannot seek: the caller scans from the start
    ends: dict[str, float] = {}
    seek_ok, checked = from_time > 0, set()
    try:
        for p in container.demux(*streams):
            ts = p.pts if p.pts is not None else p.dts
            if ts is None:
                continue
            kind = p.stream.type
            if kind not in checked and from_time > 0:
                checked.add(kind)
                # the first packet after a seek starts an entry of the index, at the index's timestamp
                seek_ok = seek_ok and _listed(p.stream, p.dts if p.dts is not None else p.pts)
            end = float((ts + (p.duration or 0)) * p.time_base)
            if not p.duration and kind == "video":
                end += _frame_period(p.stream)
            ends[kind] = max(ends.get(kind, -math.inf), end)
    except av.error.FFmpegError:
        pass  # the data stops here: what was read so far is where the streams end
    return ends, seek_ok


def probe(path: str | os.PathLike) -> MediaInfo:
    """Open a media file and measure its streams from packet timestamps, without decoding.

    The packets near the declared end are read first (cheap); when that finds nothing for a stream (a declared
    duration that is too long, a truncated file) every packet is read. Raises :class:`BadClipError`.
    """
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as c:
            vs, ast = _first_streams(c)
            if vs is None and ast is None:
                raise BadClipError(f"{path}: no video or audio stream")
            streams = [s for s in (vs, ast) if s is not None]
            declared = c.duration / 1_000_000 if c.duration is not None else None
            fps = float(vs.average_rate) if vs is not None and vs.average_rate else None
            size = path.stat().st_size
            promised = {s.type: _index_promise(s, size) for s in streams}
            tail = max(0.0, (declared or 0.0) - TAIL_SCAN)
            ends, seekable = _packet_ends(c, streams, tail)
        if tail > 0 and (not seekable or any(kind not in ends for kind in promised)):  # read every packet
            # (a new container: stream objects die with theirs)
            with av.open(str(path)) as c:
                ends, _ = _packet_ends(c, [s for s in _first_streams(c) if s is not None], 0.0)
    except BadClipError:
        raise
    except Exception as e:  # av.error.FFmpegError, OSError, ...
        raise BadClipError(f"{path}: cannot open as a media file ({type(e).__name__}: {e})") from e
    if not ends:
        raise BadClipError(f"{path}: no packet of any stream could be read (empty or damaged file)")
    truncated = {
        kind: (ends.get(kind, 0.0), promise)
        for kind, promise in promised.items()
        if promise is not None and promise > ends.get(kind, 0.0) + TRUNCATION_SLACK
    }
    duration = max([*ends.values(), *(p for _, p in truncated.values())])
    return MediaInfo(
        has_video="video" in promised,
        has_audio="audio" in promised,
        duration=max(0.0, duration),
        declared=declared,
        ends=ends,
        truncated=truncated,
        fps=fps,
        seekable=seekable,
    )


# --------------------------------------------------------------------------------------------------- pictures
def upright(rotation: float | None) -> Callable[[np.ndarray], np.ndarray]:
    """The transform that turns a decoded ``(H, W, 3)`` picture upright, as FFmpeg's tools do (``autorotate``).

    ``rotation``: the display matrix's counter-clockwise angle (``VideoFrame.rotation``; phones store portrait video
    as landscape with -90 or 90). Multiples of 90 degrees are applied; other angles are left as stored.
    """
    k = round((rotation or 0) / 90)
    if k % 4 == 0 or abs((rotation or 0) - 90 * k) > 1:
        return lambda x: x
    return lambda x: np.rot90(x, k)


# --------------------------------------------------------------------------------------------------- sound
class AudioTrack:
    """Decoded audio frames -> mono int16 at the stream's own rate, each run of contiguous frames placed at its own
    timestamp. (Resampling to the model's rate happens per clip, in :func:`cut_clip`: a resampler restarted at another
    packet would change the last bit of some samples, and the cached and uncached clips must be identical.)

    A run is placed when it ends (:meth:`flush`), by its first frame of the codec's full size, on the grid of the
    stream's packets: coarse timestamps (Matroska's milliseconds) say where a frame is only to a tick, and the first
    frame after a seek may be trimmed by the decoder (Opus drops its pre-skip again), so the run's first timestamp
    alone would put the samples of a seek's decode a few samples away from where the whole file's decode puts them.
    """

    def __init__(self, origin: float = 0.0, tick: float = 0.0, frame_size: int = 0, delay: int = 0) -> None:
        self.rate = 0  # the first frame's sample rate; later frames at another rate are resampled to it
        self.origin, self.tick = origin, tick  # the stream's start time and timestamp unit (s)
        self.frame_size = frame_size  # samples per frame of the codec (AAC 1024, AC-3 1536; 0 = variable or unsaid)
        self.delay = delay  # samples the decoder drops at the stream's start (Opus pre-skip): packets start earlier
        self.chunks: list[tuple[int, np.ndarray]] = []  # (index of the first sample on the grid t * rate, samples)
        self._resampler: Any = None
        self._key: tuple | None = None
        self._next_t = 0.0  # where the next frame of the current run should start (s)
        self._run: list[np.ndarray] = []  # the current run's resampled samples
        self._frames: list[tuple[float, float, int]] = []  # the current run's frames: (timestamp, offset s, samples)
        self._offset = 0.0  # seconds of the current run so far

    def add(self, frame: Any) -> None:
        import av

        t = float(frame.pts * frame.time_base) if frame.pts is not None else self._next_t
        self.rate = self.rate or frame.sample_rate
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or key != self._key or abs(t - self._next_t) > AUDIO_GAP:
            self.flush()  # a gap, or a new format: the run ends here and a new one starts at t
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
            self._key = key
        self._frames.append((t, self._offset, frame.samples))
        self._offset += frame.samples / frame.sample_rate
        self._next_t = t + frame.samples / frame.sample_rate
        self._collect(self._resampler.resample(frame))

    def _run_start(self) -> float:
        """Where the current run starts (s): its first full-size frame's end put on the packets' grid when the
        timestamps are coarser than a sample and that moves it by at most one tick, else its first timestamp."""
        first, rate = self._frames[0][0], self._key[2]  # (the run's frames share one sample rate)
        if self.tick * rate <= 1:
            return first  # timestamps finer than a sample: exact already
        sizes = [n for _, _, n in self._frames]
        size = self.frame_size or max(set(sizes), key=sizes.count)  # the codec's frame, else the run's usual one
        step = size / rate
        if step <= 4 * self.tick:
            return first  # a grid no finer than the timestamps (AVI counts whole frames): nothing to snap
        grid0 = self.origin - self.delay / rate  # where the stream's first packet starts
        for t, offset, n in self._frames:
            if n == size:
                end = t + step
                snapped = grid0 + round((end - grid0) / step) * step
                return snapped - offset - step if abs(snapped - end) <= self.tick + 1e-9 else first
        return first

    def flush(self) -> None:
        if self._resampler is None:
            return
        self._collect(self._resampler.resample(None))
        at = int(round(self._run_start() * self.rate))
        for x in self._run:
            self.chunks.append((at, x))
            at += len(x)
        self._resampler, self._run, self._frames, self._offset = None, [], [], 0.0

    def _collect(self, frames: list[Any]) -> None:
        self._run += [x for x in (out.to_ndarray().reshape(-1) for out in frames) if len(x)]

    def waveform(self) -> tuple[np.ndarray, float]:
        """``(samples (S,) int16 at self.rate, t0 seconds)``: every run on one grid, silence (zeros) between runs."""
        self.flush()
        if not self.chunks:
            return np.zeros(0, np.int16), 0.0
        lo = min(i for i, _ in self.chunks)
        hi = max(i + len(x) for i, x in self.chunks)
        out = np.zeros(hi - lo, np.int16)
        for i, x in self.chunks:
            out[i - lo : i - lo + len(x)] = x
        return out, lo / self.rate


# --------------------------------------------------------------------------------------------------- decoding
class _Pictures:
    """Decoded video frames of ``[start, stop)``, upright, shorter side at most ``max_short_side``: the last frame shown
    at or before ``start`` and every frame after it."""

    def __init__(self, stream: Any, max_short_side: int, start: float, stop: float):
        self.size = _target_size(stream.codec_context.width, stream.codec_context.height, max_short_side)
        self.period = _frame_period(stream)
        self.start, self.stop = start, stop
        self.turn: Callable[[np.ndarray], np.ndarray] | None = None
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []

    def add(self, frame: Any) -> bool:
        """Keep ``frame`` if it belongs to the span; True once frames reach ``stop``."""
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is not None:
            t = float(ts * frame.time_base)
        else:  # no timestamp at all: the frame follows the previous one
            t = self.times[-1] + self.period if self.times else self.start
        if t >= self.stop and self.frames:
            return True
        if self.turn is None:  # (frame.rotation, not frame.side_data: the latter makes a reference cycle that a
            # forked DataLoader worker may collect, freeing the parent's scaler threads: a deadlock)
            self.turn = upright(frame.rotation)
        w, h = self.size
        # threads=1: a scaler with threads, copied into a forked DataLoader worker, can wait there for threads that
        # exist only in the parent
        img = np.ascontiguousarray(self.turn(frame.to_ndarray(format="rgb24", width=w, height=h, threads=1)))
        if t <= self.start + 1e-6 and self.times and self.times[-1] <= self.start + 1e-6:
            if t >= self.times[-1]:  # only the frame on screen at `start` is needed: the latest one before it
                self.frames[-1], self.times[-1] = img, t  # (a frame whose timestamp is earlier, decoded later, is not)
        else:
            self.frames.append(img)
            self.times.append(t)
        return t >= self.stop  # a stream that starts after the span: its first frame stands in, as when cached

    def result(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not self.frames:
            return None, None
        order = np.argsort(np.asarray(self.times), kind="stable")  # presentation order, whatever the decoder gave
        return np.stack([self.frames[i] for i in order]), np.asarray(self.times, np.float64)[order]


def _packet_damage(packet: Any, error: Exception) -> Damage:
    s = packet.stream
    ts = packet.pts if packet.pts is not None else packet.dts
    t0 = float(ts * packet.time_base) if ts is not None else math.nan
    dur = float(packet.duration * packet.time_base) if packet.duration else 0.0
    if not dur and s.type == "video":
        dur = _frame_period(s)
    return Damage(s.type, stream_name(s), t0, t0 + dur, f"{type(error).__name__}: {error}")


def _decode_span(
    path: Path, sample_rate: int, max_short_side: int, start: float, stop: float, seek: bool
) -> tuple[Decoded, dict[str, float]]:
    """One pass of :func:`decode`; also returns each stream's declared start time (s), to check the seek."""
    import av

    damage: list[Damage] = []
    with av.open(str(path)) as c:
        vs, ast = _first_streams(c)
        if vs is None and ast is None:
            raise BadClipError(f"{path}: no video or audio stream")
        streams = [s for s in (vs, ast) if s is not None]
        starts = {s.type: float(s.start_time * s.time_base) if s.start_time is not None else 0.0 for s in streams}
        pictures = _Pictures(vs, max_short_side, start, stop) if vs is not None else None
        track = None
        if ast is not None:
            cc = ast.codec_context
            track = AudioTrack(starts["audio"], float(ast.time_base), cc.frame_size or 0, getattr(cc, "delay", 0) or 0)
        if vs is not None:
            vs.thread_type = "NONE"  # one thread per DataLoader worker; frame threads only add latency here
        if seek:
            c.seek(int((start - SEEK_MARGIN) * av.time_base), backward=True, any_frame=False)
        done = {s.type: False for s in streams}
        packets = c.demux(*streams)
        last_t = start if seek else 0.0
        while not all(done.values()):
            try:
                packet = next(packets)
            except StopIteration:
                break
            except Exception as e:  # the container's data stops here (cut file, garbage): keep what was read
                damage.append(Damage("file", "the file", last_t, math.inf, f"{type(e).__name__}: {e}"))
                break
            kind = packet.stream.type
            if done[kind]:
                continue
            try:
                frames = packet.decode()
            except Exception as e:  # a damaged packet costs its own stream, over its own span
                damage.append(_packet_damage(packet, e))
                continue
            for frame in frames:
                if kind == "video":
                    done["video"] = pictures.add(frame) or done["video"]
                    last_t = pictures.times[-1] if pictures.times else last_t
                elif frame.pts is not None and float(frame.pts * frame.time_base) >= stop:
                    done["audio"] = True
                else:
                    track.add(frame)
    frames, times = pictures.result() if pictures is not None else (None, None)
    audio, audio_t0 = track.waveform() if track is not None else (None, 0.0)
    rate = (track.rate or sample_rate) if track is not None else sample_rate
    return Decoded(frames, times, audio, audio_t0, rate, sample_rate, damage), starts


def decode(
    path: str | os.PathLike,
    sample_rate: int,
    max_short_side: int,
    start: float = 0.0,
    stop: float = math.inf,
    seekable: bool = True,
) -> Decoded:
    """Decode the frames and mono audio of ``[start, stop)`` seconds (clips of it are resampled to ``sample_rate``).

    Frames keep their presentation timestamps (``times``) and come out upright; the frame on screen at ``start`` is
    included. With ``start > SEEK_MARGIN`` and ``seekable`` (``MediaInfo.seekable``) the demuxer first seeks to the
    keyframe before ``start - SEEK_MARGIN``; if the seek lands after ``start`` (files without a usable index), the span
    is decoded from the beginning instead.
    Damaged packets are skipped and listed in ``Decoded.damage``. Raises :class:`BadClipError` when nothing of the
    video stream decodes, or the file cannot be opened.
    """
    path = Path(path)
    seek = seekable and start > SEEK_MARGIN
    try:
        d, starts = _decode_span(path, sample_rate, max_short_side, start, stop, seek)
        if seek and _seek_missed(d, starts, start):
            d, starts = _decode_span(path, sample_rate, max_short_side, start, stop, False)
    except BadClipError:
        raise
    except Exception as e:  # the file cannot be opened or set up (per-packet errors are caught inside)
        raise BadClipError(f"{path}: cannot decode ({type(e).__name__}: {e})") from e
    if "video" in starts and d.frames is None:
        why = "; ".join(x.describe() for x in d.damage[:3]) or "no frame in the span"
        raise BadClipError(f"{path}: no video frame could be decoded from {start:.2f} s ({why})")
    return d


def _seek_missed(d: Decoded, starts: dict[str, float], start: float) -> bool:
    """Whether a seek skipped data the span needs (a stream's first decoded moment is after ``start``)."""
    if "video" in starts and (d.times is None or d.times[0] > max(start, starts["video"]) + 1e-3):
        return True
    if "audio" in starts and d.audio is not None and len(d.audio):
        return d.audio_t0 > max(start, starts["audio"]) + AUDIO_GAP
    return False


# --------------------------------------------------------------------------------------------------- clips
def cut_clip(
    d: Decoded, start: float, num_frames: int, fps: float, num_samples: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Frames ``(T, H, W, 3)`` uint8 at ``fps`` and waveform ``(num_samples,)`` float32 from ``start`` seconds.

    Frame ``i`` is the frame on screen at ``start + i / fps`` (the last one shown at or before it; before the first
    frame, the first; after the last, the last is held). Audio outside the recording is silence.
    """
    frames = None
    if d.frames is not None and len(d.frames):
        instants = start + np.arange(num_frames) / fps
        idx = np.searchsorted(d.times, instants + 1e-6, side="right") - 1
        frames = np.asarray(d.frames[np.clip(idx, 0, len(d.frames) - 1)])
    wave = None
    if d.audio is not None:
        wave = _audio_window(d, start, num_samples)
    return frames, wave


def _audio_window(d: Decoded, start: float, num_samples: int) -> np.ndarray:
    """``(num_samples,)`` float32 at ``d.sample_rate`` from ``start``: silence outside the recording."""
    nr, sr = d.audio_rate, d.sample_rate
    g = math.gcd(nr, sr)
    pad = (nr // g) * math.ceil(256 * g / nr)  # native samples of context each side, a whole number of output ones
    n = -(-num_samples * nr // sr) + 2 * pad if nr != sr else num_samples
    a0 = int(round(start * nr)) - int(round(d.audio_t0 * nr)) - (pad if nr != sr else 0)
    x = np.zeros(n, np.float32)
    lo, hi = max(a0, 0), min(a0 + n, len(d.audio))
    if hi > lo:
        chunk = np.asarray(d.audio[lo:hi])
        x[lo - a0 : hi - a0] = chunk / 32768.0 if chunk.dtype == np.int16 else chunk
    if nr == sr:
        return x
    import torch  # heavy: only clips whose audio is not at the model's rate need it
    import torchaudio

    y = torchaudio.functional.resample(torch.from_numpy(x), nr, sr).numpy()
    skip = pad * sr // nr
    return np.ascontiguousarray(y[skip : skip + num_samples], dtype=np.float32)


def audio_cover(d: Decoded, start: float, end: float) -> float:
    """The fraction of ``[start, end)`` that the decoded audio stream spans (0 without one): outside it, before the
    sound starts or after it ends, a clip's waveform is silence that the file never held."""
    if d.audio is None or not len(d.audio) or end <= start:
        return 0.0
    a0, a1 = d.audio_t0, d.audio_t0 + len(d.audio) / d.audio_rate
    return max(0.0, min(end, a1) - max(start, a0)) / (end - start)


def damage_in(d: Decoded, kind: str, start: float, end: float) -> list[Damage]:
    """The damaged spans of ``kind`` ("audio"/"video") that overlap ``[start, end)``."""
    return [x for x in d.damage if x.kind == kind and x.start < end and x.end > start]
