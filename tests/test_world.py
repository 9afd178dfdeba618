"""The sample world as a stream: determinism, the item contract, fixed held-out sets, and what each dial does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmv_lite.config import TrainConfig, WorldConfig, get_config
from mmv_lite.data import synth
from mmv_lite.data.sampling import StepBatchSampler, step_loader
from mmv_lite.data.text import tokenize_words
from mmv_lite.data.world import (
    SEGMENTS_PER_VIDEO,
    WorldClips,
    bag_hit_rate,
    make_world_words,
    plan_clip,
    world_word_vectors,
)

CFG = get_config("lite")
CLIP = CFG.data.clip_seconds


@pytest.fixture(scope="module")
def words():
    return world_word_vectors()


def _world(**dials) -> WorldConfig:
    return dataclasses.replace(WorldConfig(), **dials)


def _plan_facts(p) -> tuple:
    return (repr(p.segments), p.background, p.segment, p.start, repr(p.sound), p.phase, p.noise, repr(p.captions))


def test_remembered_video_plans_change_no_plan(monkeypatch):
    """The clips of a video share its planned segments and narration; in any order, with the memory full or
    emptied, a clip's plan is the one computed from scratch."""
    from mmv_lite.data import world as world_module

    world = _world(text_correspondence=0.5, clips_per_video=3)
    order = [5, 4, 3, 0, 1, 2, 300, 7, 8, 6, 301]
    fresh = {}
    for i in order:
        world_module._VIDEO_PLANS.clear()
        fresh[i] = _plan_facts(plan_clip(world, "train", i, CLIP))
    monkeypatch.setattr(world_module, "_VIDEO_PLANS_KEPT", 2)  # force evictions between clips of one video
    world_module._VIDEO_PLANS.clear()
    for i in order + order[::-1]:
        assert _plan_facts(plan_clip(world, "train", i, CLIP)) == fresh[i], i
        assert len(world_module._VIDEO_PLANS) <= 2
    a, b = plan_clip(world, "train", 3, CLIP), plan_clip(world, "train", 4, CLIP)  # one video, planned once
    assert a.narration is b.narration and (a.segment, a.start) != (b.segment, b.start)


def test_items_are_deterministic_and_distinct(words):
    ds = WorldClips(CFG.data, "train", WorldConfig(), words)
    a, b, c = ds[12345], ds[12345], ds[12346]
    for k in ("video", "audio", "text_ids"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["video"], c["video"])
    assert ds.unlimited and ds[2**61]["index"] == 2**61  # any index is a clip of its own


def test_item_contract(words):
    d = CFG.data
    item = WorldClips(d, "train", _world(), words)[7]
    assert item["video"].shape == (3, d.num_frames, d.crop_size, d.crop_size) and item["video"].dtype == torch.float32
    assert 0.0 <= float(item["video"].min()) and float(item["video"].max()) <= 1.0
    assert item["audio"].shape[0] == 1 and item["audio"].shape[2] == d.n_mels and torch.isfinite(item["audio"]).all()
    K, L = d.num_candidates, d.max_words
    assert item["text_ids"].shape == (K, L) and item["text_mask"].shape == (K, L) and item["text_valid"].shape == (K,)
    assert torch.equal(item["text_mask"], item["text_ids"] != 0)
    assert item["has_audio"] and item["has_video"] and item["end"] - item["start"] == pytest.approx(CLIP)
    assert {"action_label", "sound_label", "image_label", "video_id", "index"} <= set(item)


def test_k_candidates_are_the_nearest_in_time(words):
    data = dataclasses.replace(CFG.data, num_candidates=4)
    ds = WorldClips(data, "train", _world(), words)
    item, plan = ds[3], ds.plan(3)
    spans = list(zip(plan.captions["start"], plan.captions["end"]))
    mid = (item["start"] + item["end"]) / 2
    # nearest: the smallest gap between the spans (0 when they overlap), then the nearest centre
    order = sorted(
        range(len(spans)),
        key=lambda i: (
            max(0.0, spans[i][0] - item["end"], item["start"] - spans[i][1]),
            abs((spans[i][0] + spans[i][1]) / 2 - mid),
        ),
    )
    assert int(item["text_valid"].sum()) == 4
    expected = words.encode([plan.captions["text"][i] for i in order[:4]], data.max_words)[0]
    assert torch.equal(item["text_ids"], expected)


def test_held_out_sets_are_fixed_and_ignore_the_narration_dials(words):
    a = WorldClips(CFG.data, "test", _world(), words)
    b = WorldClips(CFG.data, "test", _world(misalignment=0.0, av_correspondence=0.0, size_said=1.0), words)
    assert len(a) == len(b) == WorldConfig().num_eval >= 500
    for i in (0, 99):
        assert torch.equal(a[i]["video"], b[i]["video"]) and torch.equal(a[i]["text_ids"], b[i]["text_ids"])
    train0 = WorldClips(CFG.data, "train", _world(), words)[0]
    assert not torch.equal(a[0]["video"], train0["video"])  # its own random stream
    factors = a.factors
    assert set(factors) >= {"kind", "colour", "size", "motion", "background"}
    assert all(len(v) == len(a) for v in factors.values())
    assert len(set(factors["kind"])) == len(synth.KINDS) and len(set(factors["motion"])) == len(synth.MOTIONS)


def test_held_out_narration_describes_its_clip(words):
    ds = WorldClips(CFG.data, "val", _world(), words)
    for i in range(20):
        p = ds.plan(i)
        text = p.captions["text"][p.about.index(p.segment)]
        kind_words = {w for form in synth.KIND_WORDS[p.segments[p.segment].kind] for w in form.split()}
        said = set(tokenize_words(text))
        assert torch.equal(ds[i]["text_ids"][0], words.encode([text], CFG.data.max_words)[0][0])
        assert said & (kind_words | {synth.INSTRUMENTS[synth.KINDS.index(p.segments[p.segment].kind)]}) or said


def _misplaced_fraction(world: WorldConfig, n: int = 400) -> float:
    """Captions whose time midpoint lies outside the segment they describe."""
    out = total = 0
    for i in range(n):
        p = plan_clip(world, "train", i, CLIP)
        for s, e, seg in zip(p.captions["start"], p.captions["end"], p.about):
            if seg < 0:
                continue
            mid, g = (s + e) / 2, p.segments[seg]
            out += not g.start <= mid < g.end
            total += 1
    return out / total


def test_misalignment_dial_moves_that_fraction_of_narrations():
    assert _misplaced_fraction(_world(misalignment=0.0)) == 0.0
    half = _misplaced_fraction(_world(misalignment=0.5))
    # a caption moved 2-4 s can stay inside a long (4.5 s) segment: a little less than half land in another one
    assert 0.36 <= half <= 0.56
    assert _misplaced_fraction(_world(misalignment=1.0)) > 0.75


def test_bags_of_nearest_narrations_recover_what_misalignment_takes():
    """The reason for MIL-NCE, measured on generated narrations: misalignment takes the right caption away from the
    nearest one, and a bag of the K nearest gets most of it back; aligned narrations need no bag."""
    aligned = bag_hit_rate(dataclasses.replace(WorldConfig(), misalignment=0.0), 1.6, ks=(1, 4), n=200)
    misaligned = bag_hit_rate(dataclasses.replace(WorldConfig(), misalignment=0.5), 1.6, ks=(1, 4), n=200)
    assert aligned[1] > 85 and aligned[4] - aligned[1] < 10
    assert misaligned[1] < 70 and misaligned[4] > misaligned[1] + 25


def test_av_correspondence_dial():
    def same_sound(world):
        plans = [plan_clip(world, "train", i, CLIP) for i in range(300)]
        return np.mean([p.sound is p.segments[p.segment] for p in plans])

    assert same_sound(_world(av_correspondence=1.0)) == 1.0
    assert same_sound(_world(av_correspondence=0.0)) == 0.0
    assert 0.4 < same_sound(_world(av_correspondence=0.5)) < 0.6


def test_text_correspondence_dial():
    def told_kinds_match(world):
        hits = []
        for i in range(200):
            p = plan_clip(world, "train", i, CLIP)
            shown = {s.kind for s in p.segments}
            said = {w for t in p.captions["text"] for w in tokenize_words(t)}
            names = {w for k in shown for form in synth.KIND_WORDS[k] for w in form.split()}
            hits.append(len(said & names) / max(len(said & set(_all_kind_words())), 1))
        return float(np.mean(hits))

    assert told_kinds_match(_world(text_correspondence=1.0)) > 0.8
    assert told_kinds_match(_world(text_correspondence=0.0)) < 0.75


def _all_kind_words() -> list[str]:
    return [w for forms in synth.KIND_WORDS.values() for form in forms for w in form.split()]


def _said_fraction(world: WorldConfig, vocabulary: set[str], n: int = 300) -> float:
    texts = [t for i in range(n) for t in plan_clip(world, "train", i, CLIP).captions["text"]]
    return float(np.mean([bool(set(tokenize_words(t)) & vocabulary) for t in texts]))


def test_size_and_motion_said_dials():
    size_words = {w for forms in synth.SIZE_WORDS.values() for w in forms}
    motion_words = {w for forms in synth.MOTION_WORDS.values() for f in forms for w in f[1].split()}
    assert _said_fraction(_world(size_said=0.0), size_words) < 0.02  # only sound-alike errors ("mall") remain
    assert _said_fraction(_world(size_said=1.0), size_words) > 0.7
    assert _said_fraction(_world(motion_said=1.0), motion_words) > 0.5
    assert _said_fraction(_world(motion_said=0.0), motion_words) < 0.05


def test_narration_noise_dial():
    fillers = {w for f in synth.FILLERS for w in f.split()} | {"um", "uh"}
    noisy = _said_fraction(_world(narration_noise=1.0), fillers)
    assert noisy > 0.4
    assert _said_fraction(_world(narration_noise=0.0), {"um", "uh", "okay", "alright"}) < 0.05 < noisy


def test_object_scale_dial_enlarges_objects_not_sounds(words):
    small = WorldClips(CFG.data, "val", _world(object_scale=1.0), words)
    big = WorldClips(CFG.data, "val", _world(object_scale=1.5), words)
    assert torch.equal(small[0]["audio"], big[0]["audio"])

    def object_pixels(ds):
        v = ds[0]["video"][:, 0]
        background = WorldClips(CFG.data, "val", _world(object_scale=0.01), words)[0]["video"][:, 0]
        return int(((v - background).abs().sum(0) > 0.05).sum())

    assert object_pixels(big) > 1.6 * object_pixels(small)


def test_unlimited_sampler_gives_new_clips_per_step_and_seed():
    s0 = StepBatchSampler(None, 8, seed=0, start=0, total=3)
    again = StepBatchSampler(None, 8, seed=0, start=1, total=3)
    s1 = StepBatchSampler(None, 8, seed=1, start=0, total=3)
    batches = list(s0)
    assert batches[1:] == list(again)  # a pure function of (seed, step): resume continues the same stream
    ids = [i for b in batches for i, _ in b]
    assert len(set(ids)) == len(ids) and all(0 <= i < 2**62 for i in ids)
    assert not set(ids) & {i for b in s1 for i, _ in b}
    ranks = [StepBatchSampler(None, 8, 0, 0, 3, rank=r, world=2).batch(1) for r in (0, 1)]
    assert ranks[0] + ranks[1] == batches[1]


def test_shipped_world_words_are_what_the_generator_makes(tmp_path, words):
    fresh = make_world_words(tmp_path / "w.bin")
    assert fresh.vocab == words.vocab
    # Up to float rounding: word2vec's sums follow the BLAS of the installed numpy (1.5e-4 apart across versions);
    # another corpus or seed moves every vector by far more.
    np.testing.assert_allclose(fresh.vectors, words.vectors, atol=1e-3)
    said = {
        w
        for i in range(200)
        for t in plan_clip(WorldConfig(), "train", i, CLIP).captions["text"]
        for w in tokenize_words(t)
    }
    assert len(said - set(words.vocab)) <= 0.02 * len(said)


def test_object_continuity_dial():
    def same_object(world):
        plans = [plan_clip(world, "train", i, CLIP) for i in range(200)]
        pairs = [(a, b) for p in plans for a, b in zip(p.segments, p.segments[1:])]
        return np.mean(
            [(a.kind, a.colour, a.size) == (b.kind, b.colour, b.size) and a.motion != b.motion for a, b in pairs]
        )

    assert same_object(_world(object_continuity=1.0)) == 1.0  # a video is about one object doing several things
    assert same_object(_world(object_continuity=0.0)) < 0.05


def test_clips_of_one_video_and_the_batches_training_draws(words):
    world = _world(clips_per_video=2)
    a, b = plan_clip(world, "train", 10, CLIP), plan_clip(world, "train", 11, CLIP)
    assert a.captions == b.captions and a.segments[0].kind == b.segments[0].kind  # one video ...
    assert a.segment < SEGMENTS_PER_VIDEO // 2 <= b.segment  # ... two clips, from its first and its second half
    sampler = StepBatchSampler(None, 8, seed=0, start=0, total=2, group=2)
    for batch in sampler:
        ids = [i for i, _ in batch]
        assert all(ids[j] // 2 == ids[j + 1] // 2 and ids[j] % 2 == 0 for j in range(0, 8, 2))
        assert len({i // 2 for i in ids}) == 4
    # Training does not group them: every clip of a batch comes from a video of its own, as every stored result
    # was trained (docs/BENCHMARKS.md, "Data rate of the world stream").
    ds = WorldClips(CFG.data, "train", world, words)
    loader = step_loader(ds, TrainConfig(batch_size=32, num_workers=0), 0, 3)
    assert loader.batch_sampler.group == 1
    for batch in loader.batch_sampler:
        assert len({i // world.clips_per_video for i, _ in batch}) == 32


def test_cached_clips_equal_rendered_ones_and_are_shared_where_they_can_be(words, tmp_path):
    plain = WorldClips(CFG.data, "train", _world(), words)
    cached = WorldClips(CFG.data, "train", _world(), words, cache_dir=tmp_path)
    for _ in range(2):  # rendered and written, then read back
        for i in (3, 4):
            a, b = plain[i], cached[i]
            assert torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"])
            assert torch.equal(a["text_ids"], b["text_ids"])
    folders = sorted(p.name.split("-")[0] for p in tmp_path.iterdir())
    assert folders == ["audio", "frames"] and all(len(list(p.iterdir())) == 2 for p in tmp_path.iterdir())
    # other narrations share both; sounds from off screen share the picture only
    WorldClips(CFG.data, "train", _world(misalignment=0.0, size_said=1.0), words, cache_dir=tmp_path)[3]
    assert len(list(tmp_path.iterdir())) == 2
    offscreen = WorldClips(CFG.data, "train", _world(av_correspondence=0.0), words, cache_dir=tmp_path)
    assert torch.equal(offscreen[3]["video"], plain[3]["video"]) and not torch.equal(
        offscreen[3]["audio"], plain[3]["audio"]
    )
    assert len(list(tmp_path.iterdir())) == 3
