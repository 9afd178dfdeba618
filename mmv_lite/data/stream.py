"""NumPy's default random stream, ``np.random.default_rng(entropy)``, for the world's planning: the same numbers,
bit for bit, at a fraction of the cost for the few scalar draws a clip's plan makes.

A clip's plan makes about 8 streams and some 300 scalar draws. Through NumPy, making a stream costs about 35 us (a
``SeedSequence`` and a ``PCG64``) and a scalar draw 1-3 us (argument checks, an array scalar). Here the seeding is
a few Python integer operations, the raw 64-bit outputs come from NumPy's PCG64 32, then 256 at a time
(``random_raw``), and a draw is a list read and NumPy's own arithmetic on it:

- seeding: ``SeedSequence(entropy).generate_state(4, uint64)`` (its hash mix, pool of 4 words), then PCG64's
  ``srandom(state, inc)``;
- ``random()``: the next 64-bit output's top 53 bits times ``2**-53``; ``uniform(a, b)``: ``a + (b - a) * random()``;
- ``integers(n)``: Lemire's bounded draw, on 32-bit halves of the 64-bit output for ``n <= 2**32`` (the other half
  kept for the next such draw, as PCG64's ``next_uint32`` does), on whole outputs above.

``tests/test_stream.py`` draws long mixed sequences from both and compares them. Anything else (``standard_normal``)
is handed to a NumPy generator set to this stream's state (:meth:`Stream.generator`), as ``standard_normal`` is.
"""

from __future__ import annotations

import operator
import threading

import numpy as np

_M32, _M64, _M128 = (1 << 32) - 1, (1 << 64) - 1, (1 << 128) - 1
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_POOL = 4


def _words(entropy) -> list[int]:
    """The uint32 words of ``entropy`` (an int or a sequence of ints) as ``SeedSequence`` reads them."""
    values = [operator.index(e) for e in entropy] if isinstance(entropy, (list, tuple)) else [operator.index(entropy)]
    if all(0 <= v <= _M32 for v in values):
        return values  # the common case: one word each
    out = []
    for n in values:  # a float is refused above (operator.index), as NumPy does; a large int is split in words
        if n < 0:
            raise ValueError(f"entropy {n} is negative; expected non-negative integers")
        out.append(n & _M32)
        while n > _M32:
            n >>= 32
            out.append(n & _M32)
    return out


def _constants(init: int, mult: int, n: int) -> list[int]:
    out = [init]
    for _ in range(n):
        out.append((out[-1] * mult) & _M32)
    return out


_MAX_WORDS = 20  # of an entropy
# SeedSequence's hash constant before each of its hashmix calls (the pool's 4 words, its 12 mixing steps, then 4 for
# each word past the pool's) ...
_HASH_A = _constants(_INIT_A, _MULT_A, _POOL + 12 + _POOL * (_MAX_WORDS - _POOL))
_HASH_B = _constants(_INIT_B, _MULT_B, 8)  # ... and in generate_state: they depend on no data


_MIX_STEPS = [  # (dst, src, hash constant, the next one) of each step of SeedSequence's pool mixing
    (dst, src, _HASH_A[k], _HASH_A[k + 1])
    for k, (src, dst) in enumerate(((s, d) for s in range(_POOL) for d in range(_POOL) if s != d), start=_POOL)
]


def _hashmix(value: int, k: int) -> int:
    """SeedSequence's hashmix with its k-th hash constant: value ^= h; h *= MULT_A; value *= h; value ^= value >> 16."""
    v = (value ^ _HASH_A[k]) * _HASH_A[k + 1] & _M32
    return v ^ (v >> 16)


def _mixed(x: int, y: int) -> int:
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> 16)


def _prefix(w0: int, w1: int) -> tuple[int, int, int, int, int, int]:
    """The pool mixing's first two rounds (their sources are pool words 0 and 1) for entropy that starts ``w0, w1``:
    words 0 and 1 after them, and the two values each round mixes into words 2 and 3. The world's streams share their
    first two words (the world's seed and the split; a caption's video), so this is made once per prefix."""
    key = (w0, w1)
    if key not in _PREFIXES:
        if len(_PREFIXES) > 4096:
            _PREFIXES.clear()
        pool, into = [_hashmix(w0, 0), _hashmix(w1, 1)], {2: [], 3: []}
        for k, (dst, src, _, _) in enumerate(_MIX_STEPS[:6], start=_POOL):  # the rounds of sources 0 and 1
            v = _hashmix(pool[src], k)
            if dst < 2:
                pool[dst] = _mixed(pool[dst], v)
            else:
                into[dst].append(v)
        _PREFIXES[key] = (pool[0], pool[1], *into[2], *into[3])
    return _PREFIXES[key]


_PREFIXES: dict[tuple[int, int], tuple[int, int, int, int, int, int]] = {}


def _seed_state(entropy) -> tuple[int, int]:
    """PCG64's ``(state, inc)`` after ``PCG64(SeedSequence(entropy))``."""
    data = _words(entropy)
    if len(data) > _MAX_WORDS:
        raise ValueError(f"entropy of {len(data)} words; expected at most {_MAX_WORDS}")
    w = data + [0] * (_POOL - len(data))
    p0, p1, a2, b2, a3, b3 = _prefix(w[0], w[1])
    pool = [p0, p1, _mixed(_mixed(_hashmix(w[2], 2), a2), b2), _mixed(_mixed(_hashmix(w[3], 3), a3), b3)]
    for dst, src, h, h1 in _MIX_STEPS[6:]:  # the rounds of sources 2 and 3
        v = (pool[src] ^ h) * h1 & _M32
        r = (_MIX_L * pool[dst] - _MIX_R * (v ^ (v >> 16))) & _M32
        pool[dst] = r ^ (r >> 16)
    k = _POOL + len(_MIX_STEPS)
    for value in data[_POOL:]:
        for dst in range(_POOL):
            pool[dst] = _mixed(pool[dst], _hashmix(value, k))
            k += 1
    hb, words = _HASH_B, []
    for i in range(8):  # generate_state(4, uint64): 8 uint32 words, pairs little-endian
        v = (pool[i % _POOL] ^ hb[i]) * hb[i + 1] & _M32
        words.append(v ^ (v >> 16))
    v = [words[2 * i] | (words[2 * i + 1] << 32) for i in range(4)]
    initstate, initseq = (v[0] << 64) | v[1], (v[2] << 64) | v[3]
    inc = ((initseq << 1) | 1) & _M128
    state = ((inc + initstate) * _PCG_MULT + inc) & _M128  # srandom: state 0, a step (inc), + initstate, a step
    return state, inc


def _seed_states(entropies: list) -> list[tuple[int, int]]:
    """``[_seed_state(e) for e in entropies]``, the hashing done once for all entropies of a length with NumPy's
    ``uint32`` arithmetic, which wraps as ``SeedSequence``'s does (about 5 us a stream for a hundred, against 19)."""
    data = [_words(e) for e in entropies]
    by_length: dict[int, list[int]] = {}
    for j, d in enumerate(data):
        by_length.setdefault(len(d), []).append(j)
    states: list = [None] * len(data)
    for length, rows in by_length.items():
        if length > _MAX_WORDS:
            raise ValueError(f"entropy of {length} words; expected at most {_MAX_WORDS}")
        w = np.zeros((max(length, _POOL), len(rows)), np.uint32)
        for col, j in enumerate(rows):
            w[:length, col] = data[j]
        for j, state in zip(rows, _hashed_states(w)):
            states[j] = state
    return states


def _hashed_states(w: np.ndarray) -> list[tuple[int, int]]:
    """PCG64's ``(state, inc)`` for each column of ``w (words, n)`` uint32 (the entropy's words, zero-padded to 4)."""
    u = np.uint32

    def hashmix(v: np.ndarray, k: int, consts: list[int] = _HASH_A) -> np.ndarray:
        v = (v ^ u(consts[k])) * u(consts[k + 1])
        return v ^ (v >> u(16))

    def mixed(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = u(_MIX_L) * x - u(_MIX_R) * y
        return r ^ (r >> u(16))

    pool = [hashmix(w[i], i) for i in range(_POOL)]
    for k, (dst, src, _, _) in enumerate(_MIX_STEPS, start=_POOL):
        pool[dst] = mixed(pool[dst], hashmix(pool[src], k))
    k = _POOL + len(_MIX_STEPS)
    for value in w[_POOL:]:  # words past the pool's four are mixed into every word of it
        for dst in range(_POOL):
            pool[dst] = mixed(pool[dst], hashmix(value, k))
            k += 1
    out = [hashmix(pool[i % _POOL], i, _HASH_B).tolist() for i in range(8)]  # generate_state(4, uint64)
    states = []
    for w0, w1, w2, w3, w4, w5, w6, w7 in zip(*out):
        initstate, initseq = (w0 | w1 << 32) << 64 | w2 | w3 << 32, (w4 | w5 << 32) << 64 | w6 | w7 << 32
        inc = ((initseq << 1) | 1) & _M128
        states.append((((inc + initstate) * _PCG_MULT + inc) & _M128, inc))
    return states


def prepare(entropies) -> None:
    """Seed the streams of ``entropies`` (lists or tuples of ints) at once: a :class:`Stream` made with one of them
    takes its seed from here (the last few thousand are kept). Planning a batch calls it with the batch's streams."""
    keys = [tuple(e) for e in entropies]
    if len(_PREPARED) + len(keys) > _PREPARED_KEPT:
        _PREPARED.clear()
    _PREPARED.update(zip(keys, _seed_states(keys)))


_PREPARED: dict[tuple, tuple[int, int]] = {}  # entropy -> (state, inc) of the streams prepared
_PREPARED_KEPT = 4096  # a few batches' streams (8 a clip)

_BLOCKS = (32, 256)  # outputs drawn from NumPy at a time: the first block of a stream, and the next ones
_BITS = np.random.PCG64(0)  # set to a stream's state to draw its next block
_BITS_LOCK = threading.Lock()
_LCG_MUL, _LCG_ADD = [1], [0]  # k steps of the LCG: state -> MUL[k] * state + ADD[k] * inc (mod 2**128)
for _ in range(_BLOCKS[1]):
    _LCG_MUL.append(_LCG_MUL[-1] * _PCG_MULT & _M128)
    _LCG_ADD.append((_LCG_ADD[-1] * _PCG_MULT + 1) & _M128)


class Stream:
    """``np.random.default_rng(entropy)`` for scalar ``random``, ``uniform``, ``integers`` (and ``uniform`` with a
    ``size``), the same numbers in the same order."""

    __slots__ = ("_start", "_inc", "_half", "_block", "_pos")

    def __init__(self, entropy) -> None:
        seeded = _PREPARED.get(tuple(entropy) if isinstance(entropy, (list, tuple)) else (entropy,))
        self._start, self._inc = seeded or _seed_state(entropy)  # the state before the first output of _block
        self._half: int | None = None  # the upper 32 bits of an output whose lower half a 32-bit draw took
        self._block: list[int] = []  # the next outputs, made by NumPy a block at a time (one call, no per-draw cost)
        self._pos = 0

    def _next64(self) -> int:
        if self._pos == len(self._block):
            self._start = self._state()
            state = {"state": self._start, "inc": self._inc}
            with _BITS_LOCK:  # one generator per process, shared by the streams of every thread
                _BITS.state = {"bit_generator": "PCG64", "state": state, "has_uint32": 0, "uinteger": 0}
                size = _BLOCKS[bool(self._block)]  # a small first block: most streams draw a few numbers
                self._block, self._pos = _BITS.random_raw(size).tolist(), 0
        self._pos += 1
        return self._block[self._pos - 1]

    def _state(self) -> int:
        """The generator's state after the outputs drawn so far: ``pos`` steps of the LCG from ``_start``."""
        return (_LCG_MUL[self._pos] * self._start + _LCG_ADD[self._pos] * self._inc) & _M128

    def _next32(self) -> int:
        if self._half is not None:
            out, self._half = self._half, None
            return out
        x = self._next64()
        self._half = x >> 32
        return x & _M32

    def random(self) -> float:
        pos = self._pos
        if pos < len(self._block):  # the usual case, inline
            self._pos = pos + 1
            return (self._block[pos] >> 11) * (1.0 / 9007199254740992.0)
        return (self._next64() >> 11) * (1.0 / 9007199254740992.0)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | None = None):
        pos = self._pos
        if size is None and pos < len(self._block):  # the usual case, inline
            self._pos = pos + 1
            low = float(low)
            return low + (float(high) - low) * ((self._block[pos] >> 11) * (1.0 / 9007199254740992.0))
        span = float(high) - float(low)
        if size is None:
            return float(low) + span * self.random()
        return np.array([float(low) + span * self.random() for _ in range(size)])

    def integers(self, high: int) -> int:
        """A uniform integer in ``[0, high)``."""
        if type(high) is int and 1 < high <= _M32:  # the usual case, inline: Lemire on the next 32 bits
            if self._half is not None:
                bits, self._half = self._half, None
            elif self._pos < len(self._block):
                x = self._block[self._pos]
                self._pos += 1
                bits, self._half = x & _M32, x >> 32
            else:
                bits = self._next32()
            m = bits * high
            if (m & _M32) >= high:
                return m >> 32
            threshold = (_M32 + 1 - high) % high
            while (m & _M32) < threshold:
                m = self._next32() * high
            return m >> 32
        last = int(high) - 1
        if last < 0:
            raise ValueError(f"high={high}; expected a positive integer")
        if last == 0:
            return 0  # NumPy draws nothing
        if last <= _M32:
            if last == _M32:
                return self._next32()
            n = last + 1
            m = self._next32() * n
            if (m & _M32) < n:
                threshold = (_M32 - last) % n
                while (m & _M32) < threshold:
                    m = self._next32() * n
            return m >> 32
        if last == _M64:
            return self._next64()
        n = last + 1
        m = self._next64() * n
        if (m & _M64) < n:
            threshold = (_M64 - last) % n
            while (m & _M64) < threshold:
                m = self._next64() * n
        return m >> 64

    def standard_normal(self, size: int) -> np.ndarray:
        """NumPy's ``standard_normal(size)`` (its ziggurat) by :meth:`generator`; this stream moves on past it."""
        g = self.generator()
        out = g.standard_normal(size)
        state = g.bit_generator.state
        self._start, self._block, self._pos = state["state"]["state"], [], 0
        self._half = state["uinteger"] if state["has_uint32"] else None
        return out

    def generator(self) -> np.random.Generator:
        """A NumPy generator at this stream's place (for the draws not made here); this stream is not advanced."""
        bits = np.random.PCG64()
        bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": self._state(), "inc": self._inc},
            "has_uint32": int(self._half is not None),
            "uinteger": self._half or 0,
        }
        return np.random.Generator(bits)
