"""The reference solutions of the exercises: plain code, one idea per line, as a student would write it.

``mmv_lite.exercises.solution(name)`` shows them; the checks compare a student's function with the library, and the
tests check that these solutions pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TEMPERATURE


def fac_embeddings(heads, f_v, f_a, f_t):
    """FAC: video and audio meet in the fine space S_va; video (and, at evaluation, audio) continue to S_vat.

    heads: the four heads by name (g_v_to_va, g_a_to_va, g_va_to_vat, g_t_to_vat), each (..., d_in) -> (..., d_out).
    f_v (B, d_v), f_a (B, d_a), f_t (B, K, d_t): backbone features.
    Returns {"z_v_va", "z_a_va", "z_v_vat", "z_a_vat", "z_t_vat"}, unnormalised; z_t_vat keeps the K axis.
    """
    z_v_va = heads["g_v_to_va"](f_v)
    z_a_va = heads["g_a_to_va"](f_a)
    z_v_vat = heads["g_va_to_vat"](torch.relu(z_v_va))  # the composed path: S_va -> ReLU -> S_vat
    z_a_vat = heads["g_va_to_vat"](torch.relu(z_a_va))  # audio takes the same path (never trained against text)
    z_t_vat = heads["g_t_to_vat"](f_t)
    return {"z_v_va": z_v_va, "z_a_va": z_a_va, "z_v_vat": z_v_vat, "z_a_vat": z_a_vat, "z_t_vat": z_t_vat}


def nce_loss(z_v, z_a, tau=TEMPERATURE):
    """MMV's symmetric NCE for a batch of B clips: z_v, z_a (B, D) unnormalised -> scalar, the mean over clips."""
    v = F.normalize(z_v, dim=-1)
    a = F.normalize(z_a, dim=-1)
    s = v @ a.T / tau  # s[i, j] = cos(v_i, a_j) / tau, (B, B)
    row_and_column = torch.cat([s, s.T], dim=1)  # row i: s[i, :] (video i vs every sound), then s[:, i]
    loss = torch.logsumexp(row_and_column, dim=1) - s.diagonal()  # one softmax over both; the positive is in both
    return loss.mean()


def mil_nce_loss(z_v, z_t, text_valid, tau=TEMPERATURE):
    """MIL-NCE: z_v (B, D), z_t (B, K, D) the K candidate narrations of each clip, text_valid (B, K) bool -> scalar.

    Invalid candidates (padding) count nowhere; a clip without any valid candidate is neither an anchor nor a negative.
    """
    B, K, D = z_t.shape
    v = F.normalize(z_v, dim=-1)
    t = F.normalize(z_t, dim=-1)
    s = (v @ t.reshape(B * K, D).T / tau).view(B, B, K)  # s[i, j, k] = cos(v_i, t_jk) / tau
    has_text = text_valid.any(dim=1)  # (B,) the clips that take part
    row = s.masked_fill(~text_valid[None, :, :], -math.inf)  # video i against every valid narration
    col_ok = text_valid[:, None, :] & has_text[None, :, None]  # narrations of clip i against every taking-part video
    col = s.transpose(0, 1).masked_fill(~col_ok, -math.inf)  # col[i, j, k] = s[j, i, k]
    own = s.diagonal(dim1=0, dim2=1).T.masked_fill(~text_valid, -math.inf)  # (B, K): s[i, i, k], clip i's bag
    denominator = torch.logsumexp(torch.cat([row.flatten(1), col.flatten(1)], dim=1)[has_text], dim=1)
    numerator = torch.logsumexp(own[has_text], dim=1)  # a soft maximum over the bag
    return (denominator - numerator).mean()


def training_step(model, inputs, loss_fn, optimizer):
    """One optimisation step: model(**inputs) -> loss_fn(output) (a scalar) -> gradients -> update. Returns the loss."""
    output = model(**inputs)  # forward
    loss = loss_fn(output)
    optimizer.zero_grad()  # forget the previous step's gradients (backward adds to .grad)
    loss.backward()  # d loss / d parameter, into every parameter's .grad
    optimizer.step()  # move each parameter against its gradient
    return loss.item()


def centre_modalities(z_a, z_b):
    """Two modalities in one space: z_a (N, D), z_b (M, D) -> (c_a (N, D), c_b (M, D), gap).

    c: each row L2-normalised, minus its own modality's mean direction (the map of notebook 04 with center=True).
    gap: the distance between the two modalities' centres (the means of their normalised rows).
    """
    u_a = F.normalize(torch.as_tensor(z_a, dtype=torch.float32), dim=-1)
    u_b = F.normalize(torch.as_tensor(z_b, dtype=torch.float32), dim=-1)
    centre_a, centre_b = u_a.mean(dim=0), u_b.mean(dim=0)
    gap = (centre_a - centre_b).norm().item()
    return u_a - centre_a, u_b - centre_b, gap


def deflate_conv(conv3d):
    """An nn.Conv3d (kernel kT x kH x kW) -> the nn.Conv2d that it is on a static clip: the kernel summed over time."""
    conv2d = nn.Conv2d(
        conv3d.in_channels,
        conv3d.out_channels,
        kernel_size=conv3d.kernel_size[1:],
        stride=conv3d.stride[1:],  # the spatial stride and padding stay; the temporal ones disappear
        padding=conv3d.padding[1:],
        dilation=conv3d.dilation[1:],
        groups=conv3d.groups,
        bias=conv3d.bias is not None,
    )
    with torch.no_grad():
        conv2d.weight.copy_(conv3d.weight.sum(dim=2))  # (out, in, kT, kH, kW) -> (out, in, kH, kW)
        if conv3d.bias is not None:
            conv2d.bias.copy_(conv3d.bias)  # added once per output, as before
    return conv2d


def recall_and_median_rank(sim, positive, ks=(1, 5, 10)):
    """sim (Nq, Nc) similarities, positive (Nq, Nc) bool -> {"R@1": %, "R@5": %, "R@10": %, "MedR": rank}.

    A query's rank is that of its best-ranked positive, 1 = first; a negative tied with it is ranked before it.
    Queries without any positive are left out.
    """
    best_positive = sim.masked_fill(~positive, -math.inf).max(dim=1).values  # (Nq,)
    rank = 1 + ((sim >= best_positive[:, None]) & ~positive).sum(dim=1)  # negatives at or above it, plus one
    rank = rank[positive.any(dim=1)].double()
    out = {f"R@{k}": 100.0 * (rank <= k).double().mean().item() for k in ks}
    out["MedR"] = rank.quantile(0.5).item()  # an even count: the mean of the two middle ranks (as np.median)
    return out
