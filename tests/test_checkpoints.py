"""Atomic checkpoint writes, safe loading, clear errors, RNG state round trips."""

# The legacy global NumPy RNG is part of what a checkpoint saves, so the tests use it.
# ruff: noqa: NPY002

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mmv_lite.checkpoints import (
    FORMAT,
    CheckpointError,
    inference_only,
    load_checkpoint,
    load_state_into,
    make_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from mmv_lite.config import get_config
from mmv_lite.runtime import machine


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def test_round_trip_is_weights_only_loadable(tmp_path):
    model = _tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched.step()
    cfg = get_config("lite")
    metrics = {"t2v": {"R@10": np.float64(42.5), "MedR": 3}, "history": (1, 2)}
    state = make_state(model, cfg, ["<pad>", "ball"], step=7, metrics=metrics, optimizer=opt, scheduler=sched)
    path = save_checkpoint(tmp_path / "ck.pt", state)
    # Plain torch.load with weights_only=True accepts it: nothing in it can run code.
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["kind"] == "training"
    got = load_checkpoint(path)
    assert got["step"] == 7 and got["vocab"] == ["<pad>", "ball"]
    assert got["config"] == cfg.to_dict()
    assert got["metrics"]["t2v"]["R@10"] == 42.5
    for k, v in model.state_dict().items():
        assert torch.equal(got["model"][k], v)
    # The optimiser and scheduler continue from the saved state.
    model2 = _tiny()
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: min(1.0, (s + 1) / 10))
    load_state_into(model2, got["model"], path)
    opt2.load_state_dict(got["optimizer"])
    sched2.load_state_dict(got["scheduler"])
    assert sched2.last_epoch == 1 and opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    # Permissions as for any new file (the temporary file starts owner-only).
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    # No temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
    # The inference-only form keeps what a model needs and is smaller.
    small = save_checkpoint(tmp_path / "small.pt", inference_only(got))
    assert load_checkpoint(small)["kind"] == "inference"
    # Both forms say which machine wrote them (runs on other CPUs differ in their last bits).
    assert got["machine"] == load_checkpoint(small)["machine"] == machine()
    assert "optimizer" not in load_checkpoint(small) and small.stat().st_size < path.stat().st_size


def test_rng_states_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "rng.pt", {"config": {}, "model": {}, "rng": rng_state()})
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def test_clear_errors_for_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="folder"):
        load_checkpoint(tmp_path)

    text = tmp_path / "notes.pt"
    text.write_text("hello, not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint file"):
        load_checkpoint(text)

    good = save_checkpoint(tmp_path / "good.pt", make_state(_tiny(), get_config("lite"), ["<pad>"]))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)

    other = tmp_path / "plain_state_dict.pt"
    torch.save(_tiny().state_dict(), other)
    with pytest.raises(CheckpointError, match="not an mmv_lite checkpoint"):
        load_checkpoint(other)

    code = tmp_path / "pickled_object.pt"
    torch.save({"format": FORMAT, "obj": _Unsafe()}, code)
    with pytest.raises(CheckpointError, match="other than tensors"):
        load_checkpoint(code)

    future = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "format_version": 99, "config": {}, "model": {}}, future)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(future)


class _Unsafe:
    """Any class instance: weights_only loading must refuse it."""


def test_weights_that_do_not_fit_the_model_are_named(tmp_path):
    state = _tiny().state_dict()
    wider = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Linear(16, 2))
    with pytest.raises(CheckpointError, match=r"0\.weight saved \(8, 4\) vs model \(16, 4\)"):
        load_state_into(wider, state, "ck.pt")
    deeper = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"missing from the file: \['3.bias', '3.weight'\]"):
        load_state_into(deeper, state, "ck.pt")


def _write_forever(path: Path, saved) -> None:
    """Save checkpoints to ``path`` one after another, sending each one's step to ``saved`` once it is published."""
    torch.set_num_threads(1)  # a forked child must not enter an OpenMP region of its parent's thread pool
    i = 0
    while True:
        i += 1
        # ~8 MB per write so that kills land inside torch.save / fsync / rename.
        save_checkpoint(path, {"config": {}, "model": {"w": torch.full((2_000_000,), float(i))}, "step": i})
        saved.send(i)


def test_sigkill_during_writes_never_corrupts_the_latest_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    rng = random.Random(0)
    fork = multiprocessing.get_context("fork")  # a copy of this process: no second interpreter to start each round
    last = 0
    for _ in range(6):
        receive, send = fork.Pipe(duplex=False)
        proc = fork.Process(target=_write_forever, args=(path, send), daemon=True)
        proc.start()
        # Kill at a random moment after the first complete write, however slow the machine: the kill must land
        # with a checkpoint already published, so every round tests that the newest one survives.
        assert receive.poll(120) and receive.recv() >= 1, "the writer published no checkpoint in 2 minutes"
        time.sleep(rng.uniform(0.0, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL
        state = load_checkpoint(path)
        w = state["model"]["w"]
        assert w.shape == (2_000_000,) and torch.all(w == float(state["step"])), "checkpoint mixes two writes"
        last = state["step"]
    assert last > 0, "no checkpoint was ever read back; the test did not exercise anything"
