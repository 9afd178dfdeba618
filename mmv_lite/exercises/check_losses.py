"""Checks of the exercises on the losses (02): symmetric NCE and MIL-NCE. A wrong answer is recognised by
recomputing the loss with one typical mistake at a time (:func:`_nce_variant`, :func:`_mil_variant`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..config import TEMPERATURE
from ..losses import mil_nce, nce
from .core import (
    Hint,
    as_tensor,
    call,
    close,
    fn_name,
    match_mistake,
    needs_grad,
    paired_embeddings,
    randn,
    register,
    scalar,
)
from .solutions import mil_nce_loss, nce_loss


def _nce_variant(v, a, tau, normalise=True, temperature="divide", direction="both", positive_twice=True, reduce="mean"):
    """NCE in float64 with one thing changed (the reference when every argument keeps its default)."""
    v, a = v.double(), a.double()
    if normalise:
        v, a = F.normalize(v, dim=-1), F.normalize(a, dim=-1)
    s = v @ a.T
    s = {"divide": s / tau, "none": s, "multiply": s * tau}[temperature]
    diag = s.diagonal()
    lse_row, lse_col = torch.logsumexp(s, dim=1), torch.logsumexp(s, dim=0)
    if direction == "row":
        per = lse_row - diag
    elif direction == "column":
        per = lse_col - diag
    elif direction == "average":  # two softmaxes, averaged (CLIP's loss)
        per = 0.5 * (lse_row - diag) + 0.5 * (lse_col - diag)
    elif positive_twice:
        per = torch.logaddexp(lse_row, lse_col) - diag
    else:  # the union of row and column, the positive once
        off = s.masked_fill(torch.eye(len(s), dtype=torch.bool), -math.inf)
        per = torch.logsumexp(torch.cat([s, off.T], dim=1), dim=1) - diag
    return {"mean": per.mean(), "sum": per.sum(), "negative": -per.mean()}[reduce]


def _tau(tau: float, mistake: dict) -> float:
    """The temperature a mistake computes with: the paper's when it ignores the argument (``fixed_tau``)."""
    return TEMPERATURE if mistake.get("fixed_tau") else tau


def _rest(mistake: dict) -> dict:
    return {k: v for k, v in mistake.items() if k != "fixed_tau"}


_NCE_MISTAKES = (
    (
        dict(fixed_tau=True),
        "the temperature is fixed at 0.07: use the tau the function is given (the check also tries other values).",
    ),
    (
        dict(temperature="none"),
        "no temperature: divide the cosine similarities by tau before the softmax. Cosines lie in [-1, 1], so without "
        "it the softmax is nearly flat and even a perfect ranking costs almost log(2B).",
    ),
    (dict(temperature="multiply"), "the similarities were multiplied by tau; divide them: s = cos / tau."),
    (
        dict(normalise=False),
        "the embeddings are not L2-normalised: the score is the cosine, so normalise each row first "
        "(F.normalize(z, dim=-1)); raw dot products let the loss be lowered by growing the vectors.",
    ),
    (
        dict(direction="row"),
        "only one direction: each video picks its sound among all sounds (row i), but MMV's NCE is symmetric: the "
        "sound must also pick its video among all videos (column i). Put row i and column i in one softmax.",
    ),
    (
        dict(direction="column"),
        "only one direction (the columns): add the rows too, row i and column i in one softmax.",
    ),
    (
        dict(direction="average"),
        "two softmaxes averaged (rows, then columns: CLIP's loss). MMV's NCE puts row i and column i into ONE "
        "softmax: loss_i = logsumexp([s[i, :], s[:, i]]) - s[i, i].",
    ),
    (
        dict(positive_twice=False),
        "the positive s[i, i] is in both row i and column i, and the kit's denominator counts it twice "
        "(torch.cat([s, s.T], dim=1)), as the MIL-NCE authors' code does (the MMV paper's formula counts it once); "
        "that is why the loss never goes below log 2.",
    ),
    (dict(reduce="negative"), "wrong sign: the loss is -log(share of the positive), positive and falling as it wins."),
    (dict(reduce="sum"), "summed over the clips: return the mean, so that the loss does not grow with the batch."),
)


@register("nce", "02_losses", "symmetric NCE", nce_loss, "it matches mmv_lite.losses.nce on 4 random batches")
def _check_nce(fn: Callable) -> str | None:

    gen = torch.Generator().manual_seed(2)
    cases = [(*paired_embeddings(gen, B, D), tau) for B, D, tau in ((6, 8, TEMPERATURE), (5, 16, 0.2), (8, 4, 0.5))]
    cases.append((*paired_embeddings(gen, 4, 8, noise=3.0), TEMPERATURE))
    values, refs = [], []
    for v, a, tau in cases:
        v_in, a_in = v.clone().requires_grad_(True), a.clone().requires_grad_(True)
        out = call(fn, v_in, a_in, tau)
        val = scalar(out, fn, "B per-clip losses")
        ref = nce(v, a, tau=tau).double()
        values.append(val)
        refs.append(ref)
        if not close(val, ref):
            break
    else:
        return needs_grad(fn, out)
    used = cases[: len(values)]
    hint = match_mistake(
        values,
        [[_nce_variant(v, a, _tau(tau, kw), **_rest(kw)) for v, a, tau in used] for kw, _ in _NCE_MISTAKES],
        [h for _, h in _NCE_MISTAKES],
    )
    v, a, tau = cases[len(values) - 1]
    seen = f"on a batch of B={len(v)} clips, tau={tau}: yours {values[-1].item():.4f}, expected {refs[-1].item():.4f}"
    return f"{hint}\n  ({seen})" if hint else f"the loss differs from mmv_lite.losses.nce ({seen})."


def _mil_variant(
    v,
    t,
    valid,
    tau,
    normalise=True,
    temperature=True,
    numerator="logsumexp",
    columns=True,
    mask_numerator=True,
    mask_denominator=True,
    empty_clip="drop",
    reduce="mean",
):
    """MIL-NCE in float64 with one thing changed (the reference when every argument keeps its default).

    numerator: "logsumexp" | "sum_scores" | "mean_scores" | "max" | "log_mean_exp" | "first".
    empty_clip: "drop" (neither anchor nor negative) | "negative" (no anchor, but its video stays a negative) |
    "divide_all" (dropped, but the mean divides by B).
    """
    v, t = v.double(), t.double()
    B, K, D = t.shape
    if normalise:
        v, t = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
    s = (v @ t.reshape(B * K, D).T).view(B, B, K)
    if temperature:
        s = s / tau
    has = valid.any(dim=1)
    ones = torch.ones_like(valid)
    den_valid = valid if mask_denominator else ones
    num_valid = valid if mask_numerator else ones
    row = s.masked_fill(~den_valid[None, :, :], -math.inf).flatten(1)
    col_video = has if empty_clip == "drop" or empty_clip == "divide_all" else torch.ones_like(has)
    col_ok = den_valid[:, None, :] & col_video[None, :, None]
    col = s.transpose(0, 1).masked_fill(~col_ok, -math.inf).flatten(1)
    den = torch.logsumexp(torch.cat([row, col], dim=1) if columns else row, dim=1)
    own = s.diagonal(dim1=0, dim2=1).T  # (B, K)
    masked = own.masked_fill(~num_valid, -math.inf)
    n_valid = num_valid.sum(dim=1).clamp_min(1)
    if numerator == "logsumexp":
        num = torch.logsumexp(masked, dim=1)
    elif numerator == "log_mean_exp":
        num = torch.logsumexp(masked, dim=1) - n_valid.log()
    elif numerator == "max":
        num = masked.max(dim=1).values
    elif numerator == "sum_scores":
        num = own.masked_fill(~num_valid, 0).sum(dim=1)
    elif numerator == "mean_scores":
        num = own.masked_fill(~num_valid, 0).sum(dim=1) / n_valid
    else:  # "first": only the nearest narration
        num = own[:, 0]
    per = (den - num)[has]
    total = per.sum()
    if reduce == "sum":
        return total
    if reduce == "negative":
        return -total / has.sum()
    return total / (B if empty_clip == "divide_all" else has.sum())


_MIL_MISTAKES = (
    (
        dict(fixed_tau=True),
        "the temperature is fixed at 0.07: use the tau the function is given (the check also tries other values).",
    ),
    (
        dict(numerator="sum_scores"),
        "the bag's numerator sums the scores, sum_k s_ik; MIL-NCE's numerator is log sum_k exp(s_ik), a soft maximum: "
        "torch.logsumexp over the valid candidates (a sum of scores rewards every candidate, also the off-topic ones).",
    ),
    (
        dict(numerator="mean_scores"),
        "the bag's numerator averages the scores; MIL-NCE's numerator is logsumexp_k s_ik over the valid candidates.",
    ),
    (
        dict(numerator="max"),
        "the bag's numerator takes the best candidate (max); MIL-NCE uses the soft maximum logsumexp_k s_ik, which "
        "shares the gradient among the candidates by their softmax.",
    ),
    (
        dict(numerator="log_mean_exp"),
        "the numerator is log(mean_k exp(s_ik)); MIL-NCE uses log(sum_k ...), torch.logsumexp, without dividing by K.",
    ),
    (
        dict(numerator="first"),
        "only the first candidate is in the numerator: that is NCE with the nearest narration. MIL-NCE's numerator "
        "is logsumexp over the whole bag of valid candidates of clip i.",
    ),
    (
        dict(mask_numerator=False, mask_denominator=False),
        "padding is not masked: candidates with text_valid False (padding, no narration) entered the loss. Leave "
        "them out of the numerator and the denominator (masked_fill with -inf before logsumexp).",
    ),
    (
        dict(mask_denominator=False),
        "padding is masked in the numerator but not in the denominator: candidates with text_valid False must leave "
        "the row and the column too.",
    ),
    (
        dict(mask_numerator=False),
        "padding is masked in the denominator but not in the numerator: the bag's logsumexp must skip candidates "
        "with text_valid False too.",
    ),
    (
        dict(empty_clip="negative"),
        "a clip without any valid narration was left out as an anchor, but its video still sits in the other clips' "
        "columns as a negative. Such a clip takes no part at all (its video is not a negative either).",
    ),
    (
        dict(empty_clip="divide_all"),
        "the mean divides by all B clips; divide by the clips that take part (those with a valid narration).",
    ),
    (
        dict(temperature=False),
        "no temperature: divide the cosine similarities by tau before the softmax.",
    ),
    (
        dict(normalise=False),
        "the embeddings are not L2-normalised: normalise z_v and every candidate of z_t (F.normalize(z, dim=-1)).",
    ),
    (
        dict(columns=False),
        "only one direction: MIL-NCE is symmetric like NCE. Besides video i against every narration (the row), clip "
        "i's narrations against every video (the column) belong in the same denominator.",
    ),
    (dict(reduce="negative"), "wrong sign: the loss is denominator minus numerator, positive, falling as it learns."),
    (dict(reduce="sum"), "summed over the clips: return the mean over the clips that take part."),
)


def _mil_cases(gen: torch.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    cases = []
    for stage, B, K, D, tau in (("all", 5, 3, 8, TEMPERATURE), ("padding", 6, 4, 8, 0.1), ("empty", 6, 3, 8, 0.1)):
        v, match = paired_embeddings(gen, B, D)
        t = randn(gen, B, K, D) * (0.5 + 2 * torch.rand(B, K, 1, generator=gen))  # off-topic candidates
        t[torch.arange(B), torch.randint(0, K, (B,), generator=gen)] = match  # one candidate of each bag matches
        valid = torch.ones(B, K, dtype=torch.bool)
        if stage != "all":
            valid[1, 2:] = False
            valid[3, 1:] = False
            valid[4, 0] = False
            t[~valid] = 0.7 + 0.1 * randn(gen, int((~valid).sum()), D)  # padding: an embedding of its own
        if stage == "empty":
            valid[2] = False
        cases.append((stage, v, t, valid, tau))
    return cases


_MIL_STAGE = {
    "all": "every candidate valid",
    "padding": "some candidates are padding (text_valid False)",
    "empty": "one clip has no valid candidate at all",
}


@register(
    "mil_nce", "02_losses", "MIL-NCE", mil_nce_loss, "it matches mmv_lite.losses.mil_nce, with padding and empty bags"
)
def _check_mil_nce(fn: Callable) -> str | None:

    cases = _mil_cases(torch.Generator().manual_seed(3))
    values, refs = [], []
    for _stage, v, t, valid, tau in cases:
        v_in, t_in = v.clone().requires_grad_(True), t.clone().requires_grad_(True)
        out = call(fn, v_in, t_in, valid.clone(), tau)
        t_out = as_tensor(out, f"{fn_name(fn)}'s result")
        if t_out.numel() == 1 and not torch.isfinite(t_out).all():
            raise Hint(
                f"{fn_name(fn)} returned {t_out.item()} when {_MIL_STAGE[_stage]}: a masked entry still reaches a "
                "logsumexp, or a clip with nothing valid is averaged in. Mask with -inf only where something valid "
                "remains in the same logsumexp, and average over the clips with a valid narration."
            )
        val = scalar(out, fn, "per-clip losses")
        ref = mil_nce(v, t, valid, tau=tau).double()
        values.append(val)
        refs.append(ref)
        if not close(val, ref):
            break
    else:
        return needs_grad(fn, out)
    used = cases[: len(values)]
    hint = match_mistake(
        values,
        [[_mil_variant(v, t, m, _tau(tau, kw), **_rest(kw)) for _, v, t, m, tau in used] for kw, _ in _MIL_MISTAKES],
        [h for _, h in _MIL_MISTAKES],
    )
    stage, v, t, _, tau = used[-1]
    B, K = t.shape[:2]
    seen = (
        f"B={B}, K={K}, tau={tau}, {_MIL_STAGE[stage]}: yours {values[-1].item():.4f}, expected {refs[-1].item():.4f}"
    )
    return f"{hint}\n  ({seen})" if hint else f"the loss differs from mmv_lite.losses.mil_nce ({seen})."
