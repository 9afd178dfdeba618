"""The whole evaluation (mmv_lite.evaluate) of a tiny model: embedding, retrieval, probes, the command line."""

from __future__ import annotations

import pytest
import torch

from mmv_lite import evaluate as ev
from mmv_lite.embedding import window_groups
from mmv_lite.retrieval import DIRECTIONS
from mmv_lite.runtime import machine

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
    groups, centre = window_groups(ds)
    assert groups == [("video0", 0), ("video0", 0), ("video0", 1), ("video0", 1), ("video1", 2), ("video1", 2)]
    assert centre.tolist() == [False, True, False, True, False, True]
    sub = torch.utils.data.Subset(ds, [2, 3, 4])
    groups, centre = window_groups(sub)
    assert groups == [("video0", 1), ("video0", 1), ("video1", 2)] and centre.tolist() == [False, True, True]
    assert window_groups(torch.utils.data.TensorDataset(torch.zeros(3))) is None


def test_evaluate_model_end_to_end(tiny_model):
    cfg = tiny_model.cfg
    datasets = {"train": _TinyClips(9, 1, cfg), "val": _TinyClips(6, 2, cfg), "test": _TinyClips(6, 3, cfg)}
    result = ev.evaluate_model(tiny_model, datasets, calib_steps=3, batch_size=8)
    assert result["num_clips"] == {"test": 12, "train": 18, "val": 12}
    # retrieval on the centre windows only: 6 clips, of which 5 have narrations (segment 3 has none)
    assert set(result["retrieval"]) == set(DIRECTIONS)
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
    assert set(result["retrieval"]) == set(DIRECTIONS)  # shared: every pair in one space
    assert result["num_clips"]["test"] == 16 and result["num_clips"]["train"] == 8
    assert result["machine"] == result["checkpoint_machine"] == machine()
    assert result["probes"]["action"]["num_test"] <= 8


def test_evaluate_deflation_alpha_is_checked_and_changes_the_naive_image_network(tmp_path, capsys):
    """--deflation-alpha: TSM checkpoints only, in [0, 1]; it reaches the image network and the JSON says which."""
    import json

    from mmv_lite.checkpoints import make_state, save_checkpoint
    from mmv_lite.config import get_config
    from mmv_lite.data.text import WordVectors
    from mmv_lite.models.mmv import build_model

    with pytest.raises(ValueError, match=r"--deflation-alpha -0.5: model.deflation_alpha=-0.5: expected a number >= 0"):
        ev._with_deflation_alpha(get_config("lite"), -0.5)
    with pytest.raises(ValueError, match="--deflation-alpha 0.3: .*model.video_backbone='s3dg' has none"):
        ev._with_deflation_alpha(get_config("lite", **{"model.video_backbone": "s3dg"}), 0.3)
    wv = WordVectors.load("data_samples/word_vectors.bin")
    torch.manual_seed(0)
    model = build_model("lite", word_vectors=wv.as_tensor(), **{"data.num_frames": 4, "data.crop_size": 32})
    ckpt = save_checkpoint(tmp_path / "tiny.pt", make_state(model, model.cfg, wv.vocab))
    before = {}
    for alpha in (None, 0.0):
        out = tmp_path / f"eval{alpha}.json"
        argv = ["--checkpoint", str(ckpt), "--data", "data_samples", "--json", str(out), "--max-segments", "8"]
        argv += ["--windows", "1", "--calib-steps", "1"]
        argv += ["--deflation-alpha", str(alpha)] if alpha is not None else []
        assert ev.cli_main(argv) == 0
        deflation = json.loads(out.read_text())["deflation"]
        before[deflation["alpha"]] = deflation["before"]
    assert "shifted channels x 0" in capsys.readouterr().out
    assert set(before) == {1.0, 0.0} and before[0.0] > before[1.0]  # zeroed channels: further from the video network


def test_evaluate_set_scores_another_world_and_records_it(tmp_path, capsys, monkeypatch):
    """--set world.seed=7: the held-out sets come from another sample world (the dials reach the data), and the JSON
    says which dials were changed. Bad values fail as train --set's do, before anything is scored."""
    import json

    from mmv_lite.checkpoints import make_state, save_checkpoint
    from mmv_lite.data.world import world_word_vectors
    from mmv_lite.models.mmv import build_model

    wv = world_word_vectors()
    torch.manual_seed(0)
    tiny = {"data.num_frames": 4, "data.crop_size": 16, "data.resize_to": 16, "world.num_eval": 6}
    model = build_model("lite", word_vectors=wv.as_tensor(), **tiny)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", make_state(model, model.cfg, wv.vocab, data="world"))
    drawn = []
    load = ev.load_world_eval_datasets
    monkeypatch.setattr(ev, "load_world_eval_datasets", lambda cfg, *a: drawn.append(cfg.world) or load(cfg, *a))
    results = {}
    for extra in ([], ["--set", "world.seed=7", "--set", "world.object_scale=1"]):
        out = tmp_path / f"eval{len(extra)}.json"
        assert ev.cli_main(["--checkpoint", str(ckpt), "--no-probes", "--json", str(out), *extra]) == 0
        results[len(extra)] = json.loads(out.read_text())
    assert [(w.seed, w.object_scale) for w in drawn] == [(0, 1.5), (7, 1.0)]
    assert results[0]["overrides"] == {} and results[4]["overrides"] == {"world.seed": 7, "world.object_scale": 1}
    assert results[4]["num_clips"] == {"test": 6} and results[4]["data"] == "world"
    assert "zero-shot retrieval on test" in capsys.readouterr().out
    cases = [
        ("world.seed=abc", "world.seed='abc': expected int"),
        ("world.wings=2", "the world section has no field 'wings'"),
        ("world.seed", "expected SECTION.NAME=VALUE"),
        ("world.object_continuity=2", "world.object_continuity=2.0"),
        ("model.d_va=8", "the model section comes with the checkpoint"),
    ]
    for item, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
            ev.cli_main(["--checkpoint", str(ckpt), "--no-probes", "--set", item])
    with pytest.raises(ValueError, match="change only --data world"):
        ev.cli_main(["--checkpoint", str(ckpt), "--no-probes", "--data", "data_samples", "--set", "world.seed=7"])
    assert len(drawn) == 2  # no bad --set reached the data
