"""Real video files (mmv_lite.data.media through ClipDataset): frames placed by timestamp, sound by its own, display
rotation, damaged streams salvaged, declared durations as hints; the cached and uncached paths give identical clips.

Every file is written here with PyAV (tests/media_files.py); frames carry their index in their grey level.
"""

from __future__ import annotations

import json
import logging
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from media_files import SR, frame_index, grey_frames, set_mkv_duration, tone, write_media

from mmv_lite.data.clips import ClipDataset
from mmv_lite.data.media import decode, probe

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cfg(lite_data_cfg):
    """The lite preset's clips with the file-pipeline settings (tests/conftest.py): 8 frames at 5 fps (1.6 s), shorter
    side <= 64 px, 16 kHz audio."""
    return lite_data_cfg


def both_paths(root, cfg, **kw) -> tuple[ClipDataset, ClipDataset]:
    """The same folder read without a cache (decoding each window after a seek) and through the cache."""
    fresh = ClipDataset(root, "all", cfg, cache=False, **kw)
    cached = ClipDataset(root, "all", cfg, cache_dir=root.parent / f"{root.name}-cache", **kw)
    return fresh, cached


def assert_identical(fresh: ClipDataset, cached: ClipDataset, audio_atol: float = 0.0) -> None:
    """Same windows, and for each the same raw frames, waveform and model inputs on both paths.

    ``audio_atol``: for codecs whose decoder adds its own random noise (AC-3 dithers zero-bit mantissas, AAC's noise
    substitution), audio decoded after a seek differs from audio decoded from the start by that noise."""
    assert [w.start for w in fresh.windows] == [w.start for w in cached.windows] and len(fresh) > 0
    for i, w in enumerate(fresh.windows):
        (fa, wa), (fb, wb) = (d.load_clip(d.videos[w.video_id], w.start) for d in (fresh, cached))
        assert (fa is None) == (fb is None) and (wa is None) == (wb is None), f"window {i}"
        if fa is not None:
            np.testing.assert_array_equal(fa, fb, err_msg=f"frames of window {i} ({w.video_id} at {w.start} s)")
        if wa is not None:
            np.testing.assert_allclose(wa, wb, rtol=0, atol=audio_atol, err_msg=f"audio of window {i} at {w.start} s")
        a, b = fresh[i], cached[i]
        assert torch.equal(a["video"], b["video"]) and (audio_atol or torch.equal(a["audio"], b["audio"]))
        assert bool(a["has_audio"]) == bool(b["has_audio"])


def shown_at(times: list[float], instants: np.ndarray) -> list[int]:
    """Index of the written frame on screen at each instant: the last one shown at or before it."""
    return [max(k for k, t in enumerate(times) if t <= s + 1e-6) for s in instants]


# --------------------------------------------------------------------------------------------- timestamps
VFR_TIMES = [0.0, 0.1, 0.15, 1.2, 1.25, 2.9, 3.0, 3.033, 5.0, 7.6]  # s: bursts and long still stretches
AVI_FRAMES = [0, 1, 3, 18, 19, 43, 45, 46, 75, 114]  # at 15 fps: an encoder that skipped unchanged frames


@pytest.mark.parametrize(
    "name, times, kw",
    [
        ("phone.mp4", VFR_TIMES, {}),
        ("screen.mkv", VFR_TIMES, {}),
        ("skipped.avi", [k / 15 for k in AVI_FRAMES], {"vcodec": "mpeg4", "fps": 15, "acodec": "mp2"}),
    ],
)
def test_variable_frame_rate_frames_land_at_their_timestamps(tmp_path, cfg, name, times, kw):
    root = tmp_path / "videos"
    write_media(root / name, grey_frames(len(times)), times, audio=tone(8.4), **kw)
    fresh, cached = both_paths(root, cfg)
    rec = fresh.videos[name.split(".")[0]]
    assert rec.duration == pytest.approx(8.4, abs=0.1)  # the whole file, not frames counted at a nominal rate
    assert len(fresh) == 5  # 8.4 s tiled with 1.6 s windows: none refused as "truncated"
    for ds in (fresh, cached):
        for w in ds.windows:
            frames, wave = ds.load_clip(rec, w.start)
            instants = w.start + np.arange(cfg.num_frames) / cfg.fps
            assert [frame_index(f) for f in frames] == shown_at(times, instants), f"window at {w.start} s"
            assert np.abs(wave).max() > 0.3  # the sound runs all along
    assert_identical(fresh, cached)


def test_audio_starting_one_second_late_stays_in_sync(tmp_path, cfg):
    """The picture brightens at 2.0 s; the sound track starts at 1.0 s and its tone at 2.0 s of the file."""
    frames = grey_frames(1).repeat(40, 0)
    frames[20:] = 230
    root = tmp_path / "videos"
    write_media(root / "late.mp4", frames, fps=10, audio=tone(3.0, onset=1.0), audio_start=1.0)
    fresh, cached = both_paths(root, cfg)
    rec = fresh.videos["late"]
    for ds in (fresh, cached):
        assert ds.load_clip(rec, 0.0)[1] is None  # the sound track spans 0.6 s of the 1.6: no sound (has_audio)
        for start in (0.8, 1.2):  # 2.0 s is one of the clip's instants
            frames_, wave = ds.load_clip(rec, start)
            bright = np.nonzero(frames_.reshape(cfg.num_frames, -1).mean(1) > 128)[0]
            v_onset = start + bright[0] / cfg.fps if len(bright) else None
            loud = np.nonzero(np.abs(wave) > 0.25)[0]
            a_onset = start + loud[0] / SR if len(loud) else None
            if start <= 2.0 - 1.6:
                assert v_onset is None and a_onset is None
            else:
                assert v_onset == pytest.approx(2.0, abs=1e-6) and a_onset == pytest.approx(2.0, abs=1e-3)
        _, wave = ds.load_clip(rec, 0.8)
        assert np.abs(wave[: int(0.1 * SR)]).max() < 1e-3  # before the sound track starts: silence
    assert_identical(fresh, cached)


def test_windows_after_the_sound_ends_have_no_audio(tmp_path, cfg, caplog):
    """The sound track ends at 2.0 s, the picture runs on to 6.7 s: the windows the sound spans for less than half
    are marked has_audio=False on both paths (the masks of the losses and of retrieval then leave their sound out)."""
    root = tmp_path / "videos"
    write_media(root / "short_sound.mp4", grey_frames(25).repeat(2, 0), fps=7.5, audio=tone(2.0))
    with caplog.at_level(logging.WARNING):
        fresh, cached = both_paths(root, cfg)
        assert len(fresh) == 4 and fresh.windows[1].start > 2.0 - 0.5 * 1.6  # the sound spans under half of it
        for ds in (fresh, cached):
            items = [ds[i] for i in range(len(ds))]
            assert [bool(it["has_audio"]) for it in items] == [True, False, False, False]
            assert items[0]["audio"].abs().sum() > 0 and not any(it["audio"].any() for it in items[1:])
    assert "the audio stream spans" in caplog.text and "has_audio=False" in caplog.text
    assert_identical(fresh, cached)


def test_video_starting_after_the_sound(tmp_path, cfg):
    """Pictures from 3.0 s on, sound from 0 s: before the first frame the clip holds it, on both paths alike."""
    root = tmp_path / "videos"
    times = [3.0 + k / 5 for k in range(10)]
    write_media(root / "intro.mkv", grey_frames(10), times, audio=tone(5.0))
    fresh, cached = both_paths(root, cfg)
    assert len(fresh) == 3  # 5 s of streams; the first window ends before the first frame
    for ds in (fresh, cached):
        frames, wave = ds.load_clip(ds.videos["intro"], 0.0)
        assert [frame_index(f) for f in frames] == [0] * 8 and np.abs(wave).max() > 0.3
    assert_identical(fresh, cached)


@pytest.mark.parametrize("factor", [3.0, 1 / 3])
def test_declared_duration_is_a_hint_in_both_directions(tmp_path, cfg, factor, caplog):
    root = tmp_path / "videos"
    path = write_media(root / "liar.mkv", grey_frames(25), fps=5, audio=tone(5.0))
    honest = probe(path)
    set_mkv_duration(path, 5.0 * factor)
    info = probe(path)
    assert info.declared == pytest.approx(5.0 * factor, abs=0.01) and not info.truncated
    assert info.duration == pytest.approx(honest.duration) == pytest.approx(5.0, abs=0.1)  # the streams decide
    with caplog.at_level(logging.INFO):
        fresh, cached = both_paths(root, cfg)
    assert "declares" in caplog.text and "liar.mkv" in caplog.text
    offset = (honest.duration - 3 * 1.6) / 2  # the real 5 s tiled with three centred windows
    assert [w.start for w in fresh.windows] == pytest.approx([offset, offset + 1.6, offset + 3.2], abs=1e-4)
    for ds in (fresh, cached):
        for w in ds.windows:
            frames, _ = ds.load_clip(ds.videos["liar"], w.start)
            instants = w.start + np.arange(cfg.num_frames) / cfg.fps
            assert [frame_index(f) for f in frames] == shown_at([k / 5 for k in range(25)], instants)
    assert_identical(fresh, cached)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_display_rotation_is_applied(tmp_path, cfg, rotation):
    """A phone films a portrait scene (marker top-left) and stores it turned, with the turn in the metadata."""
    scene = np.full((64, 32, 3), 40, np.uint8)
    scene[:16, :16] = (230, 60, 60)
    stored = np.rot90(scene, -rotation // 90)  # what the sensor wrote; rotating it back shows the scene
    root = tmp_path / "videos"
    write_media(root / "phone.mp4", np.stack([stored] * 20), fps=10, rotation=rotation)
    d = decode(root / "phone.mp4", SR, 64)
    assert d.frames.shape[1:] == scene.shape
    assert np.abs(d.frames[0].astype(int) - scene).mean() < 3
    fresh, cached = both_paths(root, cfg)
    frames, _ = cached.load_clip(cached.videos["phone"], 0.0)
    assert np.abs(frames[0].astype(int) - scene).mean() < 3
    assert_identical(fresh, cached)


# --------------------------------------------------------------------------------------------- damage
@pytest.mark.parametrize(
    "name, kw, audio_atol",
    [
        ("talk.mp4", {"acodec": "aac"}, 0.0),  # AAC frames of 64 ms
        ("talk.avi", {"vcodec": "mpeg4", "acodec": "ac3", "sample_rate": 48_000}, 1e-4),  # AVI + AC-3 (dithers)
    ],
)
def test_damaged_audio_packets_cost_only_their_span(tmp_path, cfg, caplog, name, kw, audio_atol):
    root = tmp_path / "videos"
    rate = kw.get("sample_rate", SR)
    path = write_media(root / name, grey_frames(25), fps=5, audio=tone(5.0, rate=rate), corrupt_audio=(40, 41), **kw)
    d = decode(path, SR, 64)
    assert [frame_index(f) for f in d.frames] == list(range(25))  # the picture is all there
    spans = [(x.start, x.end) for x in d.damage]
    assert spans and all(x.kind == "audio" and "audio stream #1" in x.stream for x in d.damage)
    lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
    with caplog.at_level(logging.WARNING):
        fresh, cached = both_paths(root, cfg)
        assert len(fresh) == 3 and not fresh.skip_bad  # nothing skipped, no error
        for ds in (fresh, cached):
            for i, w in enumerate(ds.windows):
                item = ds[i]
                overlaps = w.start < hi and w.start + 1.6 > lo
                assert bool(item["has_audio"]) == (not overlaps), f"window at {w.start} s, damage {lo:.2f}-{hi:.2f}"
                assert item["has_video"] and item["video"].std() >= 0
                if overlaps:
                    assert not item["audio"].any()  # masked: no sound is better than a broken one
    assert name in caplog.text and "audio stream #1" in caplog.text and f"{lo:.2f}" in caplog.text
    assert "has_audio=False" in caplog.text
    (meta,) = (tmp_path / "videos-cache").glob("*.json")
    entry = json.loads(meta.read_text())
    assert entry["salvaged"] and entry["damage"][0]["start"] == pytest.approx(lo)
    assert_identical(fresh, cached, audio_atol)


def test_video_without_a_usable_stream_is_bad_and_skip_bad_skips_it(tmp_path, cfg, caplog):
    root = tmp_path / "videos"
    write_media(root / "good.mp4", grey_frames(20), fps=5, audio=tone(4.0))
    (root / "noise.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(Exception, match="noise.mkv"):
        ClipDataset(root, "all", cfg, cache=False)
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(root, "all", cfg, cache=False, skip_bad=True)
    assert set(ds.videos) == {"good"} and "noise.mkv" in caplog.text


# --------------------------------------------------------------------------------------------- formats that work
def test_webm_vp9_opus_odd_sizes_and_8khz_pcm(tmp_path, cfg):
    root = tmp_path / "videos"
    odd = grey_frames(12, size=(45, 63))
    write_media(
        root / "web.webm",
        odd,
        fps=6,
        audio=tone(2.0, hz=600, rate=48_000),
        sample_rate=48_000,
        vcodec="libvpx-vp9",
        acodec="libopus",
    )
    write_media(
        root / "old.mkv",
        grey_frames(12, size=(36, 52)),
        fps=6,
        audio=tone(2.0, hz=600, rate=8000),
        sample_rate=8000,
        acodec="pcm_s16le",
    )
    fresh, cached = both_paths(root, cfg)
    for ds in (fresh, cached):
        for vid, shape in (("web", (45, 63, 3)), ("old", (36, 52, 3))):
            frames, wave = ds.load_clip(ds.videos[vid], 0.0)
            assert frames.shape[1:] == shape and [frame_index(f) for f in frames[:4]] == [0, 1, 2, 3]
            spectrum = np.abs(np.fft.rfft(wave[: SR // 2]))  # 0.5 s at 16 kHz: 2 Hz per bin
            assert abs(2 * int(np.argmax(spectrum)) - 600) <= 4
            item = ds[[w.video_id for w in ds.windows].index(vid)]
            assert item["video"].shape == (3, 8, 56, 56) and item["has_audio"]
    assert_identical(fresh, cached)


# --------------------------------------------------------------------------------------------- one decode semantics
def test_frames_decoded_out_of_timestamp_order_give_the_frame_on_screen_after_a_seek(tmp_path, cfg):
    """A variable-frame-rate file whose frames come out of the decoder out of timestamp order (every pair swapped, as
    AVI's B-frames give them): after a seek the clip still starts on the frame on screen, as the cached path has it."""
    times = [k * 0.32 + (0.07 if k % 3 == 1 else 0.0) for k in range(24)]  # 7.7 s, irregular gaps
    order = [k ^ 1 for k in range(24)]  # decoded 1, 0, 3, 2, ...
    path = tmp_path / "videos" / "swapped.mkv"
    path.parent.mkdir()
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mjpeg", rate=5)  # intra only: decoded in the order the packets come
        vs.height, vs.width, vs.pix_fmt = 48, 64, "yuvj420p"
        vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
        packets = []
        for k, f in enumerate(grey_frames(24)):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = round(times[k] * 1000), Fraction(1, 1000)
            packets += vs.encode(vf)
        packets += vs.encode(None)
        for i, k in enumerate(order):  # muxed (and so decoded) out of order, decode times before presentation times
            packets[k].dts = round(times[max(i - 1, 0)] * 1000) - 400
            out.mux(packets[k])
    fresh, cached = both_paths(tmp_path / "videos", cfg)
    rec = fresh.videos["swapped"]
    for start in (1.7, 3.6, 6.2):  # on screen: frames 5, 11, 19, each decoded before the frame shown just before it
        instants = start + np.arange(cfg.num_frames) / cfg.fps
        for ds in (fresh, cached):
            frames_, _ = ds.load_clip(rec, start)
            assert [frame_index(f) for f in frames_] == shown_at(times, instants), (start, ds.use_cache)
    assert_identical(fresh, cached)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("talk.webm", {"vcodec": "libvpx-vp9", "acodec": "libopus", "sample_rate": 48_000}),  # pre-skip after a seek
        ("talk.mkv", {"acodec": "pcm_s16le", "sample_rate": 44_100}),  # 1024-sample packets in whole milliseconds
    ],
)
def test_audio_after_a_seek_is_sample_for_sample_the_whole_files(tmp_path, cfg, name, kw):
    """Noise (any shift shows) in containers whose timestamps are coarser than a sample: every window decoded after a
    seek has exactly the samples of the whole file's decode."""
    rate = kw["sample_rate"]
    noise = (0.3 * np.random.default_rng(0).standard_normal(8 * rate)).astype(np.float32)
    write_media(tmp_path / "videos" / name, grey_frames(25).repeat(2, 0), fps=6.25, audio=noise, **kw)
    fresh, cached = both_paths(tmp_path / "videos", cfg)
    assert len(fresh) >= 4 and max(w.start for w in fresh.windows) > 4  # decoded after a seek
    for w in fresh.windows:
        (_, wa), (_, wb) = (ds.load_clip(ds.videos[w.video_id], w.start) for ds in (fresh, cached))
        assert np.abs(wb).max() > 0.1 and np.array_equal(wa, wb), f"window at {w.start} s"
    assert_identical(fresh, cached)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_never_collects_the_parents_garbage():
    """FFmpeg objects run threads; one that is garbage when a DataLoader forks must not be freed in the worker, where
    its threads do not exist (freeing it there waits forever: the hang of tests/test_clips.py's two-worker loader)."""
    import gc

    import mmv_lite.data.media  # noqa: F401  (registers the fork hook)

    pid = os.fork()
    if pid == 0:  # the child: everything it inherited is frozen, out of its collector's reach
        os._exit(0 if gc.get_freeze_count() > 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child can collect what it inherited"
    assert gc.get_freeze_count() == 0  # the parent collects its garbage as before
