"""ClipDataset, augmentation, cache and bad input (mmv_lite.data.clips, mmv_lite.data.augment)."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from mmv_lite.config import get_config
from mmv_lite.data.audio import LOG_OFFSET, num_audio_frames
from mmv_lite.data.augment import VideoTransform
from mmv_lite.data.clips import BadClipError, ClipDataset
from mmv_lite.data.synth import write_mp4
from mmv_lite.data.text import WordVectors

SR = 16_000


def _tone(seconds, onset=0.0, hz=1000.0):
    t = np.arange(int(seconds * SR)) / SR
    return np.where(t >= onset, 0.5 * np.sin(2 * np.pi * hz * t), 0).astype(np.float32)


def _frames(n, value=None, size=64, seed=0):
    if value is None:
        return np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    return np.full((n, size, size, 3), value, np.uint8)


@pytest.fixture
def samples_copy(tiny_samples, tmp_path):
    """A writable copy of the tiny generated sample folder."""
    return shutil.copytree(tiny_samples, tmp_path / "samples", ignore=shutil.ignore_patterns(".cache"))


# --------------------------------------------------------------------------------------------- items
def test_item_shapes_dtypes_and_labels(tiny_samples, lite_data_cfg, tmp_path):
    cfg = lite_data_cfg
    ds = ClipDataset(tiny_samples, "all", cfg, train=True, cache_dir=tmp_path / "cache")
    meta = json.loads((tiny_samples / "metadata.json").read_text())
    n_segments = sum(len(v["segments"]) for v in meta["videos"].values())
    assert len(ds) == n_segments == len(ds.windows)
    F, K, L = num_audio_frames(cfg), cfg.num_candidates, cfg.max_words
    for i in (0, len(ds) - 1):
        item = ds[i]
        assert item["video"].shape == (3, 8, 56, 56) and item["video"].dtype == torch.float32
        assert 0 <= item["video"].min() and item["video"].max() <= 1
        assert item["audio"].shape == (1, F, 80) and item["audio"].dtype == torch.float32
        assert item["text_ids"].shape == item["text_mask"].shape == (K, L) and item["text_ids"].dtype == torch.int64
        assert item["text_mask"].dtype == torch.bool and item["text_valid"].shape == (K,)
        assert torch.equal(item["text_mask"], item["text_ids"] != 0)
        assert item["index"] == i and item["end"] - item["start"] == pytest.approx(1.6)
        w = ds.windows[i]
        assert w.lo <= item["start"] <= w.hi  # temporal jitter stays inside the segment
        seg = meta["videos"][w.video_id]["segments"][w.segment]
        assert item["action_label"] == seg["action_label"] and item["image_label"] == seg["image_label"]
    narrated = [i for i, w in enumerate(ds.windows) if w.video_id.startswith("narrated")]
    sound = [i for i, w in enumerate(ds.windows) if w.video_id.startswith("sound")]
    assert ds[narrated[0]]["has_text"] and ds[narrated[0]]["text_valid"].any() and ds[narrated[0]]["has_audio"]
    assert not ds[sound[0]]["has_text"] and not ds[sound[0]]["text_valid"].any() and ds[sound[0]]["has_audio"]
    labels = ds.labels
    assert set(labels) == {"action", "sound", "image"} and labels["action"].shape == (len(ds),)
    assert ds.class_names["action"][0] == "slide" and ds.vocab[0] == "<pad>"


def test_splits_kinds_and_deterministic_eval(tiny_samples, lite_data_cfg, tmp_path):
    by_split = {s: ClipDataset(tiny_samples, s, lite_data_cfg, cache_dir=tmp_path) for s in ("train", "val", "test")}
    every = ClipDataset(tiny_samples, "all", lite_data_cfg, cache_dir=tmp_path)
    assert sum(len(d) for d in by_split.values()) == len(every)
    ids = [set(d.videos) for d in by_split.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    sound_only = ClipDataset(tiny_samples, "all", lite_data_cfg, kinds=("sound",), cache_dir=tmp_path)
    assert set(sound_only.videos) == {"sound_000", "sound_001"}
    a, b = every[1], every[1]
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"]) and a["start"] == b["start"]
    assert len(ClipDataset(tiny_samples, "all", lite_data_cfg, cache_dir=tmp_path, windows_per_segment=3)) == 3 * len(
        every
    )
    with pytest.raises(ValueError, match="split"):
        ClipDataset(tiny_samples, "training", lite_data_cfg)


def test_nearest_narrations_are_the_closest_in_time(tiny_samples, lite_data_cfg, tmp_path):
    ds = ClipDataset(tiny_samples, "all", lite_data_cfg, cache_dir=tmp_path, kinds=("narrated",))
    caps = json.loads((tiny_samples / "captions.json").read_text())
    for i in range(len(ds)):
        w = ds.windows[i]
        c = caps[w.video_id]
        texts = ds.candidate_texts(i)
        assert len(texts) == min(lite_data_cfg.num_candidates, len(c["text"]))
        end = w.start + ds.clip_seconds
        gaps = [max(0.0, s - end, w.start - e) for s, e in zip(c["start"], c["end"])]
        first = c["text"].index(texts[0])
        assert gaps[first] == min(gaps)  # no caption is nearer in time than the first candidate


def test_audio_and_video_are_in_sync(tmp_path):
    """A flash and a tone both start at 1.2 s: the clip shows them at the same moment."""
    cfg = get_config("lite", **{"data.fps": 10.0, "data.num_frames": 16}).data
    frames = _frames(30, 0)
    frames[12:] = 255
    write_mp4(tmp_path / "videos" / "flash.mp4", frames, _tone(3.0, onset=1.2), fps=10, sample_rate=SR)
    ds = ClipDataset(tmp_path, "all", cfg, cache=False)
    assert len(ds) == 1
    for cached in (False, True):
        ds.use_cache = cached
        item = ds[0]
        brightness = item["video"].mean(dim=(0, 2, 3))  # (T,)
        v_onset = item["start"] + int(torch.nonzero(brightness > 0.5)[0]) / cfg.fps
        energy = item["audio"][0].max(dim=1).values  # (F,)
        half_way = (energy.min() + energy.max()) / 2
        a_onset = item["start"] + int(torch.nonzero(energy > half_way)[0]) * cfg.hop_length / cfg.sample_rate
        assert v_onset == pytest.approx(1.2, abs=1e-6)
        assert abs(a_onset - 1.2) <= cfg.hop_length / cfg.sample_rate + 1e-6  # one spectrogram hop (16 ms)


def _mel_band_centres(cfg) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of the log-mel front-end (HTK mel scale, as torchaudio's default)."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = np.linspace(mel(cfg.f_min), mel(cfg.f_max), cfg.n_mels + 2)
    return 700 * (10 ** (edges[1:-1] / 2595) - 1)


def test_cache_is_used_and_matches_decoding(tiny_samples, lite_data_cfg, tmp_path):
    cache = tmp_path / "cache"
    fresh = ClipDataset(tiny_samples, "all", lite_data_cfg, cache=False)
    cached = ClipDataset(tiny_samples, "all", lite_data_cfg, cache_dir=cache)
    for i in (0, len(cached) // 2, len(cached) - 1):
        a, b = fresh[i], cached[i]
        assert torch.equal(a["video"], b["video"])
        # AAC decoded after a seek vs from the start: the same sound; only the decoder's noise-substitution bands
        # differ (AAC codes noise-like high bands as random noise), so compare mel magnitudes below 4 kHz, where the
        # objects' tones are
        low = _mel_band_centres(lite_data_cfg) < 4000
        mel_a, mel_b = a["audio"].exp()[..., low], b["audio"].exp()[..., low]
        assert (mel_a - mel_b).norm() < 0.05 * mel_b.norm()
    assert cached.warm_cache() == len(cached.videos)
    files = sorted(p.name for p in cache.iterdir())
    assert len([f for f in files if f.endswith(".frames.npy")]) == len(cached.videos)
    assert not [f for f in files if ".tmp" in f]
    # a second dataset reads only the cache: remove the mp4 files to prove it
    moved = shutil.copytree(tiny_samples, tmp_path / "moved", ignore=shutil.ignore_patterns(".cache"))
    again = ClipDataset(moved, "all", lite_data_cfg, cache_dir=cache)
    assert len(list(cache.glob("*.frames.npy"))) == len(cached.videos)  # keys differ (path), nothing read yet
    again.warm_cache()
    for p in (moved / "videos").iterdir():
        p.unlink()
    assert torch.equal(again[0]["video"], cached[0]["video"])


def test_damaged_cache_entry_is_rebuilt(tmp_path, lite_data_cfg, caplog):
    write_mp4(tmp_path / "my.clip.mp4", _frames(30, seed=5), _tone(3.0))  # a dot in the name, too
    ds = ClipDataset(tmp_path, "all", lite_data_cfg, cache_dir=tmp_path / "c")
    first = ds[0]["video"]
    (entry,) = (tmp_path / "c").glob("*.frames.npy")
    assert entry.name.startswith("my.clip-")
    entry.write_bytes(b"damaged")
    again = ClipDataset(tmp_path, "all", lite_data_cfg, cache_dir=tmp_path / "c")
    with caplog.at_level(logging.WARNING):
        assert torch.equal(again[0]["video"], first)
    assert "damaged" in caplog.text


def test_dataloader_with_two_workers(tiny_samples, lite_data_cfg, tmp_path):
    ds = ClipDataset(tiny_samples, "all", lite_data_cfg, train=True, cache_dir=tmp_path / "cache")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=True)
    seen = []
    for batch in loader:
        assert batch["video"].shape[1:] == (3, 8, 56, 56) and batch["text_ids"].shape[1:] == (4, 16)
        assert isinstance(batch["video_id"], list)
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(ds)))
    assert len(list((tmp_path / "cache").glob("*.json"))) == len(ds.videos)


# --------------------------------------------------------------------------------------------- augmentation
def test_augmentation_is_identical_across_frames(lite_data_cfg):
    torch.manual_seed(0)
    aug = VideoTransform(lite_data_cfg, train=True)
    frame = torch.from_numpy(_frames(1, seed=1)).permute(0, 3, 1, 2)
    clip = frame.repeat(8, 1, 1, 1)  # a still clip: every frame the same picture
    outs = [aug(clip) for _ in range(6)]
    for out in outs:
        assert out.shape == (3, 8, 56, 56)
        for t in range(1, 8):
            assert torch.equal(out[:, t], out[:, 0])  # same crop, flip and colour for every frame
    assert any(not torch.equal(outs[0], o) for o in outs[1:])  # but different clips get different parameters
    # a horizontal gradient stays a gradient in the same direction on every frame
    ramp = torch.arange(64, dtype=torch.uint8).mul(4).expand(8, 3, 64, 64).clone()
    for _ in range(5):
        out = aug(ramp)
        slope = torch.sign(out[0, :, 28, -1] - out[0, :, 28, 0])
        assert (slope == slope[0]).all()


def test_eval_transform_is_a_centre_crop(lite_data_cfg):
    aug = VideoTransform(lite_data_cfg, train=False)
    clip = torch.from_numpy(_frames(8, seed=2)).permute(0, 3, 1, 2)
    out = aug(clip)
    torch.testing.assert_close(out, clip[:, :, 4:60, 4:60].permute(1, 0, 2, 3).float() / 255)
    big = torch.nn.functional.interpolate(clip.float(), size=(128, 96)).to(torch.uint8)
    assert aug(big).shape == (3, 8, 56, 56)


def test_train_clip_from_the_dataset_has_consistent_frames(tmp_path, lite_data_cfg):
    still = _frames(1, value=40)
    still[0, 8:40, 10:30] = (200, 30, 30)
    still[0, 30:60, 36:56] = (30, 200, 90)
    # A still picture, losslessly coded (crf 0): every decoded frame is the same, whatever the codec does at
    # keyframes, so any difference between a clip's frames comes from the augmentation alone.
    write_mp4(tmp_path / "still.mp4", still.repeat(40, 0), _tone(4.0), crf=0)
    ds = ClipDataset(tmp_path, "all", lite_data_cfg, train=True, cache_dir=tmp_path / "c")
    clips = [ds[0]["video"] for _ in range(4)]
    for v in clips:  # one crop, flip and colour jitter for the whole clip
        assert torch.equal(v, v[:, :1].expand_as(v))
    assert max((clips[0] - c).abs().max() for c in clips[1:]) > 0.2  # while clips differ from each other


# --------------------------------------------------------------------------------------------- user folders
def test_folder_without_metadata_or_captions(tmp_path, lite_data_cfg):
    for i in range(3):
        write_mp4(tmp_path / f"clip{i}.mp4", _frames(45, seed=i), _tone(4.5))
    ds = ClipDataset(tmp_path, "all", lite_data_cfg, cache_dir=tmp_path / ".c")
    assert ds.word_vectors is None and len(ds.videos) == 3
    assert len(ds) == 3 * 2  # 4.5 s tiled with 1.6 s windows
    item = ds[0]
    assert not item["has_text"] and item["has_audio"] and item["action_label"] == -1 and item["sound_label"] == -1
    assert (ds.labels["image"] == -1).all()
    train = ClipDataset(tmp_path, "train", lite_data_cfg, cache_dir=tmp_path / ".c")
    val = ClipDataset(tmp_path, "val", lite_data_cfg, cache_dir=tmp_path / ".c")
    test = ClipDataset(tmp_path, "test", lite_data_cfg, cache_dir=tmp_path / ".c")
    assert len(train) + len(val) + len(test) == len(ds)  # a fixed checksum split when there is no metadata


def test_audio_only_file(tmp_path, lite_data_cfg):
    import av

    with av.open(str(tmp_path / "birdsong.wav"), "w") as out:
        s = out.add_stream("pcm_s16le", rate=SR, layout="mono")
        tone = (_tone(2.0) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        frame.sample_rate = SR
        out.mux(s.encode(frame))
        out.mux(s.encode(None))
    ds = ClipDataset(tmp_path, "all", lite_data_cfg, cache_dir=tmp_path / ".c")
    item = ds[0]
    assert item["has_audio"] and not item["has_video"] and not item["video"].any()
    assert item["audio"].max() > np.log(LOG_OFFSET) + 5


# --------------------------------------------------------------------------------------------- bad input
def test_corrupt_mp4(samples_copy, lite_data_cfg, caplog):
    bad = samples_copy / "videos" / "sound_000.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not really a video" * 10)
    with pytest.raises(BadClipError, match="sound_000.mp4"):
        ClipDataset(samples_copy, "all", lite_data_cfg)
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(samples_copy, "all", lite_data_cfg, skip_bad=True)
    assert "sound_000.mp4" in caplog.text
    assert set(ds.videos) == {"narrated_000", "narrated_001", "sound_001"}  # the others are all there
    assert all(ds[i]["video_id"] != "sound_000" for i in range(len(ds)))


def test_truncated_mp4(samples_copy, lite_data_cfg, caplog):
    """Half of the file is gone while its index still lists every packet: the clips the remaining data covers are
    served exactly as from the intact file; the others are refused, naming the stream and where its data ends."""
    path = samples_copy / "videos" / "narrated_001.mp4"
    intact = ClipDataset(samples_copy, "all", lite_data_cfg, cache_dir=samples_copy / ".c0")
    intact.warm_cache()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the index is at the front: it still opens
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(samples_copy, "all", lite_data_cfg, cache_dir=samples_copy / ".c1")
    assert "narrated_001.mp4: truncated" in caplog.text
    cuts = ds.videos["narrated_001"].truncated
    ends = min(cut[0] for cut in cuts.values())  # where the first stream's data ends
    video_ends = cuts["video"][0]  # past the audio's end a clip keeps its picture (has_audio=False); past this, nothing
    assert 0 < ends <= video_ends < 0.75 * ds.videos["narrated_001"].duration
    mine = [i for i, w in enumerate(ds.windows) if w.video_id == "narrated_001"]
    good = [i for i in mine if ds.windows[i].start + ds.clip_seconds <= ends]
    bad = [i for i in mine if ds.windows[i].start + ds.clip_seconds > video_ends + 0.5]
    assert good and bad and len(ds) == len(intact)
    fresh = ClipDataset(samples_copy, "all", lite_data_cfg, cache=False)
    for i in good:
        assert torch.equal(ds[i]["video"], intact[i]["video"]) and torch.equal(ds[i]["audio"], intact[i]["audio"])
        assert torch.equal(fresh[i]["video"], intact[i]["video"])
    for d in (ds, fresh):
        with pytest.raises(BadClipError, match=r"narrated_001.mp4: truncated: the video stream ends at \d+\.\d\d s"):
            d[bad[0]]
    ds = ClipDataset(samples_copy, "all", lite_data_cfg, skip_bad=True, cache_dir=samples_copy / ".c2")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(len(ds))]
    assert "narrated_001" in caplog.text and "the video stream ends at" in caplog.text
    served = {it["index"] for it in items}
    assert set(good) <= served and not served & set(bad)  # only the clips past the end are skipped
    assert {it["video_id"] for it in items} == {"narrated_000", "narrated_001", "sound_000", "sound_001"}


def test_video_without_audio_stream(tmp_path, lite_data_cfg):
    write_mp4(tmp_path / "mute.mp4", _frames(30, seed=4), None)
    ds = ClipDataset(tmp_path, "all", lite_data_cfg, cache_dir=tmp_path / ".c")
    item = ds[0]
    assert not item["has_audio"] and item["has_video"]
    assert item["audio"].shape == (1, num_audio_frames(lite_data_cfg), 80) and not item["audio"].any()
    assert item["video"].std() > 0.1


def test_clip_shorter_than_the_window_holds_the_last_frame(tmp_path, lite_data_cfg):
    frames = np.stack([_frames(1, value=v)[0] for v in (50, 100, 150)])  # 0.3 s at 10 fps
    write_mp4(tmp_path / "short.mp4", frames, _tone(0.3))
    ds = ClipDataset(tmp_path, "all", lite_data_cfg, cache_dir=tmp_path / ".c")
    assert len(ds) == 1
    item = ds[0]
    assert item["start"] == 0 and item["video"].shape == (3, 8, 56, 56)
    levels = item["video"].mean(dim=(0, 2, 3)) * 255  # at 5 fps: frames 0, 2, then the last one held
    assert levels[0] == pytest.approx(50, abs=3) and levels[1] == pytest.approx(150, abs=3)
    assert torch.allclose(levels[1:], levels[-1].expand(7))
    energy = item["audio"][0].max(dim=1).values
    silent_after = int(0.3 * 16000 / 256) + 2
    assert (energy[silent_after + 1 :] == np.float32(np.log(LOG_OFFSET))).all()  # padded with silence
    assert energy[: silent_after - 3].min() > np.log(LOG_OFFSET) + 5


def test_malformed_caption_json(samples_copy, lite_data_cfg, caplog):
    (samples_copy / "captions.json").write_text('{"narrated_000": {"start": [0.0], "end": [1.0], "text": ["hi"]')
    with pytest.raises(BadClipError, match=r"captions.json: malformed caption JSON .*line 1"):
        ClipDataset(samples_copy, "all", lite_data_cfg)
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(samples_copy, "all", lite_data_cfg, skip_bad=True, cache_dir=samples_copy / ".c")
    assert "captions.json" in caplog.text
    assert len(ds) > 0 and not any(ds[i]["has_text"] for i in range(len(ds)))


def test_caption_lists_of_different_lengths(samples_copy, lite_data_cfg, caplog):
    caps = json.loads((samples_copy / "captions.json").read_text())
    caps["narrated_000"]["end"] = caps["narrated_000"]["end"][:-1]
    (samples_copy / "captions.json").write_text(json.dumps(caps))
    with pytest.raises(BadClipError, match=r"captions.json: captions of 'narrated_000'.*different lengths"):
        ClipDataset(samples_copy, "all", lite_data_cfg)
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(samples_copy, "all", lite_data_cfg, skip_bad=True, cache_dir=samples_copy / ".c")
    assert "narrated_000" in caplog.text
    has_text = {}
    for i, w in enumerate(ds.windows):
        has_text.setdefault(w.video_id, set()).add(bool(ds[i]["has_text"]))
    assert has_text["narrated_000"] == {False} and True in has_text["narrated_001"]


def test_video_with_no_captions(samples_copy, lite_data_cfg):
    caps = json.loads((samples_copy / "captions.json").read_text())
    del caps["narrated_001"]
    (samples_copy / "captions.json").write_text(json.dumps(caps))
    ds = ClipDataset(samples_copy, "all", lite_data_cfg, cache_dir=samples_copy / ".c")
    for i, w in enumerate(ds.windows):
        item = ds[i]
        if w.video_id == "narrated_001":
            assert not item["has_text"] and not item["text_valid"].any() and not item["text_ids"].any()
        elif w.video_id == "narrated_000":
            assert item["has_text"]


def test_missing_word_vector_file(samples_copy, lite_data_cfg):
    (samples_copy / "word_vectors.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"word_vectors\.bin.*make-samples"):
        ClipDataset(samples_copy, "all", lite_data_cfg)
    with pytest.raises(FileNotFoundError, match="elsewhere.bin"):
        ClipDataset(samples_copy, "all", lite_data_cfg, word_vectors=samples_copy / "elsewhere.bin")
    # vectors given as an object: no file needed
    wv = WordVectors.from_texts(["the red box slides across", "a ball spins"], seed=0, dim=8, epochs=1)
    ds = ClipDataset(samples_copy, "all", lite_data_cfg, word_vectors=wv, cache_dir=samples_copy / ".c")
    assert ds.word_vectors is wv


def test_missing_folder_and_metadata_without_file(tmp_path, samples_copy, lite_data_cfg, caplog):
    with pytest.raises(FileNotFoundError, match="make-samples"):
        ClipDataset(tmp_path / "nothing", "all", lite_data_cfg)
    (samples_copy / "videos" / "sound_001.mp4").unlink()
    with pytest.raises(BadClipError, match="sound_001"):
        ClipDataset(samples_copy, "all", lite_data_cfg)
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(samples_copy, "all", lite_data_cfg, skip_bad=True, cache_dir=samples_copy / ".c")
    assert "sound_001" not in ds.videos and len(ds.videos) == 3


def test_rewritten_file_replaces_its_stale_cache_entries(samples_copy, lite_data_cfg, tmp_path):
    """Regenerating a video must not leave its old decoded copy behind; other settings' entries stay."""
    import dataclasses
    import os

    cache = tmp_path / "cache"
    other_cfg = dataclasses.replace(lite_data_cfg, resize_to=36, crop_size=32)
    ds = ClipDataset(samples_copy, "all", lite_data_cfg, cache_dir=cache)
    other = ClipDataset(samples_copy, "all", other_cfg, cache_dir=cache)
    ds.warm_cache()
    other.warm_cache()
    rec = next(iter(ds.videos.values()))

    def entries(stem):
        return sorted(p.name for p in cache.glob(f"{stem}-*"))

    before = entries(rec.path.stem)
    assert len([n for n in before if n.endswith(".json")]) == 2  # one per setting
    st = rec.path.stat()
    os.utime(rec.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file is "rewritten"
    again = ClipDataset(samples_copy, "all", lite_data_cfg, cache_dir=cache)
    again.warm_cache()
    after = entries(rec.path.stem)
    jsons = [n for n in after if n.endswith(".json")]
    assert len(jsons) == 1 and jsons[0] not in before  # the new version only: both old entries are gone
    assert len(after) == len(before) // 2
    # entries of other videos were not touched
    other_rec = list(ds.videos.values())[1]
    assert len([n for n in entries(other_rec.path.stem) if n.endswith(".json")]) == 2


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    """MMV_LITE_CACHE_DIR moves every folder's decode cache out of the folder (one sub-folder per video folder)."""
    from mmv_lite.data.decode_cache import CACHE_ENV, default_cache_dir

    a, b = tmp_path / "a" / "videos", tmp_path / "b" / "videos"
    a.mkdir(parents=True), b.mkdir(parents=True)
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert default_cache_dir(a) == a / ".cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "caches"))
    ca, cb = default_cache_dir(a), default_cache_dir(b)
    assert ca.parent == cb.parent == tmp_path / "caches" and ca != cb and ca.name.startswith("videos-")


def test_a_dataset_and_its_videos_folder_share_one_decode_cache(tiny_samples, lite_data_cfg, tmp_path, monkeypatch):
    """ClipDataset("ROOT") and a search of "ROOT/videos" (mmv_lite.own_videos) read the same decoded clips: the
    second decodes nothing."""
    from mmv_lite.data.decode_cache import CACHE_ENV, default_cache_dir

    root = shutil.copytree(tiny_samples, tmp_path / "samples", ignore=shutil.ignore_patterns(".cache"))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert default_cache_dir(root) == default_cache_dir(root / "videos") == root / "videos" / ".cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "caches"))
    assert default_cache_dir(root) == default_cache_dir(root / "videos")
    ClipDataset(root, "all", lite_data_cfg).warm_cache()
    entries = sorted(p.name for p in default_cache_dir(root).iterdir())
    videos = ClipDataset(root / "videos", "all", lite_data_cfg, annotations=False)
    monkeypatch.setattr("mmv_lite.data.decode_cache.decode", lambda *a, **k: pytest.fail("decoded again"))
    assert (
        videos.warm_cache() == len(videos.videos)
        and sorted(p.name for p in default_cache_dir(root).iterdir()) == entries
    )
