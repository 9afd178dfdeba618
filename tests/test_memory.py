"""The memory check before the first step (mmv_lite.memory): a batch that cannot fit the GPU is refused early."""

from __future__ import annotations

import re

import pytest
import torch

from mmv_lite import memory
from mmv_lite.config import get_config

LITE = get_config("lite")


@pytest.fixture(scope="module")
def lite_estimate():
    return memory.estimate_training_memory(LITE, amp=False)


def test_the_estimate_grows_with_the_batch_and_shrinks_with_mixed_precision(lite_estimate):
    est, half = lite_estimate, memory.estimate_training_memory(LITE, amp=True)
    assert est.per_clip_bytes > 0 and est.fixed_bytes > 0 and not est.amp and half.amp
    assert 0.4 < half.per_clip_bytes / est.per_clip_bytes < 0.75  # 16-bit activations, some kept in float32
    assert est.bytes_at(64) > est.bytes_at(32)
    for total in (2 * memory.GiB, 5.5 * memory.GiB):
        fits = est.largest_batch(total)
        assert est.bytes_at(fits) <= total < est.bytes_at(fits + 1)
    assert est.largest_batch(memory.CUDA_MARGIN) == 0


def test_a_batch_that_cannot_fit_is_refused_with_the_largest_that_does(lite_estimate, monkeypatch):
    """A stand-in GPU between the estimates of batch 16 and batch 32: batch 32 is refused before anything is
    allocated, and the message names the batch that fits; batch 16 passes."""
    gpu = torch.device("cuda")
    total = (lite_estimate.bytes_at(16) + lite_estimate.bytes_at(32)) / 2
    monkeypatch.setattr(memory, "device_memory", lambda device: total if device.type == "cuda" else None)
    monkeypatch.setattr(memory, "estimate_training_memory", lambda cfg, amp=None: lite_estimate)
    fits = lite_estimate.largest_batch(total)
    assert 16 <= fits < 32
    with pytest.raises(ValueError, match=rf"the largest batch that fits is {fits}: use --set train.batch_size={fits}"):
        memory.check_batch_fits(LITE, gpu)
    assert memory.check_batch_fits(get_config("lite", **{"train.batch_size": 64}), gpu, world=4) is lite_estimate
    with pytest.raises(ValueError, match=rf"64 clips per GPU .* fits is {fits} per GPU: .*batch_size={2 * fits}"):
        memory.check_batch_fits(get_config("lite", **{"train.batch_size": 128}), gpu, world=2)  # 64 per GPU
    assert memory.check_batch_fits(get_config("lite", **{"train.batch_size": 16}), gpu) is lite_estimate
    assert memory.check_batch_fits(LITE, torch.device("cpu")) is None  # no check off CUDA


def test_train_refuses_the_batch_before_reading_any_data(lite_estimate, monkeypatch, tmp_path):
    from mmv_lite import train as train_mod

    monkeypatch.setattr(memory, "device_memory", lambda device: lite_estimate.bytes_at(8))
    monkeypatch.setattr(memory, "estimate_training_memory", lambda cfg, amp=None: lite_estimate)
    monkeypatch.setattr(train_mod, "build_datasets", lambda *a: pytest.fail("the data was read before the check"))
    with pytest.raises(ValueError, match=re.escape("the largest batch that fits is 8")):
        train_mod.train(LITE, out_dir=tmp_path / "run", device="cpu", verbose=False)
