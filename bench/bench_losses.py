"""MIL-NCE forward + backward: mmv_lite.losses.mil_nce against the reference formula, side by side.

    python bench/bench_losses.py                      # B=512, K=4, D=256, 2 threads
    python bench/bench_losses.py --batch 512 --k 4 --dim 256 --repeats 30 --threads 2

The reference is the MIL-NCE authors' formulation (antoine77340/MIL-NCE_HowTo100M, ``loss.py``): one
(B, B*K) score matrix, the positives picked with an identity mask, and the denominator as one logsumexp over the
*concatenation* of each row with its column. Both sides get the same unnormalised embeddings and L2-normalise
them (mil_nce does so inside). Timings alternate between the two so machine load hits both alike; the report is
the median time of each and the median and spread (min-max) of the per-round ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mmv_lite.config import TEMPERATURE
from mmv_lite.losses import mil_nce


def reference_mil_nce(z_v: torch.Tensor, z_t: torch.Tensor, tau: float = TEMPERATURE) -> torch.Tensor:
    """MIL-NCE as written by its authors: concatenate the row and the column, then logsumexp."""
    v = F.normalize(z_v, dim=-1)
    t = F.normalize(z_t, dim=-1)
    B, K, D = t.shape
    x = torch.matmul(v, t.reshape(B * K, D).t()) / tau  # (B, B*K)
    x = x.view(B, B, K)
    nominator = x * torch.eye(B, device=x.device)[:, :, None]
    nominator = nominator.sum(dim=1)
    nominator = torch.logsumexp(nominator, dim=1)
    denominator = torch.cat((x, x.permute(1, 0, 2)), dim=1).view(B, -1)
    denominator = torch.logsumexp(denominator, dim=1)
    return torch.mean(denominator - nominator)


def _time(fn, z_v: torch.Tensor, z_t: torch.Tensor) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    z_v.grad, z_t.grad = None, None
    t0 = time.perf_counter()
    loss = fn(z_v, z_t)
    loss.backward()
    if z_v.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, loss.item(), z_v.grad.clone(), z_t.grad.clone()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    z_v = torch.randn(a.batch, a.dim, generator=g).to(a.device).requires_grad_()
    z_t = torch.randn(a.batch, a.k, a.dim, generator=g).to(a.device).requires_grad_()
    text_valid = torch.ones(a.batch, a.k, dtype=torch.bool, device=a.device)

    def ours(v, t):
        return mil_nce(v, t, text_valid)

    # Same values (and gradients) first.
    _, l_ours, gv_ours, gt_ours = _time(ours, z_v, z_t)
    _, l_ref, gv_ref, gt_ref = _time(reference_mil_nce, z_v, z_t)
    grad_diff = max((gv_ours - gv_ref).abs().max().item(), (gt_ours - gt_ref).abs().max().item())
    for _ in range(3):  # warm-up
        _time(ours, z_v, z_t)
        _time(reference_mil_nce, z_v, z_t)
    t_ours, t_ref, ratios = [], [], []
    for i in range(a.repeats):
        pair = [(ours, t_ours), (reference_mil_nce, t_ref)]
        if i % 2:
            pair.reverse()
        for fn, acc in pair:
            acc.append(_time(fn, z_v, z_t)[0])
        ratios.append(t_ours[-1] / t_ref[-1])
    print(
        f"MIL-NCE forward+backward, B={a.batch} K={a.k} D={a.dim}, {a.device}, {a.threads} threads, {a.repeats} rounds"
    )
    print(f"loss: mil_nce {l_ours:.6f}  reference {l_ref:.6f}  |diff| {abs(l_ours - l_ref):.2e}")
    print(f"max |grad diff| {grad_diff:.2e}")
    med_ours, med_ref, r = 1e3 * statistics.median(t_ours), 1e3 * statistics.median(t_ref), statistics.median(ratios)
    print(f"median time: mil_nce {med_ours:.2f} ms, reference {med_ref:.2f} ms")
    print(f"ratio mil_nce / reference: median {r:.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
