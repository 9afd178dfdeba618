"""Contrastive losses of MMV: NCE for video-audio, MIL-NCE for video-text, and their weighted sum.

MMV_REFERENCE section 3. With ``s(x, y) = <x/|x|, y/|y|> / tau``:

- **NCE(v, a)**, symmetric: for clip i the positive is ``(v_i, a_i)``; the negatives are every other pair of the
  batch *in both directions*, ``v_i`` against every ``a_j`` and every ``v_j`` against ``a_i``::

      loss_i = logsumexp_j{ s(v_i, a_j) } (+) logsumexp_j{ s(v_j, a_i) }  -  s(v_i, a_i)

  where ``(+)`` is ``logaddexp`` (one logsumexp over the concatenation of the row and the column, so the positive
  appears once in each direction, exactly as in MIL-NCE's reference code).
- **MIL-NCE(v, t)**: each clip has K candidate narrations ``t_{i,1..K}``, some of which may be absent::

      loss_i = logsumexp{ s(v_i, t_jk) for all j, valid k } (+) logsumexp{ s(v_j, t_ik) for all j, valid k }
               - logsumexp_k{ s(v_i, t_ik) for valid k }

  With K = 1 this is NCE above.

Missing modalities. ``mask`` (B,) marks the clips that have the second modality (``has_audio``, ``has_text``).
A masked clip is removed from the term completely: it is not an anchor and it is not a negative for anyone, so the
loss of a batch equals the loss of the sub-batch of complete clips. (The embedding of an absent narration or a silent
track is an embedding of padding; using it as a negative would teach the model about padding.) Absent candidates
``text_valid[i, k] = False`` are likewise dropped from both the positives and the negatives. The loss is the mean over
the clips that remain; it is 0 (with a gradient of zeros) when none remain.

Global negatives. :func:`gather_with_grad` all-gathers embeddings across ``torch.distributed`` ranks and keeps
their gradients, so each rank's anchors see the whole global batch as negatives (open_clip's ``gather_with_grad``).
Each rank's loss is scaled so that DistributedDataParallel's gradient *average* equals the gradient of the global-batch
mean loss exactly (tested against a single process on the full batch).

All losses L2-normalise inside and compute in float32 with autocast off, so they are safe under bf16/fp16 autocast.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TEMPERATURE, Config
from .graphs import embedding_key

# Fill value for scores that must not count: finite (unlike -inf) so that rows with nothing valid give finite
# values and zero gradients instead of NaN; far below any real score (|score| <= 1 / tau).
_NEG = -1e9
# exp(-x) stays a normal float32 for x below about 87; beyond, the fixed-shift logsumexp would underflow.
_MAX_EXP_RANGE = 80.0


# --------------------------------------------------------------------------------------------------------------------
# Cross-device gathering
# --------------------------------------------------------------------------------------------------------------------


def _dist_on() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends every rank's gradient back to the rank that owns the rows.

    Forward: ``(B, ...)`` on each of W ranks -> ``(W * B, ...)``, the same on all ranks.
    Backward: the gradient w.r.t. the gathered tensor is summed over ranks (every rank's loss used these rows)
    and each rank keeps its own slice.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        world = dist.get_world_size()
        ctx.rank, ctx.batch = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from every rank along dim 0, keeping gradients: (W * B, ...).

    The identity when ``torch.distributed`` is not initialised or has one process. Every rank must pass the same
    shape (training drops the last incomplete batch, so it does).
    """
    if not _dist_on():
        return x
    _check_same_shape(x)
    return _GatherWithGrad.apply(x)


def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from every rank along dim 0 without gradients (masks, counts)."""
    if not _dist_on():
        return x
    _check_same_shape(x)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def _check_same_shape(x: Tensor) -> None:
    shape = torch.tensor(list(x.shape), dtype=torch.int64, device=x.device)
    lo, hi = shape.clone(), shape.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise ValueError(
            f"gather_with_grad: rank {dist.get_rank()} has a tensor of shape {tuple(x.shape)} but the ranks disagree "
            f"(min {lo.tolist()}, max {hi.tolist()}); every rank needs the same batch size (use drop_last=True)"
        )


# --------------------------------------------------------------------------------------------------------------------
# The losses
# --------------------------------------------------------------------------------------------------------------------


def _as_float32_normalised(z: Tensor) -> Tensor:
    return F.normalize(z.float(), dim=-1)


def _autocast_off(device: torch.device) -> torch.autocast:
    return torch.autocast(device_type=device.type, enabled=False)


def mil_nce(
    z_v: Tensor,
    z_t: Tensor,
    text_valid: Tensor | None = None,
    tau: float = TEMPERATURE,
    mask: Tensor | None = None,
    *,
    gather: bool | None = None,
) -> Tensor:
    """MIL-NCE between clips and their K candidate narrations (MMV_REFERENCE section 3).

    Args:
        z_v: ``(B, D)`` video embeddings (unnormalised).
        z_t: ``(B, K, D)`` text embeddings of the K candidates per clip (unnormalised).
        text_valid: ``(B, K)`` bool, True where candidate k of clip i exists; default all True.
        tau: temperature.
        mask: ``(B,)`` bool, True for clips that take part (``has_text``); default all True.
        gather: gather embeddings from all ``torch.distributed`` ranks for negatives (default: when initialised).

    Returns:
        scalar float32 loss: the mean of ``loss_i`` over the clips with a valid narration (global mean under DDP).
    """
    if z_v.ndim != 2 or z_t.ndim != 3 or z_t.shape[0] != z_v.shape[0] or z_t.shape[2] != z_v.shape[1]:
        raise ValueError(
            f"mil_nce: expected z_v (B, D) and z_t (B, K, D); got {tuple(z_v.shape)} and {tuple(z_t.shape)}"
        )
    B, K, _ = z_t.shape
    dev = z_v.device
    valid = torch.ones(B, K, dtype=torch.bool, device=dev) if text_valid is None else text_valid.to(dev, torch.bool)
    if valid.shape != (B, K):
        raise ValueError(f"mil_nce: text_valid must have shape {(B, K)}; got {tuple(valid.shape)}")
    if mask is not None:
        if mask.shape != (B,):
            raise ValueError(f"mil_nce: mask must have shape {(B,)}; got {tuple(mask.shape)}")
        valid = valid & mask.to(dev, torch.bool)[:, None]
    use_gather = _dist_on() if gather is None else (gather and _dist_on())

    with _autocast_off(dev):
        v = _as_float32_normalised(z_v)  # (B, D)
        t = _as_float32_normalised(z_t)  # (B, K, D)
        # A clip without any valid narration is neither an anchor nor a negative (module docstring).
        anchor = valid.any(dim=1)  # (B,)
        if use_gather:
            v_all, t_all, valid_all = gather_with_grad(v), gather_with_grad(t), gather_no_grad(valid)
            anchor_all = valid_all.any(dim=1)
        else:
            v_all, t_all, valid_all, anchor_all = v, t, valid, anchor
        N = v_all.shape[0]
        all_valid = bool(valid_all.all())
        v_scaled = v / tau  # scale the (B, D) side, not the (B, N, K) scores

        # rows[i, j, k] = s(v_i, t_jk): v_i against every text of every clip, (B, N, K).
        rows = torch.matmul(v_scaled, t_all.reshape(N * K, -1).t()).view(B, N, K)
        if use_gather:
            # cols[i, j, k] = s(v_j, t_ik): every video against the texts of clip i, (B, N, K).
            cols = torch.matmul(t.reshape(B * K, -1), v_all.t() / tau).view(B, K, N).transpose(1, 2)
            offset = dist.get_rank() * B
            own = rows[torch.arange(B, device=dev), torch.arange(offset, offset + B, device=dev)]  # (B, K)
            col_dims = (1, 2)
        else:
            # One process: the column of clip i is rows[:, i, :], the same matrix read the other way.
            cols = rows
            own = torch.diagonal(rows, dim1=0, dim2=1).t()  # (B, K): s(v_i, t_ik)
            col_dims = (0, 2)
        # What may enter the denominator: valid texts of every clip (rows); videos of complete clips (columns).
        row_keep = col_keep = None
        if not all_valid:
            row_keep = valid_all[None, :, :]
            if use_gather:
                col_keep = valid[:, None, :] & anchor_all[None, :, None]
            else:
                col_keep = anchor_all[:, None, None] & valid[None, :, :]

        # denominator_i = logsumexp over the concatenation [row_i, col_i], without building it.
        shift = 1.0 / tau
        if 2.0 * shift < _MAX_EXP_RANGE:
            # Scores of unit vectors lie in [-1/tau, 1/tau]: with the fixed shift 1/tau every exp lies in
            # [exp(-2/tau), 1], so one exp pass, no max pass, is stable; the row and column sums share it.
            e_rows = torch.exp(rows - shift)
            e_cols = e_rows if cols is rows else torch.exp(cols - shift)
            if row_keep is not None:
                e_rows, e_cols = e_rows * row_keep, e_cols * col_keep
            total = e_rows.sum(dim=(1, 2)) + e_cols.sum(dim=col_dims)
            denom = torch.log(total.clamp_min(torch.finfo(total.dtype).tiny)) + shift
        else:  # a very low temperature: per-row maxima (logsumexp) instead
            if row_keep is not None:
                rows, cols = rows.masked_fill(~row_keep, _NEG), cols.masked_fill(~col_keep, _NEG)
            denom = torch.logaddexp(torch.logsumexp(rows, dim=(1, 2)), torch.logsumexp(cols, dim=col_dims))
        numer = torch.logsumexp(own.masked_fill(~valid, _NEG), dim=1)
        per_clip = (denom - numer) * anchor  # masked anchors give exactly 0 (all values finite)
        return _mean_over(per_clip, anchor, use_gather)


def nce(
    z_a: Tensor,
    z_b: Tensor,
    tau: float = TEMPERATURE,
    mask: Tensor | None = None,
    *,
    gather: bool | None = None,
) -> Tensor:
    """Symmetric NCE between two modalities, negatives in both directions (MMV_REFERENCE section 3).

    Args:
        z_a, z_b: ``(B, D)`` embeddings of the two modalities of the same clips (unnormalised).
        tau: temperature.
        mask: ``(B,)`` bool, True for clips that have both modalities; default all True.
        gather: gather embeddings from all ranks for negatives (default: when ``torch.distributed`` is initialised).

    Returns:
        scalar float32 loss, the mean of ``loss_i`` over unmasked clips. Equals ``mil_nce`` with K = 1.
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"nce: expected two (B, D) tensors of the same shape; got {tuple(z_a.shape)}, {tuple(z_b.shape)}"
        )
    return mil_nce(z_a, z_b[:, None, :], None, tau=tau, mask=mask, gather=gather)


def candidate_weights(scores: Tensor | Any, tau: float = TEMPERATURE) -> Tensor:
    """``softmax(scores / tau)`` of one anchor's cosine ``scores (N,)``: how NCE shares its attention among the N
    candidates (float64)."""
    return torch.softmax(torch.as_tensor(scores, dtype=torch.float64) / tau, dim=0)


def anchor_nce(scores: Tensor | Any, positive: int, tau: float = TEMPERATURE) -> float:
    """One anchor's NCE in one direction, ``-log softmax(scores / tau)[positive]``, for cosine ``scores (N,)``.

    The form notebook 02 plots against the temperature; :func:`nce` is its batch version, whose denominator holds the
    anchor's row and column together (negatives in both directions)."""
    s = torch.as_tensor(scores, dtype=torch.float64) / tau
    return float(torch.logsumexp(s, dim=0) - s[positive])


def _mean_over(per_clip: Tensor, anchor: Tensor, use_gather: bool) -> Tensor:
    count = anchor.sum().to(per_clip.dtype)
    if use_gather:
        # DDP averages gradients over W ranks; scaling by W / (global count) makes that average the gradient of the
        # global-batch mean, also when ranks hold different numbers of complete clips.
        count = count.clone()
        dist.all_reduce(count, op=dist.ReduceOp.SUM)
        count = count / dist.get_world_size()
    return per_clip.sum() / count.clamp_min(1.0)


class MMVLoss(nn.Module):
    """The multimodal loss ``weight_va * NCE(v, a) + weight_vt * MIL-NCE(v, t)``.

    Which terms are on comes from ``cfg.train.modalities`` ("va", "vt", "vat"); which embedding each term reads
    comes from the graph (``embedding_key``): in ``fac`` NCE uses ``z_v_va``/``z_a_va`` and MIL-NCE ``z_v_vat``/
    ``z_t_vat``; in ``shared`` both use ``*_vat``; in ``disjoint`` ``*_va`` and ``*_vt``.

    ``forward(out, batch)`` takes the model's output dict and the batch dict (``has_audio`` (B,), ``has_text`` (B,),
    ``text_valid`` (B, K), each optional) and returns ``{"loss": total, "loss_va": ..., "loss_vt": ...}``
    (only the terms that are on), all float32 scalars.
    """

    def __init__(self, cfg: Config, gather: bool | None = None):
        super().__init__()
        t = cfg.train
        self.graph = cfg.model.graph
        self.tau = t.temperature
        self.gather = gather
        self.terms: dict[str, tuple[float, str, str]] = {}
        if "a" in t.modalities:
            self.terms["va"] = (t.weight_va, embedding_key(self.graph, "v", "a"), embedding_key(self.graph, "a", "v"))
        if "t" in t.modalities:
            self.terms["vt"] = (t.weight_vt, embedding_key(self.graph, "v", "t"), embedding_key(self.graph, "t", "v"))
        if not self.terms:
            raise ValueError(f"train.modalities={t.modalities!r} turns on no loss term; expected 'va', 'vt' or 'vat'")

    @property
    def needed_keys(self) -> list[str]:
        """The embedding keys this loss reads from the model output."""
        return sorted({k for _, kv, km in self.terms.values() for k in (kv, km)})

    def forward(self, out: dict[str, Tensor], batch: dict[str, Any]) -> dict[str, Tensor]:
        missing = [k for k in self.needed_keys if k not in out]
        if missing:
            raise KeyError(
                f"MMVLoss ({self.graph}, terms {sorted(self.terms)}) needs model outputs {missing}; "
                f"the model returned {sorted(k for k in out if k.startswith('z_'))}"
            )
        parts: dict[str, Tensor] = {}
        total = None
        for name, (weight, kv, km) in self.terms.items():
            if name == "va":
                term = nce(out[kv], out[km], tau=self.tau, mask=batch.get("has_audio"), gather=self.gather)
            else:
                term = mil_nce(
                    out[kv],
                    out[km],
                    batch.get("text_valid"),
                    tau=self.tau,
                    mask=batch.get("has_text"),
                    gather=self.gather,
                )
            parts[f"loss_{name}"] = term
            total = weight * term if total is None else total + weight * term
        return {"loss": total, **parts}
