"""Searching clips with a model (mmv_lite.search): ranking, exclusions, media, the model's own tokenizer."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mmv_lite import build_model, get_config, search
from mmv_lite.data.clips import ClipDataset

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
pytestmark = pytest.mark.skipif(not (SAMPLES / "metadata.json").is_file(), reason="data_samples/ not made yet")


@pytest.fixture(scope="module")
def bank():
    """A random-weight lite FAC model over the test split: enough to check ranking mechanics (not quality)."""
    torch.manual_seed(0)
    ds = ClipDataset(SAMPLES, "test", get_config("lite").data)
    model = build_model("lite", word_vectors=ds.word_vectors.as_tensor()).eval()
    return search.ClipBank.build(model, ds), model


def test_search_text_ranks_by_cosine(bank):
    b, model = bank
    hits = search.search_text(b, model, "a small red star spins", k=5)
    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # The best hit's score is the cosine of the query with that clip's video embedding.
    z = search.encode_text(model, b.dataset.word_vectors, "a small red star spins")["z_t_vat"]
    cos = torch.nn.functional.cosine_similarity(z, b.emb["z_v_vat"][hits[0].index : hits[0].index + 1]).item()
    assert hits[0].score == pytest.approx(cos, abs=1e-5)
    assert hits[0].video_id == b.emb["video_id"][hits[0].index]
    assert set(hits[0].labels) <= {"action", "sound", "image"}


def test_unknown_words_give_a_clear_error(bank):
    b, model = bank
    with pytest.raises(ValueError, match="vocabulary"):
        search.search_text(b, model, "the of and zzzqqq")


def test_search_sound_leaves_the_query_out(bank):
    b, _ = bank
    i = int(torch.nonzero(b.emb["has_audio"])[0])
    hits = search.search_sound(b, i, k=len(b))
    assert i not in [h.index for h in hits] and len(hits) == len(b) - 1


def test_sound_to_text_ranks_distinct_narrations_of_the_bank(bank):
    b, _ = bank
    i = int(torch.nonzero(b.emb["has_audio"])[0])
    ranked = search.sound_to_text(b, i, k=4)
    texts = [t for t, _ in ranked]
    assert len(texts) == len(set(texts)) == 4
    all_texts = {t for j in range(len(b)) for t in b.dataset.candidate_texts(j)}
    assert set(texts) <= all_texts
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_clip_media_gives_frames_and_sound_of_the_window(bank):
    b, _ = bank
    frames, wave, sr = search.clip_media(b.dataset, 0)
    cfg = b.dataset.cfg
    assert frames.shape[0] == cfg.num_frames and frames.shape[-1] == 3 and frames.dtype.name == "uint8"
    assert wave.shape == (round(cfg.clip_seconds * cfg.sample_rate),) and sr == cfg.sample_rate


def test_search_embedding_ranks_the_bank(bank):
    b, _ = bank
    hits = search.search_embedding(b, b.emb["z_v_va"][3], key="z_v_va", k=4)
    assert hits[0].index == 3 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(ValueError, match="no 'z_x'"):
        search.search_embedding(b, b.emb["z_v_va"][3], key="z_x")


def test_model_word_vectors_is_the_models_own_tokenizer():
    torch.manual_seed(0)
    wv = torch.randn(4, 300)
    wv[0] = 0
    model = build_model("lite", word_vectors=wv, **{"model.video_width": 0.125})
    vocab = ["<pad>", "red", "star", "spins"]
    words = search.model_word_vectors(model, vocab)
    assert words.vocab == vocab and np.allclose(words.vectors, wv.numpy())
    ids, mask = words.encode(["a red star"], max_words=4)
    assert ids[0, : int(mask.sum())].tolist() == [1, 2]
    with pytest.raises(ValueError, match="4 word vectors"):
        search.model_word_vectors(model, vocab[:3])
