"""Searching a set of clips with a trained model: text -> video, audio -> video, audio -> text, any embedding.

Pure functions over a :class:`~mmv_lite.data.clips.ClipDataset` and the output of
:func:`mmv_lite.embedding.embed_dataset`; the widgets in :mod:`mmv_lite.widgets` only wire inputs to them.

    >>> bank = ClipBank.build(model, ClipDataset("data_samples", "test"))   # embeds every clip once
    >>> hits = search_text(bank, model, "a small star spins")               # ranked clips, best first
    >>> hits[0].video_id, hits[0].score, hits[0].narrations
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .data.text import WordVectors
from .embedding import embed_dataset
from .graphs import embedding_key
from .models.layers import eval_mode
from .retrieval import cosine_similarity
from .runtime import to_numpy


def model_word_vectors(model: torch.nn.Module, vocab: Sequence[str]) -> Any:
    """The tokenizer a trained model was built with: its vocabulary (``load_model``'s third value) and the frozen
    word vectors stored in its text tower, as a :class:`~mmv_lite.data.text.WordVectors`.

    Give it to ``ClipDataset(..., word_vectors=...)`` so narrations and typed queries get the ids the model knows,
    whatever ``word_vectors.bin`` currently sits in the sample folder."""
    matrix = to_numpy(model.text_backbone.word_vectors)
    if len(vocab) != len(matrix):
        raise ValueError(f"vocab has {len(vocab)} words but the model's text tower has {len(matrix)} word vectors")
    return WordVectors(list(vocab), matrix)


@dataclass
class Hit:
    """One retrieved clip: its position in the dataset, cosine score and what to show for it."""

    index: int
    score: float
    video_id: str
    start: float
    end: float
    narrations: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ClipBank:
    """A dataset and the embeddings of all its clips (from :func:`mmv_lite.embedding.embed_dataset`), for search."""

    dataset: Any
    emb: dict[str, Any]
    graph: str

    @classmethod
    def build(
        cls,
        model: torch.nn.Module,
        dataset: Any,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        progress: str | None = None,
    ):
        """Embed every clip of ``dataset`` with ``model`` (eval mode; FAC then also gives ``z_a_vat``); ``progress``
        labels a progress bar (``embed_dataset``)."""
        emb = embed_dataset(model, dataset, batch_size=batch_size, device=device, progress=progress)
        return cls(dataset=dataset, emb=emb, graph=model.cfg.model.graph)

    def __len__(self) -> int:
        return len(self.emb["video_id"])

    def hit(self, i: int, score: float) -> Hit:
        names = getattr(self.dataset, "class_names", {}) or {}
        labels = {}
        for k in ("action", "sound", "image"):
            v = int(self.emb[f"{k}_label"][i]) if f"{k}_label" in self.emb else -1
            if v >= 0 and k in names:
                labels[k] = names[k][v]
        texts = self.dataset.candidate_texts(i) if bool(self.emb.get("has_text", torch.ones(len(self)))[i]) else []
        return Hit(
            index=i,
            score=float(score),
            video_id=self.emb["video_id"][i],
            start=float(self.emb["start"][i]),
            end=float(self.emb["end"][i]),
            narrations=texts,
            labels=labels,
        )

    def key(self, m: str, other: str) -> str:
        """Embedding key of modality ``m`` when compared with ``other`` in this bank's graph, e.g. ``'z_v_vat'``."""
        return embedding_key(self.graph, m, other)


def _top(sim: torch.Tensor, k: int, exclude: int | None = None) -> list[tuple[int, float]]:
    sim = sim.clone()
    if exclude is not None:
        sim[exclude] = -float("inf")
    k = min(k, int(torch.isfinite(sim).sum()))
    vals, idx = sim.topk(k)
    return [(int(i), float(v)) for i, v in zip(idx, vals)]


@torch.no_grad()
def encode_text(model: torch.nn.Module, word_vectors: Any, query: str) -> dict[str, torch.Tensor]:
    """Embed one typed query with the model's text tower: ``{"f_t": (1, d_t), "z_t_*": (1, D)}``.

    ``word_vectors`` is the :class:`~mmv_lite.data.text.WordVectors` the model was built with (its vocabulary gives
    the ids). Raises ``ValueError`` when no word of the query is in the vocabulary (after stop-word removal).
    """
    ids, mask = word_vectors.encode([query], max_words=model.cfg.data.max_words)
    if not mask.any():
        raise ValueError(
            f"none of the words of {query!r} is in the vocabulary of {len(word_vectors) - 1} words "
            "(stop words are dropped); try words the narrations use, e.g. 'red star spins'"
        )
    device = next(model.parameters()).device
    with eval_mode(model):
        return model.embed_text(ids.to(device), mask.to(device))


def search_text(bank: ClipBank, model: torch.nn.Module, query: str, k: int = 5) -> list[Hit]:
    """Clips ranked by the cosine similarity of their video embedding with the typed ``query`` (text -> video)."""
    key_t, key_v = bank.key("t", "v"), bank.key("v", "t")
    z = encode_text(model, bank.dataset.word_vectors, query)[key_t].cpu()
    sim = cosine_similarity(z, bank.emb[key_v])[0]
    return [bank.hit(i, s) for i, s in _top(sim, k)]


def search_sound(bank: ClipBank, index: int, k: int = 5) -> list[Hit]:
    """Clips whose *video* best matches the *sound* of clip ``index`` (audio -> video), the query clip left out."""
    key_a, key_v = bank.key("a", "v"), bank.key("v", "a")
    if not bool(bank.emb.get("has_audio", torch.ones(len(bank)))[index]):
        raise ValueError(f"clip {index} has no audio track")
    sim = cosine_similarity(bank.emb[key_a][index : index + 1], bank.emb[key_v])[0]
    return [bank.hit(i, s) for i, s in _top(sim, k, exclude=index)]


def sound_to_text(bank: ClipBank, index: int, k: int = 5) -> list[tuple[str, float]]:
    """Narrations ranked for the sound of clip ``index`` (audio -> text), never trained directly: in FAC audio reaches
    the text space only through ``g_va_to_vat``. Candidates are the distinct narrations of the bank's clips."""
    key_a, key_t = bank.key("a", "t"), bank.key("t", "a")
    if key_a not in bank.emb:
        raise ValueError(f"the bank has no {key_a}: embed it in eval mode (ClipBank.build does)")
    texts, rows = [], []
    seen = set()
    valid = bank.emb["text_valid"].bool() & bank.emb["has_text"].bool()[:, None]
    for i in range(len(bank)):
        cand = bank.dataset.candidate_texts(i) if valid[i].any() else []
        for j, t in enumerate(cand):
            if valid[i, j] and t not in seen:
                seen.add(t)
                texts.append(t)
                rows.append(bank.emb[key_t][i, j])
    if not rows:
        raise ValueError("the bank has no narrations to rank")
    sim = cosine_similarity(bank.emb[key_a][index : index + 1], torch.stack(rows))[0]
    return [(texts[i], s) for i, s in _top(sim, k)]


def clip_media(dataset: Any, index: int) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Frames ``(T, H, W, 3)`` uint8 and waveform ``(samples,)`` of clip ``index`` at its evaluation start, and the
    sample rate: what a player shows and plays."""
    w = dataset.windows[index]
    frames, wave = dataset.load_clip(dataset.videos[w.video_id], w.start)
    return frames, wave, dataset.cfg.sample_rate


def search_embedding(bank: ClipBank, query: torch.Tensor, key: str = "z_v_va", k: int = 5) -> list[Hit]:
    """Clips of ``bank`` ranked by the cosine of their ``key`` embedding with ``query`` ``(D,)`` or ``(1, D)``."""
    if key not in bank.emb:
        raise ValueError(f"the bank has no {key!r}; it has {sorted(x for x in bank.emb if x.startswith('z_'))}")
    sim = cosine_similarity(query.reshape(1, -1), bank.emb[key])[0]
    return [bank.hit(i, s) for i, s in _top(sim, k)]


SEARCH_FACTORS = ("kind", "colour", "motion")


@torch.no_grad()
def search_agreement(
    bank: ClipBank, factors: Sequence[str] = SEARCH_FACTORS, k: int = 5
) -> dict[str, dict[str, float]]:
    """How often text search returns clips that share a factor with its query, beside chance.

    Every clip with a narration gives one query: its nearest narration (candidate 0, as embedded in the bank). Its
    value of a factor is the ground truth of the clip it was spoken over (``dataset.factors``). Of the query's top
    ``k`` clips by text -> video cosine (its own clip included, as a student's search would show it), the share with
    the same value is the agreement; chance is the share of all clips with that value (what a random ranking gets).

    Returns ``{factor: {"agreement": %, "chance": %, "queries": n}}``, percentages averaged over the queries."""
    key_t, key_v = bank.key("t", "v"), bank.key("v", "t")
    table = bank.dataset.factors
    rows = torch.as_tensor(bank.emb["index"]).tolist() if "index" in bank.emb else list(range(len(bank)))
    has = bank.emb["has_text"].bool() & bank.emb["text_valid"][:, 0].bool()
    queries = has.nonzero()[:, 0]
    if len(queries) == 0:
        raise ValueError("the bank has no clip with a narration to search with")
    sim = cosine_similarity(bank.emb[key_t][queries, 0], bank.emb[key_v])  # (Q, N)
    top = sim.topk(min(k, sim.shape[1]), dim=1).indices
    out = {}
    for f in factors:
        values = np.array([table[f][i] for i in rows])
        q_values = values[queries.numpy()][:, None]
        agree = (values[top.numpy()] == q_values).mean()
        chance = (values[None, :] == q_values).mean()
        out[f] = {"agreement": 100.0 * float(agree), "chance": 100.0 * float(chance), "queries": int(len(queries))}
    return out


def follows_best_and_least(summary: dict[str, dict[str, float]]) -> tuple[str, str]:
    """The factor a text search agrees with most, and least, by agreement over chance (``search_agreement``)."""
    lift = {f: s["agreement"] - s["chance"] for f, s in summary.items()}
    return max(lift, key=lift.get), min(lift, key=lift.get)
