"""What a training run records while it runs: ``metrics.jsonl``, throughput, and a clean stop on Ctrl-C.

``<out>/metrics.jsonl`` gets one JSON line per log step (loss, its terms, learning rate, clips/s, the fraction of
step time spent waiting for data) and one per validation (zero-shot retrieval on the val split);
:func:`read_metrics` reads it back for plots.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .files import atomic_write


def _round(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, float):
        return round(x, 5)
    return x


class MetricsLog:
    """Append-only JSONL; on resume, entries logged after the checkpoint's step are dropped (they will be redone)."""

    def __init__(self, path: Path, resume_step: int | None, enabled: bool):
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        if resume_step is None:
            atomic_write(path, "")
        elif path.exists():
            kept = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= resume_step]
            atomic_write(path, "".join(ln + "\n" for ln in kept))

    def write(self, **entry: Any) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(_round(entry)) + "\n")


def read_metrics(path: str | os.PathLike, metric: str = "R@5") -> list[dict[str, float]]:
    """The records of a run's ``metrics.jsonl``, flat: training lines as they are (``step``, ``loss``, ``loss_va``,
    ``loss_vt``, ``lr``, ...) and validation lines as ``{"step": s, "val t2v R@5": x, ...}`` for ``metric``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train() writes metrics.jsonl into its output folder")
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if "val" in rec:
            flat = {"step": rec["step"]}
            flat.update({f"val {d} {metric}": m[metric] for d, m in rec["val"].items() if metric in m})
            out.append(flat)
        else:
            out.append({k: v for k, v in rec.items() if isinstance(v, (int, float))})
    return out


class Meter:
    """Loss sums and timings since the last log line, and the run's totals (time spent validating excluded)."""

    def __init__(self) -> None:
        self.wait_total = self.time_total = 0.0
        self.clips_total = 0
        self.last_loss = float("nan")
        self._reset()

    def _reset(self) -> None:
        self.t0 = time.perf_counter()
        self.wait, self.clips, self.steps = 0.0, 0, 0
        self.sums: dict[str, torch.Tensor] = {}

    def restart_clock(self) -> None:
        """Time spent since the last step (e.g. validating) does not count as training time."""
        self.t0 = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor], wait: float, clips: int) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach()
        self.wait += wait
        self.clips += clips
        self.steps += 1

    def flush(self) -> tuple[dict[str, float], dict[str, float]]:
        """``(mean losses, {"clips_per_s", "data_wait": fraction of the time})`` since the last flush; then reset."""
        means = {k: (v / self.steps).item() for k, v in self.sums.items()}  # .item() waits for the GPU
        elapsed = time.perf_counter() - self.t0
        rates = {"clips_per_s": self.clips / max(elapsed, 1e-9), "data_wait": self.wait / max(elapsed, 1e-9)}
        self.wait_total += self.wait
        self.time_total += elapsed
        self.clips_total += self.clips
        self.last_loss = means["loss"]
        self._reset()
        return means, rates

    @property
    def clips_per_second(self) -> float:
        return self.clips_total / max(self.time_total, 1e-9)

    @property
    def data_wait_fraction(self) -> float:
        return self.wait_total / max(self.time_total, 1e-9)


class StopFlag:
    """SIGINT -> finish the current step, save, exit. A second SIGINT raises KeyboardInterrupt at once."""

    def __init__(self):
        self.stop = False
        self._old: Any = None

    def __enter__(self) -> StopFlag:
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C handling stays as it was
            self._old = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
