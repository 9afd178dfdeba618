"""mmv_lite: Self-Supervised MultiModal Versatile Networks (Alayrac et al., NeurIPS 2020), small enough to learn from.

>>> import mmv_lite
>>> model = mmv_lite.build_model("lite", graph="fac")
"""

from __future__ import annotations

from typing import Any

from .config import PRESETS, Config, get_config, space_for

__version__ = "0.1.0"
__all__ = ["PRESETS", "Config", "get_config", "space_for", "build_model", "__version__"]


def __getattr__(name: str) -> Any:
    # Keep `import mmv_lite` light: the network is imported only when asked for.
    if name == "build_model":
        from .models.mmv import build_model

        return build_model
    raise AttributeError(f"module 'mmv_lite' has no attribute {name!r}")
