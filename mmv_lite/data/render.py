"""The sample world drawn a batch at a time: frames, sound and log-mel of many planned clips in one call, on any
device (CPU, CUDA, or the meta device, which checks shapes and devices without computing).

    >>> ds = WorldClips(cfg.data, "train", cfg.world, word_vectors)
    >>> params = default_collate([ds.render_params(ds.plan(i), i) for i in range(32)])  # per clip, on the CPU
    >>> video, audio = render_batch(params, cfg.data, device="cuda")   # (B, 3, T, H, W), (B, 1, F, n_mels)

(``WorldClips.planned`` and ``WorldClips.render_batch`` do the same for whole items.)

Two engines draw a batch (:data:`ENGINES`): torch's tensor operations over the whole batch, on any device (CUDA's), and
on the CPU compiled loops that draw it clip by clip (:mod:`mmv_lite.data.render_cpu`, numba), about three times
cheaper there (docs/BENCHMARKS.md, "The world drawn on a CPU by compiled loops").

The world is split in two. *Planning* (:func:`mmv_lite.data.world.plan_clip`, then :func:`clip_params`) is cheap,
per clip, deterministic and runs on the CPU: it draws every random number of a clip from the same NumPy streams as the
per-clip renderer of :mod:`mmv_lite.data.synth` (the background's tint, each partial's phase, where the noise window
starts) and turns the factors into a few numbers. *Rendering* (:func:`render_batch`) is pure arithmetic on
``(B, ...)`` tensors: no random numbers, so the device does not change the clip.

Same world, to within rounding. Against :meth:`mmv_lite.data.world.WorldClips.__getitem__` (the per-clip NumPy
renderer, which ``make-samples``, the result files and the shipped checkpoint rest on), on every split:

- ``video``: every value within one grey level (``1/255``) of the reference, and at most
  ``VIDEO_MISMATCH = 0.1 %`` of them off at all (anti-aliased edge pixels whose value sits on a rounding boundary);
- ``audio`` (log-mel): within ``LOGMEL_ATOL = 1e-3`` (natural-log units; the log-mel of a clip spans about 15).

The differences are float rounding: transcendental functions of another library, sums in another order, the
harmonics summed as a polynomial in ``exp(i phase)`` rather than sine by sine (tests/test_world_render.py checks both
bounds on every split). The frames are computed with the reference's float64 operations in its order, and came out
identical on 256 clips of each split; the log-mel was within 9e-5 there.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import DataConfig
from . import synth
from .audio import LOG_OFFSET, LogMel

VIDEO_MISMATCH = 1e-3  # fraction of video values allowed one grey level off the reference (never more than one)
LOGMEL_ATOL = 1e-3  # log-mel values within this of the reference

MAX_PARTIALS = synth.MAX_PARTIALS
_RATIOS, _AMPS, _NORMS = synth.PARTIAL_RATIOS, synth.PARTIAL_AMPS, synth.TIMBRE_NORMS
_TRIANGLE = [(float(np.cos(a)), float(np.sin(a))) for a in (np.pi / 3, -np.pi / 3)]  # as synth computes them


# --------------------------------------------------------------------------------------------------- planning (CPU)
def _motion_coefficients(seg: synth.Segment, size: int) -> tuple[float, float, float, float]:
    """``(k, a, a2, floor)`` of :func:`synth._trajectory` for ``seg`` at ``size`` pixels, each computed with the same
    float operations in the same order as there (so that ``k * t`` is the reference's value)."""
    s = size / synth.FRAME_SIZE
    r = seg.radius * s
    v = 14.0 * s * seg.speed
    m, k, a, a2, floor = seg.motion, 0.0, 0.0, 0.0, 0.0
    if m == "slide":
        k = seg.direction * v
    elif m in ("rise", "fall"):
        k = v
    elif m == "spin":
        k = seg.direction * 2 * np.pi * 0.45 * seg.speed
    elif m == "pulse":
        k = 2 * np.pi * 0.8 * seg.speed
    elif m == "bounce":
        floor, k, a = min(seg.y * s + 10 * s, size - r - 1), np.pi * 1.0 * seg.speed, 18 * s
    elif m == "orbit":
        k, a, a2 = 2 * np.pi * 0.6 * seg.speed, 9 * s, seg.direction * 9 * s
    return float(k), float(a), float(a2), float(floor)


def _trajectory_params(seg: synth.Segment, size: int, prefix: str) -> dict[str, int | float]:
    s = size / synth.FRAME_SIZE
    r = seg.radius * s
    k, a, a2, floor = _motion_coefficients(seg, size)
    values = {
        "motion": synth.MOTIONS.index(seg.motion),
        "x0": seg.x * s,
        "y0": seg.y * s,
        "r": r,
        "period": size + 2 * r,
        "angle": seg.angle,
        "k": k,
        "a": a,
        "a2": a2,
        "floor": floor,
    }
    return {f"{prefix}{name}": int(v) if name == "motion" else float(v) for name, v in values.items()}


def _highest_pitch(seg: synth.Segment, t0: float, n: int, sample_rate: int) -> tuple[float, float]:
    """Bounds ``(lo, hi)`` on the highest frequency ``f.max()`` that :func:`synth.render_sound` computes for ``seg``
    over ``n`` samples from ``t0`` (it decides which partials exist, and so which phases are drawn)."""
    p, m = seg.pitch_hz, seg.motion
    if m == "slide":  # 1 + 0.01 sin(2 pi 5 t): its peak, sampled every 5 / sample_rate of a turn
        return p * (1.0 + 0.01 * math.cos(2 * math.pi * 5.0 / sample_rate)) * (1 - 1e-12), p * 1.01 * (1 + 1e-12)
    if m not in ("rise", "fall"):
        return p, p
    # rise / fall: the pitch follows the height on screen; the lowest point of the window gives the highest pitch
    r, period, v = seg.radius, synth.FRAME_SIZE + 2 * seg.radius, 14.0 * seg.speed
    sign = -1.0 if m == "rise" else 1.0
    ends = [seg.y + sign * v * (t0 + i / sample_rate) + r for i in (0, n - 1)]
    cells = {math.floor(e / period) for e in ends}
    if len(cells) == 1:  # no wrap-around inside the window: the height is monotonic
        y = min(e % period for e in ends) - r
        lo = hi = p * 2.0 ** (0.6 * (0.5 - y / synth.FRAME_SIZE))
    else:  # it wraps: the lowest sample lies within one sample's travel of the top edge
        lo = p * 2.0 ** (0.6 * (0.5 - (-r + v / sample_rate) / synth.FRAME_SIZE))
        hi = p * 2.0 ** (0.6 * (0.5 + r / synth.FRAME_SIZE))
    return lo * (1 - 1e-9), hi * (1 + 1e-9)


def _partial_phases(seg: synth.Segment, t0: float, n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Each partial's starting phase ``(MAX_PARTIALS,)`` float32, NaN for a partial above the band: the draws
    :func:`synth.render_sound` makes from ``rng``, in its order (one per partial it plays)."""
    partials = synth.TIMBRES[synth.INSTRUMENTS[synth.KINDS.index(seg.kind)]]
    lo, hi = _highest_pitch(seg, t0, n, sr)
    limit = 0.45 * sr
    if any(ratio * lo < limit <= ratio * hi for ratio, _ in partials):  # too close to call: the reference's own f
        env_bend = synth._envelope_and_pitch(seg, t0 + np.arange(n, dtype=np.float64) / sr)
        lo = hi = float((seg.pitch_hz * env_bend[1]).max())
    out = np.full(MAX_PARTIALS, np.nan, np.float32)
    for j, (ratio, _) in enumerate(partials):
        if ratio * hi < limit:
            out[j] = np.float32(rng.uniform(0, 2 * np.pi))
    return out


def clip_params(
    cfg: DataConfig,
    picture: synth.Segment,
    background: str,
    sound: synth.Segment,
    noise: str,
    t0: float,
    picture_rng: np.random.Generator,
    sound_rng: np.random.Generator,
) -> dict[str, int | float | np.ndarray]:
    """What :func:`render_batch` needs to draw one clip: a dict of numbers and small arrays (the DataLoader collates
    them).

    ``picture`` is drawn on ``background`` and ``sound`` heard over ``noise``, from ``t0`` seconds into the segment;
    ``picture_rng`` and ``sound_rng`` are the clip's own streams, used exactly as the per-clip renderer uses them.
    """
    size, n, sr = cfg.crop_size, int(round(cfg.clip_seconds * cfg.sample_rate)), cfg.sample_rate
    tint = picture_rng.uniform(70, 120) + picture_rng.uniform(-12, 12, size=3)  # synth.make_background's draws
    stripes = picture_rng.uniform(0, 6) if background == "stripes" else 0.0
    body, mark = synth._object_rgb(picture)
    out = {  # Python ints and floats collate to int64 and float64, as 0-d arrays would, at a fraction of the cost
        "kind": synth.KINDS.index(picture.kind),
        "background": synth.BACKGROUNDS.index(background),
        "tint": np.asarray(tint, np.float64),
        "stripes": float(stripes),
        "body": np.asarray(body, np.float32),
        "mark": np.asarray(mark, np.float32),
        "radius": float(picture.radius * size / synth.FRAME_SIZE),
        "t0": float(t0),
        **_trajectory_params(picture, size, ""),
        **_trajectory_params(sound, synth.FRAME_SIZE, "s_"),
        "instrument": synth.KINDS.index(sound.kind),
        "pitch": float(sound.pitch_hz),
        "speed": float(sound.speed),
        "gain": float(0.3 * sound.gain),
        "phases": _partial_phases(sound, t0, n, sound_rng, sr),
        "noise": synth.BACKGROUNDS.index(noise),
    }
    if (
        n > synth.NOISE_BANK_SECONDS * sr / 2
    ):  # a long recording: its noise is synthesised whole (synth.background_noise)
        out["noise_wave"] = synth.background_noise(noise, n, sound_rng, sr)
    else:
        out["noise_start"] = int(sound_rng.integers(int(synth.NOISE_BANK_SECONDS * sr) - n + 1))
    return out


# --------------------------------------------------------------------------------------------------- rendering
def _groups(codes: torch.Tensor, device: torch.device) -> list[tuple[int, torch.Tensor]]:
    """``[(code, indices on device)]`` for each code in a CPU tensor: the batch split by kind, motion, instrument."""
    return [(int(c), (codes == c).nonzero().flatten().to(device)) for c in torch.unique(codes).tolist()]


def _np_mod(x: torch.Tensor, period: torch.Tensor) -> torch.Tensor:
    """NumPy's ``x % period`` (the sign of the divisor; fmod-based, exact)."""
    return torch.remainder(x, period)


def _trajectory(p: dict[str, torch.Tensor], t: torch.Tensor, prefix: str = "") -> tuple[torch.Tensor, ...]:
    """:func:`synth._trajectory` for a batch: centre, orientation and scale ``(B, T)`` at times ``t (B, T)``."""
    g = {name: p[prefix + name][:, None] for name in ("x0", "y0", "r", "period", "angle", "k", "a", "a2", "floor")}
    motion = p[prefix + "motion"][:, None]
    kt = g["k"] * t
    is_ = lambda name: motion == synth.MOTIONS.index(name)  # noqa: E731
    x = torch.where(is_("slide"), _np_mod(g["x0"] + kt + g["r"], g["period"]) - g["r"], g["x0"].expand_as(t))
    y = torch.where(is_("rise"), _np_mod(g["y0"] - kt + g["r"], g["period"]) - g["r"], g["y0"].expand_as(t))
    y = torch.where(is_("fall"), _np_mod(g["y0"] + kt + g["r"], g["period"]) - g["r"], y)
    y = torch.where(is_("bounce"), g["floor"] - g["a"] * torch.abs(torch.sin(kt)), y)
    x = torch.where(is_("orbit"), g["x0"] + g["a"] * torch.cos(kt), x)
    y = torch.where(is_("orbit"), g["y0"] + g["a2"] * torch.sin(kt), y)
    angle = torch.where(is_("spin"), g["angle"] + kt, g["angle"].expand_as(t))
    scale = torch.where(is_("pulse"), 1.0 + 0.35 * torch.sin(kt), torch.ones_like(t))
    return x, y, angle, scale


def _shape_distance(kind: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """:func:`synth._shape_distance` in torch (the same formulas)."""
    au, av = u.abs(), v.abs()
    if kind == "circle":
        return torch.sqrt(u * u + v * v) - 0.9
    if kind == "square":
        return torch.maximum(au, av) - 0.78
    if kind == "diamond":
        return (au + av / 0.6 - 1.0) * 0.55
    if kind == "triangle":
        d = -u - 0.5
        for c, s in _TRIANGLE:
            d = torch.maximum(d, c * u + s * v - 0.5)
        return d
    if kind == "star":
        rho, phi = torch.sqrt(u * u + v * v), torch.atan2(v, u)
        return (rho - (0.68 + 0.32 * torch.cos(5 * phi))) * 0.6
    if kind == "cross":
        return torch.minimum(torch.maximum(au - 1.0, av - 0.34), torch.maximum(au - 0.34, av - 1.0))
    raise ValueError(f"unknown kind {kind!r}")


def _backgrounds(p: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """:func:`synth.make_background` for a batch: ``(B, 3, 1, size, size)`` float32 (channels first)."""
    dev = p["tint"].device
    grid = torch.arange(size, dtype=torch.float32, device=dev) * (synth.FRAME_SIZE / size)
    yy, xx = grid[:, None].expand(size, size), grid[None, :].expand(size, size)
    kind = p["background"][:, None, None]
    phase = p["stripes"][:, None, None].float()  # a Python float added to float32 pixels stays float32 in NumPy
    stripes = 14 * torch.sign(torch.sin(2 * np.pi * (xx + yy) / 12.0 + phase))
    pattern = torch.where(kind == synth.BACKGROUNDS.index("stripes"), stripes, torch.zeros_like(stripes))
    checker = 12 * (2 * (((xx // 8) + (yy // 8)) % 2) - 1)
    pattern = torch.where(kind == synth.BACKGROUNDS.index("checker"), checker, pattern)
    gradient = 40 * (yy / synth.FRAME_SIZE - 0.5)
    pattern = torch.where(kind == synth.BACKGROUNDS.index("gradient"), gradient, pattern)
    return torch.clamp(p["tint"][:, :, None, None] + pattern[:, None].double(), 0, 255).float()[:, :, None]


def _coverage(code: int, cx, cy, angle, r, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The object's and its marker's coverage ``(b, T, H, W)`` float32 for clips of one kind (``cx, cy, angle, r``
    ``(b, T)``), as :func:`synth.render_frames` computes them (float64, anti-aliased edges)."""
    # Pixels flattened (H * W) so that every operation runs over long contiguous rows.
    grid = torch.arange(size, dtype=torch.float64, device=cx.device) + 0.5
    rr = r[:, :, None]
    dx = grid.repeat(size) - cx[:, :, None]  # (b, T, H * W)
    dy = grid.repeat_interleave(size) - cy[:, :, None]
    c, s = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    u, v = (c * dx + s * dy) / rr, (-s * dx + c * dy) / rr
    a = torch.clamp(0.5 - _shape_distance(synth.KINDS[code], u, v) * rr, 0, 1)
    m = torch.clamp(0.5 - (torch.sqrt((u - 0.5).square_() + v.square_()) - 0.2) * rr, 0, 1).mul_(a)
    shape = (*cx.shape, size, size)
    return a.float().view(shape), m.float().view(shape)


def render_frames(p: dict[str, torch.Tensor], kinds: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """Frames ``(B, 3, T, H, W)`` float32 in [0, 1] (whole grey levels / 255) of a collated batch of
    :func:`clip_params` on their device; ``kinds`` the ``kind`` entry on the CPU (the batch is drawn kind by kind)."""
    size, n_frames, dev = cfg.crop_size, cfg.num_frames, p["t0"].device
    t = p["t0"][:, None] + torch.arange(n_frames, dtype=torch.float64, device=dev) / cfg.fps  # (B, T)
    cx, cy, angle, scale = _trajectory(p, t)
    r = p["radius"][:, None] * scale  # (B, T)
    alpha = torch.empty(len(t), 1, n_frames, size, size, device=dev)
    marker = torch.empty_like(alpha)
    for code, idx in _groups(kinds, dev):
        a, m = _coverage(code, cx[idx], cy[idx], angle[idx], r[idx], size)
        alpha[idx], marker[idx] = a[:, None], m[:, None]
    frames = _backgrounds(p, size) * (1 - alpha) + p["body"][:, :, None, None, None] * alpha  # (B, 3, T, H, W)
    frames = frames * (1 - marker) + p["mark"][:, :, None, None, None] * marker
    return frames.round_().clamp_(0, 255).div_(255.0)


def _frac(x: torch.Tensor) -> torch.Tensor:
    """``x % 1.0`` as NumPy computes it (equal bit for bit: both round the same exact value once)."""
    return x - torch.floor(x)


def _height(p: dict[str, torch.Tensor], idx: torch.Tensor, t: torch.Tensor, rise: bool) -> torch.Tensor:
    """The height ``(b, n)`` of a rising or falling object at times ``t``, at the reference size (the sound's)."""
    y0, k, r, period = (p["s_" + name][idx][:, None] for name in ("y0", "k", "r", "period"))
    y = (y0 - k * t if rise else y0 + k * t) + r
    return y - torch.floor(y / period) * period - r


def _cis(freq: torch.Tensor, phase0: torch.Tensor | float, n: int, offset: int) -> torch.Tensor:
    """``exp(i (2 pi freq (j + offset) + phase0))`` for ``j < n``, ``(b, n)`` complex64, for ``freq (b, 1)`` in turns
    per sample: a steady sinusoid as a product of two short ones (blocks of 256 samples), so that no sample costs a
    sine or a cosine."""
    dev, block = freq.device, 256
    coarse = torch.arange(-(-n // block), dtype=torch.float64, device=dev) * block
    fine = torch.arange(block, dtype=torch.float64, device=dev) + offset
    a, c = 2 * np.pi * _frac(freq * coarse), 2 * np.pi * _frac(freq * fine) + phase0
    za = torch.complex(torch.cos(a), torch.sin(a)).to(torch.complex64)
    zc = torch.complex(torch.cos(c), torch.sin(c)).to(torch.complex64)
    return (za[:, :, None] * zc[:, None, :]).reshape(len(freq), -1)[:, :n]


def _bent_phase(p: dict[str, torch.Tensor], idx: torch.Tensor, motion: str, t: torch.Tensor, sr: int) -> torch.Tensor:
    """The running phase ``(b, n)`` float32 in [0, 2 pi) of a gliding pitch (slide, rise, fall): the running sum
    of the frequency, as :func:`synth.render_sound` takes it."""
    pitch, t0 = p["pitch"][idx][:, None], p["t0"][idx][:, None]
    if motion == "slide":  # vibrato: 1 + 0.01 sin(2 pi 5 t)
        bend = 1.0 + 0.01 * _cis(torch.full_like(t0, 5.0 / sr), 2 * np.pi * 5.0 * t0, len(t), 0).imag.double()
    else:  # pitch follows height on screen
        bend = torch.exp2(0.6 * (0.5 - _height(p, idx, t0 + t, motion == "rise") / synth.FRAME_SIZE))
    turns = torch.cumsum(pitch * bend, 1) / sr
    return (_frac(turns) * (2 * np.pi)).float()


def _envelope(p: dict[str, torch.Tensor], idx: torch.Tensor, motion: str, t: torch.Tensor, sr: int):
    """The loudness envelope ``(b, n)`` float32 of a steady-pitch motion (:func:`synth._envelope_and_pitch`)."""
    t0, sp, n = p["t0"][idx][:, None], p["speed"][idx][:, None], len(t)
    if motion == "spin":  # tremolo twice per turn
        k = 2 * 2 * np.pi * 0.45 * sp
        return 0.55 + 0.45 * _cis(k / (2 * np.pi * sr), k * t0, n, 0).real.square()
    if motion == "pulse":  # louder when bigger
        k = 2 * np.pi * 0.8 * sp
        return 0.25 + 0.75 * ((1.0 + 0.35 * _cis(k / (2 * np.pi * sr), k * t0, n, 0).imag) - 0.65) / 0.7
    tt = t0 + t
    if motion == "bounce":  # a struck note at every impact
        return torch.exp(-(_frac(tt * sp * 1.0) / (sp * 1.0)) / 0.12).float()
    return _smooth((_frac(tt * 4 * 0.6 * sp) < 0.4).double()).float()  # orbit: staccato beats, no clicks


def _fundamentals(p: dict[str, torch.Tensor], codes: dict[str, torch.Tensor], n: int, sr: int):
    """Each clip's fundamental ``exp(i phase)`` ``(B, n)`` complex64, its phase ``(B, n)`` float32 where a bell
    needs it (its partials are not harmonics; other rows unset), and its gain ``(B, n)`` float32: ``0.3 gain x
    envelope x 10 ms fades``."""
    dev = p["t0"].device
    t = torch.arange(n, dtype=torch.float64, device=dev) / sr
    ramp = torch.clamp(torch.minimum(t, t[-1] - t) / 0.01, max=1.0).float()  # 10 ms fades
    gain = p["gain"].float()[:, None] * ramp
    z = torch.empty(len(t0 := p["t0"]), n, dtype=torch.complex64, device=dev)
    phase = torch.empty(len(t0), n, device=dev)
    bell = codes["instrument"] == synth.INSTRUMENTS.index("bell")
    for code, idx in _groups(codes["s_motion"], dev):
        m = synth.MOTIONS[code]
        if m in ("slide", "rise", "fall"):
            phi = _bent_phase(p, idx, m, t, sr)
            z[idx] = torch.complex(torch.cos(phi), torch.sin(phi))
            phase[idx] = phi
            continue
        q = p["pitch"][idx][:, None] / sr  # a steady pitch: phase 2 pi (j + 1) q
        z[idx] = _cis(q, 0.0, n, 1)
        gain[idx] = gain[idx] * _envelope(p, idx, m, t, sr)
        rows = bell[codes["s_motion"] == code].nonzero().flatten().to(dev)  # indices made on the CPU: no sync
        if len(rows):
            steps = torch.arange(1, n + 1, dtype=torch.float64, device=dev)
            phase[idx[rows]] = (_frac(steps * q[rows]) * (2 * np.pi)).float()
    return z, phase, gain


_WINDOW_SPECTRA: dict[tuple[int, str], torch.Tensor] = {}


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """``np.convolve(row, hanning(161) / sum, mode="same")`` for each row of ``x (b, n)``, by FFT."""
    size = 1 << (x.shape[1] + 160 - 1).bit_length()  # a power of two: the FFT's fast size
    key = (size, str(x.device))
    if key not in _WINDOW_SPECTRA:  # the window's spectrum, made once
        w = torch.from_numpy(np.hanning(161) / np.hanning(161).sum()).to(x.device)
        _WINDOW_SPECTRA[key] = torch.fft.rfft(w, size)
    spec = torch.fft.rfft(x, size) * _WINDOW_SPECTRA[key]
    return torch.fft.irfft(spec, size)[:, 80 : 80 + x.shape[1]]


def _coefficients(theta: torch.Tensor, playing: torch.Tensor, instrument: int) -> list[torch.Tensor | None]:
    """Partial k's complex amplitude ``amp / norm * exp(i theta)`` ``(b, 1)`` for k = 1 .. highest ratio (None
    where no clip plays it)."""
    ratios = _RATIOS[instrument]
    out: list[torch.Tensor | None] = [None] * int(ratios.max())
    for j in range(MAX_PARTIALS):
        if ratios[j] and playing[:, j].any():
            amp = (float(_AMPS[instrument, j] / _NORMS[instrument]) * playing[:, j].double()).to(theta.device)
            out[int(ratios[j]) - 1] = torch.polar(amp, theta[:, j].double()).to(torch.complex64)[:, None]
    return out


def _partials(z: torch.Tensor, phase: torch.Tensor, theta: torch.Tensor, playing: torch.Tensor, instrument: int):
    """The instrument's partials summed and levelled, ``(b, n)`` float32: ``sum_j amp_j sin(ratio_j phase +
    theta_j) / norm`` over the partials that play (``playing (b, partials)`` on the CPU). Harmonics as the
    polynomial ``Im sum_k c_k z^k`` (Horner: no sine per sample); a bell's inharmonic partials sine by sine."""
    if instrument == synth.INSTRUMENTS.index("bell"):
        out = torch.zeros_like(phase)
        for j in range(MAX_PARTIALS):
            if _RATIOS[instrument, j] and playing[:, j].any():
                amp = (float(_AMPS[instrument, j] / _NORMS[instrument]) * playing[:, j].float()).to(z.device)
                wave = torch.add(theta[:, j : j + 1], phase, alpha=float(_RATIOS[instrument, j])).sin_()
                out.addcmul_(amp[:, None], wave)
        return out
    coef = _coefficients(theta, playing, instrument)
    step = 2 if all(c is None for c in coef[1::2]) else 1  # odd harmonics only: a polynomial in z^2
    w = z * z if step == 2 else z
    acc = None
    for c in coef[::-step]:  # c_K, c_(K - step), ..., c_1
        acc = c if acc is None else acc * w if c is None else torch.addcmul(c, acc, w)
    return (acc * z).imag if acc is not None else torch.zeros_like(phase)


def render_waves(p: dict[str, torch.Tensor], codes: dict[str, torch.Tensor], cfg: DataConfig) -> torch.Tensor:
    """Sound ``(B, samples)`` float32 of a collated batch of :func:`clip_params` (:func:`synth.render_sound` plus
    :func:`synth.background_noise`); ``codes``: the ``s_motion``, ``instrument`` and ``phases`` entries on the CPU."""
    n, sr, dev = int(round(cfg.clip_seconds * cfg.sample_rate)), cfg.sample_rate, p["t0"].device
    z, phase, gain = _fundamentals(p, codes, n, sr)
    theta = torch.nan_to_num(p["phases"])
    for code, idx in _groups(codes["instrument"], dev):
        playing = ~torch.isnan(codes["phases"][codes["instrument"] == code])  # (b, partials) on the CPU
        gain[idx] = gain[idx] * _partials(z[idx], phase[idx], theta[idx], playing, code)
    return gain + noise(p, cfg)


def noise(p: dict[str, torch.Tensor], cfg: DataConfig) -> torch.Tensor:
    """Each clip's background noise ``(B, samples)`` float32: its window of the noise bank, or its own wave."""
    if "noise_wave" in p:
        return p["noise_wave"]
    n = int(round(cfg.clip_seconds * cfg.sample_rate))
    return _noise_bank(cfg.sample_rate, p["t0"].device).unfold(1, n, 1)[p["noise"], p["noise_start"]]


_BANKS: dict[tuple[int, str], torch.Tensor] = {}


def _noise_bank(sr: int, device: torch.device) -> torch.Tensor:
    """The four backgrounds' noise banks ``(4, samples)`` float32, scaled as :func:`synth.background_noise` does."""
    key = (sr, str(device))
    if key not in _BANKS:
        rows = []
        for name in synth.BACKGROUNDS:
            synth.background_noise(name, 1, np.random.default_rng(0), sr)  # makes the bank
            rows.append(0.025 * synth._NOISE_BANKS[(name, sr)])
        _BANKS[key] = torch.from_numpy(np.stack(rows)).to(device)
    return _BANKS[key]


_MELS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def log_mel(waves: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """:class:`mmv_lite.data.audio.LogMel` for a batch ``(B, samples)`` -> ``(B, 1, F, n_mels)``, with its window and
    filter bank; the magnitude as ``sqrt(re^2 + im^2)`` (the complex ``abs`` costs twice the FFT on a CPU)."""
    key = (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.f_min, cfg.f_max, str(waves.device))
    if key not in _MELS:
        mel = LogMel(cfg).mel
        _MELS[key] = (mel.spectrogram.window.to(waves.device), mel.mel_scale.fb.to(waves.device))
    window, fb = _MELS[key]
    spec = torch.stft(
        waves, cfg.n_fft, cfg.hop_length, window=window, center=True, pad_mode="reflect", return_complex=True
    )  # (B, n_fft // 2 + 1, F)
    re, im = spec.real, spec.imag
    mag = torch.addcmul(re * re, im, im).sqrt_()
    return torch.log(torch.matmul(mag.transpose(-1, -2), fb) + LOG_OFFSET).unsqueeze(1)


CPU_KEYS = ("kind", "s_motion", "instrument", "phases")  # what render_batch reads on the CPU (how to group)


# How a batch is drawn: "torch", tensor operations over the whole batch, on any device; "compiled", clip by clip in
# compiled loops (mmv_lite.data.render_cpu), on the CPU; "auto": "compiled" on the CPU, "torch" elsewhere.
ENGINES = ("auto", "torch", "compiled")


def render_batch(
    params: dict[str, torch.Tensor], cfg: DataConfig, device: str | torch.device | None = None, engine: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a collated batch of :func:`clip_params` on ``device`` (default: where ``params`` are).

    Returns ``video (B, 3, T, H, W)`` float32 in [0, 1] and ``audio (B, 1, F, n_mels)`` log-mel, on ``device``.
    ``params`` may live on any device; the few entries that say how to group the batch are read on the CPU (a
    copy is taken when they are elsewhere), so nothing waits for the device. ``engine``: one of :data:`ENGINES`
    ("auto": the compiled loops when ``device`` is the CPU, torch otherwise)."""
    device = torch.device(device) if device is not None else params["t0"].device
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}; expected one of {ENGINES}")
    if engine == "compiled" or (engine == "auto" and device.type == "cpu"):
        from . import render_cpu  # numba: imported (and its loops compiled or loaded) on first use

        p = {k: v.cpu() for k, v in params.items()}
        video, waves = render_cpu.draw_frames(p, cfg), render_cpu.draw_waves(p, cfg, noise(p, cfg))
        return video.to(device), log_mel(waves, cfg).to(device)
    codes = {k: params[k] if params[k].device.type == "cpu" else params[k].cpu() for k in CPU_KEYS}
    p = {k: v.to(device, non_blocking=True) for k, v in params.items()}
    video = render_frames(p, codes["kind"], cfg)
    audio = log_mel(render_waves(p, codes, cfg), cfg)
    return video, audio
