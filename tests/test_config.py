"""Presets, and the one rule for overrides."""

import pytest

from mmv_lite import build_model
from mmv_lite.config import PRESETS, Config, apply_overrides, get_config


def test_every_preset_validates_and_round_trips():
    for name in PRESETS:
        cfg = get_config(name)
        assert cfg.preset == name
        again = Config.from_dict(cfg.to_dict())
        assert again == cfg


def test_paper_presets_use_paper_data_settings():
    for name in ("s3dg", "tsm_r50", "tsm_r50x2"):
        cfg = get_config(name)
        assert (cfg.data.num_frames, cfg.data.fps, cfg.data.crop_size) == (32, 10.0, 200)
        assert cfg.data.sample_rate == 48_000 and cfg.data.n_mels == 80
        assert (cfg.model.d_va, cfg.model.d_vat) == (512, 256)
    assert get_config("tsm_r50x2").model.video_width == 2.0


def test_get_config_returns_a_copy():
    cfg = get_config("lite")
    cfg.train.steps = 1
    assert get_config("lite").train.steps != 1


def test_overrides_plain_and_dotted():
    cfg = get_config("lite", graph="shared", **{"train.lr": 1e-4})
    assert cfg.model.graph == "shared" and cfg.train.lr == 1e-4


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"graph": "tree"}, "model.graph"),
        ({"modalities": "av"}, "train.modalities"),
        ({"nonsense": 1}, "nonsense"),
        ({"optim.lr": 1.0}, "section"),
        ({"batch_size": 1}, "batch_size"),
        ({"model.deflation_alpha": 1.5}, r"model.deflation_alpha=1.5: expected a number >= 0 and <= 1"),
        ({"model.video_backbone": "s3dg", "model.deflation_alpha": 0.3}, "TSM-ResNet's shifted channels"),
    ],
)
def test_bad_overrides_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_config("lite", **overrides)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("resnet9000")


def test_from_dict_rejects_unknown_keys():
    d = get_config("lite").to_dict()
    d["model"]["wings"] = 2
    with pytest.raises(ValueError, match="wings"):
        Config.from_dict(d)


def test_overrides_are_type_checked_and_name_the_field():
    with pytest.raises(ValueError, match=r"train\.steps='10': expected int, got str"):
        get_config("lite", **{"train.steps": "10"})
    with pytest.raises(ValueError, match="train.amp=1: expected bool"):
        get_config("lite", amp=1)
    with pytest.raises(ValueError, match="model.video_width=True: expected float"):
        get_config("lite", video_width=True)
    cfg = get_config("lite", **{"data.fps": 5})  # an int is a float where a float is asked for
    assert cfg.data.fps == 5.0 and isinstance(cfg.data.fps, float)
    with pytest.raises(ValueError, match="the model section has no field 'wings'"):
        get_config("lite", **{"model.wings": 2})


def test_no_function_changes_the_config_it_was_given():
    cfg = get_config("lite")
    before = cfg.to_dict()
    new = apply_overrides(cfg, {"model.d_va": 32, "graph": "shared"})
    assert (new.model.d_va, new.model.graph) == (32, "shared")
    model = build_model(cfg, graph="disjoint", vocab_size=3, **{"model.video_width": 0.125})
    assert model.cfg.model.graph == "disjoint" and model.cfg is not cfg
    assert cfg.to_dict() == before
    with pytest.raises(ValueError, match="model.graph"):
        apply_overrides(cfg, {"model.graph": "tree"})
    assert cfg.to_dict() == before
