"""The whole network: build_model, forward keys and shapes per graph, gradients, frozen words, similarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmv_lite
from mmv_lite.config import get_config
from mmv_lite.models import MMV, TextTower, build_model, count_parameters
from mmv_lite.models.mmv import parameter_counts

pytestmark = pytest.mark.usefixtures("one_thread")


V = 40  # vocabulary of the toy word matrix


def _inputs(b=4, t=4, size=32, f=40, k=3, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(b, 3, t, size, size, generator=g)
    audio = torch.randn(b, 1, f, 80, generator=g)
    ids = torch.randint(1, V, (b, k, length), generator=g)
    ids[:, :, length - 2 :] = 0  # padding at the end of every caption
    return video, audio, ids


def _words(seed=0):
    wv = torch.randn(V, 300, generator=torch.Generator().manual_seed(seed))
    wv[0] = 0
    return wv


@pytest.fixture(scope="module")
def small_cfg():
    # The lite preset, narrowed further so the suite stays fast.
    return get_config("lite", video_width=0.125, audio_depth=10, audio_width=0.125, text_dim=32, d_va=16, d_vat=8)


EXPECTED_KEYS = {
    "fac": ({"z_v_va", "z_v_vat", "z_a_va", "z_t_vat"}, {"z_a_vat"}),
    "shared": ({"z_v_vat", "z_a_vat", "z_t_vat"}, set()),
    "disjoint": ({"z_v_va", "z_v_vt", "z_a_va", "z_t_vt"}, set()),
}


@pytest.mark.parametrize("graph", ["fac", "shared", "disjoint"])
def test_forward_keys_and_shapes(small_cfg, graph):
    torch.manual_seed(0)
    model = build_model(small_cfg, graph=graph, word_vectors=_words())
    assert isinstance(model, MMV) and model.cfg.model.graph == graph
    video, audio, ids = _inputs()
    train_keys, eval_only = EXPECTED_KEYS[graph]
    out = model(video=video, audio=audio, text_ids=ids)
    assert set(out) == {"f_v", "f_a", "f_t"} | train_keys
    model.eval()
    with torch.no_grad():
        out = model(video=video, audio=audio, text_ids=ids)
    assert set(out) == {"f_v", "f_a", "f_t"} | train_keys | eval_only
    m = small_cfg.model
    dims = {"va": m.d_va, "vt": m.d_vt, "vat": m.d_vat}
    assert out["f_v"].shape == (4, model.video_backbone.out_dim)
    assert out["f_a"].shape == (4, model.audio_backbone.out_dim)
    assert out["f_t"].shape == (4, 3, m.text_dim)
    for key, z in out.items():
        if key.startswith("z_"):
            _, mod, space = key.split("_")
            lead = (4, 3) if mod == "t" else (4,)
            assert z.shape == (*lead, dims[space]), key


def test_any_subset_of_modalities(small_cfg):
    model = build_model(small_cfg, word_vectors=_words()).eval()
    video, audio, ids = _inputs()
    with torch.no_grad():
        assert set(model(audio=audio)) == {"f_a", "z_a_va", "z_a_vat"}
        assert set(model(text_ids=ids)) == {"f_t", "z_t_vat"}
        assert set(model.embed_video(video)) == {"f_v", "z_v_va", "z_v_vat"}
        assert set(model.embed_audio(audio)) == {"f_a", "z_a_va", "z_a_vat"}
        assert model.embed_text(ids[:, 0])["z_t_vat"].shape == (4, small_cfg.model.d_vat)  # (B, L) captions
        assert model() == {}


@pytest.mark.parametrize("graph", ["fac", "shared", "disjoint"])
def test_backward_reaches_every_parameter_and_words_stay_frozen(small_cfg, graph):
    torch.manual_seed(0)
    words = _words()
    model = build_model(small_cfg, graph=graph, word_vectors=words).train()
    assert "text_backbone.word_vectors" in dict(model.named_buffers())
    assert all("word_vectors" not in n for n, _ in model.named_parameters())
    video, audio, ids = _inputs()
    out = model(video=video, audio=audio, text_ids=ids)
    # Squares, not sums: a sum of a BatchNorm output over the batch does not depend on its input.
    loss = sum((z**2).mean() for k, z in out.items() if k.startswith("z_"))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"no gradient reached: {missing}"
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert torch.equal(model.text_backbone.word_vectors, words)


def test_text_tower_masks_padding():
    torch.manual_seed(0)
    words = _words()
    words[0] = 5.0  # a non-zero padding row must still be ignored through the mask
    tower = TextTower(words, out_dim=16)
    ids = torch.tensor([[[3, 7, 0, 0], [0, 0, 0, 0]]])  # (B=1, K=2, L=4); second caption is all padding
    out = tower(ids)
    assert out.shape == (1, 2, 16)
    manual = torch.relu(tower.text_conv1(words[torch.tensor([3, 7])])).amax(0)
    assert torch.allclose(out[0, 0], manual, atol=1e-6)
    assert torch.equal(out[0, 1], torch.zeros(16)) and torch.isfinite(out).all()
    # An explicit mask wins over ids != 0.
    mask = torch.tensor([[[True, False, False, False], [False] * 4]])
    assert torch.allclose(tower(ids, mask)[0, 0], torch.relu(tower.text_conv1(words[3])), atol=1e-6)
    with pytest.raises(ValueError, match="rows"):
        tower(torch.tensor([[V + 1]]))


def test_similarity_picks_the_space(small_cfg):
    model = build_model(small_cfg, word_vectors=_words())
    video, audio, ids = _inputs()
    assert model.space_for("v", "a") == "va" and model.space_for("t", "v") == "vat"
    out = model(video=video, audio=audio, text_ids=ids)
    sim = model.similarity(out, out, "v", "a")
    assert sim.shape == (4, 4) and sim.abs().max() <= 1 + 1e-5
    za = torch.nn.functional.normalize(out["z_v_va"], dim=-1)
    zb = torch.nn.functional.normalize(out["z_a_va"], dim=-1)
    assert torch.allclose(sim, za @ zb.T, atol=1e-6)
    assert model.similarity(out, out, "v", "t").shape == (4, 4, 3)
    with pytest.raises(KeyError, match="eval"):  # fac: z_a_vat exists only in eval mode
        model.similarity(out, out, "a", "t")
    model.eval()
    with torch.no_grad():
        out = model(audio=audio, text_ids=ids)
    assert model.similarity(out, out, "a", "t").shape == (4, 4, 3)
    disjoint = build_model(small_cfg, graph="disjoint", word_vectors=_words())
    with pytest.raises(ValueError, match="share no space"):
        disjoint.similarity(out, out, "a", "t")


def test_build_model_arguments(small_cfg):
    model = build_model(small_cfg, vocab_size=25)
    assert model.text_backbone.word_vectors.shape == (25, 300)
    assert build_model(small_cfg).text_backbone.word_vectors.shape == (1, 300)
    model = build_model(small_cfg, word_vectors=np.ones((7, 300), dtype=np.float64), **{"model.d_va": 24})
    assert model.text_backbone.word_vectors.dtype == torch.float32 and model.cfg.model.d_va == 24
    assert small_cfg.model.d_va == 16  # the given config is copied, not changed
    assert mmv_lite.build_model is build_model
    with pytest.raises(ValueError, match="word_dim"):
        build_model(small_cfg, word_vectors=np.zeros((5, 100)))
    with pytest.raises(ValueError, match="graph"):
        build_model(small_cfg, graph="joint")
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        build_model(small_cfg)(video=torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize(
    "preset,video_params,d_v",
    [("s3dg", 9_162_704, 1024), ("tsm_r50", 23_500_352, 2048), ("tsm_r50x2", 93_891_712, 4096)],
)
def test_paper_presets(preset, video_params, d_v):
    with torch.device("meta"):
        model = build_model(preset, vocab_size=10)
    assert count_parameters(model.video_backbone) == video_params
    assert count_parameters(model.audio_backbone) == 23_494_080
    assert count_parameters(model.text_backbone) == 616_448
    h = model.heads.heads
    assert h["g_v_to_va"].inner.in_features == d_v and h["g_v_to_va"].proj.out_features == 512
    assert h["g_va_to_vat"].proj.out_features == 256 and h["g_t_to_vat"].proj.in_features == 2048


def test_image_mode_toggle(small_cfg):
    model = build_model(small_cfg, word_vectors=_words()).eval()
    images = torch.rand(2, 3, 32, 32)
    assert not model.image_mode
    model.set_image_mode(True)
    assert model.image_mode
    with torch.no_grad():
        out = model(video=images)
        assert set(out) == {"f_v", "z_v_va", "z_v_vat"} and out["z_v_vat"].shape == (2, small_cfg.model.d_vat)
        assert torch.allclose(model.embed_image(images)["z_v_vat"], out["z_v_vat"])
    with pytest.raises(ValueError, match="image mode"):
        model(video=torch.rand(2, 3, 4, 32, 32))
    model.set_image_mode(None)
    assert not model.image_mode and model(video=torch.rand(2, 3, 4, 32, 32))["f_v"].shape[0] == 2


def test_parameter_counts_of_meta_models_match_the_paper():
    with torch.device("meta"):
        counts = parameter_counts(build_model("s3dg", vocab_size=10))
    # The official S3D-G and audio ResNet-50 counts (MMV_REFERENCE section 2).
    assert counts["video_backbone"] == 9_162_704 and counts["audio_backbone"] == 23_494_080
    assert counts["text_backbone"] == 616_448  # Linear(300 -> 2048); the frozen word matrix is not counted
    with pytest.raises(ValueError, match="MMV"):
        parameter_counts(torch.nn.Linear(2, 2))
