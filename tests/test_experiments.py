"""Tests of mmv_lite.experiments: the arms of the design tables, the one budget, and a real quick run."""

from __future__ import annotations

import json

import pytest

from mmv_lite import experiments as ex


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
    assert {"t2v_R@10", "v2a_R@1", "a2t_R@10", "probe_action", "image_calibrated", "image_calibrated_mAP"} <= set(first)

    # cached: a second call reuses the result files instead of training again
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}
    messages = []
    res = ex.run_experiment("deflation", [0], ex.QUICK, "data_samples", out, log=messages.append)
    assert sum("cached" in m for m in messages) == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert res["runs"]["vat_fac"][0] == runs["vat_fac"][0]

    # reproducible: the same seed trained again from scratch gives the same numbers
    folder = ex.make_source("data_samples", ex.QUICK)
    again = ex.run_arm("vat_fac", 0, ex.QUICK, folder, tmp_path / "again", log=lambda s: None, device="cpu")
    assert {"seed": 0, **again["flat"]} == first


def test_the_findings_command_writes_the_documented_results_only_with_the_conditions(tmp_path, monkeypatch, capsys):
    """docs/results/findings.json is cited for its conditions too: a run without them must not replace it."""
    calls = []

    reused = []

    def fake_run(names, seeds, budget, out, jobs, force, conditions, reuse):
        calls.append(conditions)
        reused.append(reuse)
        seconds = {"total": 1.0, "train": 0.0, "eval": 0.0, "runs_from_cache": 0, "runs": 0}
        return {"findings": {}, "conditions": {}, "meta": {"seconds": seconds}, "runs": {}}

    monkeypatch.setattr(ex.findings, "run_findings", fake_run)
    results = tmp_path / "results"
    base = ["findings", "--out", str(tmp_path / "out"), "--results", str(results)]
    assert ex.cli_main(base) == 0
    assert not (results / "findings.json").exists() and "add --conditions" in capsys.readouterr().out
    assert ex.cli_main([*base, "--conditions"]) == 0
    assert json.loads((results / "findings.json").read_text())["conditions"] == {} and calls == [False, True]
    # --reuse hands the document it names to the run
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"meta": {"note": "earlier"}, "runs": {}}))
    assert ex.cli_main([*base, "--reuse", str(earlier)]) == 0
    assert reused == [None, None, {"meta": {"note": "earlier"}, "runs": {}}]


def test_steps_shorten_the_warm_up_of_every_experiment(tmp_path, monkeypatch):
    """--steps gives the findings and the tables the same budget: the run shortened, its warm-up with it."""
    seen = []

    def fake_findings(names, seeds, budget, out, jobs, force, conditions, reuse):
        seen.append(budget)
        seconds = {"total": 1.0, "train": 0.0, "eval": 0.0, "runs_from_cache": 0, "runs": 0}
        return {"findings": {}, "conditions": {}, "meta": {"seconds": seconds}, "runs": {}}

    def fake_tables(experiment, seeds, budget, *args, **kwargs):
        seen.append(budget)
        return {"markdown": "", "seconds": {"total": 0.0, "train": 0.0, "eval": 0.0}}

    monkeypatch.setattr(ex.findings, "run_findings", fake_findings)
    monkeypatch.setattr(ex.cli, "run_experiment", fake_tables)
    assert ex.cli_main(["findings", "--steps", "50", "--out", str(tmp_path), "--results", ""]) == 0
    assert ex.cli_main(["design", "--steps", "50", "--out", str(tmp_path)]) == 0
    assert seen[0] == seen[1] == ex.FULL.with_steps(50)
    assert (seen[0].steps, seen[0].warmup_steps) == (50, 5) and ex.FULL.warmup_steps == 30


def test_an_unknown_arm_is_named():
    with pytest.raises(ValueError, match="unknown arm 'vat_nothing'"):
        ex.arm_config("vat_nothing", 0, ex.QUICK)


def test_the_supervised_reference_is_an_arm_of_the_world_too(tmp_path, one_thread):
    """Trained on the world's labels with the quick budget, measured like every arm (no embedding space to
    retrieve in), and cached like every arm."""
    world = ex.make_source("world", ex.QUICK)
    quiet = {"log": lambda s: None}
    first = ex.run_arm(ex.SUPERVISED, 0, ex.QUICK, world, tmp_path, **quiet)
    assert {"f_v.kind", "f_v.motion", "chance_f_v.kind"} <= set(first["flat"])
    assert not any("R@" in k for k in first["flat"]) and first["key"]["arm"] == "supervised"
    again = ex.run_arm(ex.SUPERVISED, 0, ex.QUICK, world, tmp_path, **quiet)
    assert again.get("cached") and again["flat"] == first["flat"]
