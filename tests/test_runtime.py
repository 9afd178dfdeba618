"""mmv_lite.runtime: choosing the device, and the description of the machine that results files keep."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from mmv_lite.runtime import autocast_settings, cuda_capability, default_cpu_threads, machine, select_device, to_numpy


def test_machine_names_the_cpu_its_cores_and_the_kernels_instruction_set():
    m = machine()
    assert isinstance(m["cpu"], str) and m["cpu"].strip()
    assert m["cores"] == os.cpu_count()
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["gpu"] == (torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    assert m["torch"] == torch.__version__ and type(m["torch"]) is str
    assert json.loads(json.dumps(m)) == m  # it goes into JSON files and weights-only checkpoints as it is


def test_select_device_names_the_bad_argument():
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device 'gpu0': expected auto, cpu"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
            select_device("cuda")


def test_default_cpu_threads_leaves_half_the_cores_to_the_data_workers():
    assert 1 <= default_cpu_threads() <= max(1, (os.cpu_count() or 1) // 2)


@pytest.mark.parametrize(
    ("gpu", "capability", "expected"),
    [("T4", (7, 5), (torch.float16, True)), ("V100", (7, 0), (torch.float16, True)),
     ("A100", (8, 0), (torch.bfloat16, False)), ("H100", (9, 0), (torch.bfloat16, False))],
)  # fmt: skip
def test_mixed_precision_uses_bf16_only_where_the_gpu_has_it_natively(monkeypatch, gpu, capability, expected):
    """A T4 reports bf16 as supported (emulated, with slow fallback kernels): it must get fp16 + GradScaler."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    cuda = torch.device("cuda")
    assert cuda_capability(cuda) == capability
    assert autocast_settings(cuda) == expected, gpu
    assert autocast_settings(cuda, dtype="fp16") == (torch.float16, True)  # asked for by name: as asked
    assert autocast_settings(cuda, dtype="bf16") == (torch.bfloat16, False)
    assert autocast_settings(cuda, enabled=False) == (None, False)
    assert autocast_settings(torch.device("cpu")) == (None, False) and cuda_capability(torch.device("cpu")) is None


def test_to_numpy_detaches_copies_to_the_cpu_and_widens_bf16():
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_()
    a = to_numpy(x * 2)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.tolist() == [[0, 2, 4], [6, 8, 10]]
    assert to_numpy(torch.tensor([0.5, 1.5], dtype=torch.bfloat16)).dtype == np.float32  # NumPy has no bf16
    assert to_numpy([1, 2]).tolist() == [1, 2]
