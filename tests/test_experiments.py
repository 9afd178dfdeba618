"""Tests of mmv_lite.experiments: aggregation and tables on made-up run results, and a real quick run."""

from __future__ import annotations

import json

import pytest

from mmv_lite import experiments as ex


def _fake_results():
    def run(seed, base):
        r = {"seed": seed, "probe_action": base + seed, "probe_sound": 50.0, "t2v_R@10": 30.0 + seed, "v2a_R@1": 10.0}
        for mode, off in (("naive", 0.0), ("calibrated", 10.0), ("static", 12.0)):
            r[f"image_{mode}_acc"] = 40.0 + off + seed
            r[f"image_{mode}_mAP"] = 45.0 + off
        r.update({"chance_probe_action": 12.5, "chance_image_naive_acc": 10.0})
        if base > 60.0:  # the first run ("va") has no text, so no text chance level: the table must look further
            r["chance_t2v_R@10"] = 5.0
        return r

    names = ["va", "vt", "vat_fac", "vat_shared", "vat_disjoint", "supervised"]
    return {n: [run(s, 60.0 + i) for s in (0, 1, 2)] for i, n in enumerate(names)}


def test_mean_std_sample_convention():
    s = ex.mean_std([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0) and s["n"] == 3
    assert ex.mean_std([5.0])["std"] == 0.0
    assert ex.mean_std([None, float("nan")])["mean"] is None


def test_tables_from_results(tmp_path):
    results = _fake_results()
    md = ex.write_tables("design", results, tmp_path, {"cmd": "test"})
    t1a = json.loads((tmp_path / "table1a.json").read_text())
    rows = {r["label"]: r for r in t1a["rows"]}
    assert list(rows) == ["VA", "VT", "VAT (FAC)", "supervised", "chance"]
    assert rows["VAT (FAC)"]["cells"]["probe_action"]["mean"] == pytest.approx(63.0)  # vat_fac: 62 + seeds 0..2
    assert rows["VAT (FAC)"]["cells"]["probe_action"]["std"] == pytest.approx(1.0)
    assert rows["chance"]["cells"]["probe_action"]["mean"] == 12.5
    assert rows["chance"]["cells"]["t2v_R@10"]["mean"] == 5.0
    assert rows["chance"]["cells"]["probe_sound"]["mean"] is None
    assert rows["VA"]["paper"]["UCF101"] == 75.5 and rows["VA"]["paper"]["YC2 R@10"] is None
    assert "63.0 ± 1.0" in md and "| chance |" in md
    assert (tmp_path / "table1b.md").exists()

    ex.write_tables("deflation", results, tmp_path, {})
    t3 = json.loads((tmp_path / "table3.json").read_text())
    rows = {r["label"]: r for r in t3["rows"]}
    assert rows["calibrated deflation"]["cells"]["image_acc"]["mean"] == pytest.approx(51.0)
    assert rows["supervised, video net on static clip"]["cells"]["image_mAP"]["mean"] == pytest.approx(57.0)
    assert rows["chance"]["cells"]["image_acc"]["mean"] == 10.0


def test_runs_of_experiments():
    assert ex.runs_of("design") == ["va", "vt", "vat_fac", "vat_shared", "vat_disjoint", "supervised"]
    assert ex.runs_of("deflation") == ["vat_fac", "supervised"]


@pytest.fixture()
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small runs: thread start-up and contention cost more than they give
    yield
    torch.set_num_threads(n)


def test_quick_experiment_runs_caches_and_reproduces(tmp_path, one_thread, capsys):
    out = tmp_path / "exp"
    assert ex.cli_main(["deflation", "--quick", "--seeds", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Table 3 analogue" in printed and "calibrated deflation" in printed
    t3 = json.loads((out / "table3.json").read_text())
    labels = [r["label"] for r in t3["rows"]]
    assert labels[:3] == ["naive deflation", "calibrated deflation", "video net on static clip"]
    assert "chance" in labels and any(lab.startswith("supervised") for lab in labels)
    for row in t3["rows"]:
        for cell in row["cells"].values():
            assert cell["mean"] is not None and 0.0 <= cell["mean"] <= 100.0
    runs = json.loads((out / "deflation_runs.json").read_text())["runs"]
    first = runs["vat_fac"][0]
    assert {"t2v_R@10", "v2a_R@1", "a2t_R@10", "probe_action", "image_calibrated_acc"} <= set(first)

    # cached: a second call reuses the result files instead of training again
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}
    messages = []
    res = ex.run_experiment("deflation", [0], ex.QUICK, "data_samples", out, log=messages.append)
    assert sum("cached" in m for m in messages) == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert res["runs"]["vat_fac"][0] == runs["vat_fac"][0]

    # reproducible: the same seed trained again from scratch gives the same numbers
    data = ex.EvalData("data_samples", ex.QUICK)
    again = ex.run_one(ex.RUNS["vat_fac"], 0, ex.QUICK, data, tmp_path / "again", log=lambda s: None)
    assert again["flat"] == first
