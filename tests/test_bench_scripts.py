"""The diagnostic bench scripts run end to end on the shipped samples (tiny step counts; the numbers are in
docs/BENCHMARKS.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_supervised_bound_reports_classes_chance_and_accuracies(data_samples):
    cmd = [sys.executable, "bench/video_factor_bounds.py", "supervised", "--factor", "motion", "--net", "cnn"]
    cmd += ["--data", str(data_samples), "--steps", "2", "--eval-every", "1", "--batch-size", "8"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=True).stdout
    head = re.search(r"cnn on motion \((\d+) classes, (\d+) train clips\); chance \(majority\) train ([\d.]+) %", out)
    assert head, out
    assert int(head.group(1)) == 7 and int(head.group(2)) > 100
    rows = re.findall(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\d+$", out, flags=re.M)
    assert [int(r[0]) for r in rows] == [1, 2], out
    for _, loss, train_acc, test_acc in rows:
        assert float(loss) > 0
        assert 0.0 <= float(train_acc) <= 100.0 and 0.0 <= float(test_acc) <= 100.0


def _bench_module(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rewritten_captions_name_the_segment_under_each_caption(tiny_samples, tmp_path):
    import json

    bounds = _bench_module("video_factor_bounds")
    out = tmp_path / "oracle"
    n = bounds.rewrite_captions(tiny_samples, out, "oracle")
    meta = json.loads((tiny_samples / "metadata.json").read_text())
    before = json.loads((tiny_samples / "captions.json").read_text())
    after = json.loads((out / "captions.json").read_text())
    assert n == sum(len(c["text"]) for c in before.values()) > 0
    for vid, cap in after.items():
        assert cap["start"] == before[vid]["start"] and cap["end"] == before[vid]["end"]
        for start, end, text in zip(cap["start"], cap["end"], cap["text"]):
            mid = (start + end) / 2
            segments = meta["videos"][vid]["segments"]
            seg = next((s for s in segments if s["start"] <= mid < s["end"]), segments[-1])
            assert text == f"the {seg['colour']} {seg['kind']} {seg['motion']}s"
    assert (out / "videos").resolve() == (tiny_samples / "videos").resolve()
    assert json.loads((tiny_samples / "captions.json").read_text()) == before  # the source is untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run bench/gpu_check.py itself")
def test_gpu_check_without_cuda_says_so_and_its_smoke_test_runs(capsys):
    """bench/gpu_check.py needs CUDA for its table; here it must say so, parse its options, and run its step timing
    on the CPU with the lite preset (the code path the GPU rows use)."""
    gpu = _bench_module("gpu_check")
    r = subprocess.run([sys.executable, "bench/gpu_check.py"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "needs a CUDA GPU" in r.stderr and "--device cpu" in r.stderr
    args = gpu.parse_args([])
    assert args.presets == ["s3dg", "tsm_r50"] and args.batch == 8 and args.budget < 300 and not args.skip_ddp
    with pytest.raises(SystemExit):
        gpu.parse_args(["--batch", "1"])
    shapes = {k: tuple(v.shape) for k, v in gpu.random_batch("s3dg", 2, torch.device("cpu")).items()}
    assert shapes["video"] == (2, 3, 32, 200, 200) and shapes["audio"][1:] == (1, 48_000 * 32 // 10 // 1024 + 1, 80)
    smoke = ["--device", "cpu", "--presets", "lite", "--steps", "1", "--batch", "4", "--skip-ddp", "--skip-lite"]
    assert gpu.main(smoke) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| lite")]
    assert [r.split("|")[2].strip() for r in rows] == ["fp32", "bf16"]
    for r in rows:
        ms, clips = (float(r.split("|")[i]) for i in (3, 4))
        assert ms > 0 and clips == pytest.approx(4 / (ms / 1000), rel=0.01)
    assert "skipped: time budget" in gpu.format_table([{"what": "x", "note": "skipped: time budget"}], "h")
