"""Presets, overrides and the pair -> space table."""

import pytest

from mmv_lite.config import PRESETS, Config, embedding_key, get_config, space_for


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


def test_spaces_follow_the_paper():
    # FAC: fine va space for video-audio, coarse vat space for anything with text.
    assert space_for("fac", "v", "a") == "va"
    assert space_for("fac", "t", "v") == "vat"
    assert space_for("fac", "a", "t") == "vat"
    assert {space_for("shared", a, b) for a, b in ("va", "vt", "at")} == {"vat"}
    assert space_for("disjoint", "v", "t") == "vt"
    assert embedding_key("fac", "v", "a") == "z_v_va"
    assert embedding_key("disjoint", "t", "v") == "z_t_vt"


def test_disjoint_has_no_audio_text_space():
    with pytest.raises(ValueError, match="share no space"):
        space_for("disjoint", "a", "t")
    with pytest.raises(ValueError, match="two different"):
        space_for("fac", "v", "v")
