"""What every figure shares: one colour per modality, array conversion, a figure-or-axes helper."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..runtime import to_numpy

# One colour per modality, used in every figure (v = video, a = audio, t = text).
MODALITY_COLOURS = {"v": "#1f77b4", "a": "#d62728", "t": "#2ca02c"}
MODALITY_NAMES = {"v": "video", "a": "audio", "t": "text"}


def as_numpy(x: Any) -> np.ndarray:
    """A numpy copy of a tensor or array (detached, on the CPU)."""
    return to_numpy(x.float() if hasattr(x, "detach") else x)


def fig_ax(ax, figsize):
    """``(figure, axes)``: the given axes and their figure, or a new figure of ``figsize``."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax
