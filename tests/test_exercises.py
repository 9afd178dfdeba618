"""The graded exercises (mmv_lite.exercises): every check accepts its reference solution, and rejects typical wrong
answers, written here as a student would write them, with the hint that names the mistake."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmv_lite import exercises as ex
from mmv_lite.exercises import check_losses, core

pytestmark = pytest.mark.usefixtures("one_thread")


def verdict(name, fn, capsys):
    """(passed, printed text) of exercise ``name``'s check on ``fn``."""
    ok = ex.check(name, fn)
    return ok, capsys.readouterr().out


def rejects(name, fn, capsys, *phrases):
    ok, text = verdict(name, fn, capsys)
    assert not ok, f"{name}: a wrong answer passed:\n{text}"
    assert text.startswith("✗"), text
    for phrase in phrases:
        assert phrase in text, f"{name}: expected {phrase!r} in the hint:\n{text}"
    return text


# --------------------------------------------------------------------------------------------------------------------
# The machinery
# --------------------------------------------------------------------------------------------------------------------


def test_every_notebook_01_to_06_has_an_exercise():
    assert {e.notebook[:2] for e in ex.EXERCISES.values()} == {"01", "02", "03", "04", "05", "06"}


@pytest.mark.parametrize("name", list(ex.EXERCISES))
def test_the_reference_solution_passes(name, capsys):
    ok, text = verdict(name, ex.EXERCISES[name].solution, capsys)
    assert ok and text.startswith("✓"), text


@pytest.mark.parametrize("name", list(ex.EXERCISES))
def test_a_stub_gets_told_what_is_missing(name, capsys):
    def stub(*args):
        raise NotImplementedError("your code here")

    rejects(name, stub, capsys, "not written yet", "raise NotImplementedError")


@pytest.mark.parametrize("name", list(ex.EXERCISES))
def test_a_crash_is_reported_not_raised(name, capsys):
    def crashes(*args):
        return 1 / 0

    rejects(name, crashes, capsys, "ZeroDivisionError")


def test_the_decorator_swaps_in_the_solution_only_when_asked(monkeypatch):
    def mine(z_v, z_a, tau=0.07):
        raise NotImplementedError

    monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    assert ex.exercise("nce")(mine) is mine
    monkeypatch.setenv(ex.SOLUTIONS_ENV, "1")
    assert ex.exercise("nce")(mine) is ex.nce_loss
    monkeypatch.setenv(ex.SOLUTIONS_ENV, "0")
    assert ex.exercise("nce")(mine) is mine
    with pytest.raises(KeyError, match="no exercise named 'ncee'"):
        ex.exercise("ncee")


def test_solution_and_reveal_show_the_reference_source():
    text = ex.solution("mil_nce")
    assert text.startswith("def mil_nce_loss(") and "logsumexp" in text
    shown = ex.reveal("recall")
    assert repr(shown) == ex.solution("recall")
    assert shown._repr_html_().startswith("<details") and "&gt;=" in shown._repr_html_()


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check("train_step", ex.training_step, quiet=True)
    assert torch.equal(torch.rand(3), expected)


def test_a_broken_reference_is_an_error_not_a_hint(monkeypatch):
    broken = ex.Exercise("nce", "02_losses", "NCE", lambda *a: torch.tensor(0.0), ex.EXERCISES["nce"].diagnose, "")
    monkeypatch.setitem(ex.EXERCISES, "nce", broken)
    with pytest.raises(AssertionError, match="reference solution"):
        ex.check("nce", broken.solution)


# --------------------------------------------------------------------------------------------------------------------
# 01 · FAC
# --------------------------------------------------------------------------------------------------------------------


def test_fac_without_relu(capsys):
    def fac(heads, f_v, f_a, f_t):
        z_v_va, z_a_va = heads["g_v_to_va"](f_v), heads["g_a_to_va"](f_a)
        return {
            "z_v_va": z_v_va,
            "z_a_va": z_a_va,
            "z_v_vat": heads["g_va_to_vat"](z_v_va),
            "z_a_vat": heads["g_va_to_vat"](z_a_va),
            "z_t_vat": heads["g_t_to_vat"](f_t),
        }

    rejects("fac", fac, capsys, "has no ReLU", "g_va_to_vat(relu(z_v_va))")


def test_fac_without_the_audio_path(capsys):
    def fac(heads, f_v, f_a, f_t):
        z_v_va = heads["g_v_to_va"](f_v)
        return {
            "z_v_va": z_v_va,
            "z_a_va": heads["g_a_to_va"](f_a),
            "z_v_vat": heads["g_va_to_vat"](torch.relu(z_v_va)),
            "z_t_vat": heads["g_t_to_vat"](f_t),
        }

    rejects("fac", fac, capsys, "z_a_vat is missing", "g_va_to_vat(relu(z_a_va))")


def test_fac_audio_through_the_video(capsys):
    def fac(heads, f_v, f_a, f_t):
        z_v_va = heads["g_v_to_va"](f_v)
        z_v_vat = heads["g_va_to_vat"](torch.relu(z_v_va))
        return {
            "z_v_va": z_v_va,
            "z_a_va": heads["g_a_to_va"](f_a),
            "z_v_vat": z_v_vat,
            "z_a_vat": z_v_vat,
            "z_t_vat": heads["g_t_to_vat"](f_t),
        }

    rejects("fac", fac, capsys, "z_a_vat is the video's")


def test_fac_feature_into_the_composed_head_gets_the_sizes(capsys):
    def fac(heads, f_v, f_a, f_t):
        return {"z_v_va": heads["g_v_to_va"](f_v), "z_v_vat": heads["g_va_to_vat"](f_v)}

    rejects("fac", fac, capsys, "RuntimeError", "wrong size", "g_va_to_vat 8 -> 6")


def test_fac_normalised_or_text_pooled(capsys):
    def normalised(heads, f_v, f_a, f_t):
        return {k: F.normalize(z, dim=-1) for k, z in ex.fac_embeddings(heads, f_v, f_a, f_t).items()}

    def pooled(heads, f_v, f_a, f_t):
        return {**ex.fac_embeddings(heads, f_v, f_a, f_t), "z_t_vat": heads["g_t_to_vat"](f_t.mean(dim=1))}

    rejects("fac", normalised, capsys, "z_v_va is L2-normalised", "unnormalised")
    rejects("fac", pooled, capsys, "z_t_vat has shape", "Keep the K candidates")


# --------------------------------------------------------------------------------------------------------------------
# 02 · NCE and MIL-NCE
# --------------------------------------------------------------------------------------------------------------------


def _sim(z_v, z_a, tau):
    return F.normalize(z_v, dim=-1) @ F.normalize(z_a, dim=-1).T / tau


def test_nce_without_temperature(capsys):
    def nce(z_v, z_a, tau=0.07):
        s = F.normalize(z_v, dim=-1) @ F.normalize(z_a, dim=-1).T
        return (torch.logsumexp(torch.cat([s, s.T], dim=1), dim=1) - s.diagonal()).mean()

    rejects("nce", nce, capsys, "no temperature", "divide the cosine similarities by tau")


def test_nce_one_direction(capsys):
    def nce(z_v, z_a, tau=0.07):
        s = _sim(z_v, z_a, tau)
        return F.cross_entropy(s, torch.arange(len(s)))

    rejects("nce", nce, capsys, "only one direction", "column i")


def test_nce_clip_style_average_of_two_directions(capsys):
    def nce(z_v, z_a, tau=0.07):
        s = _sim(z_v, z_a, tau)
        labels = torch.arange(len(s))
        return (F.cross_entropy(s, labels) + F.cross_entropy(s.T, labels)) / 2

    rejects("nce", nce, capsys, "two softmaxes averaged", "ONE softmax")


def test_nce_without_normalisation(capsys):
    def nce(z_v, z_a, tau=0.07):
        s = z_v @ z_a.T / tau
        return (torch.logsumexp(torch.cat([s, s.T], dim=1), dim=1) - s.diagonal()).mean()

    rejects("nce", nce, capsys, "not L2-normalised", "F.normalize")


def test_losses_with_the_temperature_fixed(capsys):
    def nce(z_v, z_a, tau=0.07):
        return ex.nce_loss(z_v, z_a, 0.07)

    def mil(z_v, z_t, valid, tau=0.07):
        return ex.mil_nce_loss(z_v, z_t, valid, 0.07)

    rejects("nce", nce, capsys, "the temperature is fixed at 0.07")
    rejects("mil_nce", mil, capsys, "the temperature is fixed at 0.07")


def test_nce_summed_per_clip_or_detached(capsys):
    def summed(z_v, z_a, tau=0.07):
        s = _sim(z_v, z_a, tau)
        return (torch.logsumexp(torch.cat([s, s.T], dim=1), dim=1) - s.diagonal()).sum()

    def per_clip(z_v, z_a, tau=0.07):
        s = _sim(z_v, z_a, tau)
        return torch.logsumexp(torch.cat([s, s.T], dim=1), dim=1) - s.diagonal()

    def as_float(z_v, z_a, tau=0.07):
        return ex.nce_loss(z_v, z_a, tau).item()

    rejects("nce", summed, capsys, "summed over the clips")
    rejects("nce", per_clip, capsys, "returned shape (6,)", "return their mean")
    rejects("nce", as_float, capsys, "without a gradient", "loss.backward()")


def _mil(z_v, z_t, valid, tau, numerator):
    """A MIL-NCE that masks padding correctly but lets the caller choose the bag's numerator."""
    B, K, D = z_t.shape
    s = (F.normalize(z_v, dim=-1) @ F.normalize(z_t, dim=-1).reshape(B * K, D).T / tau).view(B, B, K)
    has = valid.any(dim=1)
    row = s.masked_fill(~valid[None], -math.inf).flatten(1)
    col = s.transpose(0, 1).masked_fill(~(valid[:, None, :] & has[None, :, None]), -math.inf).flatten(1)
    own = s.diagonal(dim1=0, dim2=1).T
    den = torch.logsumexp(torch.cat([row, col], dim=1), dim=1)
    return (den[has] - numerator(own, valid)[has]).mean()


def test_mil_nce_summing_instead_of_logsumexp(capsys):
    def mil(z_v, z_t, valid, tau=0.07):
        return _mil(z_v, z_t, valid, tau, lambda own, v: (own * v).sum(dim=1))

    rejects("mil_nce", mil, capsys, "sums the scores", "torch.logsumexp")


def test_mil_nce_hard_max(capsys):
    def mil(z_v, z_t, valid, tau=0.07):
        return _mil(z_v, z_t, valid, tau, lambda own, v: own.masked_fill(~v, -math.inf).max(dim=1).values)

    rejects("mil_nce", mil, capsys, "takes the best candidate (max)")


def test_mil_nce_padding_not_masked(capsys):
    def mil(z_v, z_t, valid, tau=0.07):
        B, K, D = z_t.shape
        s = (F.normalize(z_v, dim=-1) @ F.normalize(z_t, dim=-1).reshape(B * K, D).T / tau).view(B, B, K)
        den = torch.logaddexp(torch.logsumexp(s.flatten(1), dim=1), torch.logsumexp(s.transpose(0, 1).flatten(1), 1))
        return (den - torch.logsumexp(s.diagonal(dim1=0, dim2=1).T, dim=1)).mean()

    rejects("mil_nce", mil, capsys, "padding is not masked", "text_valid False")


def test_mil_nce_empty_clip_still_a_negative(capsys):
    def mil(z_v, z_t, valid, tau=0.07):
        B, K, D = z_t.shape
        s = (F.normalize(z_v, dim=-1) @ F.normalize(z_t, dim=-1).reshape(B * K, D).T / tau).view(B, B, K)
        row = s.masked_fill(~valid[None], -math.inf).flatten(1)
        col = s.transpose(0, 1).masked_fill(~valid[:, None, :], -math.inf).flatten(1)  # every video, even empty clips
        num = torch.logsumexp(s.diagonal(dim1=0, dim2=1).T.masked_fill(~valid, -math.inf), dim=1)
        has = valid.any(dim=1)
        return (torch.logsumexp(torch.cat([row, col], 1), 1) - num)[has].mean()

    rejects("mil_nce", mil, capsys, "its video still sits in the other clips' columns")


def test_mil_nce_nearest_narration_only_and_rows_only(capsys):
    def nearest(z_v, z_t, valid, tau=0.07):
        return _mil(z_v, z_t, valid, tau, lambda own, v: own[:, 0])

    def rows_only(z_v, z_t, valid, tau=0.07):
        B, K, D = z_t.shape
        s = (F.normalize(z_v, dim=-1) @ F.normalize(z_t, dim=-1).reshape(B * K, D).T / tau).view(B, B, K)
        den = torch.logsumexp(s.masked_fill(~valid[None], -math.inf).flatten(1), dim=1)
        num = torch.logsumexp(s.diagonal(dim1=0, dim2=1).T.masked_fill(~valid, -math.inf), dim=1)
        has = valid.any(dim=1)
        return (den - num)[has].mean()

    rejects("mil_nce", nearest, capsys, "only the first candidate")
    rejects("mil_nce", rows_only, capsys, "only one direction")


def test_mil_nce_that_turns_infinite_on_an_empty_bag(capsys):
    def mil(z_v, z_t, valid, tau=0.07):
        B, K, D = z_t.shape
        s = (F.normalize(z_v, dim=-1) @ F.normalize(z_t, dim=-1).reshape(B * K, D).T / tau).view(B, B, K)
        row = s.masked_fill(~valid[None], -math.inf).flatten(1)
        col = s.transpose(0, 1).masked_fill(~valid[:, None, :], -math.inf).flatten(1)
        num = torch.logsumexp(s.diagonal(dim1=0, dim2=1).T.masked_fill(~valid, -math.inf), dim=1)
        return (torch.logsumexp(torch.cat([row, col], 1), 1) - num).mean()

    rejects("mil_nce", mil, capsys, "returned inf", "one clip has no valid candidate")


@pytest.mark.parametrize("tau", [0.07, 0.2])
def test_the_mistake_catalogues_start_from_the_library(tau):
    """The hints are found by recomputing each mistake; with no mistake, those recomputations are the library."""
    from mmv_lite.losses import mil_nce, nce

    mil_variant, nce_variant = check_losses._mil_variant, check_losses._nce_variant
    for _stage, v, t, valid, _ in check_losses._mil_cases(torch.Generator().manual_seed(0)):
        assert torch.allclose(mil_variant(v, t, valid, tau).float(), mil_nce(v, t, valid, tau=tau), atol=1e-5)
    v, a = core.paired_embeddings(torch.Generator().manual_seed(0), 6, 8)
    assert torch.allclose(nce_variant(v, a, tau).float(), nce(v, a, tau=tau), atol=1e-5)
    assert not torch.allclose(nce_variant(v, a, tau, positive_twice=False), nce_variant(v, a, tau))


# --------------------------------------------------------------------------------------------------------------------
# 03 · One training step
# --------------------------------------------------------------------------------------------------------------------


def test_training_step_without_zero_grad(capsys):
    def step(model, inputs, loss_fn, optimizer):
        loss = loss_fn(model(**inputs))
        loss.backward()
        optimizer.step()
        return loss.item()

    rejects("train_step", step, capsys, "backward() ADDS", "optimizer.zero_grad() before loss.backward()")


def test_training_step_with_zero_grad_after_backward(capsys):
    def step(model, inputs, loss_fn, optimizer):
        loss = loss_fn(model(**inputs))
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        return loss.item()

    rejects("train_step", step, capsys, "did not move", "BEFORE it")


def test_training_step_without_optimizer_step(capsys):
    def step(model, inputs, loss_fn, optimizer):
        optimizer.zero_grad()
        loss = loss_fn(model(**inputs))
        loss.backward()
        return loss.item()

    rejects("train_step", step, capsys, "although they have gradients", "optimizer.step()")


def test_training_step_ascending(capsys):
    def step(model, inputs, loss_fn, optimizer):
        optimizer.zero_grad()
        loss = loss_fn(model(**inputs))
        (-loss).backward()
        optimizer.step()
        return loss.item()

    rejects("train_step", step, capsys, "wrong way")


def test_training_step_under_no_grad_or_in_eval_mode(capsys):
    def no_grad(model, inputs, loss_fn, optimizer):
        optimizer.zero_grad()
        with torch.no_grad():
            loss = loss_fn(model(**inputs))
        loss.backward()
        optimizer.step()
        return loss.item()

    def eval_mode(model, inputs, loss_fn, optimizer):
        model.eval()
        return ex.training_step(model, inputs, loss_fn, optimizer)

    rejects("train_step", no_grad, capsys, "RuntimeError", "torch.no_grad()")
    rejects("train_step", eval_mode, capsys, "evaluation mode", "BatchNorm")


def test_training_step_that_returns_nothing(capsys):
    def step(model, inputs, loss_fn, optimizer):
        ex.training_step(model, inputs, loss_fn, optimizer)

    rejects("train_step", step, capsys, "returns None", "loss.item()")


# --------------------------------------------------------------------------------------------------------------------
# 04 · Centring and the modality gap
# --------------------------------------------------------------------------------------------------------------------


def test_gap_without_normalising(capsys):
    def centre(z_a, z_b):
        m_a, m_b = z_a.mean(0), z_b.mean(0)
        return z_a - m_a, z_b - m_b, (m_a - m_b).norm().item()

    rejects("gap", centre, capsys, "without being L2-normalised first")


def test_gap_with_the_joint_mean(capsys):
    def centre(z_a, z_b):
        u_a, u_b = F.normalize(z_a, dim=-1), F.normalize(z_b, dim=-1)
        both = torch.cat([u_a, u_b]).mean(0)
        return u_a - both, u_b - both, (u_a.mean(0) - u_b.mean(0)).norm().item()

    rejects("gap", centre, capsys, "mean of BOTH modalities together", "its own mean")


def test_gap_as_a_cosine_or_swapped(capsys):
    def cosine(z_a, z_b):
        c_a, c_b, _ = ex.centre_modalities(z_a, z_b)
        u_a, u_b = F.normalize(z_a, dim=-1), F.normalize(z_b, dim=-1)
        return c_a, c_b, F.cosine_similarity(u_a.mean(0), u_b.mean(0), dim=0).item()

    def swapped(z_a, z_b):
        c_a, c_b, gap = ex.centre_modalities(z_a, z_b)
        return c_b, c_a, gap

    rejects("gap", cosine, capsys, "the gap is the DISTANCE")
    rejects("gap", swapped, capsys, "swapped")


def test_gap_renormalised_after_centring_is_accepted(capsys):
    def centre(z_a, z_b):
        c_a, c_b, gap = ex.centre_modalities(z_a, z_b)
        return F.normalize(c_a, dim=-1), F.normalize(c_b, dim=-1), gap

    assert verdict("gap", centre, capsys)[0]


def test_library_centring_and_gap():
    from mmv_lite.embedding import centred, modality_gap

    z = torch.randn(30, 5) * 3 + 2
    c = centred(z)
    assert np.allclose(c.mean(0), 0, atol=1e-6)
    assert modality_gap(z, z) == pytest.approx(0.0, abs=1e-9)
    assert modality_gap(torch.ones(4, 3), -torch.ones(5, 3)) == pytest.approx(2.0)


# --------------------------------------------------------------------------------------------------------------------
# 05 · Deflation
# --------------------------------------------------------------------------------------------------------------------


def _conv2d_like(conv3d, weight, bias, padding=None):
    conv2d = nn.Conv2d(
        conv3d.in_channels,
        conv3d.out_channels,
        conv3d.kernel_size[1:],
        stride=conv3d.stride[1:],
        padding=conv3d.padding[1:] if padding is None else padding,
        bias=bias is not None,
    )
    with torch.no_grad():
        conv2d.weight.copy_(weight)
        if bias is not None:
            conv2d.bias.copy_(bias)
    return conv2d


def test_deflation_that_averages(capsys):
    def deflate(conv3d):
        return _conv2d_like(conv3d, conv3d.weight.mean(dim=2), conv3d.bias)

    rejects("deflate", deflate, capsys, "averaged over time", "sum over time")


def test_deflation_that_keeps_the_middle_slice(capsys):
    def deflate(conv3d):
        return _conv2d_like(conv3d, conv3d.weight[:, :, conv3d.kernel_size[0] // 2], conv3d.bias)

    rejects("deflate", deflate, capsys, "one time slice", "weight.sum(dim=2)")


def test_deflation_without_bias_or_padding(capsys):
    def no_bias(conv3d):
        return _conv2d_like(conv3d, conv3d.weight.sum(dim=2), None)

    def no_padding(conv3d):
        return _conv2d_like(conv3d, conv3d.weight.sum(dim=2), conv3d.bias, padding=0)

    rejects("deflate", no_bias, capsys, "the bias is missing")
    rejects("deflate", no_padding, capsys, "keep the SPATIAL stride and padding")


def test_deflation_in_place_or_returning_the_kernel(capsys):
    def in_place(conv3d):
        conv3d.weight.data = conv3d.weight.data.sum(dim=2, keepdim=True)
        return conv3d

    def kernel_only(conv3d):
        return conv3d.weight.sum(dim=2)

    rejects("deflate", in_place, capsys, "changed in place")
    rejects("deflate", kernel_only, capsys, "returned a tensor", "return a module")


# --------------------------------------------------------------------------------------------------------------------
# 06 · Recall@K and median rank
# --------------------------------------------------------------------------------------------------------------------


def _metrics(rank, ks=(1, 5, 10)):
    out = {f"R@{k}": 100.0 * (rank <= k).double().mean().item() for k in ks}
    out["MedR"] = float(np.median(rank.numpy()))
    return out


def test_recall_with_optimistic_ties(capsys):
    def recall(sim, positive, ks=(1, 5, 10)):
        best = sim.masked_fill(~positive, -math.inf).max(dim=1).values
        rank = 1 + ((sim > best[:, None]) & ~positive).sum(dim=1)
        return _metrics(rank[positive.any(dim=1)], ks)

    rejects("recall", recall, capsys, "ties are broken optimistically", "sim >= the positive's")


def test_recall_with_zero_based_ranks(capsys):
    def recall(sim, positive, ks=(1, 5, 10)):
        best = sim.masked_fill(~positive, -math.inf).max(dim=1).values
        rank = ((sim >= best[:, None]) & ~positive).sum(dim=1)
        return _metrics(rank[positive.any(dim=1)], ks)

    rejects("recall", recall, capsys, "ranks start at 1")


def test_recall_by_argsort_position(capsys):
    def recall(sim, positive, ks=(1, 5, 10)):
        order = sim.argsort(dim=1, descending=True, stable=True)
        rank = torch.gather(positive, 1, order).double().argmax(dim=1) + 1
        return _metrics(rank[positive.any(dim=1)], ks)

    rejects("recall", recall, capsys, "ties are broken by position")


def test_recall_as_a_fraction_or_with_torch_median(capsys):
    def fraction(sim, positive, ks=(1, 5, 10)):
        out = ex.recall_and_median_rank(sim, positive, ks)
        return {k: (v / 100 if k.startswith("R@") else v) for k, v in out.items()}

    def lower_median(sim, positive, ks=(1, 5, 10)):
        best = sim.masked_fill(~positive, -math.inf).max(dim=1).values
        rank = (1 + ((sim >= best[:, None]) & ~positive).sum(dim=1))[positive.any(dim=1)]
        return {**_metrics(rank, ks), "MedR": rank.median().item()}

    rejects("recall", fraction, capsys, "percentage")
    rejects("recall", lower_median, capsys, "torch.median returns the lower")


def test_recall_of_the_first_positive(capsys):
    def recall(sim, positive, ks=(1, 5, 10)):
        first = positive.double().argmax(dim=1)
        score = sim.gather(1, first[:, None])
        rank = 1 + ((sim >= score) & ~positive).sum(dim=1)
        return _metrics(rank[positive.any(dim=1)], ks)

    rejects("recall", recall, capsys, "BEST positive")


# --------------------------------------------------------------------------------------------------------------------
# The exercise sections of the notebooks
# --------------------------------------------------------------------------------------------------------------------

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXERCISE_NOTEBOOKS = sorted(NOTEBOOKS.glob("0[1-6]_*.py"))


def _exercise_cells(py: Path) -> list[str]:
    jupytext = pytest.importorskip("jupytext")
    return [c.source for c in jupytext.read(py).cells if c.cell_type == "code" and "exercises." in c.source]


@pytest.mark.parametrize("solutions", [True, False], ids=["solutions", "stubs"])
@pytest.mark.parametrize("py", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_exercise_sections_run_on_their_own(py, solutions, monkeypatch, capsys):
    """Each notebook's exercise cells (starter, check, reveal) need nothing else from the notebook. With
    MMV_LITE_SOLUTIONS=1 (the notebook tests) every check passes; with the stubs, every check says what is missing and
    nothing raises."""
    cells = _exercise_cells(py)
    names = re.findall(r'@exercises\.exercise\("(\w+)"\)', "\n".join(cells))
    assert names, f"{py.name} has no exercise"
    for name in names:
        assert sum(f'exercises.check("{name}",' in c for c in cells) == 1, (py.name, name)
        assert sum(f'exercises.reveal("{name}")' in c for c in cells) == 1, (py.name, name)
        assert ex.EXERCISES[name].notebook == py.stem
    if solutions:
        monkeypatch.setenv(ex.SOLUTIONS_ENV, "1")
    else:
        monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    namespace: dict = {}
    for source in cells:
        exec(compile(source, py.name, "exec"), namespace)
    out = capsys.readouterr().out
    if solutions:
        assert out.count("✓") == len(names) and "✗" not in out, out
    else:
        assert out.count("not written yet") == len(names), out


# --------------------------------------------------------------------------------------------------------------------
# docs/TEACHING.md: the answers and the hints it quotes are the module's
# --------------------------------------------------------------------------------------------------------------------

TEACHING = Path(__file__).resolve().parents[1] / "docs" / "TEACHING.md"


def _teaching_sections() -> dict[str, str]:
    text = TEACHING.read_text()
    parts = re.split(r"^### `(\w+)`.*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def _hint_texts() -> list[str]:
    """Every string literal of the exercise checks (f-strings as their literal pieces), whitespace collapsed."""
    import ast

    texts = []
    for path in sorted(Path(ex.__file__).parent.glob("check_*.py")) + [Path(core.__file__)]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(" ".join(node.value.split()))
    return texts


def test_teaching_notes_cover_every_exercise_with_the_solutions_lines_and_real_hints():
    sections = _teaching_sections()
    assert set(sections) == set(ex.EXERCISES)
    hints = _hint_texts()
    for name, body in sections.items():
        solution_lines = {line.strip() for line in ex.solution(name).splitlines()}
        code = re.search(r"```python\n(.*?)```", body, flags=re.S)
        assert code, f"TEACHING.md, {name}: no answer"
        for line in code[1].splitlines():
            assert line.strip() in solution_lines, f"TEACHING.md, {name}: {line!r} is not in the solution"
        for row in re.findall(r"^\|[^|]+\|(.+)\|$", body, flags=re.M)[2:]:
            for quote in re.findall(r'"([^"]+)"', row):
                for piece in quote.split(" ... "):
                    assert any(piece in h for h in hints), f"TEACHING.md, {name}: {piece!r} is no hint of the check"


def test_a_check_cell_shows_only_its_verdict(capsys):
    """A notebook cell ending in exercises.check(...) prints the verdict and displays nothing more (no stray False)."""
    from IPython.core.interactiveshell import InteractiveShell

    def wrong(*args, **kwargs):
        raise NotImplementedError

    result = ex.check("nce", wrong)
    printed = capsys.readouterr().out
    assert not result and result == False and printed.startswith("✗")  # noqa: E712 (a Verdict compares as a bool)
    data, _ = InteractiveShell.instance().display_formatter.format(result)
    assert data == {}  # IPython shows nothing for it: the cell's output is the printed verdict alone
    assert ex.check("nce", core.get("nce").solution, quiet=True) == True  # noqa: E712
