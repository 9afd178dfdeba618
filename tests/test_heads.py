"""Projection heads and embedding graphs: FAC composition, eval-only audio->vat, shared = one module, head forms."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from mmv_lite.models import EmbeddingGraph, LinearHead, MLPHead, count_parameters

pytestmark = pytest.mark.usefixtures("one_thread")


def _graph(name, head="mlp"):
    torch.manual_seed(0)
    return EmbeddingGraph(name, d_v=24, d_a=20, d_t=16, d_va=12, d_vt=10, d_vat=8, head=head)


def test_fac_video_goes_through_va_space():
    g = _graph("fac")
    f_v = torch.randn(6, 24)
    head = g.heads["g_va_to_vat"]
    g.train()
    ref = copy.deepcopy(g)  # same BN state before the call: training-mode BN updates its statistics
    out = g.video(f_v)
    assert torch.allclose(out["z_v_vat"], ref.heads["g_va_to_vat"](F.relu(out["z_v_va"])), atol=1e-6)
    g.eval()
    out = g.video(f_v)
    assert torch.allclose(out["z_v_vat"], head(F.relu(out["z_v_va"])), atol=1e-6)
    assert set(out) == {"z_v_va", "z_v_vat"} and out["z_v_va"].shape == (6, 12) and out["z_v_vat"].shape == (6, 8)


def test_fac_audio_to_vat_only_at_eval_through_the_same_head():
    g = _graph("fac")
    f_a = torch.randn(6, 20)
    bn = g.heads["g_va_to_vat"].bn
    g.train()
    stats = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    out = g.audio(f_a)
    assert set(out) == {"z_a_va"}
    # Training-mode audio never touches the statistics of g_va_to_vat ...
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert torch.equal(bn.num_batches_tracked, stats[2])
    # ... while training-mode video does (the check above could fail).
    g.video(torch.randn(6, 24))
    assert not torch.equal(bn.running_mean, stats[0])
    g.eval()
    out = g.audio(f_a)
    assert set(out) == {"z_a_va", "z_a_vat"}
    assert torch.allclose(out["z_a_vat"], g.heads["g_va_to_vat"](F.relu(out["z_a_va"])), atol=1e-6)


def test_shared_uses_one_module_per_modality():
    g = _graph("shared")
    assert set(g.heads) == {"g_v_to_vat", "g_a_to_vat", "g_t_to_vat"}
    g.eval()
    assert set(g.video(torch.randn(3, 24))) == {"z_v_vat"}
    assert set(g.audio(torch.randn(3, 20))) == {"z_a_vat"}
    # No two heads share parameters by accident, and the video head is a single module (audio and text targets).
    params = [id(p) for h in g.heads.values() for p in h.parameters()]
    assert len(params) == len(set(params))


def test_disjoint_spaces():
    g = _graph("disjoint").eval()
    assert set(g.heads) == {"g_v_to_va", "g_a_to_va", "g_v_to_vt", "g_t_to_vt"}
    assert set(g.video(torch.randn(3, 24))) == {"z_v_va", "z_v_vt"}
    assert set(g.audio(torch.randn(3, 20))) == {"z_a_va"}
    assert g.text(torch.randn(3, 4, 16))["z_t_vt"].shape == (3, 4, 10)


def test_text_keeps_candidate_axis():
    g = _graph("fac").eval()
    f_t = torch.randn(3, 4, 16)
    z = g.text(f_t)["z_t_vat"]
    assert z.shape == (3, 4, 8)
    assert torch.allclose(z[1, 2], g.text(f_t[1, 2][None])["z_t_vat"][0], atol=1e-6)


def test_released_head_forms_and_sizes():
    # Paper sizes: S3D-G 1024 -> 512 (MLP), audio 2048 -> 512, 512 -> 256 (+BN), text 2048 -> 256.
    g = EmbeddingGraph("fac", d_v=1024, d_a=2048, d_t=2048, d_va=512, d_vat=256)
    h = g.heads
    assert isinstance(h["g_v_to_va"], MLPHead)
    assert h["g_v_to_va"].inner.bias is not None and h["g_v_to_va"].proj.bias is None
    assert count_parameters(h["g_v_to_va"]) == (1024 * 512 + 512) + 2 * 512 + 512 * 512 + 2 * 512
    assert isinstance(h["g_a_to_va"], LinearHead) and h["g_a_to_va"].bn is None
    assert count_parameters(h["g_a_to_va"]) == 2048 * 512 + 512
    assert h["g_va_to_vat"].bn is not None and count_parameters(h["g_va_to_vat"]) == 512 * 256 + 256 + 2 * 256
    assert h["g_t_to_vat"].bn is None and count_parameters(h["g_t_to_vat"]) == 2048 * 256 + 256


def test_linear_head_option():
    g = _graph("fac", head="linear")
    assert isinstance(g.heads["g_v_to_va"], LinearHead) and g.heads["g_v_to_va"].bn is not None
    g.eval()
    assert g.video(torch.randn(2, 24))["z_v_va"].shape == (2, 12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="graph"):
        EmbeddingGraph("joint", 4, 4, 4)
    with pytest.raises(ValueError, match="head"):
        EmbeddingGraph("fac", 4, 4, 4, head="deep")
