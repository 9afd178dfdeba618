"""mmv_lite.runtime: choosing the device, and the description of the machine that results files keep."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mmv_lite.runtime import default_cpu_threads, machine, select_device


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
