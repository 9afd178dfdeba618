"""The one budget of every experiment: equal for every arm of a comparison, so that arms differ in one thing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..models.deflation import CALIB_STEPS
from ..probes import PROBE_CS


@dataclass(frozen=True)
class Budget:
    """Equal for every arm: the training length and the size of the held-out sets.

    ``num_probe`` / ``num_eval``: clips of the world's probe set and of its val and test sets; on a folder of clips,
    ``num_eval`` caps the ground-truth segments kept per split (evenly spaced; a folder has fewer in the full budget).
    ``calib_steps``: the BatchNorm calibration of the deflated network (only the arms whose single frames are
    measured calibrate). ``probe_cs``: the C grid of every linear probe (one value skips the choice on val).
    ``config``: overrides for every arm, e.g. smaller clips in the quick variant.
    """

    steps: int = 800  # the main job's (the lite preset's) length: the vat_fac arm is the main job without validation
    batch_size: int = 32
    warmup_steps: int = 30
    lr: float = 2e-3  # the lite preset's rate
    num_probe: int = 1000
    num_eval: int = 500
    calib_steps: int = CALIB_STEPS
    probe_cs: tuple[float, ...] = PROBE_CS
    num_workers: int = 1
    config: tuple[tuple[str, Any], ...] = ()

    def with_steps(self, steps: int) -> Budget:
        """The same budget trained for ``steps``; the warm-up shrinks with it (at most a tenth of the run)."""
        return replace(self, steps=steps, warmup_steps=min(self.warmup_steps, max(1, steps // 10)))


FULL = Budget()
# The quick variant checks the pipeline, not the science: a few steps on small clips and small held-out sets.
QUICK = Budget(
    steps=3,
    batch_size=8,
    warmup_steps=1,
    num_probe=48,
    num_eval=24,
    calib_steps=2,
    probe_cs=(1e-2,),
    num_workers=0,
    config=(("data.num_frames", 4), ("data.crop_size", 24)),
)
