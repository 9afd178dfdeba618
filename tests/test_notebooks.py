"""The notebooks as files: paired, output-free, one repository URL, the same set-up cell, the course structure.

Running them is nbmake's job (``python -m pytest --nbmake notebooks``); these checks are cheap and say what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmv_lite import colab
from mmv_lite.tools import notebook_pairs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))
jupytext = pytest.importorskip("jupytext")


def _cells(py: Path):
    return jupytext.read(py).cells


def test_there_are_notebooks():
    assert SOURCES, f"no notebook sources (NN_name.py) in {NOTEBOOKS}"


def test_pairs_in_sync_and_without_outputs():
    assert notebook_pairs.out_of_sync() == []
    assert notebook_pairs.with_outputs() == []


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_badge_and_setup_cell_follow_the_one_repository_url(py):
    """The badge is derived from pyproject.toml's address; the set-up cell is the same six lines everywhere and names
    no address of its own (tests/test_colab.py runs it as on Colab)."""
    cells = _cells(py)
    ipynb = py.with_suffix(".ipynb").name
    assert cells[0].cell_type == "markdown"
    assert colab.colab_badge(ipynb) in cells[0].source, f"{py.name}: first cell must carry colab_badge({ipynb!r})"
    code = [c for c in cells if c.cell_type == "code"]
    assert code[0].source.strip() == colab.SETUP_CELL.strip(), (
        f"{py.name}: the first code cell must be mmv_lite.colab.SETUP_CELL verbatim"
    )
    assert len(code[0].source.strip().splitlines()) <= 6
    # Any GitHub or Colab address in the notebook is the badge's.
    text = "\n".join(c.source for c in cells)
    for url in re.findall(r"https://(?:github\.com|colab\.research\.google\.com/github)/[\w.\-]+/[\w.\-]+", text):
        assert colab.published() and url in colab.colab_url(ipynb), f"{py.name}: {url} does not follow pyproject.toml"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_course_structure(py):
    cells = _cells(py)
    md = [c.source for c in cells if c.cell_type == "markdown"]
    code = [c.source for c in cells if c.cell_type == "code"]
    assert "learning goals" in md[0].lower() or "you will learn" in md[0].lower(), f"{py.name}: goals first"
    assert any("try this" in m.lower() for m in md), f"{py.name}: no 'Try this' prompt"
    assert "what we learned" in md[-1].lower(), f"{py.name}: last cell should say what we learned"
    # One parameters cell decides quick vs full, from MMV_LITE_MODE through run_mode().
    assert sum("run_mode()" in c for c in code) == 1, f"{py.name}: exactly one parameters cell calls run_mode()"
    assert code[0] != code[1] and "run_mode()" in code[1], f"{py.name}: the parameters cell comes right after set-up"


def test_run_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv(colab.MODE_ENV, "FULL")
    assert colab.run_mode() == "full"
    monkeypatch.setenv(colab.MODE_ENV, "quick")
    assert colab.run_mode() == "quick"
    monkeypatch.setenv(colab.MODE_ENV, "fast")
    with pytest.raises(ValueError, match="MMV_LITE_MODE"):
        colab.run_mode()
    monkeypatch.delenv(colab.MODE_ENV)
    import torch

    assert colab.run_mode() == ("full" if torch.cuda.is_available() else "quick")
    assert colab.run_mode(default="full") == "full"


def test_samples_dir_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMV_LITE_SAMPLES", str(tmp_path / "nowhere"))
    monkeypatch.setattr(colab, "repo_root", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="make-samples"):
        colab.samples_dir()
    (tmp_path / "data_samples").mkdir()
    (tmp_path / "data_samples" / "metadata.json").write_text("{}")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert colab.samples_dir() == tmp_path / "data_samples"


SHIPPED = Path(__file__).resolve().parents[1] / "data_samples" / "mmv_lite_fac.pt"


@pytest.mark.skipif(
    not SHIPPED.is_file(), reason="data_samples/mmv_lite_fac.pt not trained yet (python -m mmv_lite train)"
)
def test_shipped_checkpoint_retrieves_well_above_chance():
    """Notebooks 04-06 draw their maps and results from the shipped checkpoint: it must be a trained model.

    Held out, its video-audio retrieval is far above chance; its text retrieval is only a little above chance on
    held-out clips (data_samples/CHECKPOINT.md), so the text tower is checked on the clips it was trained on.
    """
    import torch

    from mmv_lite.checkpoints import load_model
    from mmv_lite.data.clips import ClipDataset
    from mmv_lite.embedding import embed_dataset
    from mmv_lite.retrieval import chance_levels, zero_shot_retrieval

    torch.set_num_threads(1)
    model, cfg, vocab = load_model(SHIPPED)
    for split, directions in (("test", ("v2a", "a2v")), ("train", ("t2v", "v2t"))):
        clips = ClipDataset(SHIPPED.parent, split, cfg.data)
        assert clips.word_vectors.vocab == vocab
        emb = embed_dataset(model, clips)
        got, chance = zero_shot_retrieval(emb, cfg.model.graph), chance_levels(emb, cfg.model.graph)
        for d in directions:  # median rank at most half of a random ranking's
            assert got[d]["MedR"] <= chance[d]["MedR"] / 2, (split, d, got[d], chance[d])


RESULTS = NOTEBOOKS.parent / "docs" / "results"


def test_shipped_checkpoint_measurements_are_of_this_checkpoint():
    """Notebooks 03 and 06 cite the shipped checkpoint's measurements (docs/results/shipped_checkpoint*.json): they
    must be of the file shipped now. Re-scoring the world's test clips gives the stored retrieval to the digit, and
    the stored probes show what the notebooks say: pretrained video features ahead of random weights on kind and
    motion."""
    import json

    import torch

    from mmv_lite.checkpoints import load_model
    from mmv_lite.embedding import embed_dataset
    from mmv_lite.evaluate import load_world_eval_datasets
    from mmv_lite.retrieval import zero_shot_retrieval

    stored = json.loads((RESULTS / "shipped_checkpoint.json").read_text())
    random_init = json.loads((RESULTS / "shipped_checkpoint_random_init.json").read_text())
    assert stored["data"] == "world" and stored["split"] == "test" and not stored["random_init"]
    assert random_init["random_init"] and random_init["checkpoint"] == stored["checkpoint"]
    torch.set_num_threads(1)
    model, cfg, vocab = load_model(SHIPPED)
    test = load_world_eval_datasets(cfg, ["test"], vocab, model.text_backbone.word_vectors)["test"]
    got = zero_shot_retrieval(embed_dataset(model, test), cfg.model.graph)
    for d in ("t2v", "v2a", "a2t"):
        for k in ("R@1", "R@10"):
            assert got[d][k] == pytest.approx(stored["retrieval"][d][k], abs=0.21), (
                d,
                k,
                got[d],
                stored["retrieval"][d],
            )
    for factor in ("kind", "motion"):
        gain = stored["factors"]["f_v"][factor]["accuracy"] - random_init["factors"]["f_v"][factor]["accuracy"]
        assert gain >= 15, f"f_v {factor}: pretrained only {gain:.1f} points ahead of random weights"


CHECKPOINT_CARD = SHIPPED.parent / "CHECKPOINT.md"


@pytest.mark.skipif(not CHECKPOINT_CARD.is_file(), reason="data_samples/CHECKPOINT.md not written yet")
def test_pretraining_notebook_shows_the_command_that_made_the_shipped_checkpoint():
    """Notebook 03 tells students how to reproduce data_samples/mmv_lite_fac.pt: the same commands as its card."""
    card = re.search(r"```bash\n(.*?)```", CHECKPOINT_CARD.read_text(), re.S)
    assert card, f"{CHECKPOINT_CARD} has no ```bash block with the commands that made the checkpoint"
    md = "\n".join(c.source for c in _cells(NOTEBOOKS / "03_pretraining.py") if c.cell_type == "markdown")
    blocks = [b.strip() for b in re.findall(r"```(?:bash)?\n(.*?)```", md, re.S)]
    assert card.group(1).strip() in blocks, "03_pretraining shows another command than data_samples/CHECKPOINT.md"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_the_kit_is_imported_before_torch(py):
    """``import mmv_lite`` sets OMP_WAIT_POLICY (mmv_lite.colab.set_threading_policy), which OpenMP reads once, when
    torch loads: a notebook that imports torch first keeps spinning threads on a busy laptop."""
    code = "\n".join(c.source for c in _cells(py)[1:] if c.cell_type == "code")  # after the set-up cell
    first = {
        name: m.start() if (m := re.search(rf"^\s*(?:import|from) {name}\b", code, flags=re.M)) else None
        for name in ("mmv_lite", "torch")
    }
    assert first["mmv_lite"] is not None, f"{py.name} never imports the kit"
    assert first["torch"] is None or first["mmv_lite"] < first["torch"], f"{py.name}: import mmv_lite before torch"
