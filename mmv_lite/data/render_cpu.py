"""The batched renderer's CPU engine: each clip of a batch drawn by compiled loops (numba): what
:func:`mmv_lite.data.render.render_frames` and :func:`~mmv_lite.data.render.render_waves` draw, without a pass over
the whole batch per operation.

On a CPU, torch's batched renderer spends most of its time moving ``(clips, 25,600)`` arrays through memory, one
operation at a time (about 3,600 of them per batch, docs/BENCHMARKS.md). Here one loop draws a clip while its arrays
stay in the core's cache, and the inner loops are simple enough for the compiler to run 4 or 8 samples at once:

- no sine per sample where a rotation will do: a steady tone, a vibrato, a tremolo are products of two short tables
  (:func:`_cis`), and the harmonics are a polynomial in the fundamental's ``exp(i phase)`` (Horner);
- where a sine per sample is needed (a gliding pitch's phase, a bell's inharmonic partials), a vectorisable
  float32 sine (:func:`_sin32`, within 2.4e-7 of NumPy's: two float32 steps at 1);
- a rise or fall's pitch bend ``2 ** x`` (its Taylor series, within 1e-15) and the bounce's decay once per block of
  256 samples, times a table within the block (sample by sample only where the object wraps or lands);
- the star's ``cos 5 phi`` as ``Re (u + iv)^5 / rho^5``, without an arctangent;
- the orbit's staccato smoothed with its 161-tap window only near an edge of the beat (elsewhere the window sees
  a constant).

Same world, to the same tolerance as the torch engine (:data:`mmv_lite.data.render.VIDEO_MISMATCH`,
:data:`~mmv_lite.data.render.LOGMEL_ATOL`; tests/test_world_render.py checks both engines against the per-clip
renderer). The log-mel stays in torch (:func:`mmv_lite.data.render.log_mel`).

Compiled once per installation (about 13 s on a 2-core CPU): numba caches the machine code (``cache=True``, beside
this file, or in ``NUMBA_CACHE_DIR`` when set), and a later process reads it back in well under a second.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from ..config import DataConfig
from . import synth

f32, f64 = np.float32, np.float64
_JIT = {"cache": True, "nogil": True, "fastmath": {"contract"}}  # contract: fused multiply-adds, nothing reordered

MOTION = {name: i for i, name in enumerate(synth.MOTIONS)}
SLIDE, RISE, FALL, SPIN, PULSE, BOUNCE, ORBIT = (MOTION[m] for m in synth.MOTIONS)
KIND = {name: i for i, name in enumerate(synth.KINDS)}
CIRCLE, SQUARE, TRIANGLE, STAR, CROSS, DIAMOND = (KIND[k] for k in synth.KINDS)
BELL = synth.INSTRUMENTS.index("bell")
STRIPES, CHECKER, GRADIENT = (synth.BACKGROUNDS.index(b) for b in ("stripes", "checker", "gradient"))
_TRI = np.array([(math.cos(a), math.sin(a)) for a in (math.pi / 3, -math.pi / 3)])  # as synth computes them
_BLOCK = 256  # a steady sinusoid is a product of a per-block and a per-sample table of this many entries

# float32 sine on any float32 argument of moderate size (|x| < 1e4): Cody-Waite reduction by pi/2, minimax
# polynomials on [-pi/4, pi/4] (Cephes' sinf / cosf), the quadrant chosen by arithmetic so that loops vectorise.
_S1, _S2, _S3 = f32(-1.6666654611e-1), f32(8.3321608736e-3), f32(-1.9515295891e-4)
_C1, _C2, _C3 = f32(4.166664568298827e-2), f32(-1.388731625493765e-3), f32(2.443315711809948e-5)
_P1, _P2, _P3 = f32(1.5703125), f32(4.837512969970703125e-4), f32(7.54978995489188216e-8)
_2_PI32, _TWO_OVER_PI = f32(2 * np.pi), f32(2 / np.pi)
_H, _Q, _ONE, _TWO = f32(0.5), f32(0.25), f32(1.0), f32(2.0)


@numba.njit(**_JIT)
def _sin32(x):
    k = np.floor(x * _TWO_OVER_PI + _H)
    r = ((x - k * _P1) - k * _P2) - k * _P3
    odd = _TWO * (k * _H - np.floor(k * _H))  # 1 where k is odd: the cosine's polynomial
    neg = np.floor(_TWO * (k * _Q - np.floor(k * _Q)))  # 1 where k % 4 is 2 or 3: negated
    z = r * r
    s = r + r * z * (_S1 + z * (_S2 + z * _S3))
    c = _ONE - _H * z + z * z * (_C1 + z * (_C2 + z * _C3))
    return (s + odd * (c - s)) * (_ONE - _TWO * neg)


_LN2 = math.log(2.0)
_INV_FACT = tuple(1.0 / math.factorial(k) for k in range(18))  # exp's Taylor coefficients


@numba.njit(**_JIT)
def _exp2(x):
    """``2 ** x`` for |x| < 1 in float64 (Taylor series of exp(x ln 2) to the 17th power: within 1e-15)."""
    y = x * _LN2
    acc = _INV_FACT[17]
    for k in range(16, -1, -1):
        acc = acc * y + _INV_FACT[k]
    return acc


@numba.njit(**_JIT)
def _frac(x):
    return x - np.floor(x)


@numba.njit(**_JIT)
def _cis(freq, phase0, n, offset, re, im):
    """``re + i im = exp(i (2 pi freq (j + offset) + phase0))`` for ``j < n`` (``freq`` in turns per sample), as
    :func:`mmv_lite.data.render._cis`: the product of a per-block and a per-sample table."""
    fine_re, fine_im = np.empty(_BLOCK), np.empty(_BLOCK)
    for i in range(_BLOCK):
        c = 2 * np.pi * _frac(freq * (i + offset)) + phase0
        fine_re[i], fine_im[i] = math.cos(c), math.sin(c)
    for m in range((n + _BLOCK - 1) // _BLOCK):
        a = 2 * np.pi * _frac(freq * (m * _BLOCK))
        ar, ai = math.cos(a), math.sin(a)
        for i in range(min(_BLOCK, n - m * _BLOCK)):
            re[m * _BLOCK + i] = ar * fine_re[i] - ai * fine_im[i]
            im[m * _BLOCK + i] = ar * fine_im[i] + ai * fine_re[i]


# --------------------------------------------------------------------------------------------------- frames
@numba.njit(**_JIT)
def _position(motion, x0, y0, r, period, angle, k, a, a2, floor, t):
    """:func:`mmv_lite.data.synth._trajectory` at one time ``t``: ``(x, y, angle, scale)``."""
    kt = k * t
    x, y, scale = x0, y0, 1.0
    if motion == SLIDE:
        x = (x0 + kt + r) % period - r
    elif motion == RISE:
        y = (y0 - kt + r) % period - r
    elif motion == FALL:
        y = (y0 + kt + r) % period - r
    elif motion == SPIN:
        angle = angle + kt
    elif motion == PULSE:
        scale = 1.0 + 0.35 * math.sin(kt)
    elif motion == BOUNCE:
        y = floor - a * abs(math.sin(kt))
    elif motion == ORBIT:
        x, y = x0 + a * math.cos(kt), y0 + a2 * math.sin(kt)
    return x, y, angle, scale


@numba.njit(**_JIT)
def _distance(kind, u, v, d):
    """:func:`mmv_lite.data.synth._shape_distance` of the points ``u, v`` into ``d``, one loop per kind (so that it
    vectorises); the star's ``cos 5 phi`` as ``Re (u + iv)^5 / rho^5``, without an arctangent."""
    n = len(u)
    if kind == CIRCLE:
        for i in range(n):
            d[i] = math.sqrt(u[i] * u[i] + v[i] * v[i]) - 0.9
    elif kind == SQUARE:
        for i in range(n):
            d[i] = max(abs(u[i]), abs(v[i])) - 0.78
    elif kind == DIAMOND:
        for i in range(n):
            d[i] = (abs(u[i]) + abs(v[i]) / 0.6 - 1.0) * 0.55
    elif kind == TRIANGLE:
        c0, s0, c1, s1 = _TRI[0, 0], _TRI[0, 1], _TRI[1, 0], _TRI[1, 1]
        for i in range(n):
            d[i] = max(max(-u[i] - 0.5, c0 * u[i] + s0 * v[i] - 0.5), c1 * u[i] + s1 * v[i] - 0.5)
    elif kind == STAR:
        for i in range(n):
            u2, v2 = u[i] * u[i], v[i] * v[i]
            rho2 = u2 + v2
            rho = math.sqrt(rho2)
            cos5 = (u[i] * (u2 * u2 - 10 * u2 * v2 + 5 * v2 * v2)) / (rho2 * rho2 * rho) if rho > 0 else 1.0
            d[i] = (rho - (0.68 + 0.32 * cos5)) * 0.6
    else:  # cross
        for i in range(n):
            au, av = abs(u[i]), abs(v[i])
            d[i] = min(max(au - 1.0, av - 0.34), max(au - 0.34, av - 1.0))


@numba.njit(**_JIT)
def _background(kind, tint, stripes, size, out):
    """:func:`mmv_lite.data.synth.make_background` into ``out (3, size, size)`` float32."""
    step = f32(synth.FRAME_SIZE / size)
    for h in range(size):
        yy = f32(h) * step
        for w in range(size):
            xx = f32(w) * step
            p = f32(0.0)
            if kind == STRIPES:
                s = math.sin(f64(_2_PI32 * (xx + yy) / f32(12.0) + f32(stripes)))
                p = f32(14.0) * f32(np.sign(s))
            elif kind == CHECKER:
                p = f32(12.0) * (f32(2.0) * ((xx // f32(8.0) + yy // f32(8.0)) % f32(2.0)) - f32(1.0))
            elif kind == GRADIENT:
                p = f32(40.0) * (yy / f32(synth.FRAME_SIZE) - f32(0.5))
            for ch in range(3):
                out[ch, h, w] = f32(min(max(tint[ch] + f64(p), 0.0), 255.0))


@numba.njit(**_JIT)
def render_frames(kind, background, tint, stripes, body, mark, radius, t0, traj, fps, n_frames, size):
    """Frames ``(B, 3, T, H, W)`` float32 in [0, 1] of a batch; ``traj (B, 10)``: the picture's ``motion, x0, y0, r,
    period, angle, k, a, a2, floor`` (:func:`mmv_lite.data.render._trajectory_params`)."""
    n, pixels = len(kind), size * size
    out = np.empty((n, 3, n_frames, pixels), np.float32)
    bg = np.empty((3, size, size), np.float32)
    u, v, d = np.empty(pixels), np.empty(pixels), np.empty(pixels)
    for b in range(n):
        _background(background[b], tint[b], stripes[b], size, bg)
        flat, g = bg.reshape(3, pixels), traj[b]
        for f in range(n_frames):
            t = t0[b] + f / fps
            cx, cy, angle, scale = _position(int(g[0]), g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], t)
            rr = radius[b] * scale
            c, s = math.cos(angle), math.sin(angle)
            for i in range(pixels):  # object coordinates, unit size
                dx, dy = (i % size + 0.5) - cx, (i // size + 0.5) - cy
                u[i], v[i] = (c * dx + s * dy) / rr, (-s * dx + c * dy) / rr
            _distance(kind[b], u, v, d)
            for i in range(pixels):
                al = min(max(0.5 - d[i] * rr, 0.0), 1.0)  # ~1 px soft edge
                mk = min(max(0.5 - (math.sqrt((u[i] - 0.5) ** 2 + v[i] * v[i]) - 0.2) * rr, 0.0), 1.0) * al
                a32, m32 = f32(al), f32(mk)
                for ch in range(3):
                    px = flat[ch, i] * (_ONE - a32) + body[b, ch] * a32
                    px = px * (_ONE - m32) + mark[b, ch] * m32
                    out[b, ch, f, i] = min(max(np.rint(px), f32(0.0)), f32(255.0)) / f32(255.0)
    return out.reshape(n, 3, n_frames, size, size)


# --------------------------------------------------------------------------------------------------- sound
@numba.njit(**_JIT)
def _orbit_envelope(t0, speed, sr, window, out):
    """Staccato beats (4 per turn) smoothed by ``window`` (odd length), ``np.convolve(..., mode="same")``: a window
    over a constant stretch gives 0 or the window's sum, over one edge a partial sum of it; only the windows that
    cross the clip's ends or two edges are summed tap by tap."""
    n, size = len(out), len(window)
    half = size // 2
    beat = np.empty(n)
    for j in range(n):
        beat[j] = 1.0 if _frac((t0 + j / sr) * 4 * 0.6 * speed) < 0.4 else 0.0
    cum = np.zeros(size + 1)  # cum[i]: the sum of the window's first i taps
    for i in range(size):
        cum[i + 1] = cum[i] + window[i]
    for j in range(n):
        out[j] = beat[j] * cum[size]
    edges = np.empty(n, np.int64)  # where the beat changes: edges[:count]
    before = np.zeros(n + 1, np.int64)  # before[x]: how many edges lie below x
    count = 0
    for e in range(1, n):
        if beat[e] != beat[e - 1]:
            edges[count] = e
            count += 1
        before[e + 1] = count
    for q in range(count + 2):  # the samples near an edge, and near the clip's ends, are redone
        if q < count:
            a, b = edges[q] - half - 1, edges[q] + half + 1
        else:
            a, b = (0, half) if q == count else (n - half, n)
        for j in range(max(a, 0), min(b, n)):
            lo, hi = j - half, j + half + 1
            if lo >= 0 and hi <= n and before[hi] - before[lo + 1] <= 1:
                if before[hi] == before[lo + 1]:
                    out[j] = beat[j] * cum[size]
                else:
                    e = edges[before[lo + 1]]
                    out[j] = cum[size] - cum[e - lo] if beat[e] else cum[e - lo]
                continue
            acc = 0.0
            for i in range(max(lo, 0), min(hi, n)):
                acc += beat[i] * window[i - lo]
            out[j] = acc


@numba.njit(**_JIT)
def _bounce_envelope(t0, speed, sr, env):
    """``exp(-(time since the last impact) / 0.12 s)``: per block of samples without an impact, the exponential at
    the block's start times a table of its decay, one sample after another."""
    n = len(env)
    decay = np.empty(_BLOCK)
    for i in range(_BLOCK):
        decay[i] = math.exp(-(i / sr) / 0.12)
    for m in range((n + _BLOCK - 1) // _BLOCK):
        j0, j1 = m * _BLOCK, min(n, (m + 1) * _BLOCK)
        if np.floor((t0 + j0 / sr) * speed) == np.floor((t0 + (j1 - 1) / sr) * speed):
            start = math.exp(-(_frac((t0 + j0 / sr) * speed * 1.0) / (speed * 1.0)) / 0.12)
            for j in range(j0, j1):
                env[j] = start * decay[j - j0]
        else:  # an impact inside: sample by sample
            for j in range(j0, j1):
                env[j] = math.exp(-(_frac((t0 + j / sr) * speed * 1.0) / (speed * 1.0)) / 0.12)


@numba.njit(**_JIT)
def _envelope(motion, t0, speed, sr, window, re, im, env):
    """The loudness envelope of a steady-pitch motion into ``env`` (:func:`mmv_lite.data.synth._envelope_and_pitch`)."""
    n = len(env)
    if motion == SPIN:  # tremolo twice per turn
        k = 2 * 2 * np.pi * 0.45 * speed
        _cis(k / (2 * np.pi * sr), k * t0, n, 0, re, im)
        for j in range(n):
            env[j] = 0.55 + 0.45 * re[j] * re[j]
    elif motion == PULSE:  # louder when bigger
        k = 2 * np.pi * 0.8 * speed
        _cis(k / (2 * np.pi * sr), k * t0, n, 0, re, im)
        for j in range(n):
            env[j] = 0.25 + 0.75 * ((1.0 + 0.35 * im[j]) - 0.65) / 0.7
    elif motion == BOUNCE:  # a struck note at every impact
        _bounce_envelope(t0, speed, sr, env)
    elif motion == ORBIT:
        _orbit_envelope(t0, speed, sr, window, env)
    else:
        env[:] = 1.0


@numba.njit(**_JIT)
def _bent_phase(motion, t0, pitch, height, sr, re, im, phase):
    """The running phase of a gliding pitch into ``phase`` (float32, [0, 2 pi)): the running sum of the
    frequency; ``height``: ``y0, k, r, period`` of the object the pitch follows (rise, fall)."""
    n = len(phase)
    bend = re  # reused: the vibrato's table is read once, before it is overwritten
    if motion == SLIDE:  # vibrato: 1 + 0.01 sin(2 pi 5 t)
        _cis(5.0 / sr, 2 * np.pi * 5.0 * t0, n, 0, re, im)
        for j in range(n):
            bend[j] = 1.0 + 0.01 * im[j]
    else:  # the pitch follows the height on screen, 2 ** (0.6 (0.5 - y / 64)), y linear in time between wraps
        y0, k, r, period = height[0], height[1], height[2], height[3]
        sign = -1.0 if motion == RISE else 1.0
        step = np.empty(_BLOCK)  # the bend's ratio i samples on, within a wrap
        for i in range(_BLOCK):
            step[i] = _exp2(-0.6 * (sign * k * (i / sr)) / synth.FRAME_SIZE)
        for m in range((n + _BLOCK - 1) // _BLOCK):
            j0, j1 = m * _BLOCK, min(n, (m + 1) * _BLOCK)
            ya, yb = y0 + sign * k * (t0 + j0 / sr) + r, y0 + sign * k * (t0 + (j1 - 1) / sr) + r
            if np.floor(ya / period) == np.floor(yb / period):
                start = _exp2(0.6 * (0.5 - (ya - np.floor(ya / period) * period - r) / synth.FRAME_SIZE))
                for j in range(j0, j1):
                    bend[j] = start * step[j - j0]
            else:  # it wraps inside the block: sample by sample
                for j in range(j0, j1):
                    y = y0 + sign * k * (t0 + j / sr) + r
                    bend[j] = _exp2(0.6 * (0.5 - (y - np.floor(y / period) * period - r) / synth.FRAME_SIZE))
    turns = 0.0
    for j in range(n):  # the running sum is serial; what follows vectorises
        turns += pitch * bend[j]
        im[j] = turns / sr
    for j in range(n):
        phase[j] = f32(_frac(im[j]) * (2 * np.pi))


@numba.njit(**_JIT)
def _harmonics(zr, zi, cr, ci, step, ar, ai, out):
    """``out = Im sum_k c_k z^k`` for ``k = 1 .. len(cr)`` (``step`` 2: odd harmonics only, a polynomial in z^2),
    by Horner's rule over whole arrays (the loop over samples is the inner one, so it vectorises)."""
    n, top = len(zr), len(cr) - 1
    wr, wi = zr, zi
    if step == 2:
        wr, wi = np.empty(n, np.float32), np.empty(n, np.float32)
        for j in range(n):
            wr[j], wi[j] = zr[j] * zr[j] - zi[j] * zi[j], _TWO * zr[j] * zi[j]
    for j in range(n):
        ar[j], ai[j] = cr[top], ci[top]
    for k in range(top - step, -1, -step):
        a, b = cr[k], ci[k]
        for j in range(n):
            x, y = ar[j], ai[j]
            ar[j] = x * wr[j] - y * wi[j] + a
            ai[j] = x * wi[j] + y * wr[j] + b
    for j in range(n):
        out[j] = ar[j] * zi[j] + ai[j] * zr[j]


@numba.njit(**_JIT)
def render_waves(motion, instrument, pitch, speed, gain, t0, heights, thetas, ratios, amps, noise, sr, window):
    """Sound ``(B, n)`` float32 of a batch (``noise (B, n)``: each clip's noise, added); ``heights (B, 4)``: the
    sound's ``y0, k, r, period``; ``thetas (B, partials)`` its partials' phases (NaN: not played); ``ratios``,
    ``amps`` ``(instruments, partials)``: each timbre, ``amps`` already divided by its loudness norm."""
    n_clips, n = noise.shape
    out = np.empty((n_clips, n), np.float32)
    re, im, env = np.empty(n), np.empty(n), np.empty(n)
    zr, zi, phase = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    ar, ai, wave = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    ramp = np.empty(n, np.float32)  # 10 ms fades
    for j in range(n):
        ramp[j] = f32(min(min(j / sr, (n - 1) / sr - j / sr) / 0.01, 1.0))
    top = int(ratios.max())
    cr, ci = np.empty(top, np.float32), np.empty(top, np.float32)
    for b in range(n_clips):
        m, inst = motion[b], instrument[b]
        bent = m == SLIDE or m == RISE or m == FALL
        if bent:
            _bent_phase(m, t0[b], pitch[b], heights[b], sr, re, im, phase)
            env[:] = 1.0
            for j in range(n):
                zr[j], zi[j] = _sin32(phase[j] + f32(np.pi / 2)), _sin32(phase[j])
        else:  # a steady pitch: phase 2 pi (j + 1) pitch / sr
            q = pitch[b] / sr
            _envelope(m, t0[b], speed[b], sr, window, re, im, env)
            _cis(q, 0.0, n, 1, re, im)
            for j in range(n):
                zr[j], zi[j] = f32(re[j]), f32(im[j])
            if inst == BELL:
                for j in range(n):
                    phase[j] = f32(_frac((j + 1) * q) * (2 * np.pi))
        if inst == BELL:  # inharmonic partials, sine by sine
            wave[:] = 0.0
            for p in range(thetas.shape[1]):
                if ratios[inst, p] > 0 and not np.isnan(thetas[b, p]):
                    r, a, th = ratios[inst, p], amps[inst, p], thetas[b, p]
                    for j in range(n):
                        wave[j] += a * _sin32(th + r * phase[j])
        else:
            cr[:], ci[:] = 0.0, 0.0
            for p in range(thetas.shape[1]):
                if ratios[inst, p] > 0 and not np.isnan(thetas[b, p]):
                    k = int(ratios[inst, p]) - 1
                    cr[k] = f32(amps[inst, p] * math.cos(thetas[b, p]))
                    ci[k] = f32(amps[inst, p] * math.sin(thetas[b, p]))
            odd = True
            for k in range(1, top, 2):
                odd = odd and cr[k] == 0 and ci[k] == 0
            last = top - 1
            while last > 0 and cr[last] == 0 and ci[last] == 0:
                last -= 1
            _harmonics(zr, zi, cr[: last + 1], ci[: last + 1], 2 if odd and last % 2 == 0 else 1, ar, ai, wave)
        g = f32(gain[b])
        for j in range(n):
            out[b, j] = g * ramp[j] * f32(env[j]) * wave[j] + noise[b, j]
    return out


# --------------------------------------------------------------------------------------------------- the batch
_TRAJ = ("motion", "x0", "y0", "r", "period", "angle", "k", "a", "a2", "floor")
_WINDOW = np.hanning(161) / np.hanning(161).sum()


_FRAME_KEYS = ("kind", "background", "tint", "stripes", "body", "mark", "radius", "t0")  # render_frames' order
_SOUND_KEYS = ("s_motion", "instrument", "pitch", "speed", "gain", "t0")  # render_waves' order


def draw_frames(p: dict[str, torch.Tensor], cfg: DataConfig) -> torch.Tensor:
    """Frames ``(B, 3, T, H, W)`` float32 in [0, 1] of a collated batch of
    :func:`mmv_lite.data.render.clip_params` on the CPU."""
    traj = np.stack([p[k].numpy().astype(np.float64) for k in _TRAJ], 1)
    args = [p[k].numpy() for k in _FRAME_KEYS]
    return torch.from_numpy(render_frames(*args, traj, float(cfg.fps), cfg.num_frames, cfg.crop_size))


def draw_waves(p: dict[str, torch.Tensor], cfg: DataConfig, noise: torch.Tensor) -> torch.Tensor:
    """Sound ``(B, samples)`` float32 of a collated batch of :func:`mmv_lite.data.render.clip_params` on the CPU;
    ``noise (B, samples)``: each clip's background noise (:func:`mmv_lite.data.render.noise`)."""
    heights = np.stack([p["s_" + k].numpy().astype(np.float64) for k in ("y0", "k", "r", "period")], 1)
    phases = p["phases"].numpy().astype(np.float32)
    amps = (synth.PARTIAL_AMPS / synth.TIMBRE_NORMS[:, None]).astype(np.float32)  # over the timbre's loudness
    tables = (synth.PARTIAL_RATIOS, amps, np.ascontiguousarray(noise.numpy()), float(cfg.sample_rate), _WINDOW)
    return torch.from_numpy(render_waves(*[p[k].numpy() for k in _SOUND_KEYS], heights, phases, *tables))
