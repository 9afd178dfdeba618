"""Tests of mmv_lite.evaluate: ranking metrics against hand-worked examples, chance levels, zero-shot tasks."""

from __future__ import annotations

import math

import pytest
import torch

from mmv_lite import evaluate as ev


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def _b(rows):
    return torch.tensor(rows, dtype=torch.bool)


# ---------------------------------------------------------------------------- ranking metrics


def test_perfect_ranking():
    sim = torch.eye(12) + 0.01 * torch.arange(12.0)  # diagonal is always the largest entry of its row
    m = ev.retrieval_metrics(sim, torch.eye(12, dtype=torch.bool))
    assert m["R@1"] == 100.0 and m["R@5"] == 100.0 and m["R@10"] == 100.0
    assert m["MedR"] == 1.0
    assert m["num_queries"] == 12 and m["num_candidates"] == 12


def test_worst_ranking():
    n = 12
    sim = -torch.eye(n)  # the positive is the only strictly lowest score
    m = ev.retrieval_metrics(sim, torch.eye(n, dtype=torch.bool))
    assert m["R@1"] == 0.0 and m["R@5"] == 0.0 and m["R@10"] == 0.0
    assert m["MedR"] == float(n)


def test_hand_worked_ranks():
    # query 0: positive scores 0.5, beaten by 0.9 and 0.7 -> rank 3
    # query 1: two positives (0.2, 0.8); best one beaten by nothing -> rank 1
    # query 2: positive 0.1 is the lowest of 4 -> rank 4
    sim = _t([[0.9, 0.5, 0.7, 0.1], [0.3, 0.2, 0.8, 0.4], [0.5, 0.6, 0.7, 0.1]])
    pos = _b([[0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    assert ev.positive_ranks(sim, pos).tolist() == [3, 1, 4]
    m = ev.retrieval_metrics(sim, pos, ks=(1, 3))
    assert m["R@1"] == pytest.approx(100 / 3)
    assert m["R@3"] == pytest.approx(200 / 3)
    assert m["MedR"] == 3.0


def test_ties_are_pessimistic():
    # A collapsed model (all scores equal) must get the worst rank, not the best.
    sim = torch.zeros(5, 5)
    m = ev.retrieval_metrics(sim, torch.eye(5, dtype=torch.bool))
    assert m["R@1"] == 0.0 and m["MedR"] == 5.0
    # Ties with other positives do not hurt; ties with a negative do.
    sim = _t([[0.5, 0.5, 0.5, 0.1]])
    assert ev.positive_ranks(sim, _b([[1, 1, 0, 0]])).tolist() == [2]  # tied with the negative at index 2
    assert ev.positive_ranks(sim, _b([[1, 1, 1, 0]])).tolist() == [1]


def test_queries_without_positive_are_dropped_and_median_even():
    sim = _t([[0.9, 0.1], [0.9, 0.1], [0.3, 0.2]])
    pos = _b([[1, 0], [0, 1], [0, 0]])
    m = ev.retrieval_metrics(sim, pos)
    assert m["num_queries"] == 2
    assert m["R@1"] == 50.0
    assert m["MedR"] == 1.5  # numpy median of ranks [1, 2]


def test_metric_input_errors():
    with pytest.raises(ValueError, match="equal shape"):
        ev.retrieval_metrics(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        ev.retrieval_metrics(torch.zeros(2, 2), torch.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        ev.retrieval_metrics(torch.full((2, 2), float("nan")), torch.eye(2, dtype=torch.bool))


# ---------------------------------------------------------------------------- chance levels


def test_chance_single_positive():
    c = ev.chance_metrics(torch.eye(20, dtype=torch.bool))
    assert c["R@1"] == pytest.approx(5.0)
    assert c["R@5"] == pytest.approx(25.0)
    assert c["R@10"] == pytest.approx(50.0)
    assert c["MedR"] == 10.5  # ranks 1..20 uniformly: numpy median of many queries


def test_chance_several_positives_matches_simulation():
    # 2 positives among 10: P(best in top 1) = 0.2, P(top 5) = 1 - C(8,5)/C(10,5) = 1 - 56/252
    pos = torch.zeros(1, 10, dtype=torch.bool)
    pos[0, :2] = True
    c = ev.chance_metrics(pos, ks=(1, 5))
    assert c["R@1"] == pytest.approx(20.0)
    assert c["R@5"] == pytest.approx(100 * (1 - 56 / 252))
    g = torch.Generator().manual_seed(0)
    sims = torch.rand(20000, 10, generator=g)
    sim_m = ev.retrieval_metrics(sims, pos.expand(20000, 10).contiguous(), ks=(1, 5))
    assert sim_m["R@1"] == pytest.approx(c["R@1"], abs=1.0)
    assert sim_m["R@5"] == pytest.approx(c["R@5"], abs=1.0)


# ---------------------------------------------------------------------------- zero-shot tasks on toy embeddings


def _toy_embeddings(n=16, k=2, d=8, aligned=True, seed=0):
    """Clips of 4 videos; each clip lists its own narration and its next neighbour's (shared candidates)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g)
    noise = (lambda: 0.05 * torch.randn(n, d, generator=g)) if aligned else (lambda: torch.randn(n, d, generator=g))
    text_ids = torch.zeros(n, k, 3, dtype=torch.long)
    z_t = torch.zeros(n, k, d)
    for i in range(n):
        own, nxt = i, min(i + 1, n - 1) if (i + 1) // 4 == i // 4 else i
        for j, src in enumerate([own, nxt][:k]):
            text_ids[i, j] = torch.tensor([src + 1, 7, 9])
            z_t[i, j] = base[src]
    if not aligned:
        z_t = torch.randn(n, k, d, generator=g)
    emb = {
        "z_v_va": base + noise(),
        "z_a_va": base + noise(),
        "z_v_vat": base + noise(),
        "z_a_vat": base + noise(),
        "z_t_vat": z_t,
        "text_ids": text_ids,
        "text_valid": torch.ones(n, k, dtype=torch.bool),
        "has_text": torch.ones(n, dtype=torch.bool),
        "has_audio": torch.ones(n, dtype=torch.bool),
        "video_id": [f"vid{i // 4}" for i in range(n)],
    }
    return emb


def test_zero_shot_directions_per_graph():
    emb = _toy_embeddings()
    fac = ev.zero_shot_retrieval(emb, "fac")
    assert set(fac) == set(ev.DIRECTIONS)
    emb_dis = dict(emb)
    emb_dis["z_v_vt"], emb_dis["z_t_vt"] = emb["z_v_vat"], emb["z_t_vat"]
    dis = ev.zero_shot_retrieval(emb_dis, "disjoint")
    assert set(dis) == {"t2v", "v2t", "v2a", "a2v"}  # disjoint: audio and text share no space
    no_text = {k: v for k, v in emb.items() if not k.startswith("z_t")}
    assert set(ev.zero_shot_retrieval(no_text, "fac")) == {"v2a", "a2v"}


def test_zero_shot_aligned_beats_chance_and_random_does_not():
    emb = _toy_embeddings(aligned=True)
    res, chance = ev.zero_shot_retrieval(emb, "fac"), ev.chance_levels(emb, "fac")
    for d in ev.DIRECTIONS:
        assert res[d]["R@1"] == 100.0, d
        assert chance[d]["R@1"] < 40.0
    rnd = ev.zero_shot_retrieval(_toy_embeddings(aligned=False, seed=3), "fac")
    assert rnd["v2a"]["R@1"] < 50.0


def test_texts_shared_by_clips_are_one_item():
    emb = _toy_embeddings(n=8, k=2)
    tasks = ev.retrieval_tasks(emb, "fac")
    sim, pos = tasks["t2v"]
    assert sim.shape == (8, 8)  # 8 distinct narrations (each clip's own), 8 clips
    # a narration belongs to the clip it is nearest to ...
    assert pos[1].nonzero().squeeze(1).tolist() == [1]
    # ... and, counting the second candidates too, also to clip 0, which lists it as a neighbour
    assert ev.retrieval_tasks(emb, "fac", candidates=2)["t2v"][1][1].nonzero().squeeze(1).tolist() == [0, 1]
    # the v2t view is the transpose
    assert torch.equal(tasks["v2t"][1], pos.T)
    # clips without audio leave the audio tasks
    emb["has_audio"][:3] = False
    assert ev.retrieval_tasks(emb, "fac")["v2a"][0].shape == (5, 5)
    assert ev.retrieval_tasks(emb, "fac")["a2t"][0].shape[0] == 5


def test_embed_dataset_stacks_outputs():
    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)
            self.bn = torch.nn.BatchNorm1d(3)

        def forward(self, video, audio=None):
            f_v = video.flatten(1)[:, :4]
            out = {"f_v": f_v, "z_v_va": self.bn(self.lin(f_v))}
            if audio is not None:
                out["z_a_va"] = audio.flatten(1)[:, :3]
            return out

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {
                "video": torch.full((3, 2, 2, 2), float(i)),
                "audio": torch.full((1, 4, 3), float(i)),
                "has_audio": torch.tensor(i != 2),
                "video_id": f"v{i}",
                "start": float(i),
                "end": float(i + 1),
                "action_label": i % 2,
                "index": i,
            }

    model = Toy().train()
    emb = ev.embed_dataset(model, DS(), batch_size=2)
    assert model.training  # mode restored
    assert emb["f_v"].shape == (5, 4) and emb["z_v_va"].shape == (5, 3) and emb["z_a_va"].shape == (5, 3)
    assert emb["video_id"] == [f"v{i}" for i in range(5)]
    assert emb["action_label"].tolist() == [0, 1, 0, 1, 0]
    assert emb["has_audio"].tolist() == [True, True, False, True, True]
    assert torch.allclose(emb["start"].double(), torch.arange(5.0).double())
    assert not math.isnan(ev.retrieval_metrics(torch.eye(2), torch.eye(2, dtype=torch.bool))["R@1"])


# ---------------------------------------------------------------------------- linear probes


def _blobs(n_per_class, centres, noise_seed):
    g = torch.Generator().manual_seed(noise_seed)
    y = torch.arange(len(centres)).repeat_interleave(n_per_class)
    return centres[y] + torch.randn(len(y), centres.shape[1], generator=g), y


def test_probe_separable_features_near_perfect():
    centres = 4.0 * torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    (xtr, ytr), (xva, yva), (xte, yte) = (_blobs(n, centres, seed) for n, seed in ((30, 1), (10, 2), (10, 3)))
    out = ev.linear_probe(xtr, ytr, xva, yva, xte, yte)
    assert out["accuracy"] >= 95.0
    assert out["mAP"] >= 95.0
    assert out["num_classes"] == 5 and out["num_test"] == 50
    assert out["chance"] == pytest.approx(20.0)
    assert out["C"] in ev.PROBE_CS and len(out["val_by_C"]) == len(ev.PROBE_CS)


def test_probe_random_features_near_chance():
    g = torch.Generator().manual_seed(1)
    n, d, c = 400, 32, 4
    mk = lambda: (torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g))  # noqa: E731
    (xtr, ytr), (xva, yva), (xte, yte) = mk(), mk(), mk()
    out = ev.linear_probe(xtr, ytr, xva, yva, xte, yte)
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
    per_window = ev.linear_probe(xtr, ytr, xtr, ytr, xte, yte)
    per_video = ev.linear_probe(xtr, ytr, xtr, ytr, xte, yte, test_groups=groups)
    assert per_video["num_test"] == 40 and per_window["num_test"] == 200
    assert per_video["accuracy"] > per_window["accuracy"]
    # unknown labels (-1) are dropped, not treated as a class
    yte_u = yte.clone()
    yte_u[:10] = -1
    out = ev.linear_probe(xtr, ytr, xtr, ytr, xte, yte_u, test_groups=groups)
    assert out["num_test"] == 38 and out["num_classes"] == 2


def test_probe_errors():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="single class"):
        ev.linear_probe(x, torch.zeros(10, dtype=torch.long), x, torch.zeros(10), x, torch.zeros(10))
    with pytest.raises(ValueError, match="no labelled"):
        ev.linear_probe(x, torch.arange(10) % 2, x, torch.full((10,), -1), x, torch.arange(10) % 2)


# ---------------------------------------------------------------------------- the whole evaluation on a tiny model


class _Window:
    def __init__(self, video_id, segment, start):
        self.video_id, self.segment, self.start = video_id, segment, start


class _TinyClips(torch.utils.data.Dataset):
    """Items of the docs/DESIGN.md contract, made in memory: 2 windows per segment, labels that a probe can learn
    from the frames (brightness encodes the class), narrations shared between neighbouring segments."""

    def __init__(self, n_segments, seed, cfg, vocab_size=20):
        g = torch.Generator().manual_seed(seed)
        self.items, self.windows = [], []
        t, s = cfg.data.num_frames, cfg.data.crop_size
        for seg in range(n_segments):
            label = seg % 3
            for w in range(2):
                video = 0.15 + 0.3 * label + 0.05 * torch.rand(3, t, s, s, generator=g)
                ids = torch.randint(1, vocab_size, (cfg.data.num_candidates, cfg.data.max_words), generator=g)
                self.items.append(
                    {
                        "video": video,
                        "audio": torch.randn(1, 20, cfg.data.n_mels, generator=g) + label,
                        "text_ids": ids,
                        "text_mask": ids != 0,
                        "text_valid": torch.ones(cfg.data.num_candidates, dtype=torch.bool),
                        "has_audio": torch.tensor(True),
                        "has_text": torch.tensor(seg % 4 != 3),
                        "video_id": f"video{seg // 2}",
                        "start": float(seg * 4 + w),
                        "end": float(seg * 4 + w + 1.6),
                        "index": len(self.items),
                        "action_label": label,
                        "sound_label": label,
                        "image_label": label,
                    }
                )
                self.windows.append(_Window(f"video{seg // 2}", seg, float(seg * 4 + w)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.fixture(scope="module")
def tiny_model():
    from mmv_lite.models.mmv import build_model

    # Tiny convolutions: on a busy 2-core machine a second thread costs more in waiting than it gives.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    overrides = {"data.num_frames": 4, "data.crop_size": 24, "data.max_words": 4}
    yield build_model("lite", graph="fac", word_vectors=torch.randn(20, 300), **overrides)
    torch.set_num_threads(threads)


def test_window_groups_and_centres(tiny_model):
    ds = _TinyClips(3, 0, tiny_model.cfg)
    groups, centre = ev.window_groups(ds)
    assert groups == [("video0", 0), ("video0", 0), ("video0", 1), ("video0", 1), ("video1", 2), ("video1", 2)]
    assert centre.tolist() == [False, True, False, True, False, True]
    sub = torch.utils.data.Subset(ds, [2, 3, 4])
    groups, centre = ev.window_groups(sub)
    assert groups == [("video0", 1), ("video0", 1), ("video1", 2)] and centre.tolist() == [False, True, True]
    assert ev.window_groups(torch.utils.data.TensorDataset(torch.zeros(3))) is None


def test_evaluate_model_end_to_end(tiny_model):
    cfg = tiny_model.cfg
    datasets = {"train": _TinyClips(9, 1, cfg), "val": _TinyClips(6, 2, cfg), "test": _TinyClips(6, 3, cfg)}
    result = ev.evaluate_model(tiny_model, datasets, calib_steps=3, batch_size=8)
    assert result["num_clips"] == {"test": 12, "train": 18, "val": 12}
    # retrieval on the centre windows only: 6 clips, of which 5 have narrations (segment 3 has none)
    assert set(result["retrieval"]) == set(ev.DIRECTIONS)
    assert result["retrieval"]["v2a"]["num_queries"] == 6
    assert result["retrieval"]["v2t"]["num_queries"] == 5
    assert set(result["chance"]) == set(result["retrieval"])
    # probes: action and sound averaged over the 2 windows of each of the 6 test segments; images one frame each
    probes = result["probes"]
    assert set(probes) == {"action", "sound", "image_naive", "image_calibrated", "image_static"}
    assert probes["action"]["num_test"] == 6 and probes["action"]["num_train"] == 18
    assert probes["image_naive"]["num_train"] == 9 and probes["image_naive"]["num_test"] == 6
    # brightness gives the class away even to random features, which is what the probe must find
    assert probes["image_static"]["accuracy"] >= 66.0
    assert set(result["deflation"]) >= {"before", "after"}
    text = ev.format_report(result)
    assert "image_calibrated" in text and "t2v" in text
    # a VA model gets no text: no text directions
    va = ev.evaluate_model(tiny_model, {"test": datasets["test"]}, probes=False, modalities="va")
    assert set(va["retrieval"]) == {"v2a", "a2v"}


def test_evaluate_cli_on_a_checkpoint(tmp_path, capsys, tiny_model):
    """The evaluate command end to end: a small untrained checkpoint, a few segments of data_samples."""
    import json

    from mmv_lite.checkpoints import make_state, save_checkpoint
    from mmv_lite.data.text import WordVectors
    from mmv_lite.models.mmv import build_model

    wv = WordVectors.load("data_samples/word_vectors.bin")
    overrides = {"data.num_frames": 4, "data.crop_size": 32, "data.resize_to": 36}
    torch.manual_seed(0)
    model = build_model("lite", graph="shared", word_vectors=wv.as_tensor(), **overrides)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", make_state(model, model.cfg, wv.vocab))
    out = tmp_path / "eval.json"
    argv = ["--checkpoint", str(ckpt), "--data", "data_samples", "--json", str(out)]
    assert ev.cli_main([*argv, "--max-segments", "8", "--windows", "2", "--calib-steps", "2", "--factors"]) == 0
    printed = capsys.readouterr().out
    assert "zero-shot retrieval on test (shared graph" in printed and "image_static" in printed
    assert "factor probes" in printed
    result = json.loads(out.read_text())
    assert "kind" in result["factors"]["f_v"] and "motion" in result["factors"]["z_t_vat"]
    assert set(result["retrieval"]) == set(ev.DIRECTIONS)  # shared: every pair in one space
    assert result["num_clips"]["test"] == 16 and result["num_clips"]["train"] == 8
    assert result["probes"]["action"]["num_test"] <= 8


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
    return ev.attach_factors(emb, _FactorClips(n))


def test_attach_factors_follows_index_and_subsets():
    emb = _factor_emb(6, 0)
    assert emb["factors"]["colour"] == ["blue", "green", "red", "blue", "green", "red"]
    sub = torch.utils.data.Subset(_FactorClips(6), [4, 5])
    e = ev.attach_factors({"index": torch.tensor([5, 4])}, sub)
    assert e["factors"]["background"] == ["stripes", "plain"]
    with pytest.raises(ValueError, match="no .factors table"):
        ev.attach_factors({"index": torch.tensor([0])}, torch.utils.data.TensorDataset(torch.zeros(1)))


def test_factor_probes_find_what_each_feature_encodes():
    train, val, test = _factor_emb(60, 1), _factor_emb(30, 2), _factor_emb(30, 3)
    res = ev.factor_probes(train, val, test)
    assert set(res) == {"f_v", "f_a", "z_t_vat"}  # z_t_vt is absent: skipped
    assert set(res["f_v"]) == {"colour", "background"}  # "kind" has no known value
    assert res["f_v"]["colour"]["accuracy"] >= 90.0 and res["z_t_vat"]["colour"]["accuracy"] >= 90.0
    # the background is in no feature, the colour not in f_a: probes stay near their chance level
    assert res["f_v"]["background"]["accuracy"] <= 75.0
    assert res["f_a"]["colour"]["accuracy"] <= 60.0
    assert res["f_v"]["colour"]["classes"] == ["blue", "green", "red"]
    # clips whose nearest narration is missing are left out of the text probe only
    assert res["z_t_vat"]["colour"]["num_train"] == 45 and res["f_v"]["colour"]["num_train"] == 60
    table = ev.format_factor_table(res, "t")
    assert table.splitlines()[1].split() == ["feature", "colour", "background"]
    with pytest.raises(ValueError, match="attach_factors"):
        ev.factor_probes({"f_v": train["f_v"]}, val, test)


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
