"""Data: the sample-world generator, the clip dataset, and its audio, text and augmentation pieces.

    >>> from mmv_lite.data import ClipDataset, WordVectors
    >>> ds = ClipDataset("data_samples", "train", get_config("lite").data, train=True)

Submodules are imported on first use, so ``import mmv_lite.data`` stays light (gensim, torchaudio and PyAV load
only when they are needed).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClipDataset": "clips",
    "BadClipError": "clips",
    "Window": "clips",
    "WordVectors": "text",
    "tokenize_words": "text",
    "STOP_WORDS": "text",
    "LogMel": "audio",
    "num_audio_frames": "audio",
    "num_audio_samples": "audio",
    "decode_audio": "audio",
    "VideoTransform": "augment",
    "make_samples": "synth",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'mmv_lite.data' has no attribute {name!r}")
