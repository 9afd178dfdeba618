"""Retrieval-demo functions: ranking, exclusions and the sample world's narration statistics."""

from pathlib import Path

import pytest
import torch

from mmv_lite import build_model, demo, get_config
from mmv_lite.data.clips import ClipDataset

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
pytestmark = pytest.mark.skipif(not (SAMPLES / "metadata.json").is_file(), reason="data_samples/ not made yet")


@pytest.fixture(scope="module")
def bank():
    """A random-weight lite FAC model over the test split: enough to check ranking mechanics (not quality)."""
    torch.manual_seed(0)
    ds = ClipDataset(SAMPLES, "test", get_config("lite").data)
    model = build_model("lite", word_vectors=ds.word_vectors.as_tensor()).eval()
    return demo.ClipBank.build(model, ds), model


def test_search_text_ranks_by_cosine(bank):
    b, model = bank
    hits = demo.search_text(b, model, "a small red star spins", k=5)
    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # The best hit's score is the cosine of the query with that clip's video embedding.
    z = demo.encode_text(model, b.dataset.word_vectors, "a small red star spins")["z_t_vat"]
    cos = torch.nn.functional.cosine_similarity(z, b.emb["z_v_vat"][hits[0].index : hits[0].index + 1]).item()
    assert hits[0].score == pytest.approx(cos, abs=1e-5)
    assert hits[0].video_id == b.emb["video_id"][hits[0].index]
    assert set(hits[0].labels) <= {"action", "sound", "image"}


def test_unknown_words_give_a_clear_error(bank):
    b, model = bank
    with pytest.raises(ValueError, match="vocabulary"):
        demo.search_text(b, model, "the of and zzzqqq")


def test_search_sound_leaves_the_query_out(bank):
    b, _ = bank
    i = int(torch.nonzero(b.emb["has_audio"])[0])
    hits = demo.search_sound(b, i, k=len(b))
    assert i not in [h.index for h in hits] and len(hits) == len(b) - 1


def test_sound_to_text_ranks_distinct_narrations_of_the_bank(bank):
    b, _ = bank
    i = int(torch.nonzero(b.emb["has_audio"])[0])
    ranked = demo.sound_to_text(b, i, k=4)
    texts = [t for t, _ in ranked]
    assert len(texts) == len(set(texts)) == 4
    all_texts = {t for j in range(len(b)) for t in b.dataset.candidate_texts(j)}
    assert set(texts) <= all_texts
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_clip_media_gives_frames_and_sound_of_the_window(bank):
    b, _ = bank
    frames, wave, sr = demo.clip_media(b.dataset, 0)
    cfg = b.dataset.cfg
    assert frames.shape[0] == cfg.num_frames and frames.shape[-1] == 3 and frames.dtype.name == "uint8"
    assert wave.shape == (round(cfg.clip_seconds * cfg.sample_rate),) and sr == cfg.sample_rate


def test_misaligned_captions():
    meta = {"segments": [{"start": 0.0, "end": 5.0}, {"start": 5.0, "end": 9.0}], "caption_segments": [0, 1, -1, 0]}
    caps = {"start": [0.5, 3.0, 5.5, 6.0], "end": [2.0, 4.5, 6.0, 8.0], "text": ["a", "b", "c", "d"]}
    # Caption 1 is said during segment 0 but describes segment 1; caption 3 the other way round; 2 is filler.
    assert demo.misaligned_captions(meta, caps) == [1, 3]
    with pytest.raises(ValueError, match="caption_segments"):
        demo.misaligned_captions({"segments": []}, caps)


def test_narration_hit_rate_grows_with_k():
    cfg = get_config("lite", **{"data.num_candidates": 4}).data
    ds = ClipDataset(SAMPLES, "val", cfg, kinds=("narrated",))
    rate = demo.narration_hit_rate(ds, demo.load_metadata(SAMPLES), ks=(1, 2, 4))
    assert 0 < rate[1] <= rate[2] <= rate[4] <= 1
    with pytest.raises(ValueError, match="num_candidates"):
        demo.narration_hit_rate(ds, demo.load_metadata(SAMPLES), ks=(1, 8))
