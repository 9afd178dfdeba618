"""The planning's random streams (mmv_lite.data.stream) are NumPy's default_rng, number for number: drawn side by
side, and through the whole planning of the world (items, captions, render parameters) against NumPy itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmv_lite.config import WorldConfig, get_config
from mmv_lite.data import stream, synth, world
from mmv_lite.data.stream import Stream
from mmv_lite.data.world import WorldClips, world_word_vectors

CFG = get_config("lite")


def test_stream_draws_numpys_numbers_in_any_order():
    """Long mixed sequences of every draw the planning makes (and ranges that take Lemire's slow path, 64-bit
    bounds, one-value ranges that draw nothing), from many seeds, equal NumPy's."""
    chooser = np.random.default_rng(1)
    highs = [1, 2, 3, 5, 6, 7, 1000, 2**31 + 5, 2**32, 2**33 + 1, 2**62]
    for trial in range(150):
        entropy = [int(x) for x in chooser.integers(0, 2**40 if trial % 3 == 0 else 1000, chooser.integers(1, 7))]
        entropy = entropy[0] if trial % 7 == 0 else entropy
        numpy_rng, stream = np.random.default_rng(entropy), Stream(entropy)
        for op in chooser.integers(6, size=700 if trial % 10 == 0 else 100):  # long ones: blocks refilled
            if op == 0:
                assert stream.random() == numpy_rng.random()
            elif op == 1:
                assert stream.uniform(-3.0, 7.0) == numpy_rng.uniform(-3.0, 7.0)
            elif op == 2:
                high = highs[chooser.integers(len(highs))]
                assert stream.integers(high) == numpy_rng.integers(high)
            elif op == 3:
                assert np.array_equal(stream.uniform(2.5, 4.5, size=4), numpy_rng.uniform(2.5, 4.5, size=4))
            elif op == 4:
                assert np.array_equal(stream.standard_normal(5), numpy_rng.standard_normal(5))
            else:
                assert stream.generator().random() == numpy_rng.random()
                stream.random()


def _planned(ds: WorldClips, indices) -> list:
    """Each item as planned (ids, labels, render parameters) and its video's whole narration."""
    out = []
    for i in indices:
        p = ds.plan(i)
        out.append((ds.planned(i), p.captions, [s.to_json() for s in p.segments], p.sound.to_json(), p.noise))
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and _same(a.numpy(), b.numpy())
    if isinstance(a, np.ndarray):  # NaN where a partial is not played: equal to NaN here
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(
    "world_cfg",
    [
        CFG.world,
        dataclasses.replace(
            WorldConfig(seed=3), av_correspondence=0.5, scene_sound=0.5, text_correspondence=0.5, size_said=0.3
        ),
    ],
    ids=["lite", "other-dials"],
)
def test_planning_is_numpys_default_rng_bit_for_bit(world_cfg, monkeypatch):
    """Every planned item, caption, segment and render parameter of 150 items of each split equals what the planning
    gives with ``np.random.default_rng`` in place of the fast streams (the reference, run here)."""
    words = world_word_vectors()
    splits = {s: WorldClips(CFG.data, s, world_cfg, words) for s in ("train", "probe", "val", "test")}
    indices = {s: list(range(150)) if s != "train" else list(range(0, 2250, 15)) for s in splits}
    world._VIDEO_PLANS.clear()
    fast = {s: _planned(ds, indices[s]) for s, ds in splits.items()}
    world._VIDEO_PLANS.clear()
    monkeypatch.setattr(world, "Stream", np.random.default_rng)
    monkeypatch.setattr(synth, "Stream", np.random.default_rng)
    reference = {s: _planned(ds, indices[s]) for s, ds in splits.items()}
    world._VIDEO_PLANS.clear()
    for s in splits:
        for i, a, b in zip(indices[s], fast[s], reference[s]):
            assert _same(a, b), (s, i)


def test_long_clips_draw_their_noise_as_numpy_does(monkeypatch):
    """A clip longer than half the noise bank has its noise synthesised whole (a normal draw): equal too."""
    data = dataclasses.replace(CFG.data, num_frames=48, fps=5.0)  # 9.6 s
    ds = WorldClips(data, "val", CFG.world, world_word_vectors())
    fast = [ds.render_params(ds.plan(i), i) for i in range(3)]
    assert "noise_wave" in fast[0]
    monkeypatch.setattr(world, "Stream", np.random.default_rng)
    assert _same(fast, [ds.render_params(ds.plan(i), i) for i in range(3)])


def test_streams_seeded_together_are_seeded_as_one_by_one():
    """``prepare`` seeds many streams at once, in NumPy ``uint32`` arithmetic (one pass per length of entropy): the
    streams draw NumPy's numbers, for entropies of 1 to 20 words (a large int is several)."""
    rng = np.random.default_rng(1)
    entropies = [[0, 1, 12345 + i, 1 + i % 2] for i in range(40)] + [[int(rng.integers(2**62)), i] for i in range(40)]
    entropies += [[5], [0], (7, 8), [1, 2, 3], [0, 0, 0, 0], [2**32 - 1, 2**32 - 1], [2**32 + 7, 3], [2**70]]
    entropies += [[0, 10, 2**40 + i, 1 + i % 2] for i in range(5)] + [[2**40, 2**33, 1]]  # five words, as training's
    entropies += [list(range(17)), [2**64 - 1] * 10]  # 17 and 20 words
    assert stream._seed_states(entropies) == [stream._seed_state(e) for e in entropies]
    stream.prepare(entropies)
    for e in entropies:
        ours, numpys = Stream(e), np.random.default_rng(e)
        assert [ours.random() for _ in range(40)] == [numpys.random() for _ in range(40)]
    with pytest.raises(ValueError, match="negative"):
        stream.prepare([[1, -2]])


def test_a_batch_planned_together_is_its_items_planned_one_by_one(monkeypatch):
    """``WorldClips.planned_many`` (a worker's batch) equals ``planned`` item by item, on scattered training items
    (each from a video of its own, as training draws them), consecutive ones (clips of one video) and a held-out
    split, and seeds none of its streams one by one."""
    from mmv_lite.data.sampling import collate_planned

    words = world_word_vectors()
    from mmv_lite.data.sampling import StepBatchSampler

    drawn = [i for batch in StepBatchSampler(None, 32, 0, 0, 2) for i, _ in batch]  # as training draws them
    cases = [("train", drawn), ("train", list(range(500, 532))), ("val", list(range(32)))]
    alone: list = []  # the streams seeded one by one
    for split, indices in cases:
        ds = WorldClips(CFG.data, split, CFG.world, words)
        world._VIDEO_PLANS.clear()
        one_by_one = collate_planned([ds.planned(i) for i in indices])
        world._VIDEO_PLANS.clear()
        alone.clear()
        monkeypatch.setattr(stream, "_seed_state", lambda e: alone.append(e) or seed_state(e))
        together = collate_planned(ds.planned_many(indices))
        monkeypatch.undo()
        assert _same(together, one_by_one), split
        assert alone == [], split


seed_state = stream._seed_state
