"""``python -m mmv_lite bundle``: the zip a teacher uploads to Colab (mmv_lite.bundle)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from mmv_lite.bundle import write_bundle

REPO = Path(__file__).resolve().parents[1]


def _kit(root: Path) -> Path:
    """A small stand-in kit: the parts the bundle takes, plus caches it must leave out."""
    parts = ["mmv_lite/__init__.py", "mmv_lite/colab.py", "notebooks/00_data_tour.ipynb", "docs/results/x.json"]
    parts += ["data_samples/metadata.json", "data_samples/mmv_lite_fac.pt", "data_samples/.cache/big.npy"]
    parts += ["mmv_lite/__pycache__/colab.cpython-311.pyc", "pyproject.toml", "requirements.txt", "README.md"]
    for rel in parts:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


def test_the_bundle_holds_the_kit_in_one_folder_without_caches(tmp_path):
    out = write_bundle(tmp_path / "out" / "mmv_lite.zip", _kit(tmp_path / "kit"))
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert z.read("mmv_lite/data_samples/mmv_lite_fac.pt") == b"data_samples/mmv_lite_fac.pt"
    want = ["mmv_lite/colab.py", "notebooks/00_data_tour.ipynb", "docs/results/x.json", "data_samples/metadata.json"]
    assert {f"mmv_lite/{rel}" for rel in [*want, "pyproject.toml", "requirements.txt"]} <= names
    assert not any(".cache" in n or "__pycache__" in n for n in names)
    assert [p.name for p in out.parent.iterdir()] == ["mmv_lite.zip"]  # written atomically: no temporary left


def test_the_bundle_command_prints_its_size_and_refuses_a_bad_name(tmp_path):
    cmd = [sys.executable, "-m", "mmv_lite", "bundle", "--out"]
    r = subprocess.run(cmd + [str(tmp_path / "kit.tar")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "expected a file name ending in .zip" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(cmd + [str(tmp_path / "kit.zip")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    size = (tmp_path / "kit.zip").stat().st_size
    assert f"{size / 1e6:.1f} MB" in r.stdout
    with zipfile.ZipFile(tmp_path / "kit.zip") as z:
        assert "mmv_lite/data_samples/mmv_lite_fac.pt" in z.namelist()  # the shipped checkpoint
        assert "mmv_lite/notebooks/00_data_tour.ipynb" in z.namelist()
