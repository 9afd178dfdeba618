"""The diagnostic bench scripts run end to end (tiny step counts; the numbers are in docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_legibility_reference_reports_chance_and_accuracies():
    cmd = [sys.executable, "bench/legibility.py", "--steps", "2", "--eval-every", "1", "--eval-clips", "16"]
    cmd += ["--batch-size", "4", "--set", "data.num_frames=4"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=True).stdout
    head = re.search(r"held-out test clips 16; chance \(majority\) kind ([\d.]+) %, motion ([\d.]+) %", out)
    assert head, out
    rows = re.findall(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\d+$", out, flags=re.M)
    assert [int(r[0]) for r in rows] == [1, 2], out
    for _, loss, kind, motion in rows:
        assert float(loss) > 0 and 0.0 <= float(kind) <= 100.0 and 0.0 <= float(motion) <= 100.0


def test_world_rate_reports_each_setting_and_the_warm_cache_is_cheaper():
    cmd = [sys.executable, "bench/bench_world.py", "--clips", "8", "--rounds", "2"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=True).stdout
    rows = {
        name: (float(med), float(lo), float(hi), int(batch))
        for name, med, lo, hi, batch in re.findall(
            r"^\s*(plan only|no cache|cache, cold|cache, warm)\s+([\d.]+) \[([\d.]+)-([\d.]+)\]\s+(\d+)$",
            out,
            flags=re.M,
        )
    }
    assert set(rows) == {"plan only", "no cache", "cache, cold", "cache, warm"}, out
    for med, lo, hi, batch in rows.values():
        # the batch column is 32 x the unrounded median, rounded to 1 ms; the median column is rounded to 0.01 ms
        assert 0 < lo <= med <= hi and abs(batch - 32 * med) <= 0.5 + 32 * 0.005, out
    # Read back from the cache, a clip skips drawing and sounding: far cheaper than rendering and writing it.
    assert rows["cache, warm"][0] < rows["cache, cold"][0], out
    assert rows["plan only"][0] < rows["no cache"][0], out  # a clip is planned, then drawn, sounded and encoded


def test_world_json_compares_the_renderers_and_times_planning(tmp_path):
    """--json adds the batched renderer against the per-clip one (same clips, one core) and the planning rates."""
    out_file = tmp_path / "world.json"
    cmd = [sys.executable, "bench/bench_world.py", "--clips", "8", "--rounds", "1", "--json", str(out_file)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=True).stdout
    report = json.loads(out_file.read_text())
    for key in ("reference_ms_per_clip", "batched_ms_per_clip", "planning_ms_per_clip"):
        assert report[key] > 0 and f"{report[key]:8.3f}" in out, key
    assert report["batched_speedup"] == pytest.approx(report["reference_ms_per_clip"] / report["batched_ms_per_clip"])
    torch_ms = report["batched_torch_ms_per_clip"]  # the engine CUDA runs, timed on the CPU too
    assert report["batched_torch_speedup"] == pytest.approx(report["reference_ms_per_clip"] / torch_ms)
    assert report["compiled_first_call_s"] > 0
    assert set(report["compiled_parts_ms_per_clip"]) == {"frames", "sound", "log_mel"}
    windows = report["planning_clips_per_s_2_workers_windows"]
    assert len(windows) == 3 and min(windows) > 0
    assert report["planning_clips_per_s_2_workers"] == sorted(windows)[1]  # their median
    assert set(report["loader_clips_per_s_2_workers"]) == {"clip", "batch"}
    assert report["gpu"] is None or report["gpu"]["batched_ms_per_clip"] > 0
    assert report["machine"]["cores"] >= 1 and report["clips_per_round"] == 8


def _bench_module(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # every row, tiny: about a minute on a quiet 2-core machine
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run bench/gpu_check.py itself")
def test_gpu_check_cpu_smoke_run_fills_every_row():
    """--cpu-smoke runs every row of bench/gpu_check.py, tiny, on the CPU: the lite rows first, the paper steps in
    three precisions, the parity checks and the DDP row (2 processes)."""
    r = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--cpu-smoke"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    header = r.stdout.splitlines()[0]
    assert header.startswith("GPU check on CPU smoke run") and "cores" in header and "torch" in header
    assert "median of 1 steps after 1 warm-up steps" in header  # a smoke run times little
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in r.stdout.splitlines() if ln.startswith("| ")][1:]
    whats = [row[0] for row in rows]
    assert whats[0].startswith("lite") and "step alone" in whats[0]  # the lite job first
    assert whats[1] == "lite, world rendered on the device"
    assert whats[2:5] == [f"lite, world rendered in {w} CPU worker{'' if w == 1 else 's'}" for w in (0, 1, 2)]
    assert whats[5] == "lite main job (2 steps)" and "done: 2 steps" in rows[5][7]
    for name in ("S3D-G step", "TSM-ResNet50 step"):
        assert [row[1] for row in rows if row[0] == name] == ["fp32", "bf16", "fp16"]
    timed = [row for row in rows if row[0].endswith(("step", "alone")) or "CPU worker" in row[0]]
    for row in timed:
        assert float(row[2]) >= 0 and float(row[3]) > 0, row  # ms per step and clips/s
    for row in rows[2:5]:
        assert 0 <= float(row[4].rstrip(" %")) <= 100, row  # the data wait
    parity = [row for row in rows if "vs fp32, same weights and batch" in row[0]]
    assert len(parity) == 3 and all(
        re.search(r"\(rel\. [\d.e+-]+; .*gradient cosine -?[\d.]+$", row[7]) for row in parity
    )
    ddp = [row for row in rows if row[0].startswith("S3D-G step, torchrun 2 processes")]
    assert len(ddp) == 1 and "(finite)" in ddp[0][7], rows
    assert not any("out of memory" in row[7] or "FAILED" in row[7] for row in rows), rows


def test_gpu_check_without_cuda_says_so_and_records_out_of_memory(monkeypatch, capsys):
    gpu = _bench_module("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main([]) == 1  # its table needs CUDA; without it, it says so and names the smoke run
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "--cpu-smoke" in err

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    cpu = torch.device("cpu")
    row = gpu.guarded("TSM-ResNet50 step", "fp32", oom, cpu)
    assert row["what"] == "TSM-ResNet50 step" and row["note"].startswith("out of memory: CUDA out of memory")
    row = gpu.guarded(
        "x", "fp16", lambda: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")), torch.device("cpu")
    )
    assert row["note"].startswith("out of memory")
    with pytest.raises(RuntimeError, match="shape mismatch"):  # any other error is a bug, and is raised
        gpu.guarded("x", "fp32", lambda: (_ for _ in ()).throw(RuntimeError("shape mismatch")), cpu)
    args = gpu.parse_args([])
    assert args.presets == ["s3dg", "tsm_r50"] and args.budget <= 480 and args.lite_steps == 800 and args.warmup == 3
    with pytest.raises(SystemExit):
        gpu.parse_args(["--batch", "1"])
    assert "skipped: time budget" in gpu.format_table([{"what": "x", "note": "skipped: time budget"}], "h")


def test_rescore_world_changes_only_the_worlds_dials():
    """bench/rescore_world.py (docs/RESULTS.md, "How the world's defaults were chosen") refuses any other field."""
    cmd = [sys.executable, "bench/rescore_world.py", "--checkpoint", "data_samples/mmv_lite_fac.pt"]
    r = subprocess.run([*cmd, "--set", "train.lr=1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "only the world's dials change" in r.stderr, r.stderr
