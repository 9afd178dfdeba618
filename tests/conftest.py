"""Shared fixtures: small configurations and a tiny generated sample folder (made once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmv_lite.config import get_config

REPO = Path(__file__).resolve().parents[1]
DATA_SAMPLES = REPO / "data_samples"


# The clip pipeline's tests read files with these settings: 8 frames at 5 fps, 56 px crops of 64 px frames, 16 kHz
# audio as an 80-band log-mel with a 16 ms hop, bags of K = 4 narrations (the data tests exercise MIL-NCE's bags).
FILE_DATA = {
    "data.crop_size": 56,
    "data.resize_to": 64,
    "data.n_fft": 512,
    "data.hop_length": 256,
    "data.n_mels": 80,
    "data.num_candidates": 4,
}


@pytest.fixture
def lite_data_cfg():
    """A fresh DataConfig of the ``lite`` preset with the file-pipeline settings above (:data:`FILE_DATA`)."""
    return get_config("lite", **FILE_DATA).data


@pytest.fixture(scope="session")
def tiny_samples(tmp_path_factory) -> Path:
    """A sample folder made by the generator: 2 narrated videos + 2 sound clips, seed 0, small word corpus.

    Laid out like ``data_samples/`` (videos/, captions.json, metadata.json, word_vectors.bin). Treat it as
    read-only; copy it (``shutil.copytree``) before changing anything.
    """
    from mmv_lite.data.synth import make_samples

    out = tmp_path_factory.mktemp("tiny_samples")
    make_samples(out, num_videos=2, num_sound=2, seed=0, corpus_sentences=300, progress=False)
    return out


@pytest.fixture(scope="session")
def data_samples() -> Path:
    """The shipped ``data_samples/`` folder (skips the test when it has not been generated)."""
    if not (DATA_SAMPLES / "metadata.json").is_file():
        pytest.skip("data_samples/ is missing: python -m mmv_lite make-samples --out data_samples --videos 60 --seed 0")
    return DATA_SAMPLES


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: small tensors gain nothing from threads, and on a shared 2-core machine extra
    threads only contend. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
