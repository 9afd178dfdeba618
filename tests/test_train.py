"""The training loop: schedule, deterministic batches, exact resume, Ctrl-C, logs and checkpoints, DDP."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import Dataset

from mmv_lite.checkpoints import load_checkpoint, load_model
from mmv_lite.config import get_config
from mmv_lite.data.text import WordVectors
from mmv_lite.runtime import autocast_settings, cpu_autocast_kernels
from mmv_lite.train import cli_main, train

VOCAB = ["<pad>"] + [f"w{i}" for i in range(30)]
K, L, F_AUDIO, N_MELS = 3, 6, 12, 16


def tiny_config(**over):
    """A very small network and schedule: a few seconds for a handful of steps on a CPU."""
    base = {
        "data.num_frames": 4,
        "data.crop_size": 16,
        "data.n_mels": N_MELS,
        "data.num_candidates": K,
        "data.max_words": L,
        "video_width": 0.0625,
        "audio_depth": 10,
        "audio_width": 0.0625,
        "text_dim": 16,
        "d_va": 16,
        "d_vt": 8,
        "d_vat": 8,
        "batch_size": 8,
        "steps": 6,
        "warmup_steps": 2,
        "lr": 1e-2,
        "eval_every": 3,
        "checkpoint_every": 2,
        "log_every": 1,
        "num_workers": 0,
    }
    base.update(over)
    return get_config("lite", **base)


def tiny_word_vectors() -> WordVectors:
    vecs = np.random.default_rng(0).standard_normal((len(VOCAB), 300)).astype(np.float32)
    vecs[0] = 0
    return WordVectors(VOCAB, vecs)


class FakeClips(Dataset):
    """Items with the ClipDataset keys and shapes, and random augmentation from all three global RNGs."""

    def __init__(self, n: int, seed: int, augment: bool):
        g = torch.Generator().manual_seed(seed)
        self.n, self.augment = n, augment
        self.video = torch.rand(n, 3, 4, 16, 16, generator=g)
        self.audio = torch.randn(n, 1, F_AUDIO, N_MELS, generator=g)
        self.ids = torch.randint(1, len(VOCAB), (n, K, L), generator=g)
        self.ids[:, :, 4:] = 0
        self.valid = torch.ones(n, K, dtype=torch.bool)
        self.valid[::5, 2] = False
        self.has_audio = torch.arange(n) % 7 != 3
        self.has_text = torch.arange(n) % 6 != 1

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        video, audio = self.video[i], self.audio[i]
        if self.augment:  # one draw from each RNG a real pipeline might use
            video = video * (0.8 + 0.4 * torch.rand(()))
            if random.random() < 0.5:
                video = video.flip(-1)
            audio = audio + 0.1 * float(np.random.rand())  # noqa: NPY002
        ids = self.ids[i] * self.valid[i][:, None]
        return {
            "video": video,
            "audio": audio,
            "text_ids": ids,
            "text_mask": ids != 0,
            "text_valid": self.valid[i] & self.has_text[i],
            "has_audio": self.has_audio[i],
            "has_text": self.has_text[i],
            "video_id": f"v{i // 3}",
            "start": float(i % 3),
            "end": float(i % 3) + 1.0,
            "index": i,
            "action_label": i % 4,
            "sound_label": i % 5,
            "image_label": i % 3,
        }


def fake_data():
    return FakeClips(40, seed=0, augment=True), FakeClips(12, seed=1, augment=False), tiny_word_vectors()


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------------------------------------


SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
TINY_CLI = [
    "--preset", "lite", "--data", str(SAMPLES), "--batch-size", "8", "--steps", "4", "--device", "cpu",
    "--no-progress", "--set", "model.video_width=0.0625", "--set", "model.audio_depth=10",
    "--set", "model.audio_width=0.0625", "--set", "model.text_dim=16", "--set", "model.d_va=16",
    "--set", "model.d_vat=8", "--set", "train.eval_every=0", "--set", "train.log_every=1",
    "--set", "train.warmup_steps=1", "--set", "train.checkpoint_every=1",
]  # fmt: skip


@pytest.mark.skipif(not (SAMPLES / "metadata.json").exists(), reason="needs the shipped data_samples/")
def test_cli_resume_continues_exactly(tmp_path, capsys):
    """4 steps straight == 2 steps, stop, --resume for 2 more (bit-identical on CPU), on the shipped clips."""
    torch.set_num_threads(1)
    assert cli_main([*TINY_CLI, "--out", str(tmp_path / "a"), "--num-workers", "0"]) == 0
    assert cli_main([*TINY_CLI, "--out", str(tmp_path / "b"), "--num-workers", "0", "--stop-at", "2"]) == 0
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 2
    # Resume with 2 DataLoader workers: a clip's augmentation must not depend on which process loads it.
    assert cli_main(["--out", str(tmp_path / "b"), "--resume", "--data", str(SAMPLES), "--num-workers", "2"]) == 0
    assert "validation retrieval at step 4" in capsys.readouterr().out
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert a["step"] == b["step"] == 4
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], atol=1e-6, rtol=0, msg=f"{k} differs after resume")
    assert a["metrics"]["val"] == b["metrics"]["val"]
    # The metrics log of the resumed run has each step once.
    entries = [json.loads(ln) for ln in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in entries if "loss" in e] == [1, 2, 3, 4]


def test_resume_refuses_a_different_network(tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_config(steps=2)
    train(cfg, out_dir=tmp_path / "r", datasets=fake_data(), stop_at=1, progress=False, verbose=False)
    with pytest.raises(ValueError, match="model.d_va: checkpoint 16, now 32"):
        train(tiny_config(steps=2, d_va=32), out_dir=tmp_path / "r", datasets=fake_data(), resume=True)


def test_logs_checkpoint_and_export(tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_config(steps=4, eval_every=2)
    run = {"out_dir": tmp_path / "run", "export": tmp_path / "small.pt", "keep_model": True}
    summary = train(cfg, datasets=fake_data(), progress=False, **run)
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logs = [e for e in lines if "loss" in e]
    vals = [e for e in lines if "val" in e]
    assert [e["step"] for e in logs] == [1, 2, 3, 4]
    for e in logs:
        assert {"loss", "loss_va", "loss_vt", "lr", "clips_per_s", "data_wait"} <= set(e)
        assert np.isfinite(e["loss"]) and 0 <= e["data_wait"] <= 1
    assert [e["step"] for e in vals] == [2, 4]
    assert {"t2v", "v2t", "v2a", "a2v"} <= set(vals[-1]["val"])
    assert summary["val"]["t2v"]["R@10"] == vals[-1]["val"]["t2v"]["R@10"]
    assert 0 <= summary["data_wait_fraction"] <= 1 and summary["clips_per_second"] > 0
    # The full checkpoint resumes; the export is small and rebuilds the same network.
    full = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert full["kind"] == "training" and full["step"] == 4 and "rng" in full and "optimizer" in full
    small_path = tmp_path / "small.pt"
    assert load_checkpoint(small_path)["kind"] == "inference"
    assert small_path.stat().st_size < (tmp_path / "run" / "checkpoint.pt").stat().st_size
    model, cfg2, vocab = load_model(small_path)
    assert cfg2.to_dict() == cfg.to_dict() and vocab == VOCAB
    for k, v in model.state_dict().items():
        assert torch.equal(v, full["model"][k]), k
    # keep_model: the trained network itself, as the checkpoint holds it (the findings measure it without a reload)
    kept = summary["model"].state_dict()
    assert kept.keys() == full["model"].keys() and all(torch.equal(kept[k], full["model"][k]) for k in kept)
    # A checkpoint of another shape is refused with a clear message.
    bad = dict(full)
    bad["config"] = tiny_config(d_va=32).to_dict()
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit the model"):
        load_model(tmp_path / "bad.pt")


def test_bf16_autocast_on_the_cpu_trains(tmp_path, monkeypatch):
    """train.amp_dtype='bf16' runs the forward pass under CPU autocast (the CUDA mixed-precision path, exercisable
    without a GPU): the training convolutions compute in bf16, the loss stays finite, every trained tensor moves, and
    the trained network embeds the validation clips (float32) finitely. The CPU default ('auto') stays float32."""
    import mmv_lite.train as train_module

    assert autocast_settings(torch.device("cpu")) == (None, False)  # the CPU default is unchanged
    assert autocast_settings(torch.device("cpu"), dtype="bf16") == (torch.bfloat16, False)
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        autocast_settings(torch.device("cpu"), dtype="fp16")
    torch.set_num_threads(1)
    seen, initial = set(), {}
    build = train_module.build_model

    def build_and_watch(*args, **kwargs):
        model = build(*args, **kwargs)
        initial.update(_params(model))
        for layer in model.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Conv3d)):
                layer.register_forward_hook(lambda m, i, out: seen.add(out.dtype) if m.training else None)
        return model

    monkeypatch.setattr(train_module, "build_model", build_and_watch)
    cfg = tiny_config(steps=4, amp_dtype="bf16", eval_every=0, checkpoint_every=0)
    summary = train(cfg, out_dir=tmp_path / "bf16", datasets=fake_data(), progress=False, verbose=False)
    assert seen == {torch.bfloat16}
    assert np.isfinite(summary["loss"])
    after = load_checkpoint(tmp_path / "bf16" / "checkpoint.pt")["model"]
    trained = [
        k for k, v in initial.items() if v.is_floating_point() and "running" not in k and "word_vectors" not in k
    ]
    assert trained and all(not torch.equal(after[k], initial[k]) for k in trained), "some parameters did not move"
    with pytest.raises(ValueError, match="amp_dtype"):
        train(tiny_config(amp_dtype="fp8"), out_dir=tmp_path / "bad", datasets=fake_data(), progress=False)


def test_cpu_bf16_convolution_gradients_repeat_under_the_guard():
    """Why CPU bf16 training avoids oneDNN (runtime.cpu_autocast_kernels): the weight gradient of a stride-2 3 x 3
    convolution over a 1 x 1 map must come out the same, and finite, every time."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 16, 1, 1, generator=g), torch.randn(32, 16, 3, 3, generator=g)
    grad_out = torch.randn(8, 32, 1, 1, generator=g)
    results = set()
    with cpu_autocast_kernels(torch.device("cpu"), torch.bfloat16):
        for _ in range(30):
            weight = w.bfloat16().requires_grad_(True)
            y = torch.nn.functional.conv2d(x.bfloat16(), weight, stride=2, padding=1)
            (grad,) = torch.autograd.grad(y, weight, grad_out.bfloat16())
            assert torch.isfinite(grad).all()
            results.add(grad.float().sum().item())
    assert len(results) == 1
    assert torch.backends.mkldnn.enabled  # restored afterwards


_SIGINT_SCRIPT = textwrap.dedent(
    """
    import sys, json
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_train import tiny_config, fake_data
    from mmv_lite.train import train
    summary = train(tiny_config(steps=100_000, eval_every=0, checkpoint_every=0, log_every=1),
                    out_dir={out!r}, datasets=fake_data(), progress=False, verbose=False)
    print(json.dumps({{"step": summary["step"], "interrupted": summary["interrupted"]}}))
    """
)


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "run_train.py"
    script.write_text(_SIGINT_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    metrics = out / "metrics.jsonl"
    # SIGINT only once training runs (3 steps logged), however long a loaded machine takes to import torch: an
    # earlier signal would land before the handler is installed and test nothing.
    deadline = time.time() + 600
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 3:
        assert proc.poll() is None, f"training ended before the signal: {proc.communicate()[1].decode()[-2000:]}"
        assert time.time() < deadline, "training logged fewer than 3 steps in 10 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["interrupted"] and summary["step"] >= 3
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == summary["step"] and "optimizer" in state


# --------------------------------------------------------------------------------------------------------------------
# DDP: two gloo processes train the same global batches as one process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1"}
    )
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        summary = train(tiny_config(steps=3, eval_every=0), out_dir=out, device="cpu", datasets=fake_data())
        with open(os.path.join(out, f"summary{rank}.json"), "w") as f:
            json.dump({"step": summary["step"], "loss": summary["loss"]}, f)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_ddp_two_processes_train_and_only_rank0_writes(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    s0, s1 = (json.loads((out / f"summary{r}.json").read_text()) for r in (0, 1))
    assert s0["step"] == s1["step"] == 3
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 3 and not any(k.startswith("module.") for k in state["model"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4  # 3 log lines + final validation, rank 0 only
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl", "summary0.json", "summary1.json"]
