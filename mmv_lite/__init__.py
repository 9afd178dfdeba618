"""mmv_lite: Self-Supervised MultiModal Versatile Networks (Alayrac et al., NeurIPS 2020), small enough to learn from.

>>> import mmv_lite
>>> model = mmv_lite.build_model("lite", graph="fac")
"""

from __future__ import annotations

from typing import Any

from .colab import set_threading_policy

set_threading_policy()  # before anything imports torch: OpenMP reads OMP_WAIT_POLICY once, when it loads

from .config import PRESETS, Config, get_config  # noqa: E402
from .graphs import space_for  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PRESETS", "Config", "get_config", "space_for", "build_model", "__version__"]


def __getattr__(name: str) -> Any:
    # torch takes seconds to import: `import mmv_lite` (configs, presets, the command line's help, the notebook-pair
    # check) stays light, and the network module is imported the first time build_model is asked for.
    if name == "build_model":
        from .models.mmv import build_model

        return build_model
    raise AttributeError(f"module 'mmv_lite' has no attribute {name!r}")
