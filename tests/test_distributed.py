"""Global negatives across processes: 2 real gloo processes vs one process on the full batch."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mmv_lite.config import get_config
from mmv_lite.losses import MMVLoss

B_LOCAL, K, D_IN, D = 5, 3, 12, 8


class TinyMMV(nn.Module):
    """Linear towers with the FAC output keys (no BatchNorm, so per-rank statistics do not enter)."""

    def __init__(self):
        super().__init__()
        self.v_va = nn.Linear(D_IN, D)
        self.a_va = nn.Linear(D_IN, D)
        self.va_to_vat = nn.Linear(D, D)
        self.t_vat = nn.Linear(D_IN, D)

    def forward(self, video, audio, text):
        z_v_va = self.v_va(video)
        return {
            "z_v_va": z_v_va,
            "z_a_va": self.a_va(audio),
            "z_v_vat": self.va_to_vat(torch.relu(z_v_va)),
            "z_t_vat": self.t_vat(text),
        }


def _data(world: int):
    g = torch.Generator().manual_seed(1)
    n = B_LOCAL * world
    batch = {
        "video": torch.randn(n, D_IN, generator=g),
        "audio": torch.randn(n, D_IN, generator=g),
        "text": torch.randn(n, K, D_IN, generator=g),
        "text_valid": torch.rand(n, K, generator=g) > 0.3,
        # Uneven masks across ranks: rank 0 has 4 clips with audio, rank 1 has 3.
        "has_audio": torch.tensor([1, 1, 0, 1, 1, 1, 0, 1, 0, 1], dtype=torch.bool)[:n],
        "has_text": torch.tensor([1, 1, 1, 1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)[:n],
    }
    batch["text_valid"][:, 0] = True
    return batch


def _grads(model: nn.Module, loss_fn: MMVLoss, batch: dict) -> tuple[float, dict[str, torch.Tensor]]:
    out = model(batch["video"], batch["audio"], batch["text"])
    loss = loss_fn(out, batch)["loss"]
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _worker(rank: int, world: int, init_file: str, out_dir: str, exited: Any) -> None:
    torch.set_num_threads(1)
    # A file store, not a TCP port: no race for a free port with other jobs on the machine.
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=120)
    )
    try:
        torch.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(TinyMMV())
        full = _data(world)
        local = {k: v[rank * B_LOCAL : (rank + 1) * B_LOCAL] for k, v in full.items()}
        loss_fn = MMVLoss(get_config("lite", graph="fac", modalities="vat", weight_va=1.0, weight_vt=0.7))
        loss, grads = _grads(model, loss_fn, local)
        mean_loss = torch.tensor(loss)
        dist.all_reduce(mean_loss)
        grads = {n.removeprefix("module."): g for n, g in grads.items()}
        torch.save({"loss": mean_loss.item() / world, "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
        del model  # DDP's reducer holds the group and its buffers: release them before the group goes
    finally:
        _teardown(exited)


def _teardown(exited: Any) -> None:
    """Take the gloo group down the same way on every run.

    gloo aborts a process ("terminate called without an active exception") when a rank destroys the group, or exits,
    while a peer still talks to it: so every rank first finishes its collectives (barrier), then destroys the group,
    and no rank exits before all have destroyed theirs (a process barrier outside torch.distributed).
    """
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
        exited.wait(timeout=120)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_process_gradients_equal_full_batch(tmp_path):
    world = 2
    exited = mp.get_context("spawn").Barrier(world)
    mp.spawn(_worker, args=(world, str(tmp_path / "store"), str(tmp_path), exited), nprocs=world, join=True)

    torch.manual_seed(0)
    model = TinyMMV()
    loss_fn = MMVLoss(get_config("lite", graph="fac", modalities="vat", weight_va=1.0, weight_vt=0.7))
    ref_loss, ref = _grads(model, loss_fn, _data(world))

    for rank in range(world):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        # The mean of the per-rank losses is the full-batch loss ...
        assert got["loss"] == pytest.approx(ref_loss, abs=1e-5)
        # ... and DDP's averaged gradients are the full-batch gradients, parameter by parameter.
        assert set(got["grads"]) == set(ref)
        for name, g in ref.items():
            torch.testing.assert_close(got["grads"][name], g, atol=1e-6, rtol=1e-5, msg=f"gradient of {name}")
