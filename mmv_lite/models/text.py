"""Text tower: frozen word vectors -> per-token Linear + ReLU -> max over the real tokens.

``text_ids (B, K, L)`` (K candidate narrations of L tokens) or ``(B, L)`` int64, ``0`` = padding
-> ``(B, K, out_dim)`` or ``(B, out_dim)``.

The word matrix is a buffer, not a parameter: it is saved in the state dict but never trained (the official
model stops its gradient). Unlike the official code, padding tokens are masked out of the max; since the
values are ReLU outputs (>= 0), masking by zeroing is exact, and a caption with no real token gives a zero
vector (no -inf, no NaN).

Official names: ``text_module/~/embed/embeddings`` -> ``word_vectors``; ``text_module/~/text_conv1``
(a Conv1D with kernel 1, ``w [1, 300, D]``) -> ``text_conv1`` (``weight [D, 300]`` = ``w[0].T``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TextTower(nn.Module):
    """Sentence features from word ids. ``word_vectors``: ``(V, word_dim)``, row 0 = padding."""

    def __init__(self, word_vectors: torch.Tensor | np.ndarray, out_dim: int = 2048):
        super().__init__()
        wv = torch.as_tensor(np.asarray(word_vectors) if not torch.is_tensor(word_vectors) else word_vectors)
        if wv.dim() != 2 or wv.shape[0] < 1:
            raise ValueError(f"TextTower: word_vectors must be a (V, word_dim) matrix, got shape {tuple(wv.shape)}")
        self.register_buffer("word_vectors", wv.detach().to(torch.float32).clone())
        self.word_dim = wv.shape[1]
        self.out_dim = out_dim
        self.text_conv1 = nn.Linear(self.word_dim, out_dim)

    @property
    def vocab_size(self) -> int:
        return self.word_vectors.shape[0]

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``text_ids (..., L)`` int, ``text_mask (..., L)`` bool (default ``text_ids != 0``) -> ``(..., out_dim)``."""
        if text_ids.dtype not in (torch.int64, torch.int32) or text_ids.dim() not in (2, 3):
            raise ValueError(
                f"text_ids must be int64 of shape (B, K, L) or (B, L), got {text_ids.dtype} {tuple(text_ids.shape)}"
            )
        if text_ids.numel() and (int(text_ids.max()) >= self.vocab_size or int(text_ids.min()) < 0):
            raise ValueError(
                f"text_ids hold ids in [{int(text_ids.min())}, {int(text_ids.max())}] but the word-vector matrix has "
                f"{self.vocab_size} rows: build the model with the word vectors of the tokenizer that made the ids "
                "(build_model(..., word_vectors=...))"
            )
        if text_mask is None:
            text_mask = text_ids != 0
        elif text_mask.shape != text_ids.shape:
            raise ValueError(f"text_mask shape {tuple(text_mask.shape)} != text_ids shape {tuple(text_ids.shape)}")
        words = F.embedding(text_ids, self.word_vectors)  # (..., L, word_dim), no gradient (a buffer)
        h = F.relu(self.text_conv1(words))  # (..., L, out_dim), >= 0
        h = h * text_mask.unsqueeze(-1).to(h.dtype)
        return h.amax(dim=-2)
