"""Linear probes and factor probes (mmv_lite.probes)."""

from __future__ import annotations

import pytest
import torch

from mmv_lite import probes as pr

# ---------------------------------------------------------------------------- linear probes


def _blobs(n_per_class, centres, noise_seed):
    g = torch.Generator().manual_seed(noise_seed)
    y = torch.arange(len(centres)).repeat_interleave(n_per_class)
    return centres[y] + torch.randn(len(y), centres.shape[1], generator=g), y


def test_probe_separable_features_near_perfect():
    centres = 4.0 * torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    (xtr, ytr), (xva, yva), (xte, yte) = (_blobs(n, centres, seed) for n, seed in ((30, 1), (10, 2), (10, 3)))
    out = pr.linear_probe(xtr, ytr, xva, yva, xte, yte)
    assert out["accuracy"] >= 95.0
    assert out["mAP"] >= 95.0
    assert out["num_classes"] == 5 and out["num_test"] == 50
    assert out["chance"] == pytest.approx(20.0)
    assert out["C"] in pr.PROBE_CS and len(out["val_by_C"]) == len(pr.PROBE_CS)


def test_probe_random_features_near_chance():
    g = torch.Generator().manual_seed(1)
    n, d, c = 400, 32, 4
    mk = lambda: (torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g))  # noqa: E731
    (xtr, ytr), (xva, yva), (xte, yte) = mk(), mk(), mk()
    out = pr.linear_probe(xtr, ytr, xva, yva, xte, yte)
    # 400 test samples, 4 balanced classes: chance is 25% with a standard error of about 2.2%.
    assert 15.0 <= out["accuracy"] <= 35.0


def test_probe_group_averaging_and_unknown_labels():
    # Each test "video" has 5 windows; a single window is ambiguous, the average is not.
    g = torch.Generator().manual_seed(2)
    centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    ytr = torch.arange(2).repeat_interleave(200)
    xtr = centres[ytr] + 1.5 * torch.randn(400, 2, generator=g)
    yte = torch.arange(2).repeat_interleave(100)  # 40 videos x 5 windows
    xte = centres[yte] + 1.5 * torch.randn(200, 2, generator=g)
    groups = [f"video{i // 5}" for i in range(200)]
    per_window = pr.linear_probe(xtr, ytr, xtr, ytr, xte, yte)
    per_video = pr.linear_probe(xtr, ytr, xtr, ytr, xte, yte, test_groups=groups)
    assert per_video["num_test"] == 40 and per_window["num_test"] == 200
    assert per_video["accuracy"] > per_window["accuracy"]
    # unknown labels (-1) are dropped, not treated as a class
    yte_u = yte.clone()
    yte_u[:10] = -1
    out = pr.linear_probe(xtr, ytr, xtr, ytr, xte, yte_u, test_groups=groups)
    assert out["num_test"] == 38 and out["num_classes"] == 2


def test_average_precision_is_scikit_learns_bit_for_bit():
    """probes' own average precision (no input checks) equals sklearn.metrics.average_precision_score exactly, on
    random scores, tied scores, all-equal scores and float32 scores."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    for trial in range(600):
        n = int(rng.integers(1, 300))
        positive = rng.random(n) < rng.random()
        positive[rng.integers(n)] = True  # at least one positive, as the probes ask for
        score = rng.standard_normal(n)
        score = [score, np.round(score, 1), np.zeros(n), score.astype(np.float32)][trial % 4]
        assert pr._average_precision(positive, score) == average_precision_score(positive, score), trial


def test_probe_errors():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="single class"):
        pr.linear_probe(x, torch.zeros(10, dtype=torch.long), x, torch.zeros(10), x, torch.zeros(10))
    with pytest.raises(ValueError, match="no labelled"):
        pr.linear_probe(x, torch.arange(10) % 2, x, torch.full((10,), -1), x, torch.arange(10) % 2)


# ------------------------------------------------------------------------------------------ factor probes
class _FactorClips(torch.utils.data.Dataset):
    """A stand-in with a ``factors`` table: rows i have colour i % 3 and background i % 2."""

    def __init__(self, n):
        self.n = n

    @property
    def factors(self):
        return {
            "colour": [("red", "green", "blue")[i % 3] for i in range(self.n)],
            "background": [("plain", "stripes")[i % 2] for i in range(self.n)],
            "kind": [""] * self.n,  # unknown everywhere: skipped
        }

    def __len__(self):
        return self.n


def _factor_emb(n, seed):
    """f_v encodes the colour (one blob per colour), f_a is noise; narrations (N, K, D) also encode the colour."""
    g = torch.Generator().manual_seed(seed)
    colour = torch.arange(n) % 3
    centres = torch.eye(3, 8) * 6.0
    f_v = centres[colour] + torch.randn(n, 8, generator=g)
    z_t = (centres[colour] + torch.randn(n, 8, generator=g))[:, None, :].repeat(1, 2, 1)
    valid = torch.ones(n, 2, dtype=torch.bool)
    valid[::4, 0] = False  # these clips have no narration: left out of the text probe
    emb = {
        "f_v": f_v,
        "f_a": torch.randn(n, 8, generator=g),
        "z_t_vat": z_t,
        "text_valid": valid,
        "has_text": torch.ones(n, dtype=torch.bool),
        "index": torch.arange(n).flip(0),  # rows in reverse order: attach_factors must follow "index"
    }
    return pr.attach_factors(emb, _FactorClips(n))


def test_attach_factors_follows_index_and_subsets():
    emb = _factor_emb(6, 0)
    assert emb["factors"]["colour"] == ["blue", "green", "red", "blue", "green", "red"]
    sub = torch.utils.data.Subset(_FactorClips(6), [4, 5])
    e = pr.attach_factors({"index": torch.tensor([5, 4])}, sub)
    assert e["factors"]["background"] == ["stripes", "plain"]
    with pytest.raises(ValueError, match="no .factors table"):
        pr.attach_factors({"index": torch.tensor([0])}, torch.utils.data.TensorDataset(torch.zeros(1)))


def test_factor_probes_find_what_each_feature_encodes():
    train, val, test = _factor_emb(60, 1), _factor_emb(30, 2), _factor_emb(30, 3)
    res = pr.factor_probes(train, val, test)
    assert set(res) == {"f_v", "f_a", "z_t_vat"}  # z_t_vt is absent: skipped
    assert set(res["f_v"]) == {"colour", "background"}  # "kind" has no known value
    assert res["f_v"]["colour"]["accuracy"] >= 90.0 and res["z_t_vat"]["colour"]["accuracy"] >= 90.0
    # the background is in no feature, the colour not in f_a: probes stay near their chance level
    assert res["f_v"]["background"]["accuracy"] <= 75.0
    assert res["f_a"]["colour"]["accuracy"] <= 60.0
    assert res["f_v"]["colour"]["classes"] == ["blue", "green", "red"]
    # clips whose nearest narration is missing are left out of the text probe only
    assert res["z_t_vat"]["colour"]["num_train"] == 45 and res["f_v"]["colour"]["num_train"] == 60
    table = pr.format_factor_table(res, "t")
    assert table.splitlines()[1].split() == ["feature", "colour", "background"]
    with pytest.raises(ValueError, match="attach_factors"):
        pr.factor_probes({"f_v": train["f_v"]}, val, test)


def test_clip_dataset_factors_match_metadata():
    import json

    from mmv_lite.data.clips import FACTORS, ClipDataset

    ds = ClipDataset("data_samples", "val")
    meta = json.loads(open("data_samples/metadata.json").read())["videos"]
    table = ds.factors
    assert set(table) == set(FACTORS) and all(len(v) == len(ds) for v in table.values())
    for i in (0, len(ds) - 1):
        w = ds.windows[i]
        seg = meta[w.video_id]["segments"][w.segment]
        assert [table[f][i] for f in ("kind", "colour", "motion")] == [seg["kind"], seg["colour"], seg["motion"]]
        assert table["background"][i] == meta[w.video_id]["background"]
