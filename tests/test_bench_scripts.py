"""The diagnostic bench scripts run end to end on the shipped samples (tiny step counts; the numbers are in
docs/BENCHMARKS.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
