"""python -m mmv_lite render-notebooks (mmv_lite.tools.render_notebooks), on the smallest notebook in quick mode."""

from __future__ import annotations

import json
import os

import pytest

from mmv_lite.__main__ import main
from mmv_lite.runtime import machine
from mmv_lite.tools import render_notebooks


def test_select_by_number_or_name():
    assert [p.name for p in render_notebooks.select(["02"])] == ["02_losses.ipynb"]
    assert [p.name for p in render_notebooks.select(["05_deflation", "01"])] == ["01_model.ipynb", "05_deflation.ipynb"]
    with pytest.raises(ValueError, match="no notebook"):
        render_notebooks.select(["99"])


def test_a_bad_choice_is_one_line_and_writes_nothing(capsys, tmp_path):
    assert main(["render-notebooks", "--out", str(tmp_path / "course"), "--only", "99"]) == 2
    assert capsys.readouterr().err.startswith("error: --only: no notebook in")
    assert not (tmp_path / "course").exists()


@pytest.mark.slow
def test_render_one_notebook_in_quick_mode(tmp_path):
    """The notebook runs with the exercises' solutions, and the HTML has its outputs and figures embedded."""
    before = dict(os.environ)
    assert main(["render-notebooks", "--out", str(tmp_path / "course"), "--mode", "quick", "--only", "02"]) == 0
    assert dict(os.environ) == before  # the settings went to the kernel only
    page = (tmp_path / "course" / "02_losses.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # the similarity matrices and the loss curve
    assert "mode=quick" in page
    assert "✓ symmetric NCE: correct" in page and "✓ MIL-NCE: correct" in page
    assert "mmv-solution" in page  # the folded solutions
    assert "Traceback" not in page
    index = (tmp_path / "course" / "index.html").read_text()
    assert "02_losses.html" in index and "ok" in index
    timings = json.loads((tmp_path / "course" / "timings.json").read_text())
    assert timings["machine"] == machine()  # the times are this machine's
    sections = timings["notebooks"]["02_losses"]["sections"]
    assert [s["section"] for s in sections][:2] == ["set-up", "1. A batch as a similarity matrix"]
    assert all(s["seconds"] >= 0 for s in sections) and sum(s["seconds"] for s in sections) > 0


@pytest.mark.slow
def test_a_failing_notebook_is_written_up_to_its_error(tmp_path):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    cells = [nbformat.v4.new_code_cell(src) for src in ("print('before the error')", "raise ValueError('boom')")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "01_fails.ipynb")
    [result] = render_notebooks.render(tmp_path / "out", mode="quick", folder=folder, say=lambda _: None)
    assert result.error == "ValueError: boom"
    page = result.html.read_text()
    assert "before the error" in page and "boom" in page
    assert "failed: ValueError: boom" in (tmp_path / "out" / "index.html").read_text()


def test_record_timings_keeps_what_the_other_runner_wrote(tmp_path):
    """nbmake's and JupyterLab's times of one run land in one file, each under its key, with the machine."""
    from mmv_lite.tools.render_notebooks import TIMINGS_COMMAND, record_timings

    path = tmp_path / "t.json"
    record_timings(path, "lab", {"01_model": 12.34, "00_data_tour": 5.0}, "lab")
    record_timings(path, "nbmake", {"00_data_tour": 4.0}, "nbmake")
    doc = json.loads(path.read_text())
    assert doc["lab"]["seconds"] == {"00_data_tour": 5.0, "01_model": 12.3} and doc["lab"]["total_seconds"] == 17.3
    assert doc["nbmake"]["seconds"] == {"00_data_tour": 4.0} and doc["command"] == TIMINGS_COMMAND
    assert doc["machine"]["cores"] >= 1
