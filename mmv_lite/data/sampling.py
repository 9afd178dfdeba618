"""The order of training batches: a pure function of ``(seed, step)``, the same for any number of workers or processes.

Epoch ``e`` visits the training clips in the order of a permutation seeded by ``(seed, e)``, cut into global batches
of ``train.batch_size``; an unlimited stream (a dataset with ``unlimited = True``, such as the sample world's
:class:`~mmv_lite.data.world.WorldClips`) has no epochs: slot ``i`` of step ``s`` is clip ``mix(seed, s, i)``, a
new clip every time; every clip is loaded with the random streams (Python, NumPy, torch) seeded by its position
in the whole run, so its augmentation does not depend on which DataLoader worker loads it. A checkpoint therefore
needs only the step to know where the data stream stands (exact resume), and a run with W processes sees the same
clips as one process (each rank takes its 1/W share of every global batch).

    >>> loader = step_loader(train_ds, cfg.train, start=0, stop=cfg.train.steps)   # one batch per step
"""

from __future__ import annotations

import functools
import random
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import TrainConfig


def mix_seed(*xs: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), so nearby inputs give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return h >> 1


class StepBatchSampler:
    """Batches for steps ``start, ..., total - 1``; the rank's share of global batch ``step`` is a pure function.

    Yields lists of ``(index, item_seed)`` for :class:`SeededItems`. Epoch ``e`` is a permutation of the ``n``
    clips seeded by ``(seed, e)``, cut into ``n // batch_size`` global batches (the remainder is dropped); rank ``r``
    of ``world`` takes entries ``[r * b, (r + 1) * b)`` of each global batch, ``b = batch_size // world``.
    ``n=None``: an unlimited stream, where entry ``i`` of global batch ``step`` is a new clip, ``mix_seed(seed, step,
    i)``; with ``group`` > 1, entries ``g * group ... g * group + group - 1`` are consecutive clips of the stream (for
    a stream whose consecutive clips come from the same video, such as the sample world's). :func:`step_loader` uses
    ``group=1``: every clip of a training batch comes from a video of its own, and every stored result was trained
    so (putting the sample world's ``clips_per_video`` clips of a video side by side would change every run's
    batches).
    """

    def __init__(
        self,
        n: int | None,
        batch_size: int,
        seed: int,
        start: int,
        total: int,
        rank: int = 0,
        world: int = 1,
        group: int = 1,
    ):
        if batch_size % world:
            raise ValueError(f"train.batch_size={batch_size} must be divisible by the number of processes ({world})")
        if n is not None and n < batch_size:
            raise ValueError(
                f"the training split has {n} clips, fewer than train.batch_size={batch_size}; lower --batch-size"
            )
        self.n, self.batch_size, self.seed, self.group = n, batch_size, seed, group
        self.start, self.total, self.rank, self.world = start, total, rank, world
        self.steps_per_epoch = n // batch_size if n is not None else None
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return max(self.total - self.start, 0)

    def epoch_of(self, step: int) -> int:
        return 0 if self.steps_per_epoch is None else step // self.steps_per_epoch

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return self._perm[1]

    def batch(self, step: int) -> list[tuple[int, int]]:
        per_rank = self.batch_size // self.world
        slots = range(self.rank * per_rank, (self.rank + 1) * per_rank)
        if self.steps_per_epoch is None:  # unlimited: new clips in every slot of every step
            g = self.group
            return [
                ((mix_seed(self.seed, step, i // g, 1) >> 8) * g + i % g, mix_seed(self.seed, step, i)) for i in slots
            ]
        perm = self._permutation(self.epoch_of(step))
        offset = (step % self.steps_per_epoch) * self.batch_size
        return [(int(perm[offset + i]), mix_seed(self.seed, step, i)) for i in slots]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.total):
            yield self.batch(step)


class SeededItems(Dataset):
    """Wraps a dataset so that ``ds[(i, seed)]`` is ``inner[i]`` drawn with Python's, NumPy's and torch's CPU random
    generators seeded by ``seed``.

    Random augmentation then depends on the item's place in the run, not on the worker or process that loads it.
    In the main process (``num_workers=0``) the global random states are put back afterwards. A dataset whose
    ``needs_global_seed`` is False (:class:`PlannedItems`) draws no global random number, and is read unseeded.
    """

    def __init__(self, inner: Dataset):
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        """A DataLoader's batch: handed whole to a dataset that needs no seeding and takes batches, else item by
        item."""
        many = getattr(self.inner, "__getitems__", None)
        if many is not None and not getattr(self.inner, "needs_global_seed", True):
            return many([index for index, _ in keys])
        return [self[key] for key in keys]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        if not getattr(self.inner, "needs_global_seed", True):  # its numbers come from its own streams
            return self.inner[index]
        in_worker = torch.utils.data.get_worker_info() is not None
        saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.get_rng_state())  # noqa: NPY002
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002
            # Items are made on the CPU: its generator is the one to seed. torch.manual_seed would seed every
            # accelerator too, at about 0.3 ms a call (a planned clip costs about 1.2 ms), and in the main process
            # it would reset the training device's generator, which is not put back below.
            torch.default_generator.manual_seed(seed)
            return self.inner[index]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])  # noqa: NPY002
                torch.set_rng_state(saved[2])


def loader_worker_init(_: int) -> None:
    """DataLoader workers: one thread each, and Ctrl-C ignored (it reaches every process of the terminal's group;
    the main process stops cleanly and ends them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


class PlannedItems(Dataset):
    """``ds[i]`` is ``inner.planned(i)``: a dataset that draws its items a batch at a time (``planned`` and
    ``render_batch``, as :class:`~mmv_lite.data.world.WorldClips`) seen through its planned items."""

    needs_global_seed = False  # planning draws from the world's own streams, and rendering a batch draws nothing

    def __init__(self, inner: Any):
        self.inner = inner
        self.unlimited = getattr(inner, "unlimited", False)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> Any:
        return self.inner.planned(index)

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """A DataLoader's batch: planned together where the dataset can (``planned_many``), else item by item."""
        many = getattr(self.inner, "planned_many", None)
        return many(indices) if many is not None else [self.inner.planned(i) for i in indices]


def collate_planned(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``default_collate(items)`` of planned items, as NumPy arrays (:func:`as_tensors` makes them tensors again).

    Workers hand planned batches over this way. A planned batch is some 47 small tensors; a tensor leaves a worker
    through a shared-memory segment of its own, which the main process opens and maps, while an array is pickled by
    value through the pipe. With 2 workers on the 2-core CPU: 552-568 planned clips/s as tensors, 1,254-1,297 as arrays
    (``bench/bench_world.py``; docs/BENCHMARKS.md, "The world drawn a batch at a time")."""
    out: dict[str, Any] = {}
    for key, first in items[0].items():
        values = [item[key] for item in items]
        if isinstance(first, dict):
            out[key] = collate_planned(values)
        elif isinstance(first, torch.Tensor):
            out[key] = np.stack([v.numpy() for v in values])
        elif isinstance(first, (np.ndarray, np.generic)):
            out[key] = np.stack(values)
        elif isinstance(first, (bool, int, float)):  # bool, int64, float64, as default_collate types them
            out[key] = np.asarray(values)
        else:
            out[key] = values  # str and the rest: a list, as default_collate leaves them
    return out


def as_tensors(batch: Any) -> Any:
    """The batch of :func:`collate_planned` with its arrays back as tensors (no copy)."""
    if isinstance(batch, np.ndarray):
        return torch.from_numpy(batch)
    if isinstance(batch, dict):
        return {key: as_tensors(value) for key, value in batch.items()}
    return batch


def _collate_and_render(dataset: Any, items: list[Any]) -> Any:
    """Collate planned items and draw the batch on the CPU (in the worker that planned it)."""
    return dataset.render_batch(dataset.collate(items), "cpu")


class RenderedBatches:
    """The batches of ``loader`` (planned items, collated) drawn on ``device`` as they come, in this process."""

    def __init__(self, loader: DataLoader, dataset: Any, device: torch.device):
        self.loader, self.dataset, self.device = loader, dataset, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield self.dataset.render_batch(as_tensors(batch), self.device)


# Where a dataset that can plan its items (the sample world) draws them. "clip": each item whole in the workers;
# "batch": the workers plan, and each batch is drawn at once in the worker that collates it; "device": the workers
# plan, and this process draws the batch on the training device. "auto" is "device" on CUDA; on a CPU, "clip" with
# workers and "batch" without (docs/BENCHMARKS.md, "The world drawn a batch at a time": with no worker, 40 lite steps
# trained in 18-19 s against 22 s clip by clip; with workers, "batch" trains the main job about 8 % faster, but "clip"
# keeps its items bit for bit, and so the shipped checkpoint's reproduction).
RENDER_MODES = ("auto", "clip", "batch", "device")


def render_mode(dataset: Any, render: str, device: torch.device | str | None, workers: int = 1) -> str:
    """The mode ``render`` resolves to for ``dataset`` on ``device`` with ``workers`` DataLoader workers ("clip" for a
    dataset that cannot plan)."""
    if render not in RENDER_MODES:
        raise ValueError(f"render={render!r}; expected one of {RENDER_MODES}")
    if not (hasattr(dataset, "planned") and hasattr(dataset, "render_batch")):
        return "clip"
    if render == "auto":
        if torch.device(device or "cpu").type == "cuda":
            return "device"
        return "clip" if workers > 0 else "batch"
    return render


def step_loader(
    dataset: Dataset,
    tc: TrainConfig,
    start: int,
    stop: int,
    rank: int = 0,
    world: int = 1,
    pin_memory: bool = False,
    device: torch.device | str | None = None,
    render: str = "auto",
) -> DataLoader | RenderedBatches:
    """A DataLoader that yields this rank's batch of every step in ``[start, stop)`` (``tc.num_workers`` workers).

    ``device``: where training runs; with ``render`` (see :data:`RENDER_MODES`) it decides where a planning
    dataset's batches are drawn: on CUDA, on the device by default (the batches come out with ``video`` and
    ``audio`` already there)."""
    workers, mode = tc.num_workers, render_mode(dataset, render, device, tc.num_workers)
    items: Dataset = dataset if mode == "clip" else PlannedItems(dataset)
    collate = getattr(dataset, "collate", None)  # ClipDataset.collate keeps video ids as a list of str
    if mode == "batch":
        collate = functools.partial(_collate_and_render, dataset)
    elif mode == "device":
        collate = collate_planned
    loader = DataLoader(
        SeededItems(items),
        batch_sampler=StepBatchSampler(
            None if getattr(dataset, "unlimited", False) else len(dataset),
            tc.batch_size,
            tc.seed,
            start,
            stop,
            rank,
            world,
        ),
        collate_fn=collate,
        num_workers=workers,
        pin_memory=pin_memory and mode != "device",
        persistent_workers=workers > 0,
        worker_init_fn=loader_worker_init if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
    )
    return RenderedBatches(loader, dataset, torch.device(device or "cpu")) if mode == "device" else loader
