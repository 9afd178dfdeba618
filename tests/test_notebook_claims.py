"""Every number a notebook's text cites is the number in the results file it cites (``mmv_lite.tools.claims``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmv_lite.tools.claims import Citation, check_citation, citations, fill_citations, lookup

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))
jupytext = pytest.importorskip("jupytext")


def _markdown(py: Path) -> str:
    return "\n".join(c.source for c in jupytext.read(py).cells if c.cell_type == "markdown")


def test_citations_are_found_with_their_digits():
    text = 'R@10 [41.3](../docs/r.json "findings.a.0.mean") %, gap [+6](r.json "g") and [not a number](x.json "y")'
    found = citations(text)
    assert found == [Citation("41.3", "../docs/r.json", "findings.a.0.mean"), Citation("+6", "r.json", "g")]
    assert [c.decimals for c in found] == [1, 0]


def test_check_citation_accepts_the_rounded_value_and_names_every_mismatch(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"f": {"checks": [{"gap": 6.349}], "name": "x"}}))
    assert check_citation(Citation("6.3", "r.json", "f.checks.0.gap"), tmp_path) is None
    assert check_citation(Citation("6", "r.json", "f.checks.0.gap"), tmp_path) is None
    assert "holds 6.349" in check_citation(Citation("6.4", "r.json", "f.checks.0.gap"), tmp_path)
    assert "no key 'gaps'" in check_citation(Citation("6.3", "r.json", "f.checks.0.gaps"), tmp_path)
    assert "not a number" in check_citation(Citation("6.3", "r.json", "f.name"), tmp_path)
    assert "does not exist" in check_citation(Citation("6.3", "missing.json", "f"), tmp_path)
    with pytest.raises(KeyError, match="not a list index"):
        lookup({"a": [1]}, "a.b")
    assert lookup({"arms": {"va": {"f_v.kind": {"mean": 65.8}}}}, "arms.va.f_v.kind.mean") == 65.8


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_numbers_cited_in_a_notebook_match_their_files(py):
    wrong = [why for c in citations(_markdown(py)) if (why := check_citation(c, NOTEBOOKS))]
    assert not wrong, f"{py.name}: " + "; ".join(wrong)


def test_the_course_cites_the_findings_and_the_shipped_checkpoint():
    """The notebooks that teach a finding state its numbers from findings.json; 03 states the probes beside random
    init from the shipped checkpoint's measurements."""
    cited = {py.stem[:2]: {c.file.rsplit("/", 1)[-1] for c in citations(_markdown(py))} for py in SOURCES}
    for nb in ("02", "03", "04", "05", "06"):
        assert "findings.json" in cited[nb], f"notebook {nb} states no number from docs/results/findings.json"
    assert "shipped_checkpoint.json" in cited["03"]


def test_fill_rewrites_cited_numbers_with_their_digits(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"a": [{"m": 41.26}], "b": 3.0}))
    text = 'R@10 [0.0](r.json "a.0.m") %, [7](r.json "b"), untouched [5](x.md)'
    filled = fill_citations(text, tmp_path)
    assert filled == 'R@10 [41.3](r.json "a.0.m") %, [3](r.json "b"), untouched [5](x.md)'
    assert all(check_citation(c, tmp_path) is None for c in citations(filled))


@pytest.mark.parametrize("doc", ["docs/RESULTS.md", "docs/TEACHING.md", "README.md"])
def test_numbers_cited_in_the_docs_match_their_files(doc):
    path = ROOT / doc
    found = citations(path.read_text())
    assert found, f"{doc} cites no number from a results file"
    wrong = [why for c in found if (why := check_citation(c, path.parent))]
    assert not wrong, f"{doc}: " + "; ".join(wrong)
