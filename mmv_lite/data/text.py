"""Narration text: tokenizer and frozen word vectors.

The paper's text pipeline: lower-case, strip punctuation, remove stop words, keep at most 16 words, look up
frozen 300-d word2vec vectors. The text tower (``mmv_lite.models.text``) learns only the layers on top.

    >>> wv = WordVectors.load("data_samples/word_vectors.bin")
    >>> ids, mask = wv.encode(["um so the red box slides across"], max_words=16)
    >>> ids.shape, mask.shape                       # (N, L) int64, (N, L) bool
    (torch.Size([1, 16]), torch.Size([1, 16]))

Word vectors come either from a real word2vec file (e.g. GoogleNews-vectors-negative300.bin, read with
``WordVectors.load(path, limit=...)``) or are trained with gensim on narration text (``WordVectors.from_texts``);
the shipped ``data_samples/word_vectors.bin`` was made that way by ``python -m mmv_lite make-samples``.
Files are always in word2vec's own binary/text format (never pickles).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_path

PAD = "<pad>"

# English stop words removed before the word-vector lookup, as in MIL-NCE/MMV. Kept in ONE place.
# Deliberately NOT stop words: direction and motion words ("up", "down", "around", "across", "over", "off", "out"),
# which carry meaning in narrations about movement.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a about after again against all am an and any are as at be because been before being below between both but by
    can could did do does doing dont during each few for from further had has have having he her here hers herself him
    himself his how i if in into is it its itself just lets me more most my myself no nor not now of on once only or
    other our ours ourselves own same she should so some such than that thats the their theirs them themselves then
    there theres these they this those through to too until very was we were what when where which while who whom why
    will with would you your yours yourself yourselves im ive youre youll weve well
    """.split()
)

_WORD = re.compile(r"[a-z0-9]+")


def tokenize_words(text: str) -> list[str]:
    """Lower-case ``text``, strip punctuation and drop stop words.

    Apostrophes are removed before splitting so "let's" becomes "lets" (a stop word), not "let" + "s".

    >>> tokenize_words("OK, so: the Red box -- it's sliding across!")
    ['ok', 'red', 'box', 'sliding', 'across']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize_words expects a str, got {type(text).__name__}")
    words = _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))
    return [w for w in words if w not in STOP_WORDS]


_HOW_TO_GET = (
    "make the sample word vectors with `python -m mmv_lite make-samples --out DIR` (writes DIR/word_vectors.bin), "
    "train your own with `WordVectors.from_texts(texts, seed=0).save(path)`, "
    "or pass the path of a real word2vec file such as GoogleNews-vectors-negative300.bin"
)


class WordVectors:
    """A frozen vocabulary with one vector per word.

    Attributes:
        vocab: ``list[str]`` of size V; index 0 is ``"<pad>"``.
        vectors: ``(V, dim)`` float32 array; row 0 (padding) is zeros.
        index: ``dict[str, int]`` word -> row.
    """

    def __init__(self, vocab: Sequence[str], vectors: np.ndarray):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(vocab):
            raise ValueError(f"vectors must be (len(vocab)={len(vocab)}, dim); got {vectors.shape}")
        if not vocab or vocab[0] != PAD:
            raise ValueError(f"vocab[0] must be {PAD!r} (the padding row)")
        if np.any(vectors[0] != 0):
            raise ValueError("row 0 of the vectors (padding) must be zeros")
        self.vocab: list[str] = list(vocab)
        self.vectors: np.ndarray = vectors
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("vocab contains duplicate words")

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"WordVectors(words={len(self.vocab) - 1}, dim={self.dim})"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(word_vectors)`` is the ``(V, dim)`` matrix: a WordVectors goes where a matrix is expected."""
        return self.vectors if dtype is None else self.vectors.astype(dtype)

    def as_tensor(self) -> torch.Tensor:
        """The ``(V, dim)`` float32 matrix, e.g. for ``nn.Embedding.from_pretrained(..., freeze=True)``."""
        return torch.from_numpy(self.vectors)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def token_ids(self, text: str, max_words: int | None = None) -> list[int]:
        """Vocabulary ids of ``text``'s tokens: out-of-vocabulary words dropped, then the first ``max_words`` kept."""
        ids = [self.index[w] for w in tokenize_words(text) if w in self.index]
        return ids if max_words is None else ids[:max_words]

    def encode(self, texts: Sequence[str], max_words: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize and look up a list of narrations.

        Returns:
            ids: ``(N, max_words)`` int64; 0 = padding.
            mask: ``(N, max_words)`` bool; True where a real word sits.
        """
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings, not a single string")
        ids = np.zeros((len(texts), max_words), dtype=np.int64)  # NumPy first: one torch call, not one per row
        for r, text in enumerate(texts):
            row = self.token_ids(text, max_words)
            ids[r, : len(row)] = row
        return torch.from_numpy(ids), torch.from_numpy(ids != 0)

    # ----------------------------------------------------------------------------------------- files
    @classmethod
    def load(
        cls, path: str | os.PathLike, limit: int | None = None, binary: bool | None = None, lowercase: bool = True
    ) -> WordVectors:
        """Read a word2vec file (binary or text format) with gensim.

        Args:
            path: e.g. ``data_samples/word_vectors.bin`` or ``GoogleNews-vectors-negative300.bin``.
            limit: read only the first ``limit`` (most frequent) words; GoogleNews has 3M.
            binary: file format; by default binary unless the name ends in ``.txt``, ``.vec`` or ``.txt.gz``.
            lowercase: map every word to lower case (our tokenizer lower-cases); the first, i.e. most frequent,
                spelling of each lower-cased word wins.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"word-vector file {str(path)!r} does not exist; {_HOW_TO_GET}")
        if binary is None:
            binary = not str(path).endswith((".txt", ".vec", ".txt.gz", ".vec.gz"))
        from gensim.models import KeyedVectors  # gensim is slow to import; keep it out of `import mmv_lite.data`

        try:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=limit)
        except Exception as e:  # gensim raises ValueError/UnicodeDecodeError/EOFError on a bad file
            fmt = "binary" if binary else "text"
            raise ValueError(f"{str(path)!r} is not a readable word2vec {fmt} file ({type(e).__name__}: {e})") from e
        return cls._from_keyed(kv.index_to_key, kv.vectors, lowercase=lowercase)

    @classmethod
    def _from_keyed(cls, words: Iterable[str], vectors: np.ndarray, lowercase: bool) -> WordVectors:
        vocab, rows = [PAD], [np.zeros(vectors.shape[1], np.float32)]
        seen = {PAD}
        for w, v in zip(words, vectors):
            key = w.lower() if lowercase else w
            if key in seen:
                continue
            seen.add(key)
            vocab.append(key)
            rows.append(v)
        return cls(vocab, np.stack(rows).astype(np.float32))

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], seed: int = 0, dim: int = 300, epochs: int = 20, window: int = 5, min_count: int = 1
    ) -> WordVectors:
        """Train skip-gram word2vec (gensim) on narration texts, deterministically.

        Determinism: one worker thread and a fixed seed give the same vectors on every run
        (gensim seeds its initial vectors from ``seed`` with NumPy, independent of Python's hash seed).
        Words are ordered by frequency, most frequent first, as in a word2vec file.
        """
        from gensim.models import Word2Vec  # slow to import (see load)

        sentences = [s for s in (tokenize_words(t) for t in texts) if s]
        if not sentences:
            raise ValueError("from_texts got no words to train on (all texts empty or only stop words)")
        model = Word2Vec(
            sentences=sentences,
            vector_size=dim,
            window=window,
            min_count=min_count,
            sg=1,
            negative=5,
            workers=1,
            seed=seed,
            epochs=epochs,
        )
        return cls._from_keyed(model.wv.index_to_key, model.wv.vectors, lowercase=False)

    def save(self, path: str | os.PathLike, binary: bool = True) -> None:
        """Write in word2vec format (binary by default), readable by gensim and by :meth:`load`. No padding row."""
        from gensim.models import KeyedVectors  # slow to import (see load)

        kv = KeyedVectors(vector_size=self.dim)
        kv.add_vectors(self.vocab[1:], self.vectors[1:])
        with atomic_path(path) as tmp:
            kv.save_word2vec_format(str(tmp), binary=binary)
