"""Where and how a run computes: the device, CPU threads, the ``torchrun`` process group, mixed precision.

>>> rt = setup_runtime("auto")            # device, rank and world size (joins torchrun's group when launched so)
>>> torch.set_num_threads(default_cpu_threads())
>>> dtype, needs_scaler = autocast_settings(rt.device)
>>> array = to_numpy(z_v_va)              # every tensor that leaves the device for NumPy goes through here
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Runtime:
    """Where this process runs: its device and its place among the ``torchrun`` processes."""

    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def select_device(name: str | torch.device | None = None) -> torch.device:
    """``"auto"``/``None``: CUDA if present, else Apple's MPS, else CPU; otherwise the named device, if it exists."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device auto or cpu")
    if dev.type == "mps" and not _mps_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device auto or cpu")
    return dev


def setup_runtime(device: str | torch.device | None = None) -> Runtime:
    """Join the ``torchrun`` process group when ``RANK``/``WORLD_SIZE`` are set (nccl on CUDA, gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Runtime(select_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = select_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, rank=rank, world=world, local_rank=local_rank)


def machine() -> dict[str, object]:
    """What a measurement was made on, for the files that keep it: the CPU's model name, its core count, the vector
    instructions PyTorch's CPU kernels use (``AVX2``, ``AVX512``, ...: enough to change the last bits of a run),
    the CUDA device's name (``None`` without one) and the PyTorch version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass  # not Linux: platform's name will do
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": str(torch.__version__),  # a plain str: TorchVersion is not allowed in a weights-only checkpoint
    }


def default_cpu_threads() -> int:
    """Intra-op threads for CPU training: half the cores (at least 1), at most torch's default.

    The other half is left to the DataLoader workers. Taking every core backfires on a busy machine: OpenMP threads
    that wait for each other on oversubscribed cores made a lite step 10-30x slower on 2 cores (docs/BENCHMARKS.md).
    """
    return max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) // 2))


def to_numpy(x: Any) -> np.ndarray:
    """A tensor on any device (CUDA, MPS, the CPU) as a NumPy array: detached and copied to the CPU first.

    ``Tensor.numpy()`` works on CPU tensors only ("can't convert cuda:0 device type tensor to numpy"); every tensor
    of the package that leaves its device for NumPy goes through here. bfloat16, which NumPy lacks, becomes float32.
    Anything that is not a tensor goes through ``np.asarray``.
    """
    if not isinstance(x, torch.Tensor):
        return np.asarray(x)
    x = x.detach()
    if x.dtype == torch.bfloat16:
        x = x.float()
    return x.cpu().numpy()


def cuda_capability(device: torch.device) -> tuple[int, int] | None:
    """``(major, minor)`` compute capability of a CUDA ``device`` (T4: (7, 5), A100: (8, 0)); None for other devices."""
    if device.type != "cuda":
        return None
    return tuple(torch.cuda.get_device_capability(device))


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 in hardware: CUDA compute capability 8.0 (Ampere) or higher.

    Not ``torch.cuda.is_bf16_supported()``: it is True on a T4 (7.5) through emulation, where every convolution then
    runs a slow fallback kernel.
    """
    cap = cuda_capability(device)
    return cap is not None and cap >= (8, 0)


def autocast_settings(
    device: torch.device, enabled: bool = True, dtype: str = "auto"
) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``train.amp`` / ``train.amp_dtype``.

    ``"auto"``: on CUDA, bf16 where the GPU has it natively (:func:`native_bf16`, capability >= 8.0: A100, L4, H100),
    else fp16 + GradScaler (T4, V100); CPU and MPS train in float32 (CPU bf16 is slower than float32 for these
    convolutions on most laptops). ``"bf16"``: bf16 on any device, the CPU included (no scaler: bf16 has float32's
    range). ``"fp16"``: fp16 + scaler, CUDA only.
    """
    if not enabled:
        return None, False
    if dtype == "bf16":
        return torch.bfloat16, False
    if dtype == "fp16":
        if device.type != "cuda":
            raise ValueError(f"train.amp_dtype='fp16' needs CUDA (device is {device.type}); use 'bf16' on the CPU")
        return torch.float16, True
    if device.type != "cuda":
        return None, False
    if native_bf16(device):
        return torch.bfloat16, False
    return torch.float16, True


@contextlib.contextmanager
def cpu_autocast_kernels(device: torch.device, amp_dtype: torch.dtype | None) -> Iterator[None]:
    """Under bf16 autocast on the CPU, PyTorch's own convolution kernels instead of oneDNN's.

    oneDNN's bf16 weight gradient of a stride-2 3 x 3 convolution over a 1 x 1 input reads memory it never wrote (torch
    2.14: 16 different results in 100 identical calls, 2 of them inf/NaN), and small clips reach 1 x 1 maps. Float32
    and CUDA are not affected.
    """
    if device.type != "cpu" or amp_dtype != torch.bfloat16:
        yield
        return
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was


def all_ranks_agree(flag: bool, rt: Runtime) -> bool:
    """True on every rank when ``flag`` is True on any (e.g. one rank was asked to stop): ranks stop together."""
    if not rt.distributed:
        return flag
    t = torch.tensor(float(flag), device=rt.device)
    dist.all_reduce(t)
    return bool(t.item())


def barrier(rt: Runtime) -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    if rt.distributed:
        dist.barrier()
