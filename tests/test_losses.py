"""NCE, MIL-NCE and MMVLoss against naive double-loop implementations of MMV_REFERENCE section 3."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmv_lite.config import get_config
from mmv_lite.losses import MMVLoss, anchor_nce, candidate_weights, gather_with_grad, mil_nce, nce


def naive_mil_nce(z_v, z_t, text_valid, tau, mask=None):
    """loss_i = lse(v_i vs every valid text of every clip, every video vs valid texts of i) - lse(v_i vs own texts).

    Clips without a valid narration (or masked) are neither anchors nor negatives; the loss is their mean.
    """
    B, K, _ = z_t.shape
    v = [x / x.norm() for x in z_v.double()]
    t = [[x / x.norm() for x in row] for row in z_t.double()]
    valid = [[bool(text_valid[i][k]) and (mask is None or bool(mask[i])) for k in range(K)] for i in range(B)]
    complete = [any(row) for row in valid]
    losses = []
    for i in range(B):
        if not complete[i]:
            continue
        denom = []
        for j in range(B):
            for k in range(K):
                if valid[j][k]:
                    denom.append(float(v[i] @ t[j][k]) / tau)  # v_i vs text k of clip j
        for j in range(B):
            if not complete[j]:
                continue
            for k in range(K):
                if valid[i][k]:
                    denom.append(float(v[j] @ t[i][k]) / tau)  # video j vs text k of clip i
        numer = [float(v[i] @ t[i][k]) / tau for k in range(K) if valid[i][k]]
        lse = lambda xs: max(xs) + math.log(sum(math.exp(x - max(xs)) for x in xs))  # noqa: E731
        losses.append(lse(denom) - lse(numer))
    return sum(losses) / max(len(losses), 1)


def naive_nce(z_a, z_b, tau, mask=None):
    """loss_i = lse_j over [s(a_i, b_j), s(a_j, b_i)] - s(a_i, b_i), over unmasked clips."""
    B = z_a.shape[0]
    a = [x / x.norm() for x in z_a.double()]
    b = [x / x.norm() for x in z_b.double()]
    keep = [mask is None or bool(mask[i]) for i in range(B)]
    losses = []
    for i in range(B):
        if not keep[i]:
            continue
        scores = [float(a[i] @ b[j]) / tau for j in range(B) if keep[j]]
        scores += [float(a[j] @ b[i]) / tau for j in range(B) if keep[j]]
        m = max(scores)
        losses.append(m + math.log(sum(math.exp(s - m) for s in scores)) - float(a[i] @ b[i]) / tau)
    return sum(losses) / max(len(losses), 1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_nce_equals_double_loop(gen):
    z_a, z_b = torch.randn(7, 5, generator=gen), torch.randn(7, 5, generator=gen)
    for tau in (0.07, 0.5):
        assert nce(z_a, z_b, tau=tau).item() == pytest.approx(naive_nce(z_a, z_b, tau), abs=1e-5)
    mask = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    assert nce(z_a, z_b, tau=0.1, mask=mask).item() == pytest.approx(naive_nce(z_a, z_b, 0.1, mask), abs=1e-5)


def test_mil_nce_equals_double_loop(gen):
    B, K, D = 6, 4, 8
    z_v, z_t = torch.randn(B, D, generator=gen), torch.randn(B, K, D, generator=gen)
    all_valid = torch.ones(B, K, dtype=torch.bool)
    assert mil_nce(z_v, z_t, all_valid, tau=0.07).item() == pytest.approx(
        naive_mil_nce(z_v, z_t, all_valid, 0.07), abs=1e-5
    )
    # Ragged candidates, a clip with no narration at all, and a clip masked out by has_text.
    valid = torch.rand(B, K, generator=gen) > 0.4
    valid[:, 0] = True
    valid[2] = False
    mask = torch.tensor([1, 1, 1, 0, 1, 1], dtype=torch.bool)
    # tau = 0.01 takes the per-row-maximum path (scores span more than float32's exp range).
    for tau in (0.2, 0.07, 0.01):
        got = mil_nce(z_v, z_t, valid, tau=tau, mask=mask).item()
        assert got == pytest.approx(naive_mil_nce(z_v, z_t, valid, tau, mask), abs=1e-5, rel=1e-6)


def test_mil_nce_with_one_candidate_is_nce(gen):
    z_v, z_t = torch.randn(9, 16, generator=gen), torch.randn(9, 16, generator=gen)
    mask = torch.rand(9, generator=gen) > 0.3
    a = mil_nce(z_v, z_t[:, None, :], torch.ones(9, 1, dtype=torch.bool), tau=0.07, mask=mask)
    b = nce(z_v, z_t, tau=0.07, mask=mask)
    assert a.item() == pytest.approx(b.item(), abs=1e-6)


def test_masked_clips_contribute_nothing(gen):
    B, K, D = 8, 3, 6
    z_v = torch.randn(B, D, generator=gen, requires_grad=True)
    z_t = torch.randn(B, K, D, generator=gen, requires_grad=True)
    mask = torch.tensor([1, 1, 0, 1, 0, 1, 1, 1], dtype=torch.bool)
    valid = torch.ones(B, K, dtype=torch.bool)
    valid[5, 1:] = False  # a clip with one narration
    loss = mil_nce(z_v, z_t, valid, mask=mask)
    # The same as the loss of the sub-batch of complete clips ...
    keep = mask.nonzero().squeeze(1)
    sub = mil_nce(z_v[keep], z_t[keep], valid[keep])
    assert loss.item() == pytest.approx(sub.item(), abs=1e-6)
    # ... so masked clips and absent candidates get exactly zero gradient ...
    loss.backward()
    assert torch.all(z_v.grad[~mask] == 0) and torch.all(z_t.grad[~mask] == 0)
    assert torch.all(z_t.grad[5, 1:] == 0)
    assert z_v.grad[mask].abs().sum() > 0
    # ... and changing them changes nothing.
    z_v2, z_t2 = z_v.detach().clone(), z_t.detach().clone()
    z_v2[~mask] = torch.randn(int((~mask).sum()), D, generator=gen) * 100
    z_t2[~mask] = torch.randn(int((~mask).sum()), K, D, generator=gen)
    z_t2[5, 1:] = torch.randn(K - 1, D, generator=gen)
    assert mil_nce(z_v2, z_t2, valid, mask=mask).item() == pytest.approx(loss.item(), abs=1e-6)
    # Same for NCE.
    z_a = torch.randn(B, D, generator=gen)
    base = nce(z_v.detach(), z_a, mask=mask)
    z_a[~mask] = torch.randn(int((~mask).sum()), D, generator=gen)
    assert nce(z_v.detach(), z_a, mask=mask).item() == pytest.approx(base.item(), abs=1e-6)


def test_nothing_valid_gives_zero_and_finite_grads(gen):
    z_v = torch.randn(4, 5, generator=gen, requires_grad=True)
    z_t = torch.randn(4, 2, 5, generator=gen, requires_grad=True)
    loss = mil_nce(z_v, z_t, torch.zeros(4, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(z_v.grad).all() and torch.all(z_v.grad == 0)


def test_loss_falls_when_positives_align(gen):
    B, K, D = 16, 4, 32
    z_v = torch.randn(B, D, generator=gen)
    noise = torch.randn(B, K, D, generator=gen)
    losses = [mil_nce(z_v, alpha * z_v[:, None, :] + noise).item() for alpha in (0.0, 0.5, 1.0, 3.0, 10.0)]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    # At a high temperature every score counts alike: 2 B K terms over K positives gives log(2 B).
    assert mil_nce(z_v, noise, tau=100.0).item() == pytest.approx(math.log(2 * B), abs=0.05)
    assert losses[-1] < 0.5 * losses[0]
    # A few gradient steps on the embeddings lower the loss too.
    z_a = torch.randn(B, D, generator=gen, requires_grad=True)
    opt = torch.optim.SGD([z_a], lr=1.0)
    first = None
    for _ in range(20):
        loss = nce(z_v, z_a)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert nce(z_v, z_a).item() < first - 0.5


def test_scale_invariance_and_float32_under_bf16_autocast(gen):
    z_v, z_t = torch.randn(8, 12, generator=gen), torch.randn(8, 4, 12, generator=gen)
    ref = mil_nce(z_v, z_t)
    # Normalised inside: the scale of the embeddings does not matter.
    assert mil_nce(3.0 * z_v, 0.1 * z_t).item() == pytest.approx(ref.item(), abs=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = mil_nce(z_v.bfloat16(), z_t.bfloat16())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), abs=0.05)  # inputs rounded to bf16, maths in float32


def test_shape_errors():
    with pytest.raises(ValueError, match="z_t"):
        mil_nce(torch.randn(4, 8), torch.randn(4, 8))
    with pytest.raises(ValueError, match="text_valid"):
        mil_nce(torch.randn(4, 8), torch.randn(4, 2, 8), torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="same shape"):
        nce(torch.randn(4, 8), torch.randn(5, 8))


def test_gather_is_identity_without_distributed():
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x


@pytest.mark.parametrize(
    ("graph", "modalities", "keys"),
    [
        ("fac", "vat", {"z_v_va", "z_a_va", "z_v_vat", "z_t_vat"}),
        ("shared", "vat", {"z_v_vat", "z_a_vat", "z_t_vat"}),
        ("disjoint", "vat", {"z_v_va", "z_a_va", "z_v_vt", "z_t_vt"}),
        ("fac", "va", {"z_v_va", "z_a_va"}),
        ("fac", "vt", {"z_v_vat", "z_t_vat"}),
    ],
)
def test_mmv_loss_reads_the_graphs_spaces(graph, modalities, keys, gen):
    cfg = get_config("lite", graph=graph, modalities=modalities, weight_va=2.0, weight_vt=0.5)
    loss_fn = MMVLoss(cfg)
    assert set(loss_fn.needed_keys) == keys
    B, K, D = 6, 4, 10
    out = {k: torch.randn(B, K, D, generator=gen) if k[2] == "t" else torch.randn(B, D, generator=gen) for k in keys}
    batch = {
        "has_audio": torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool),
        "has_text": torch.tensor([1, 0, 1, 1, 1, 1], dtype=torch.bool),
        "text_valid": torch.ones(B, K, dtype=torch.bool),
    }
    res = loss_fn(out, batch)
    expect = 0.0
    if "a" in modalities:
        kv, ka = ("z_v_vat", "z_a_vat") if graph == "shared" else ("z_v_va", "z_a_va")
        va = nce(out[kv], out[ka], mask=batch["has_audio"])
        assert res["loss_va"].item() == pytest.approx(va.item(), abs=1e-6)
        expect += 2.0 * va.item()
    if "t" in modalities:
        kv, kt = ("z_v_vt", "z_t_vt") if graph == "disjoint" else ("z_v_vat", "z_t_vat")
        vt = mil_nce(out[kv], out[kt], batch["text_valid"], mask=batch["has_text"])
        assert res["loss_vt"].item() == pytest.approx(vt.item(), abs=1e-6)
        expect += 0.5 * vt.item()
    assert res["loss"].item() == pytest.approx(expect, abs=1e-5)


def test_mmv_loss_names_missing_outputs():
    loss_fn = MMVLoss(get_config("lite", graph="fac", modalities="va"))
    with pytest.raises(KeyError, match="z_a_va"):
        loss_fn({"z_v_va": torch.randn(4, 8)}, {})


def test_one_anchor_softmax_and_nce():
    s = np.array([0.5, 0.1, -0.2, 0.3])
    p = candidate_weights(s, 0.1).numpy()
    assert p.sum() == pytest.approx(1.0) and p.argmax() == 0
    assert anchor_nce(s, 0, 0.1) == pytest.approx(-np.log(p[0]))
    # Temperature to infinity: uniform attention, loss log N. Temperature to zero: all on the best candidate.
    assert anchor_nce(s, 0, 1e4) == pytest.approx(np.log(4), rel=1e-3)
    assert candidate_weights(s, 1e-3)[0] == pytest.approx(1.0)
    assert anchor_nce(s, 1, 1e-2) > anchor_nce(s, 1, 1.0)  # a wrong ranking is punished hard when cold
