"""The sample world's narration statistics (mmv_lite.data.narrations)."""

from pathlib import Path

import pytest

from mmv_lite import get_config
from mmv_lite.data import narrations
from mmv_lite.data.clips import ClipDataset

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
pytestmark = pytest.mark.skipif(not (SAMPLES / "metadata.json").is_file(), reason="data_samples/ not made yet")


def test_misaligned_captions():
    meta = {"segments": [{"start": 0.0, "end": 5.0}, {"start": 5.0, "end": 9.0}], "caption_segments": [0, 1, -1, 0]}
    caps = {"start": [0.5, 3.0, 5.5, 6.0], "end": [2.0, 4.5, 6.0, 8.0], "text": ["a", "b", "c", "d"]}
    # Caption 1 is said during segment 0 but describes segment 1; caption 3 the other way round; 2 is filler.
    assert narrations.misaligned_captions(meta, caps) == [1, 3]
    with pytest.raises(ValueError, match="caption_segments"):
        narrations.misaligned_captions({"segments": []}, caps)


def test_narration_hit_rate_grows_with_k():
    cfg = get_config("lite", **{"data.num_candidates": 4}).data
    ds = ClipDataset(SAMPLES, "val", cfg, kinds=("narrated",))
    rate = narrations.narration_hit_rate(ds, narrations.load_metadata(SAMPLES), ks=(1, 2, 4))
    assert 0 < rate[1] <= rate[2] <= rate[4] <= 1
    with pytest.raises(ValueError, match="num_candidates"):
        narrations.narration_hit_rate(ds, narrations.load_metadata(SAMPLES), ks=(1, 8))
