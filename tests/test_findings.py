"""The findings: the verdict rule on made-up numbers, and the quick run end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mmv_lite.experiments import findings
from mmv_lite.experiments.findings import (
    CONDITIONS,
    FINDINGS,
    Check,
    arms_of,
    evaluate_check,
    evaluate_condition,
    evaluate_finding,
    run_findings,
)
from mmv_lite.runtime import machine

pytestmark = pytest.mark.usefixtures("one_thread")


def _runs(**series: list[float]) -> dict[str, list[dict[str, float]]]:
    """``arm_metric=[per seed]`` -> the runs table the checks read."""
    runs: dict[str, list[dict[str, float]]] = {}
    for key, values in series.items():
        arm, metric = key.split("__")
        rows = runs.setdefault(arm, [{} for _ in values])
        for row, v in zip(rows, values):
            row[metric.replace("_dot_", ".")] = v
    return runs


def test_beats_needs_twice_the_pooled_std_and_the_margin():
    runs = _runs(a__m=[50.0, 52.0, 54.0], b__m=[40.0, 41.0, 42.0])  # gap 11, stds 2 and 1
    res = evaluate_check(Check("beats", "a:m", "b:m"), runs)
    assert res["gap"] == pytest.approx(11.0) and res["pooled_std"] == pytest.approx((2.5) ** 0.5)
    assert res["passed"] and res["a"]["per_seed"] == [50.0, 52.0, 54.0]
    assert not evaluate_check(Check("beats", "a:m", "b:m", margin=15.0), runs)["passed"]  # the claim's margin
    noisy = _runs(a__m=[40.0, 52.0, 64.0], b__m=[40.0, 41.0, 42.0])  # same gap, std 12
    assert not evaluate_check(Check("beats", "a:m", "b:m"), noisy)["passed"]


def test_not_below_within_and_times_chance():
    runs = _runs(a__m=[30.0, 31.0, 32.0], b__m=[31.0, 32.0, 33.0], a__chance_m=[10.0, 10.0, 10.0])
    assert evaluate_check(Check("not_below", "a:m", "b:m"), runs)["passed"]  # 1 point below, std 1: within noise
    assert not evaluate_check(Check("not_below", "a:m", "b:m"), _runs(a__m=[20.0, 21, 22], b__m=[31.0, 32, 33]))[
        "passed"
    ]
    assert evaluate_check(Check("within", "a:m", "b:m", 5.0), runs)["passed"]
    assert evaluate_check(Check("times_chance", "a:m", "chance", 3.0), runs)["passed"]  # 31 >= 3 x 10
    assert not evaluate_check(Check("times_chance", "a:m", "chance", 4.0), runs)["passed"]
    with pytest.raises(KeyError, match="no metric"):
        evaluate_check(Check("beats", "a:missing", "b:m"), runs)


def test_every_finding_has_a_control_that_swaps_in_other_arms():
    assert len(FINDINGS) == 6
    for f in FINDINGS.values():
        assert f.checks and f.control and f.control_dial
        assert f.control != f.checks  # the control compares other arms (or the same arms in another world)
    assert set(arms_of(["self_supervision"])) == {"vat_fac", findings.RANDOM_INIT, "vat_fac_shuffled"}
    assert set(arms_of(list(FINDINGS))) <= {*findings.ARMS, findings.RANDOM_INIT}


def test_a_finding_holds_when_all_its_checks_pass():
    f = FINDINGS["mil_nce"]
    runs = _runs(
        vat_fac__t2v_R_at_10=[40.0, 42.0, 41.0],
        vat_fac_nce__t2v_R_at_10=[30.0, 31.0, 29.0],
        vat_fac_aligned__t2v_R_at_10=[60.0, 62.0, 61.0],
        vat_fac_nce_aligned__t2v_R_at_10=[61.0, 63.0, 60.0],
    )
    for rows in runs.values():
        for row in rows:
            row["t2v_R@10"] = row.pop("t2v_R_at_10")
    res = evaluate_finding(f, runs)
    assert res["holds"] and res["gap"] == pytest.approx(11.0)
    assert not res["control"]["holds"] and res["control"]["gap_closes"]


def test_a_condition_repeats_its_findings_checks_on_the_swapped_arms():
    cond = CONDITIONS["modalities_aligned"]
    assert cond.finding in FINDINGS and set(arms_of([cond.finding], conditions=True)) >= {new for _, new in cond.arms}
    assert "vt_aligned" not in arms_of(list(FINDINGS))  # the findings' own run trains no condition arm
    assert [c.what for c in cond.checks] == [c.what for c in FINDINGS[cond.finding].checks]
    motion = {"vat_fac_aligned": [80.0, 82.0, 84.0], "va": [60.0, 61.0, 62.0], "vt_aligned": [81.0, 83.0, 85.0]}
    runs = {arm: [{"f_v.motion": m, "t2v_R@10": 50.0} for m in ms] for arm, ms in motion.items()}
    res = evaluate_condition(cond, runs)
    assert res["checks"][0]["a"]["ref"] == "vat_fac_aligned:f_v.motion" and res["gap"] == pytest.approx(21.0)
    assert res["holds"]  # beats VA by 21 (> 2 x pooled std 2), VT 1 below (within noise), text equal
    runs["vt_aligned"] = [{"f_v.motion": m, "t2v_R@10": 50.0} for m in (95.0, 96.0, 97.0)]
    assert not evaluate_condition(cond, runs)["holds"]  # VT reads motion better beyond the noise


def test_quick_findings_run_end_to_end(tmp_path):
    doc = run_findings(seeds=(0, 1), budget=findings.QUICK, out_dir=tmp_path, log=lambda *_: None, conditions=True)
    saved = json.loads((tmp_path / "findings.json").read_text())
    assert saved["findings"].keys() == FINDINGS.keys() == doc["findings"].keys()
    assert saved["conditions"].keys() == CONDITIONS.keys()
    assert all(isinstance(c["holds"], bool) and c["checks"] for c in saved["conditions"].values())
    for name, f in saved["findings"].items():
        assert f["name"] == name and f["claim"] and isinstance(f["holds"], bool)
        for c in f["checks"] + f["control"]["checks"]:
            assert len(c["a"]["per_seed"]) == 2 and len(c["b"]["per_seed"]) == 2
            assert c["pooled_std"] >= 0 and isinstance(c["passed"], bool)
        assert isinstance(f["control"]["gap_closes"], bool) and f["control"]["dial"]
    assert set(saved["runs"]) == set(arms_of(list(FINDINGS), conditions=True))
    md = (tmp_path / "findings.md").read_text()
    assert all(f"### {name}" in md for name in FINDINGS)
    run = json.loads((tmp_path / "runs" / "vat_fac-seed0" / "result.json").read_text())
    assert saved["meta"]["machine"] == run["machine"] == machine()  # what the numbers were measured on
    # a second run reads every arm from the cache
    again = run_findings(seeds=(0, 1), budget=findings.QUICK, out_dir=tmp_path, log=lambda *_: None)
    assert again["meta"]["seconds"]["runs_from_cache"] == again["meta"]["seconds"]["runs"]
    assert again["runs"] == {arm: doc["runs"][arm] for arm in arms_of(list(FINDINGS))} and not again["conditions"]


def test_a_run_takes_the_runs_of_an_earlier_document_and_trains_only_the_others(tmp_path):
    quiet = {"seeds": (0,), "budget": findings.QUICK, "log": lambda *_: None}
    first = run_findings(["mil_nce"], out_dir=tmp_path / "a", **quiet)
    again = run_findings(["mil_nce"], out_dir=tmp_path / "b", reuse=first, **quiet)
    assert again["runs"] == first["runs"] and again["findings"] == first["findings"]
    assert again["meta"]["seconds"]["runs"] == 0 and again["meta"]["seconds"]["reused"]["runs"] == 4
    assert not (tmp_path / "b" / "runs").exists()  # nothing was trained
    # an arm whose changes differ from today's is trained again; the others are taken
    changed = json.loads(json.dumps(first))
    changed["meta"]["arm_changes"]["vat_fac_nce"] = {"data.num_candidates": 2}
    third = run_findings(["mil_nce"], out_dir=tmp_path / "c", reuse=changed, **quiet)
    assert third["meta"]["seconds"]["runs"] == 1 and third["meta"]["seconds"]["reused"]["runs"] == 3
    assert (tmp_path / "c" / "runs" / "vat_fac_nce-seed0" / "result.json").exists()
    with pytest.raises(ValueError, match="budget"):
        run_findings(["mil_nce"], out_dir=tmp_path / "d", reuse=first, **{**quiet, "budget": findings.FULL})


def test_the_deflation_alpha_arm_trains_as_vat_fac_and_differs_only_in_its_single_frame_metrics(tmp_path):
    held = findings.HeldOut(findings.QUICK)
    quiet = {"budget": findings.QUICK, "held": held, "out_dir": tmp_path, "log": lambda *_: None}
    base = findings.run_arm("vat_fac", 0, **quiet)["flat"]
    alpha = findings.run_arm("vat_fac_alpha03", 0, **quiet)["flat"]
    assert base.keys() == alpha.keys()
    differ = {k for k in base if base[k] != alpha[k]}
    assert "deflation_l1_before" in differ  # the naive image network is another one
    assert all("image" in k or k.startswith("deflation_l1") for k in differ), differ


def test_the_stored_findings_are_complete_and_shown_in_the_results_page():
    """docs/results/findings.json is a full run (every finding, three seeds or more, every arm measured per seed)
    and docs/RESULTS.md shows its tables as they are."""
    from pathlib import Path

    doc = findings.load_findings()
    assert set(doc["findings"]) == set(FINDINGS) and len(doc["meta"]["seeds"]) >= 3
    assert doc["meta"]["budget"] == json.loads(json.dumps(dataclasses.asdict(findings.FULL)))
    for arm in arms_of(list(FINDINGS), conditions=True):
        assert [r["seed"] for r in doc["runs"][arm]] == doc["meta"]["seeds"], arm
    for f in [*doc["findings"].values(), *doc["conditions"].values()]:
        assert all(len(c["a"]["per_seed"]) == len(doc["meta"]["seeds"]) for c in f["checks"])
    assert set(doc["conditions"]) == set(CONDITIONS)  # measured with --conditions
    page = (Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md").read_text()
    assert findings.findings_summary_markdown(doc) in page
    assert findings.conditions_summary_markdown(doc) in page
    assert findings.findings_markdown(doc) in page


def test_the_cache_key_holds_the_calibration_budget_only_for_image_arms():
    longer = dataclasses.replace(findings.FULL, calib_steps=findings.FULL.calib_steps + 1)
    assert findings.run_key("vat_shared", 0, findings.FULL) == findings.run_key("vat_shared", 0, longer)
    assert findings.run_key("vat_fac", 0, findings.FULL) != findings.run_key("vat_fac", 0, longer)
    assert findings.run_key("vat_shared", 0, findings.FULL) != findings.run_key("vat_shared", 1, findings.FULL)
