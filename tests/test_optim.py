"""Optimisation (mmv_lite.optim): the schedule, the optimiser builder and one training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmv_lite.config import get_config
from mmv_lite.optim import build_optimiser, lr_factor, train_step


def test_lr_warmup_then_half_cosine():
    f = [lr_factor(s, 10, 110) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))  # linear warm-up
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # then decays monotonically
    assert f[60] == pytest.approx(0.5) and f[109] == pytest.approx(0.5 * (1 + np.cos(np.pi * 99 / 100)))


def test_build_optimiser_follows_the_train_config():
    tc = get_config("lite", **{"train.lr": 0.01, "train.warmup_steps": 2, "train.steps": 6}).train
    net = nn.Linear(3, 2)
    frozen = nn.Parameter(torch.zeros(1), requires_grad=False)
    opt = build_optimiser([*net.parameters(), frozen], tc)
    assert len(opt.optimizer.param_groups[0]["params"]) == 2  # trainable parameters only
    assert opt.lr == pytest.approx(0.01 * lr_factor(0, 2, 6))
    assert opt.amp_dtype is None and not opt.scaler.is_enabled()  # float32 on the CPU


def test_train_step_is_forward_loss_backward_step():
    torch.manual_seed(0)
    tc = get_config("lite", **{"train.lr": 0.1, "train.warmup_steps": 1, "train.steps": 3}).train
    net = nn.Linear(3, 1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    ref = nn.Linear(3, 1)
    ref.load_state_dict(net.state_dict())
    opt = build_optimiser(net.parameters(), tc)
    losses = train_step(net, x, lambda out: {"loss": ((out - y) ** 2).mean()}, opt)
    # the same step written out by hand
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    loss = ((ref(x) - y) ** 2).mean()
    loss.backward()
    ref_opt.step()
    assert losses["loss"].item() == pytest.approx(loss.item())
    assert torch.allclose(net.weight, ref.weight) and opt.lr == pytest.approx(0.1 * lr_factor(1, 1, 3))
    # keyword inputs go to the model by name
    losses = train_step(lambda x: net(x), {"x": x}, lambda out: {"loss": out.pow(2).mean()}, opt)
    assert torch.isfinite(losses["loss"])
