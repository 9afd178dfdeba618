"""Tokenizer and word vectors (mmv_lite.data.text)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmv_lite.data.text import PAD, STOP_WORDS, WordVectors, tokenize_words

CORPUS = [
    "so the red box slides across",
    "now the blue ball rises up",
    "um the green star spins around",
    "okay the yellow box falls down",
    "the purple ball bounces",
] * 40


def test_tokenize_lowercases_strips_punctuation_and_stop_words():
    assert tokenize_words("OK, so: the Red BOX -- it's sliding across!") == ["ok", "red", "box", "sliding", "across"]
    assert tokenize_words("") == []
    assert tokenize_words("the and of it") == []
    # direction words carry meaning in narrations about motion: never stop words
    for w in ("up", "down", "around", "across"):
        assert w not in STOP_WORDS
        assert tokenize_words(f"it goes {w}") == ["goes", w]


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError):
        tokenize_words(["a list"])


def test_encode_pads_truncates_and_drops_oov():
    wv = WordVectors([PAD, "red", "box", "slides"], np.vstack([np.zeros(3), np.eye(3)]))
    ids, mask = wv.encode(["The red, red box: zebra slides!", "zebra", "red box slides red box slides"], max_words=4)
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool
    assert ids.shape == mask.shape == (3, 4)
    assert ids[0].tolist() == [1, 1, 2, 3]  # "zebra" is out of vocabulary: dropped, not an <unk>
    assert ids[1].tolist() == [0, 0, 0, 0] and not mask[1].any()
    assert ids[2].tolist() == [1, 2, 3, 1]  # truncated to max_words
    assert torch.equal(mask, ids != 0)


def test_word_vectors_checks_padding_row():
    with pytest.raises(ValueError, match="pad"):
        WordVectors(["red", "box"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="zeros"):
        WordVectors([PAD, "box"], np.ones((2, 3)))


def test_from_texts_is_deterministic_and_learns_cooccurrence(tmp_path):
    a = WordVectors.from_texts(CORPUS, seed=3, dim=32, epochs=10)
    b = WordVectors.from_texts(CORPUS, seed=3, dim=32, epochs=10)
    c = WordVectors.from_texts(CORPUS, seed=4, dim=32, epochs=10)
    assert a.vocab == b.vocab and np.array_equal(a.vectors, b.vectors)
    assert not np.array_equal(a.vectors, c.vectors)
    assert a.vocab[0] == PAD and not a.vectors[0].any()
    assert a.vectors.dtype == np.float32 and a.vectors.shape == (len(a.vocab), 32)
    assert "the" not in a and "red" in a and "slides" in a
    assert np.asarray(a) is a.vectors and a.as_tensor().shape == (len(a), 32)  # usable wherever a matrix is


def test_trained_vectors_round_trip_through_word2vec_binary(tmp_path):
    wv = WordVectors.from_texts(CORPUS, seed=0, dim=300, epochs=5)
    path = tmp_path / "wv.bin"
    wv.save(path)
    back = WordVectors.load(path)
    assert back.vocab == wv.vocab
    np.testing.assert_array_equal(back.vectors, wv.vectors)
    ids, mask = back.encode(["the red box"], max_words=16)
    assert ids[0, :2].tolist() == [wv.index["red"], wv.index["box"]] and mask[0].sum() == 2


def _write_word2vec_binary(path, words, vecs):
    """A word2vec binary file written byte by byte as the original C tool does (header, then word + raw float32)."""
    with open(path, "wb") as f:
        f.write(f"{len(words)} {vecs.shape[1]}\n".encode())
        for w, v in zip(words, vecs):
            f.write(w.encode("utf-8") + b" " + v.astype("<f4").tobytes() + b"\n")


def test_load_real_word2vec_binary_with_case_and_limit(tmp_path):
    rng = np.random.default_rng(0)
    words = ["</s>", "Box", "box", "Red", "slides", "New_York", "zebra"]
    vecs = rng.standard_normal((len(words), 300)).astype(np.float32)
    path = tmp_path / "GoogleNews-mini.bin"
    _write_word2vec_binary(path, words, vecs)

    wv = WordVectors.load(path)
    # lower-cased; "Box" comes first (more frequent) so its vector wins over "box"
    assert wv.vocab == [PAD, "</s>", "box", "red", "slides", "new_york", "zebra"]
    np.testing.assert_array_equal(wv.vectors[wv.index["box"]], vecs[1])
    np.testing.assert_array_equal(wv.vectors[wv.index["red"]], vecs[3])
    ids, mask = wv.encode(["The RED box slides, unknownword"], max_words=16)
    assert ids[0, :3].tolist() == [wv.index["red"], wv.index["box"], wv.index["slides"]] and mask.sum() == 3

    small = WordVectors.load(path, limit=3)
    assert small.vocab == [PAD, "</s>", "box"]


def test_load_text_format(tmp_path):
    path = tmp_path / "vecs.txt"
    path.write_text("2 3\nred 1 0 0\nbox 0 1 0\n")
    wv = WordVectors.load(path)
    assert wv.vocab == [PAD, "red", "box"] and wv.dim == 3
    np.testing.assert_array_equal(wv.vectors[2], [0, 1, 0])


def test_missing_word_vector_file_names_path_and_remedy(tmp_path):
    missing = tmp_path / "nowhere" / "word_vectors.bin"
    with pytest.raises(FileNotFoundError) as e:
        WordVectors.load(missing)
    assert str(missing) in str(e.value) and "make-samples" in str(e.value)


def test_garbage_word_vector_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.bin"
    path.write_bytes(b"not a word2vec file at all\x00\x01")
    with pytest.raises(ValueError, match="broken.bin"):
        WordVectors.load(path)
