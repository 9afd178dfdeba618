"""Optimisation (mmv_lite.optim): the schedule, the optimiser builder and one training step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from mmv_lite.config import get_config
from mmv_lite.optim import Optimiser, WarmupCosine, build_optimiser, lr_factor, train_step


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


def _fp16_optimiser(net: nn.Module, tc, init_scale: float) -> Optimiser:
    """The CUDA-without-native-bf16 set-up (fp16 autocast + GradScaler), on the CPU: CPU autocast runs float16 too."""
    opt = torch.optim.Adam(net.parameters(), lr=tc.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(tc.warmup_steps, tc.steps))
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=1000)
    return Optimiser(opt, sched, scaler, torch.float16, "cpu")


def test_fp16_with_a_grad_scaler_trains_under_cpu_autocast():
    torch.manual_seed(0)
    tc = get_config("lite", **{"train.lr": 0.05, "train.warmup_steps": 1, "train.steps": 20}).train
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    opt = _fp16_optimiser(net, tc, init_scale=2.0**10)
    seen = []

    def loss_fn(out):
        seen.append(out.dtype)
        return {"loss": ((out.float() - y) ** 2).mean()}

    first = float(train_step(net, x, loss_fn, opt)["loss"].detach())
    for _ in range(19):
        last = float(train_step(net, x, loss_fn, opt)["loss"].detach())
    assert seen[0] == torch.float16  # the forward pass ran in float16...
    assert net[0].weight.dtype == torch.float32 and opt.scaler.is_enabled()  # ...on float32 weights, scaled
    assert opt.steps_taken == 20 and opt.scheduler.last_epoch == 20  # no overflow at this scale: every step taken
    assert last < 0.8 * first


def test_the_schedule_advances_only_on_the_steps_the_scaler_took():
    """A GradScaler skips the optimiser's step when a float16 gradient overflows; the learning-rate schedule must not
    advance then (PyTorch warns "lr_scheduler.step() before optimizer.step()" when the first step is skipped)."""
    torch.manual_seed(0)
    tc = get_config("lite", **{"train.lr": 0.01, "train.warmup_steps": 4, "train.steps": 12}).train
    net = nn.Linear(4, 1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    opt = _fp16_optimiser(net, tc, init_scale=2.0**40)  # float16 overflows until the scale backs off below ~2^16
    before = net.weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the scheduler's warning fails the test
        for _ in range(40):
            train_step(net, x, lambda out: {"loss": ((out.float() - y) ** 2).mean()}, opt)
    assert 0 < opt.steps_taken < 40  # some steps were skipped, then the scale fitted
    assert opt.scheduler.last_epoch == opt.steps_taken
    assert opt.lr == pytest.approx(tc.lr * lr_factor(opt.steps_taken, 4, 12))
    assert not torch.equal(net.weight, before)
