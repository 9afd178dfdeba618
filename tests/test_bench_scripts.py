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
    assert report["planning_clips_per_s_2_workers"] > 0
    assert set(report["loader_clips_per_s_2_workers"]) == {"clip", "batch"}
    assert report["gpu"] is None or report["gpu"]["batched_ms_per_clip"] > 0
    assert report["machine"]["cores"] >= 1 and report["clips_per_round"] == 8


def _bench_module(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        # ms is printed to the millisecond, so the step time lies within half a millisecond of it
        assert ms > 0 and 4000 / (ms + 0.5) - 0.05 <= clips <= 4000 / max(ms - 0.5, 1e-9) + 0.05
    assert "skipped: time budget" in gpu.format_table([{"what": "x", "note": "skipped: time budget"}], "h")


def test_rescore_world_changes_only_the_worlds_dials():
    """bench/rescore_world.py (docs/RESULTS.md, "How the world's defaults were chosen") refuses any other field."""
    cmd = [sys.executable, "bench/rescore_world.py", "--checkpoint", "data_samples/mmv_lite_fac.pt"]
    r = subprocess.run([*cmd, "--set", "train.lr=1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "only the world's dials change" in r.stderr, r.stderr
