"""The design tables (mmv_lite.tables): building, storing as JSON, reading back, comparing rows with the noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmv_lite.experiments import tables as tb

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _results(action, sound=None):
    """Flat metrics of three seeds of one run."""
    rows = [{"seed": s, "probe_action": a} for s, a in enumerate(action)]
    return [{**r, "probe_sound": sound[r["seed"]]} if sound else r for r in rows]


@pytest.fixture()
def table1a() -> dict:
    results = {
        "va": _results([24.0, 27.0, 30.6], [33.0, 39.5, 46.0]),
        "vt": _results([15.0, 23.1, 31.2]),
        "vat_fac": _results([29.1, 30.1, 31.1], [35.3, 39.5, 43.7]),
        "supervised": _results([40.0, 44.0, 48.0], [90.0, 90.0, 90.0]),
    }
    results["va"][0]["chance_probe_action"] = 14.3
    return tb.build_table(tb.TABLES["table1a"], results)


def test_build_table_rows_cells_and_reference_rows(table1a):
    labels = [r["label"] for r in table1a["rows"]]
    assert labels == ["VA", "VT", "VAT (FAC)", "supervised", "chance"]
    va = table1a["rows"][0]
    assert va["cells"]["probe_action"]["mean"] == pytest.approx(27.2) and va["cells"]["probe_action"]["n"] == 3
    assert va["cells"]["t2v_R@10"]["mean"] is None and va["paper"]["UCF101"] == 75.5
    assert table1a["rows"][-1]["cells"]["probe_action"]["mean"] == 14.3


def test_tables_round_trip_through_json(tmp_path, table1a):
    (tmp_path / "table1a.json").write_text(json.dumps(table1a))
    loaded = tb.load_tables(tmp_path)
    assert list(loaded) == ["table1a"]  # the tables not stored there are left out
    assert tb.table_markdown(loaded["table1a"]) == tb.table_markdown(table1a)


def test_row_differences_weighs_gaps_against_seed_noise(table1a):
    rows = {r["metric"]: r for r in tb.row_differences(table1a)}
    action = rows["action probe (acc %)"]
    assert (action["best"], action["runner-up"]) == ("VAT (FAC)", "VA")
    assert action["gap"] == pytest.approx(2.9) and action["noise"] == pytest.approx(1.0 + 3.3, abs=0.01)
    assert action["verdict"] == "within the noise"
    assert rows["a2t R@10 (zero-shot)"]["verdict"] == "only one row"  # chance and supervised are not competitors


def test_the_stored_tables_are_those_of_the_results_page():
    """Notebook 07 reads docs/results/*.json in quick mode; docs/RESULTS.md shows the same tables."""
    tables = tb.load_tables(DOCS / "results")
    assert set(tables) == set(tb.TABLES)
    page = (DOCS / "RESULTS.md").read_text()
    for name, table in tables.items():
        assert tb.table_markdown(table) in page, f"docs/results/{name}.json and docs/RESULTS.md disagree"
    assert [r["label"] for r in tables["table1b"]["rows"]][:3] == ["shared", "disjoint", "FAC"]


def _fake_results():
    def run(seed, base):
        r = {"seed": seed, "probe_action": base + seed, "probe_sound": 50.0, "t2v_R@10": 30.0 + seed, "v2a_R@1": 10.0}
        for mode, off in (("naive", 0.0), ("calibrated", 10.0), ("static", 12.0)):
            r[f"image_{mode}"] = 40.0 + off + seed
            r[f"image_{mode}_mAP"] = 45.0 + off
        r.update({"chance_probe_action": 12.5, "chance_image_naive": 10.0})
        if base > 60.0:  # the first run ("va") has no text, so no text chance level: the table must look further
            r["chance_t2v_R@10"] = 5.0
        return r

    names = ["va", "vt", "vat_fac", "vat_shared", "vat_disjoint", "supervised"]
    return {n: [run(s, 60.0 + i) for s in (0, 1, 2)] for i, n in enumerate(names)}


def test_mean_std_sample_convention():
    s = tb.mean_std([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0) and s["n"] == 3
    assert tb.mean_std([5.0])["std"] == 0.0
    assert tb.mean_std([None, float("nan")])["mean"] is None


def test_tables_from_results(tmp_path):
    results = _fake_results()
    md = tb.write_tables("design", results, tmp_path, {"cmd": "test"})
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

    tb.write_tables("deflation", results, tmp_path, {})
    t3 = json.loads((tmp_path / "table3.json").read_text())
    rows = {r["label"]: r for r in t3["rows"]}
    assert rows["calibrated deflation"]["cells"]["image_acc"]["mean"] == pytest.approx(51.0)
    assert rows["supervised, video net on static clip"]["cells"]["image_mAP"]["mean"] == pytest.approx(57.0)
    assert rows["chance"]["cells"]["image_acc"]["mean"] == 10.0
