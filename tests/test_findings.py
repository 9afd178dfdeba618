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
    assert evaluate_check(Check("within", "a:m", "b:m", 5.0), runs)["passed"]  # |-1| + noise 2 <= 5
    assert not evaluate_check(Check("within", "a:m", "b:m", 2.5), runs)["passed"]  # |-1| <= 2.5, but not + noise 2
    assert evaluate_check(Check("times_chance", "a:m", "chance", 2.5), runs)["passed"]  # 31 >= 25 + noise 1.4
    # 31 >= 3 x 10, but not beyond the noise (pooled std sqrt(1/2) of a's std 1 and chance's 0: noise 1.41)
    res = evaluate_check(Check("times_chance", "a:m", "chance", 3.0), runs)
    assert not res["passed"] and res["threshold"] == pytest.approx(30.0 + 2 * 0.5**0.5)
    with pytest.raises(KeyError, match="no metric"):
        evaluate_check(Check("beats", "a:missing", "b:m"), runs)


# Per kind: (a, b) per seed that pass without a noise term and fail with it, and (a, b) that pass with it. The
# margin is the claim's own (beats: 5 points; within: 5 points; times_chance: 2 x chance).
_RULE_CASES = {
    "beats": (5.0, ([50.0, 56.0, 62.0], [40.0, 45.0, 50.0]), ([55.0, 56.0, 57.0], [48.0, 49.0, 50.0])),
    "not_below": (0.0, ([30.0, 32.0, 34.0], [40.0, 41.0, 42.0]), ([30.0, 40.0, 50.0], [40.0, 41.0, 42.0])),
    "within": (5.0, ([40.0, 48.0, 56.0], [50.0, 51.0, 52.0]), ([50.0, 50.5, 51.0], [50.0, 51.0, 52.0])),
    "times_chance": (2.0, ([8.8, 10.6, 3.8], None), ([8.0, 8.5, 9.0], None)),  # F6's seeds, chance 2.0
}


@pytest.mark.parametrize("kind", sorted(findings.RULE))
def test_every_check_kind_has_a_noise_term_and_the_table_prints_the_comparison_the_code_makes(kind):
    margin, noisy, quiet = _RULE_CASES[kind]
    outcome = {}
    for name, (a, b) in (("noisy", noisy), ("quiet", quiet)):
        series = {"x__m": a, "x__chance_m": [2.0] * 3} if b is None else {"x__m": a, "y__m": b}
        check = Check(kind, "x:m", "chance" if b is None else "y:m", margin)
        res = evaluate_check(check, _runs(**series))
        gap, noise = res["gap"], 2 * res["pooled_std"]
        assert res["noise"] == pytest.approx(noise) and res["rule"] == findings.RULE[kind]
        without_noise = {
            "beats": gap > margin,
            "not_below": gap >= 0,
            "within": abs(gap) <= margin,
            "times_chance": res["a"]["mean"] >= margin * 2.0,
        }[kind]
        outcome[name] = (without_noise, res["passed"])
        # the page's "needs" cell, evaluated as written, gives the code's verdict
        cell = findings.needs(res).replace("\\|gap\\|", "abs(gap)").replace(" x ", " * ")
        lhs, op, rhs = (
            cell.split(" = ")[0].partition(" >= ")
            if " >= " in cell
            else cell.partition(" > " if " > " in cell else " <= ")
        )
        written = eval(f"{lhs} {op.strip()} {rhs}", {"abs": abs}, {"gap": gap, "a": res["a"]["mean"]})
        assert written == res["passed"], (cell, res)
    if kind == "not_below":  # 9 points below, std 2: beyond the noise either way; 1 below with std 10: inside
        assert outcome == {"noisy": (False, False), "quiet": (False, True)}
    else:
        assert outcome == {"noisy": (True, False), "quiet": (True, True)}


def test_f6_tests_twice_chance_against_the_seed_noise():
    f = FINDINGS["zero_shot_audio_text"]
    runs = {arm: [{"a2t_R@10": v, "chance_a2t_R@10": 2.0} for v in vs] for arm, vs in
            {"vat_fac": [8.8, 10.6, 3.8], "vat_fac_offscreen": [2.0, 2.0, 2.0]}.items()}  # fmt: skip
    res = evaluate_finding(f, runs)
    assert res["checks"][0]["a"]["mean"] >= 2 * 2.0  # the mean is over twice chance ...
    assert not res["holds"]  # ... but not beyond the seed noise
    assert res["control"]["verdict"] == "nothing to close" and res["control"]["gap_closes"] is None
    runs["vat_fac"] = [{"a2t_R@10": v, "chance_a2t_R@10": 2.0} for v in (8.0, 8.5, 9.0)]
    res = evaluate_finding(f, runs)
    assert res["holds"] and res["control"]["verdict"] == "closes" and res["control"]["gap_closes"] is True


def test_the_findings_are_grouped_by_whose_claim_they_test():
    named = [n for g in findings.GROUPS.values() for n in g.findings]
    assert sorted(named) == sorted(FINDINGS)  # each finding in exactly one group
    assert findings.GROUPS["premise"].findings == ("self_supervision",)
    assert findings.GROUPS["mil_nce"].findings == ("mil_nce",)
    held = {n: {"holds": n in ("mil_nce", "deflation")} for n in FINDINGS}
    counts = {k: (g["hold"], g["of"]) for k, g in findings.evaluate_groups(held).items()}
    assert counts == {"premise": (0, 1), "mil_nce": (1, 1), "mmv": (1, 4)}


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
        assert f["control"]["verdict"] in ("closes", "stays", "nothing to close") and f["control"]["dial"]
        assert f["control"]["gap_closes"] == {"closes": True, "stays": False}.get(f["control"]["verdict"])
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
    # the stored verdicts, groups and observations are today's rule applied to the stored runs
    assert findings.reevaluate(doc) == {k: doc[k] for k in findings.reevaluate(doc)}
    assert {k: (g["hold"], g["of"]) for k, g in doc["groups"].items()} == {
        k: (sum(doc["findings"][n]["holds"] for n in g.findings), len(g.findings)) for k, g in findings.GROUPS.items()
    }
    page = (Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md").read_text()
    assert findings.groups_markdown(doc) in page and findings.observations_markdown(doc) in page
    assert findings.findings_summary_markdown(doc) in page
    assert findings.conditions_summary_markdown(doc) in page
    assert findings.findings_markdown(doc) in page


def test_the_cache_key_holds_the_calibration_budget_only_for_image_arms():
    longer = dataclasses.replace(findings.FULL, calib_steps=findings.FULL.calib_steps + 1)
    assert findings.run_key("vat_shared", 0, findings.FULL) == findings.run_key("vat_shared", 0, longer)
    assert findings.run_key("vat_fac", 0, findings.FULL) != findings.run_key("vat_fac", 0, longer)
    assert findings.run_key("vat_shared", 0, findings.FULL) != findings.run_key("vat_shared", 1, findings.FULL)
