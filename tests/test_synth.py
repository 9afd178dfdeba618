"""The sample-world generator (mmv_lite.data.synth)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmv_lite.data import synth
from mmv_lite.data.text import WordVectors, tokenize_words


def _files(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".cache" not in p.parts
    }


def test_regeneration_with_the_same_seed_is_identical(tmp_path):
    args = ["--videos", "1", "--sound-clips", "1", "--seed", "5", "--corpus-sentences", "200"]
    assert synth.cli_main(["--out", str(tmp_path / "a"), *args]) == 0
    assert synth.cli_main(["--out", str(tmp_path / "b"), *args]) == 0
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    expected = ["captions.json", "metadata.json", "videos/narrated_000.mp4", "videos/sound_000.mp4", "word_vectors.bin"]
    assert sorted(a) == sorted(b) == expected
    for name in a:  # byte-identical: same frames, audio, captions, labels and vectors
        assert a[name] == b[name], name
    # another seed, another world
    assert not np.array_equal(synth.make_video("sound", 0, seed=5)["audio"], synth.make_video("sound", 0, 6)["audio"])


def test_rendered_frames_and_audio_are_deterministic_and_decode_back(tiny_samples):
    import av

    v1 = synth.make_video("narrated", 1, seed=0)
    v2 = synth.make_video("narrated", 1, seed=0)
    assert np.array_equal(v1["frames"], v2["frames"]) and np.array_equal(v1["audio"], v2["audio"])
    assert v1["captions"] == v2["captions"]
    n = v1["frames"].shape[0]
    assert v1["frames"].shape == (n, 64, 64, 3) and n == round(v1["duration"] * synth.FPS)
    assert v1["audio"].shape == (n * synth.SAMPLE_RATE // synth.FPS,)
    with av.open(str(tiny_samples / "videos" / "narrated_001.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p" and c.streams.audio[0].rate == 16000
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert decoded.shape == v1["frames"].shape
    assert np.abs(decoded.astype(float) - v1["frames"]).mean() < 4  # lossy, but the same pictures


def test_metadata_captions_and_labels_are_consistent(tiny_samples):
    meta = json.loads((tiny_samples / "metadata.json").read_text())
    caps = json.loads((tiny_samples / "captions.json").read_text())
    classes = meta["classes"]
    assert (
        classes["action"] == list(synth.MOTIONS)
        and len(classes["sound"]) == 12
        and classes["image"] == list(synth.KINDS)
    )
    assert (
        set(caps)
        == {v for v, e in meta["videos"].items() if e["kind"] == "narrated"}
        == {"narrated_000", "narrated_001"}
    )
    for vid, entry in meta["videos"].items():
        assert entry["split"] in ("train", "val", "test")
        segs = entry["segments"]
        assert segs[0]["start"] == 0 and segs[-1]["end"] == pytest.approx(entry["duration"])
        for s0, s1 in zip(segs, segs[1:]):
            assert s0["end"] == s1["start"]
        for s in segs:
            assert classes["action"][s["action_label"]] == s["motion"]
            assert classes["image"][s["image_label"]] == s["kind"]
            inst = synth.INSTRUMENTS[synth.KINDS.index(s["kind"])]
            assert classes["sound"][s["sound_label"]] == f"{inst} {'low' if s['size'] == 'large' else 'high'}"
        if entry["kind"] == "narrated":
            c = caps[vid]
            assert len(c["start"]) == len(c["end"]) == len(c["text"]) == len(entry["caption_segments"])
            assert all(a <= b for a, b in zip(c["start"], c["end"]))
        else:
            assert len(segs) == 1 and 4.0 <= entry["duration"] <= 6.0


def test_word_vectors_cover_the_narrations(tiny_samples):
    wv = WordVectors.load(tiny_samples / "word_vectors.bin")
    assert wv.dim == 300
    caps = json.loads((tiny_samples / "captions.json").read_text())
    words = {w for c in caps.values() for t in c["text"] for w in tokenize_words(t)}
    for kind_words in synth.KIND_WORDS.values():
        assert any(w.split()[0] in wv for w in kind_words)
    assert len(words - set(wv.vocab)) <= len(words) // 10  # val/test narrations may hold a rare unseen word


def test_narration_is_noisy_and_sometimes_misaligned():
    texts, about, own, said_colour = [], [], [], []
    for i in range(60):
        v = synth.plan_video("narrated", i, seed=3)
        caps, targets = v["captions"], v["caption_segments"]
        texts += caps["text"]
        for k, target in enumerate(targets):
            mid = (caps["start"][k] + caps["end"][k]) / 2
            seg = next(j for j, s in enumerate(v["segments"]) if s.start <= mid <= s.end)
            about.append(target)
            own.append(seg)
            if target >= 0:
                said_colour.append(v["segments"][target].colour in caps["text"][k].split())
    about, own = np.array(about), np.array(own)
    described = about >= 0
    misaligned = (about != own) & described
    assert 0.35 < misaligned.mean() < 0.55  # the world's default: about half are spoken at another moment
    assert 0.02 < (~described).mean() < 0.1  # about one in twenty is filler only
    assert 0.55 < np.mean(said_colour) < 0.9  # narrators usually name the colour (recognition errors aside)
    joined = " ".join(texts).split()
    assert any(w in joined for w in ("um", "uh", "okay", "so"))  # fillers
    errors = {e for alts in synth.ASR_ERRORS.values() for e in alts}
    assert sum(w in errors for w in joined) > 5  # speech-recognition mistakes


def test_motion_is_only_visible_across_frames():
    """Two segments that differ only in motion have the same first frame but different later frames."""
    rng = np.random.default_rng(1)
    seg = synth.draw_segment(rng, 0.0, 2.0, None)
    bg = synth.make_background("plain", rng)
    frames = {}
    for motion in ("rise", "fall", "spin"):
        seg.motion = motion
        frames[motion] = synth.render_frames(seg, bg, 10)
    assert np.array_equal(frames["rise"][0], frames["fall"][0])
    assert np.array_equal(frames["rise"][0], frames["spin"][0])
    assert not np.array_equal(frames["rise"][5], frames["fall"][5])


def test_sound_pitch_follows_size_and_timbre_follows_kind():
    rng = np.random.default_rng(0)
    seg = synth.draw_segment(rng, 0.0, 1.0, None)
    seg.motion, seg.shade, seg.kind = "slide", "dark", "circle"

    def peak_hz(s):
        x = synth.render_sound(s, 16000, np.random.default_rng(0))
        return np.argmax(np.abs(np.fft.rfft(x))) * 1.0  # 1 s of audio: bin = Hz

    seg.radius = 12.0
    seg.pitch_hz = synth.base_pitch(seg.kind, seg.radius, seg.shade)
    low = peak_hz(seg)
    seg.radius = 7.0
    seg.pitch_hz = synth.base_pitch(seg.kind, seg.radius, seg.shade)
    high = peak_hz(seg)
    assert abs(low - synth.base_pitch("circle", 12.0, "dark")) < 8 and high > 1.8 * low
    # an organ (odd harmonics) and a horn (all harmonics) at one pitch differ at the second harmonic
    spectra = {}
    for kind in ("square", "star"):
        seg.kind = kind
        x = synth.render_sound(seg, 16000, np.random.default_rng(0))
        spectra[kind] = np.abs(np.fft.rfft(x))
    f0 = int(round(seg.pitch_hz))
    assert spectra["star"][2 * f0 - 3 : 2 * f0 + 4].max() > 10 * spectra["square"][2 * f0 - 3 : 2 * f0 + 4].max()


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        synth.cli_main(["--out", str(tmp_path), "--videos", "0", "--sound-clips", "0"])
    with pytest.raises(SystemExit):
        synth.cli_main(["--out", str(tmp_path), "--videos", "1", "--size", "63"])


def test_glossary_gives_shape_words_distinct_vectors():
    # Narrations alone put every shape word in the same contexts; the glossary lists separate them.
    import numpy as np

    from mmv_lite.data.synth import KINDS, glossary_corpus, text_corpus
    from mmv_lite.data.text import WordVectors

    def mean_cosine(wv):
        idx = {w: i for i, w in enumerate(wv.vocab)}
        v = wv.vectors[[idx[k] for k in KINDS]]
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        sim = v @ v.T
        return sim[~np.eye(len(KINDS), dtype=bool)].mean()

    narrations = text_corpus(2000, seed=0)
    plain = WordVectors.from_texts(narrations, seed=0, dim=50)
    with_glossary = WordVectors.from_texts(narrations + glossary_corpus(100, seed=0), seed=0, dim=50)
    assert mean_cosine(with_glossary) < 0.7 < mean_cosine(plain)
