"""``python -m mmv_lite embed`` and ``search`` on folders of ordinary videos (mmv_lite.own_videos), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from media_files import grey_frames, tone, write_media

from mmv_lite.__main__ import main
from mmv_lite.data.media import probe
from mmv_lite.data.text import WordVectors

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "data_samples" / "mmv_lite_fac.pt"
pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not CHECKPOINT.is_file(), reason="needs the shipped data_samples/mmv_lite_fac.pt"),
]


def _scene(n: int, seed: int, size=(48, 64)) -> np.ndarray:
    """``(n, H, W, 3)`` uint8: a bright square moving over a coloured background."""
    rng = np.random.default_rng(seed)
    frames = np.empty((n, *size, 3), np.uint8)
    frames[:] = rng.integers(30, 200, 3, dtype=np.uint8)
    for k in range(n):
        x = (4 * k) % (size[1] - 12)
        frames[k, 10:22, x : x + 12] = (240, 240, 40)
    return frames


@pytest.fixture(scope="module")
def own_folder(tmp_path_factory) -> Path:
    """Mixed formats: H.264/AAC mp4, VP9/Opus webm (odd size), variable-frame-rate mkv, MPEG-4/MP2 avi, an mp4
    without sound, and a file that is not a video at all."""
    root = tmp_path_factory.mktemp("own") / "clips"
    write_media(root / "street.mp4", _scene(40, 0), fps=10, audio=tone(4.0, hz=440))
    write_media(
        root / "web.webm",
        _scene(21, 1, (45, 63)),
        fps=6,
        audio=tone(3.5, hz=900, rate=48_000),
        sample_rate=48_000,
        vcodec="libvpx-vp9",
        acodec="libopus",
    )
    times = [0.0, 0.1, 0.15, 1.2, 1.25, 2.9, 3.0, 3.033, 3.9]
    write_media(root / "phone.mkv", grey_frames(len(times)), times, audio=tone(4.2, hz=600))
    write_media(root / "old.avi", _scene(30, 2), fps=10, audio=tone(3.0), vcodec="mpeg4", acodec="mp2")
    write_media(root / "mute.mp4", _scene(35, 3), fps=10)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_embed_a_mixed_folder(own_folder, tmp_path, capsys):
    out = tmp_path / "clips.npz"
    code, stdout, _ = _run(
        capsys, "embed", "--checkpoint", str(CHECKPOINT), "--videos", str(own_folder), "--out", str(out),
        "--cache", str(tmp_path / "cache"), "--no-progress",
    )  # fmt: skip
    assert code == 0, stdout
    assert "skipped 1" in stdout and "broken.mp4" in stdout and "cannot open" in stdout
    z = np.load(out)
    ids = z["video_id"].tolist()
    assert set(ids) == {"street", "web", "phone", "old", "mute"}
    for vid, name in (("street", "street.mp4"), ("web", "web.webm"), ("phone", "phone.mkv"), ("mute", "mute.mp4")):
        rows = [i for i, v in enumerate(ids) if v == vid]
        duration = probe(own_folder / name).duration
        assert len(rows) == int(duration // 1.6)  # every clip window of the video
        assert np.allclose(z["end"][rows] - z["start"][rows], 1.6) and z["end"][rows].max() <= duration + 1e-6
        assert all(Path(p).name == name for p in z["path"][rows])
    assert not z["has_audio"][[v == "mute" for v in ids]].any() and z["has_audio"][[v != "mute" for v in ids]].all()
    for key in ("f_v", "f_a", "z_v_va", "z_a_va", "z_v_vat", "z_a_vat"):
        assert z[key].shape[0] == len(ids) and np.isfinite(z[key]).all(), key
    assert z["z_v_va"].std(0).mean() > 0  # the windows are told apart
    info = json.loads(str(z["info"]))
    assert info["data"]["fps"] == 5.0 and "broken" in info["files"]


def test_search_by_words_and_by_sound(own_folder, tmp_path, capsys):
    emb = tmp_path / "emb.npz"
    common = ["--checkpoint", str(CHECKPOINT), "--videos", str(own_folder), "--embeddings", str(emb)]
    common += ["--cache", str(tmp_path / "cache"), "--no-progress"]
    code, stdout, _ = _run(capsys, "search", *common, "-k", "4", "a yellow square slides across")
    assert code == 0 and f"wrote {emb}" in stdout
    rows = [line.split() for line in stdout.splitlines() if line.strip()[:1].isdigit() and "(" in line]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True) and {r[3] for r in rows} <= {"street", "web", "phone", "old", "mute"}

    code, stdout, _ = _run(capsys, "search", *common, "yellow zorglub square")
    assert code == 0 and f"reusing {emb}" in stdout  # nothing changed: no second embedding
    assert "not in the checkpoint's vocabulary" in stdout and "zorglub" in stdout

    code, stdout, _ = _run(capsys, "search", *common, "-k", "3", "--sound", str(own_folder / "street.mp4"))
    assert code == 0 and len([line for line in stdout.splitlines() if "(" in line and line.strip()[0].isdigit()]) == 3

    write_media(own_folder / "late.mp4", _scene(20, 5), fps=10, audio=tone(2.0))  # the folder changes
    try:
        code, stdout, _ = _run(capsys, "search", *common, "-k", "50", "yellow square")
        assert code == 0 and f"wrote {emb}" in stdout and " late " in stdout
    finally:
        (own_folder / "late.mp4").unlink()


def test_user_errors_are_one_line(own_folder, tmp_path, capsys):
    base = ["--checkpoint", str(CHECKPOINT), "--cache", str(tmp_path / "cache"), "--no-progress"]
    emb = ["--embeddings", str(tmp_path / "e.npz")]
    cases = [
        (["search", *base, "--videos", str(own_folder), *emb, "zorglub blarf"], "zorglub, blarf"),
        (["search", *base, "--videos", str(tmp_path / "nowhere"), *emb, "red"], "nowhere"),
        (["embed", *base, "--videos", str(own_folder), "--out", str(tmp_path / "x.csv")], ".npz"),
        (["search", "--checkpoint", str(tmp_path / "none.pt"), "--videos", str(own_folder), "red"], "none.pt"),
        (["search", *base, "--videos", str(own_folder), *emb], "--sound"),
    ]
    for argv, named in cases:
        code, stdout, stderr = _run(capsys, *argv)
        assert code == 2, argv
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and named in errors[0] and "Traceback" not in stderr, stderr
    assert not (tmp_path / "x.csv").exists()


def test_search_checks_the_query_before_embedding_anything(own_folder, tmp_path, capsys):
    """An empty query, stop words only, or only unknown words: one line at once, and no folder is decoded or embedded
    (no embedding file, no cache)."""
    emb, cache = tmp_path / "e.npz", tmp_path / "cache"
    base = ["--checkpoint", str(CHECKPOINT), "--videos", str(own_folder), "--embeddings", str(emb)]
    base += ["--cache", str(cache), "--no-progress"]
    for query, named in (("", "no word to search with"), ("the and of", "no word"), ("zorglub blarf", "zorglub")):
        code, _, stderr = _run(capsys, "search", *base, query)
        assert code == 2 and named in stderr and len(stderr.splitlines()) == 1, (query, stderr)
        assert not emb.exists() and not cache.exists(), query
    code, _, stderr = _run(capsys, "search", *base, "--sound", str(tmp_path / "none.wav"))
    assert code == 2 and "none.wav" in stderr and not emb.exists() and not cache.exists()
    code, _, stderr = _run(capsys, "search", *base, "--embeddings", str(tmp_path / "e.csv"), "square")
    assert code == 2 and ".npz" in stderr and not cache.exists() and not (tmp_path / "e.csv").exists()


def test_search_never_replaces_an_embedding_file_of_other_inputs(tmp_path, capsys):
    """--embeddings F made from another folder (or not an embedding file at all) stays byte for byte: search refuses
    to write over it; the file of the same folder is reused, and refreshed when the folder's files change."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_media(a / "street.mp4", _scene(18, 0), fps=10, audio=tone(1.8, hz=440))
    write_media(b / "park.mp4", _scene(18, 4), fps=10, audio=tone(1.8, hz=700))
    emb, cache = tmp_path / "a.npz", ["--cache", str(tmp_path / "cache"), "--no-progress"]
    assert _run(capsys, "embed", "--checkpoint", str(CHECKPOINT), "--videos", str(a), "--out", str(emb), *cache)[0] == 0
    before = emb.read_bytes()
    mine = tmp_path / "mine.npz"
    np.savez(mine, x=np.arange(3))
    for target, named in ((emb, "another folder"), (mine, "not an embedding file")):
        kept = target.read_bytes()
        argv = ["--checkpoint", str(CHECKPOINT), "--videos", str(b), "--embeddings", str(target), *cache, "square"]
        code, stdout, stderr = _run(capsys, "search", *argv)
        assert code == 2 and named in stderr and str(target) in stderr and "not replaced" in stderr, stderr
        assert target.read_bytes() == kept and "wrote" not in stdout
    argv = ["--checkpoint", str(CHECKPOINT), "--videos", str(a), "--embeddings", str(emb), *cache, "square"]
    code, stdout, _ = _run(capsys, "search", *argv)
    assert code == 0 and f"reusing {emb}" in stdout and emb.read_bytes() == before


def test_search_the_sample_videos_for_their_narrations(data_samples, tmp_path, capsys):
    """The shipped checkpoint finds a narration's own video among the top 5 of the 943 windows of data_samples/videos
    far more often than chance (it was trained on the train split's narrations; held-out ones are near chance, see
    data_samples/CHECKPOINT.md)."""
    from mmv_lite.own_videos import load_embedder, load_embeddings, search_text

    emb = tmp_path / "samples.npz"
    videos = data_samples / "videos"
    common = ["--checkpoint", str(CHECKPOINT), "--videos", str(videos), "--embeddings", str(emb)]
    common += ["--no-progress"]  # the default decode cache: a temp folder under the test suite (tests/conftest.py)
    captions = json.loads((data_samples / "captions.json").read_text())
    split = {v: m["split"] for v, m in json.loads((data_samples / "metadata.json").read_text())["videos"].items()}
    train = sorted(v for v in captions if split[v] == "train")
    code, stdout, _ = _run(capsys, "search", *common, "-k", "5", captions[train[0]]["text"][0])
    assert code == 0 and len([line for line in stdout.splitlines() if "narrated_" in line or "sound_" in line]) == 5

    table, _ = load_embeddings(emb)
    embedder = load_embedder(CHECKPOINT)
    ids = table["video_id"]
    found, chance = [], []
    for vid in train:
        n_own = ids.count(vid)  # chance that 5 windows drawn at random include one of the video's own
        chance.append(1 - np.prod([(len(ids) - n_own - j) / (len(ids) - j) for j in range(5)]))
        for text in captions[vid]["text"]:
            found.append(any(h.video_id == vid for h in search_text(table, embedder, text, k=5)))
    rate = float(np.mean(found))
    assert any(found) and rate > 2.5 * float(np.mean(chance)), (rate, float(np.mean(chance)))


def test_released_weights_embed_and_search(tmp_path, capsys):
    """The released S3D-G network (release-shaped weights, random values): 32 frames at 10 fps, 200 px, 48 kHz."""
    from test_official import random_tree, write_release

    release = write_release(tmp_path / "mmv_s3d.pkl", *random_tree("s3d"))
    words = ["<pad>", "dog", "runs", "grass", "ball", "red"]
    vectors = np.random.default_rng(0).standard_normal((len(words), 300)).astype(np.float32)
    vectors[0] = 0  # the padding row
    WordVectors(words, vectors).save(tmp_path / "words.bin")
    folder = tmp_path / "mine"
    write_media(folder / "dog.mp4", _scene(36, 7), fps=10, audio=tone(3.6, rate=48_000), sample_rate=48_000)
    common = ["--checkpoint", str(release), "--videos", str(folder), "--cache", str(tmp_path / "c"), "--no-progress"]
    code, stdout, _ = _run(capsys, "embed", *common, "--out", str(tmp_path / "mine.npz"))
    assert code == 0, stdout
    z = np.load(tmp_path / "mine.npz")
    assert z["video_id"].tolist() == ["dog"] and z["end"][0] - z["start"][0] == pytest.approx(3.2)
    assert z["f_v"].shape == (1, 1024) and np.isfinite(z["z_v_vat"]).all()
    code, _, stderr = _run(capsys, "search", *common, "--embeddings", str(tmp_path / "mine.npz"), "red ball")
    assert code == 2 and "--word-vectors" in stderr  # the release has no vocabulary of its own
    args = [*common, "--word-vectors", str(tmp_path / "words.bin"), "--embeddings", str(tmp_path / "mine.npz")]
    code, stdout, _ = _run(capsys, "search", *args, "red ball flies")
    assert code == 0 and "dog" in stdout and "flies" in stdout  # ranked, and the unknown word named
