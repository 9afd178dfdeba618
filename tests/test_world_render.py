"""The sample world drawn a batch at a time (mmv_lite.data.render): the same clips as the per-clip renderer within
the stated tolerance on every split, on any device, through the training loader; and a cache key no dial escapes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from mmv_lite.config import TrainConfig, WorldConfig, get_config
from mmv_lite.data import render, render_cpu, synth
from mmv_lite.data.sampling import RenderedBatches, as_tensors, collate_planned, render_mode, step_loader
from mmv_lite.data.world import WorldClips, world_word_vectors

CFG = get_config("lite")


@pytest.fixture(scope="module")
def words():
    return world_word_vectors()


def _assert_same_clips(reference: dict, drawn: dict) -> None:
    """``video`` within one grey level, off at all in at most VIDEO_MISMATCH of its values; log-mel within
    LOGMEL_ATOL; every other entry identical."""
    off = (drawn["video"] - reference["video"]).abs()
    assert off.max().item() <= 1 / 255 + 1e-6
    assert (off > 0).float().mean().item() <= render.VIDEO_MISMATCH
    assert (drawn["audio"] - reference["audio"]).abs().max().item() <= render.LOGMEL_ATOL
    assert drawn["video"].shape == reference["video"].shape and drawn["audio"].shape == reference["audio"].shape
    for key in reference:
        if key not in ("video", "audio"):
            a, b = reference[key], drawn[key]
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, key


ENGINES = ("torch", "compiled")  # the torch engine is the one CUDA runs: it is checked here on the CPU


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("split", ["train", "probe", "val", "test"])
def test_batched_clips_equal_the_reference_on_every_split(words, split, engine):
    ds = WorldClips(CFG.data, split, CFG.world, words)
    indices = list(range(12))
    reference = ds.collate([ds[i] for i in indices])
    drawn = ds.render_batch(ds.collate([ds.planned(i) for i in indices]), engine=engine)
    _assert_same_clips(reference, drawn)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_motion_instrument_and_background_is_drawn_as_the_reference(words, engine):
    """One batch holds every kind, motion, sound and background (and sounds from off screen, and other rooms' noise),
    so every branch of the renderer is compared."""
    world = dataclasses.replace(CFG.world, av_correspondence=0.5, scene_sound=0.5)
    ds = WorldClips(CFG.data, "train", world, words)
    indices = list(range(100, 164))
    params = [ds.render_params(ds.plan(i), i) for i in indices]
    for key, values in (("kind", synth.KINDS), ("s_motion", synth.MOTIONS), ("background", synth.BACKGROUNDS)):
        assert {int(p[key]) for p in params} == set(range(len(values))), key
    assert {int(p["instrument"]) for p in params} == set(range(len(synth.INSTRUMENTS)))
    planned = ds.collate([ds.planned(i) for i in indices])
    _assert_same_clips(ds.collate([ds[i] for i in indices]), ds.render_batch(planned, engine=engine))


@pytest.mark.parametrize("engine", ENGINES)
def test_other_clip_sizes_and_long_recordings(words, engine):
    """Other data settings: small frames at another rate, and clips longer than half the noise bank (their noise is
    synthesised whole, in planning)."""
    short = dataclasses.replace(CFG.data, num_frames=4, fps=4.0, crop_size=24, sample_rate=8000, f_max=3900.0)
    long = dataclasses.replace(CFG.data, num_frames=90, fps=10.0)
    for data, n in ((short, 8), (long, 2)):
        ds = WorldClips(data, "val", CFG.world, words)
        planned = [ds.planned(i) for i in range(n)]
        assert ("noise_wave" in planned[0]["render"]) == (data is long)
        _assert_same_clips(ds.collate([ds[i] for i in range(n)]), ds.render_batch(ds.collate(planned), engine=engine))


def test_the_cpu_draws_with_compiled_loops_and_other_devices_with_torch(words, monkeypatch):
    """``engine="auto"``: the compiled loops on the CPU, torch's operations elsewhere (the meta device stands in for
    CUDA); an unknown engine is refused by name."""
    ds = WorldClips(CFG.data, "train", CFG.world, words)
    planned = ds.collate([ds.planned(i) for i in range(4)])
    calls = []
    real = render_cpu.draw_frames
    monkeypatch.setattr(render_cpu, "draw_frames", lambda *a: calls.append("compiled") or real(*a))
    ds.render_batch(planned)
    ds.render_batch(planned, "meta")
    ds.render_batch(planned, engine="torch")
    assert calls == ["compiled"]
    with pytest.raises(ValueError, match="engine='numba'"):
        ds.render_batch(planned, engine="numba")


def test_the_compiled_sine_and_power_of_two_are_numpys_to_rounding():
    """The compiled loops' own float32 sine (any argument a partial can have) and float64 ``2 ** x`` (the pitch
    bend's range) against NumPy's."""
    x = np.linspace(-80, 80, 200_001, dtype=np.float32)
    got = np.array([render_cpu._sin32(v) for v in x[::97]], np.float32)
    ref = np.sin(x[::97])
    assert np.abs(got - ref).max() <= 2 * np.spacing(np.float32(1.0))  # 2 ulp of 1: the sine's own scale
    e = np.linspace(-1, 1, 2001)
    assert np.abs(np.array([render_cpu._exp2(v) for v in e]) / 2.0**e - 1).max() < 1e-15


def test_drawn_on_the_device_asked_for(words):
    """The meta device computes nothing but checks that every tensor of the renderer lives where it is asked to
    (a mask or a NumPy conversion on the device fails there as on CUDA)."""
    ds = WorldClips(CFG.data, "train", CFG.world, words)
    batch = ds.render_batch(ds.collate([ds.planned(i) for i in range(16)]), "meta")
    d = CFG.data
    assert batch["video"].device.type == "meta" and batch["audio"].device.type == "meta"
    assert batch["video"].shape == (16, 3, d.num_frames, d.crop_size, d.crop_size)
    assert batch["audio"].shape == (16, 1, 51, d.n_mels)
    assert batch["text_ids"].device.type == "cpu"  # the rest of the batch moves with the step, as before


def test_the_loader_draws_where_the_training_runs(words):
    ds = WorldClips(CFG.data, "train", CFG.world, words)
    assert render_mode(ds, "auto", torch.device("cuda")) == "device"
    assert render_mode(ds, "auto", "cpu", workers=2) == "clip"  # each item whole in the workers, as always
    assert render_mode(ds, "auto", "cpu", workers=0) == "batch"  # no worker: the batch at once, in this process
    assert render_mode(object(), "auto", "cuda") == "clip"  # a dataset that cannot plan (a folder of videos)
    with pytest.raises(ValueError, match="render="):
        render_mode(ds, "gpu", "cpu")
    tc = TrainConfig(batch_size=4, num_workers=0, seed=3)
    batches = {}
    for mode in ("clip", "batch", "device"):
        loader = step_loader(ds, tc, 0, 2, render=mode, device="cpu")
        assert isinstance(loader, RenderedBatches) == (mode == "device")
        batches[mode] = list(loader)
        assert len(batches[mode]) == 2
    for mode in ("batch", "device"):
        for reference, drawn in zip(batches["clip"], batches[mode]):
            _assert_same_clips(reference, drawn)


def test_planned_batches_cross_as_arrays_and_come_back_as_default_collate_makes_them(words):
    """Workers hand planned batches over as NumPy arrays (cheaper than one shared-memory segment per tensor);
    back in the main process they are default_collate's tensors: the same keys, dtypes, shapes and values."""
    ds = WorldClips(CFG.data, "val", CFG.world, words)
    items = [ds.planned(i) for i in range(5)]
    for i, item in enumerate(items):
        item["np_scalar"] = np.float32(i / 2)  # NumPy scalars stack too
    crossed = collate_planned(items)
    assert all(isinstance(v, (np.ndarray, list, dict)) for v in crossed.values())
    assert all(isinstance(v, np.ndarray) for v in crossed["render"].values())
    expected, got = default_collate(items), as_tensors(crossed)

    def same(a, b, where):
        assert type(a) is type(b), where
        if isinstance(a, dict):
            assert a.keys() == b.keys(), where
            for k in a:
                same(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape, where
            assert torch.equal(a, b) or torch.allclose(a, b, rtol=0, atol=0, equal_nan=True), where  # NaN: no partial
        else:
            assert a == b, where

    same(expected, got, "batch")


def test_the_cache_key_follows_every_dial(words):
    """A dial added to the world (here by a subclass) is in the cache key without being listed anywhere; the
    narration dials are not (clips that differ only in narration share their cached pictures and sounds)."""

    def keys(world, data=CFG.data):
        return WorldClips(data, "train", world, words)._cache_keys()

    base = keys(CFG.world)
    assert keys(dataclasses.replace(CFG.world, misalignment=0.1, size_said=1.0, num_eval=7)) == base
    sound_only = keys(dataclasses.replace(CFG.world, scene_sound=1.0))
    assert sound_only["frames"] == base["frames"] and sound_only["audio"] != base["audio"]
    assert keys(CFG.world, dataclasses.replace(CFG.data, crop_size=40)) != base
    assert keys(CFG.world, dataclasses.replace(CFG.data, color_jitter=0.0)) == base  # the stream never jitters

    Dialled = dataclasses.make_dataclass("Dialled", [("glare", float, 0.0)], bases=(WorldConfig,))
    plain, glaring = Dialled(**vars(CFG.world)), Dialled(**vars(CFG.world), glare=0.5)
    assert keys(plain) != keys(glaring)
    assert keys(plain)["frames"] != keys(glaring)["frames"] and keys(plain)["audio"] != keys(glaring)["audio"]
