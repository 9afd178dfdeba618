"""Media files the tests write themselves with PyAV: any timestamps, rotation, codecs, damaged packets.

Frames carry their own index in their colour (``level(k)``, a flat grey), so a test can read back which written
frame a decoded one is; sounds are tones whose onset marks a moment of the file's timeline.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SR = 16_000


def level(k: int) -> int:
    """Grey level of written frame ``k`` (0-24): steps of 8 survive lossy coding of flat pictures."""
    return 24 + 8 * k


def frame_index(picture: np.ndarray) -> int:
    """Which written frame a decoded ``(..., H, W, 3)`` uint8 (or float in [0, 1]) picture is."""
    mean = float(np.asarray(picture, np.float64).mean())
    if mean <= 1.0:
        mean *= 255
    return int(round((mean - 24) / 8))


def grey_frames(n: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """``(n, H, W, 3)`` uint8: frame k is flat grey ``level(k)``."""
    h, w = size
    return np.stack([np.full((h, w, 3), level(k), np.uint8) for k in range(n)])


def tone(seconds: float, onset: float = 0.0, hz: float = 1000.0, rate: int = SR) -> np.ndarray:
    """``(samples,)`` float32: silence, then a sine from ``onset`` seconds (of this waveform) on."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.where(t >= onset, 0.5 * np.sin(2 * np.pi * hz * t), 0).astype(np.float32)


def _video_stream(out, codec: str, size: tuple[int, int], time_base: Fraction, rotation: int, fps: float):
    vs = out.add_stream(codec, rate=int(fps)) if codec == "mpeg4" else out.add_stream(codec)
    vs.height, vs.width = size
    vs.pix_fmt = "yuv420p"
    if codec != "mpeg4":  # mpeg4 (AVI) counts in frames; the others take any timestamps
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
    if codec == "libx264":
        vs.options = {"crf": "18", "bf": "0", "g": "10", "threads": "1"}
    if rotation:
        vs.set_display_rotation(rotation)
    return vs


def _audio_packets(out, codec: str, audio: np.ndarray, rate: int, start: float, corrupt: tuple[int, ...]):
    layout = "stereo" if codec == "ac3" else "mono"
    stream = out.add_stream(codec, rate=rate, layout=layout)
    if codec == "aac":
        stream.options = {"aac_pns": "0"}  # noise substitution draws random numbers: decoding would not repeat
    fmt = "s16" if codec.startswith("pcm") else "s16p" if codec == "libopus" else "fltp"
    size = stream.codec_context.frame_size or 1024
    first = int(round(start * rate))
    packets = []
    for i in range(0, len(audio), size):
        x = audio[None, i : i + size]
        if layout == "stereo":
            x = np.repeat(x, 2, 0)
        if fmt.startswith("s16"):
            x = (np.clip(x, -1, 1) * 32767).astype(np.int16)
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format=fmt, layout=layout)
        af.sample_rate, af.pts, af.time_base = rate, first + i, Fraction(1, rate)
        packets += stream.encode(af)
    packets += stream.encode(None)
    for k in corrupt:  # replace the payload with seeded noise: the decoder rejects it
        p = packets[k]
        junk = np.random.default_rng(k).integers(0, 256, p.size, dtype=np.uint8).tobytes()
        q = av.Packet(junk)
        q.pts, q.dts, q.duration, q.time_base, q.stream = p.pts, p.dts, p.duration, p.time_base, stream
        packets[k] = q
    return packets


def write_media(
    path: str | Path,
    frames: np.ndarray | None,
    times: list[float] | None = None,
    fps: float = 10.0,
    audio: np.ndarray | None = None,
    sample_rate: int = SR,
    audio_start: float = 0.0,
    vcodec: str = "libx264",
    acodec: str = "aac",
    rotation: int = 0,
    corrupt_audio: tuple[int, ...] = (),
    fmt: str | None = None,
) -> Path:
    """Write ``frames (N, H, W, 3)`` shown at ``times`` (s; default ``k / fps``) and ``audio`` whose first sample
    plays at ``audio_start`` s. ``rotation``: display rotation (counter-clockwise degrees) in the container;
    ``corrupt_audio``: indices of audio packets whose bytes are replaced by noise. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = [k / fps for k in range(len(frames))] if frames is not None and times is None else times
    avi = vcodec == "mpeg4"
    tb = Fraction(1, int(fps)) if avi else Fraction(1, 1000)
    with av.open(str(path), "w", format=fmt) as out:
        packets = []
        if frames is not None:
            vs = _video_stream(out, vcodec, frames.shape[1:3], tb, rotation, fps)
            for f, t in zip(frames, times):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                vf.pts, vf.time_base = int(round(t / tb)), tb
                packets += vs.encode(vf)
            packets += vs.encode(None)
        if audio is not None:
            packets += _audio_packets(out, acodec, audio, sample_rate, audio_start, corrupt_audio)
        packets.sort(key=lambda p: float((p.dts if p.dts is not None else p.pts or 0) * p.time_base))
        for p in packets:
            out.mux(p)
    return path


def set_mkv_duration(path: str | Path, seconds: float) -> None:
    """Overwrite the Matroska segment's declared Duration (the data stays as it is)."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # the Duration element: an 8-byte float in TimestampScale units (ms)
    assert at > 0, f"{path}: no 8-byte Duration element"
    data[at + 3 : at + 11] = struct.pack(">d", seconds * 1000.0)
    path.write_bytes(bytes(data))
