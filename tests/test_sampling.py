"""The order of training batches (mmv_lite.data.sampling)."""

from __future__ import annotations

import pytest
import torch

from mmv_lite.config import get_config
from mmv_lite.data.sampling import StepBatchSampler, step_loader


def test_batches_are_a_function_of_seed_and_step():
    full = list(StepBatchSampler(50, 8, seed=3, start=0, total=20))
    assert len(full) == 20
    # Each epoch (6 steps of 8 of 50 clips) visits distinct clips; epochs differ.
    first = [i for b in full[:6] for i, _ in b]
    assert len(set(first)) == 48
    assert [i for i, _ in full[6]] != [i for i, _ in full[0]]
    # Starting late gives the tail of the same stream (what resume relies on).
    assert list(StepBatchSampler(50, 8, seed=3, start=13, total=20)) == full[13:]
    assert list(StepBatchSampler(50, 8, seed=4, start=0, total=20)) != full
    # Two ranks split each global batch in order, item seeds included.
    r0 = list(StepBatchSampler(50, 8, seed=3, start=0, total=20, rank=0, world=2))
    r1 = list(StepBatchSampler(50, 8, seed=3, start=0, total=20, rank=1, world=2))
    assert all(a + b == f for a, b, f in zip(r0, r1, full))
    # Every item of the run has its own augmentation seed.
    assert len({s for b in full for _, s in b}) == 160
    with pytest.raises(ValueError, match="fewer than train.batch_size"):
        StepBatchSampler(5, 8, seed=0, start=0, total=1)
    with pytest.raises(ValueError, match="divisible"):
        StepBatchSampler(50, 8, seed=0, start=0, total=1, world=3)


class _Numbers(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"i": i, "noise": torch.rand(())}  # drawn from the item's own seeded stream


def test_step_loader_gives_one_batch_per_step_and_reproducible_items():
    tc = get_config("lite", **{"train.batch_size": 4, "train.seed": 1, "train.num_workers": 0}).train
    batches = list(step_loader(_Numbers(), tc, start=0, stop=5))
    assert len(batches) == 5 and all(len(b["i"]) == 4 for b in batches)
    again = list(step_loader(_Numbers(), tc, start=3, stop=5))  # resumed at step 3: the same batches and draws
    assert all(torch.equal(a["noise"], b["noise"]) for a, b in zip(batches[3:], again))


def test_an_item_is_drawn_from_the_cpu_generator_its_seed_sets_and_no_accelerator_is_reseeded(monkeypatch):
    """``SeededItems`` seeds the CPU generators only: the item's draws are those of ``torch.manual_seed(seed)``, the
    caller's streams are put back, and no accelerator's generator is touched (seeding every device per item cost
    0.3 ms a clip, and in the main process it reset the training device's generator)."""
    import random

    import numpy as np

    from mmv_lite.data.sampling import SeededItems

    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: reseeded.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: reseeded.append(seed))

    def seed_all():
        random.seed(1), np.random.seed(1), torch.manual_seed(7)  # noqa: NPY002
        reseeded.clear()

    seed_all()
    before = (random.random(), np.random.random(), torch.rand(()))  # noqa: NPY002
    seed_all()
    item = SeededItems(_Numbers())[(3, 2**62 + 5)]
    assert (random.random(), np.random.random(), torch.rand(())) == before  # noqa: NPY002
    torch.manual_seed(2**62 + 5)
    assert item["i"] == 3 and item["noise"] == torch.rand(())
    assert reseeded == [2**62 + 5]  # only the direct call above: the item reseeded no device


def test_a_loader_batch_is_seeded_item_by_item_unless_the_dataset_plans_it_whole():
    """A DataLoader hands ``SeededItems`` a batch of keys (``__getitems__``): items that draw from the global
    generators are still drawn one by one, each from its own seed; planned items, which need no seeding, go to
    the dataset whole (``planned_many``)."""
    from mmv_lite.data.sampling import PlannedItems, SeededItems

    keys = [(3, 11), (5, 12), (3, 13)]
    items = SeededItems(_Numbers()).__getitems__(keys)
    assert [it["noise"] for it in items] == [SeededItems(_Numbers())[k]["noise"] for k in keys]
    assert items[0]["noise"] != items[2]["noise"]  # the same index, another seed: another draw

    class _Planned:
        def __len__(self):
            return 10

        def planned(self, i):
            return {"i": i, "whole": False}

        def planned_many(self, indices):
            return [{"i": i, "whole": True} for i in indices]

    assert SeededItems(PlannedItems(_Planned())).__getitems__(keys) == [{"i": i, "whole": True} for i in (3, 5, 3)]
    assert SeededItems(PlannedItems(_Planned()))[(4, 1)] == {"i": 4, "whole": False}
