"""The command line loses nothing and explains itself: a run folder is never silently replaced, bad values are
refused before anything is written, and a user error is one line on stderr with exit status 2 (--debug: the
traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmv_lite import __main__ as cli_main_module
from mmv_lite.__main__ import main
from mmv_lite.checkpoints import load_checkpoint
from mmv_lite.cli import error_line, run_command, split_debug
from mmv_lite.config import get_config
from mmv_lite.data.clips import hash_split
from mmv_lite.data.synth import write_mp4

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "data_samples" / "mmv_lite_fac.pt"
# A few steps of a very small network on the sample-world stream: seconds on a CPU.
TINY = [
    "--device", "cpu", "--no-progress", "--threads", "1", "--num-workers", "0", "--batch-size", "4",
    "--set", "data.crop_size=16", "--set", "data.resize_to=16", "--set", "data.num_frames=4",
    "--set", "world.num_eval=8", "--set", "world.num_probe=8", "--set", "train.warmup_steps=1",
    "--set", "train.log_every=1",
]  # fmt: skip


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------------------ run folders
def test_train_never_silently_replaces_a_run(tmp_path, monkeypatch, capsys):
    """The README's main job run twice (no --out: runs/lite-fac-vat): the second is refused and the first run stays
    byte-identical; --steps -3 on it is refused too; --overwrite replaces it; --resume continues it."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "lite-fac-vat"
    assert _run(capsys, "train", *TINY, "--steps", "2")[0] == 0
    before = _snapshot(run)
    assert {"checkpoint.pt", "metrics.jsonl"} <= set(before)

    for extra in ([], ["--steps", "3"], ["--resume", "--steps", "-3"], ["--out", str(run), "--seed", "1"]):
        code, _, err = _run(capsys, "train", *TINY, *extra)
        assert code == 2, extra
        line = _one_error_line(err)
        if "--resume" not in extra:
            assert "already holds a run" in line and "--resume" in line and "--overwrite" in line, line
        else:
            assert "train.steps=-3" in line, line
        assert _snapshot(run) == before, f"{extra} changed the run folder"

    assert _run(capsys, "train", *TINY, "--steps", "3", "--overwrite")[0] == 0
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[:3] == [1, 2, 3] and _snapshot(run) != before

    assert _run(capsys, "train", *TINY, "--steps", "4", "--out", "runs/lite-fac-vat", "--resume")[0] == 0
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 4


def test_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # argparse's own usage error
        main(["train", "--out", str(tmp_path / "r"), "--resume", "--overwrite"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------ bad values
@pytest.mark.parametrize(
    "argv, named",
    [
        (["--steps", "-3"], "train.steps=-3"),
        (["--steps", "0"], "train.steps=0"),
        (["--batch-size", "0"], "train.batch_size=0"),
        (["--lr", "-1"], "train.lr=-1.0"),
        (["--num-workers", "-1"], "train.num_workers=-1"),
        (["--threads", "0"], "--threads 0"),
        (["--stop-at", "0"], "--stop-at 0"),
        (["--set", "train.lr=abc"], "train.lr='abc'"),
        (["--set", "train.lr=NaN"], "train.lr=nan"),
        (["--set", "train.eval_every=-1"], "train.eval_every=-1"),
        (["--set", "train.checkpoint_every=-2"], "train.checkpoint_every=-2"),
        (["--set", "data.num_frames=0"], "data.num_frames=0"),
        (["--set", "data.crop_min_scale=2"], "data.crop_min_scale=2.0"),
        (["--set", "world.misalignment=1.5"], "world.misalignment=1.5"),
        (["--set", "train.wings=2"], "wings"),
        (["--set", "train.lr"], "SECTION.NAME=VALUE"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--data", "no/such/folder"], "no/such/folder"),
    ],
)
def test_bad_train_values_are_one_line_and_write_nothing(argv, named, tmp_path, capsys):
    code, out, err = _run(capsys, "train", "--out", str(tmp_path / "run"), "--no-progress", *argv)
    assert code == 2
    assert named in _one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_every_command_reports_user_errors_in_one_line(tmp_path, capsys):
    nowhere = str(tmp_path / "nowhere")
    cases = [
        (["evaluate", "--checkpoint", str(tmp_path / "none.pt")], "none.pt"),
        (["evaluate", "--checkpoint", str(CHECKPOINT), "--batch-size", "0"], "--batch-size 0"),
        (["evaluate", "--checkpoint", str(CHECKPOINT), "--data", nowhere], "nowhere"),
        (["evaluate", "--checkpoint", str(CHECKPOINT), "--data", "world", "--split", "all"], "sample world"),
        (["evaluate", "--checkpoint", str(CHECKPOINT), "--set", "world.seed=abc"], "world.seed='abc': expected int"),
        (["evaluate", "--checkpoint", str(CHECKPOINT), "--set", "train.lr"], "SECTION.NAME=VALUE"),
        (["experiment", "design", "--data", nowhere, "--out", str(tmp_path / "x")], "nowhere"),
        (["experiment", "design", "--steps", "-1", "--out", str(tmp_path / "x")], "--steps -1"),
        (["experiment", "findings", "--only", "wings", "--out", str(tmp_path / "x")], "wings"),
        (["embed", "--checkpoint", str(CHECKPOINT), "--videos", nowhere, "--out", str(tmp_path / "e.npz")], "nowhere"),
        (["search", "--checkpoint", str(CHECKPOINT), "--videos", str(tmp_path), "-k", "0", "red"], "--top 0"),
    ]
    for argv, named in cases:
        code, _, err = _run(capsys, *argv)
        assert code == 2, argv
        assert named in _one_error_line(err), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_python_dash_m_prints_one_line_and_debug_the_traceback(tmp_path):
    argv = [sys.executable, "-m", "mmv_lite", "train", "--out", str(tmp_path / "r"), "--set", "train.lr=abc"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["error: train.lr='abc': expected float, got str"], r.stderr
    r = subprocess.run([*argv[:3], "--debug", *argv[3:]], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 1 and "Traceback" in r.stderr and "ValueError: train.lr='abc'" in r.stderr
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------ which errors
def test_only_user_errors_lose_their_traceback(monkeypatch, capsys):
    def bug(argv):
        return {}["missing"]  # a KeyError: a bug, whatever the input

    monkeypatch.setattr(cli_main_module, "entry_point", lambda name: bug)
    with pytest.raises(KeyError):
        main(["train"])
    with pytest.raises(ValueError, match="unknown preset"):  # --debug: the exception itself
        run_command(lambda argv: get_config("nope"), [], debug=True)
    assert run_command(lambda argv: get_config("nope"), []) == 2
    assert capsys.readouterr().err.startswith("error: unknown preset 'nope'")


def test_an_error_raised_outside_the_package_says_where(tmp_path):
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=-1.0)
    except ValueError as e:
        line = error_line(e)
    assert line.startswith("error: Invalid learning rate") and "[ValueError in torch.optim" in line
    assert "--debug shows the traceback" in line
    assert error_line(ValueError("two\nlines")) == "error: two lines"
    (tmp_path / "file").write_text("")
    try:
        (tmp_path / "file" / "sub").mkdir()
    except OSError as e:  # raised in pathlib, but an OSError names its file: no more is needed
        line = error_line(e)
    assert line.startswith("error: [Errno") and line.endswith("sub'"), line


def test_debug_may_come_anywhere_before_a_double_dash():
    assert split_debug(["--debug", "train", "--steps", "2"]) == (["train", "--steps", "2"], True)
    assert split_debug(["train", "--debug"]) == (["train"], True)
    assert split_debug(["search", "--", "--debug"]) == (["search", "--", "--debug"], False)


# ------------------------------------------------------------------------------------------ empty splits
@pytest.fixture
def four_videos(tmp_path) -> Path:
    """4 videos with sound, no captions, no metadata: the checksum split puts 2 in train, 2 in val, none in test."""
    ids = [f"clip{i}" for i in range(4)]
    assert sorted(hash_split(v) for v in ids) == ["train", "train", "val", "val"]
    rng = np.random.default_rng(0)
    t = np.arange(4 * 16_000) / 16_000
    for i, vid in enumerate(ids):
        frames = rng.integers(0, 255, (40, 48, 48, 3), dtype=np.uint8)
        sound = (0.2 * np.sin(2 * np.pi * (300 + 150 * i) * t)).astype(np.float32)
        write_mp4(tmp_path / "four" / "videos" / f"{vid}.mp4", frames, sound, fps=10, sample_rate=16_000)
    return tmp_path / "four"


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason="needs the shipped data_samples/mmv_lite_fac.pt")
def test_evaluate_explains_an_empty_split_and_scores_all(four_videos, tmp_path, capsys):
    base = ["evaluate", "--checkpoint", str(CHECKPOINT), "--data", str(four_videos)]
    code, _, err = _run(capsys, *base)
    assert code == 2
    line = _one_error_line(err)
    assert "the test split" in line and "is empty" in line and "metadata.json" in line and "--split all" in line
    assert "2 train, 2 val, 0 test" in line

    code, out, _ = _run(capsys, *base, "--split", "all", "--json", str(tmp_path / "r.json"))
    assert code == 0
    assert "zero-shot retrieval on all" in out and "v2a" in out and "linear probes skipped" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["num_clips"] == {"all": 8}  # 4 videos of 4 s: two 1.6 s windows each
    assert set(result["retrieval"]) == {"v2a", "a2v"} and "probes" not in result

    code, out, _ = _run(capsys, *base, "--split", "train", "--windows", "1")  # train and val exist: probes may run
    assert code == 0 and "zero-shot retrieval on train" in out
    assert "linear probes: none ran" in out  # no metadata, so no labels to probe


def test_train_on_a_folder_without_captions_needs_no_word_vectors(four_videos, tmp_path, capsys):
    """--modalities va on a folder of plain videos (no captions.json, no word_vectors.bin) trains and evaluates; a
    folder with captions still needs the word vectors for a model that reads them, and the error names the file."""
    run = tmp_path / "run"
    argv = ["train", *TINY, "--data", str(four_videos), "--modalities", "va", "--steps", "2", "--out", str(run)]
    code, _, err = _run(capsys, *argv, "--set", "train.eval_every=0")
    assert code == 0, err
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 2 and state["config"]["train"]["modalities"] == "va"
    code, out, err = _run(capsys, "evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--split", "all")
    assert code == 0 and "v2a" in out, err  # its own folder, scored without word vectors too
    (four_videos / "captions.json").write_text(json.dumps({"clip0": {"start": [0.0], "end": [2.0], "text": ["hi"]}}))
    argv = ["train", *TINY, "--data", str(four_videos), "--steps", "2", "--out", str(tmp_path / "vat")]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "word_vectors.bin" in _one_error_line(err) and not (tmp_path / "vat").exists()
    code, _, err = _run(capsys, *argv[:-1], str(tmp_path / "va"), "--modalities", "va")
    assert code == 0, err  # captions there, but a "va" model never reads them
