"""Retrieval-demo functions: ranking, exclusions and the sample world's narration statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mmv_lite import build_model, demo, get_config
from mmv_lite.data.clips import ClipDataset

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
pytestmark = pytest.mark.skipif(not (SAMPLES / "metadata.json").is_file(), reason="data_samples/ not made yet")


@pytest.fixture(scope="module")
def bank():
    """A random-weight lite FAC model over the test split: enough to check ranking mechanics (not quality)."""
    torch.manual_seed(0)
    ds = ClipDataset(SAMPLES, "test", get_config("lite").data)
    model = build_model("lite", word_vectors=ds.word_vectors.as_tensor()).eval()
    return demo.ClipBank.build(model, ds), model


def test_search_text_ranks_by_cosine(bank):
    b, model = bank
    hits = demo.search_text(b, model, "a small red star spins", k=5)
    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # The best hit's score is the cosine of the query with that clip's video embedding.
    z = demo.encode_text(model, b.dataset.word_vectors, "a small red star spins")["z_t_vat"]
    cos = torch.nn.functional.cosine_similarity(z, b.emb["z_v_vat"][hits[0].index : hits[0].index + 1]).item()
    assert hits[0].score == pytest.approx(cos, abs=1e-5)
    assert hits[0].video_id == b.emb["video_id"][hits[0].index]
    assert set(hits[0].labels) <= {"action", "sound", "image"}


def test_unknown_words_give_a_clear_error(bank):
    b, model = bank
    with pytest.raises(ValueError, match="vocabulary"):
        demo.search_text(b, model, "the of and zzzqqq")


def test_search_sound_leaves_the_query_out(bank):
    b, _ = bank
    i = int(torch.nonzero(b.emb["has_audio"])[0])
    hits = demo.search_sound(b, i, k=len(b))
    assert i not in [h.index for h in hits] and len(hits) == len(b) - 1


def test_sound_to_text_ranks_distinct_narrations_of_the_bank(bank):
    b, _ = bank
    i = int(torch.nonzero(b.emb["has_audio"])[0])
    ranked = demo.sound_to_text(b, i, k=4)
    texts = [t for t, _ in ranked]
    assert len(texts) == len(set(texts)) == 4
    all_texts = {t for j in range(len(b)) for t in b.dataset.candidate_texts(j)}
    assert set(texts) <= all_texts
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_clip_media_gives_frames_and_sound_of_the_window(bank):
    b, _ = bank
    frames, wave, sr = demo.clip_media(b.dataset, 0)
    cfg = b.dataset.cfg
    assert frames.shape[0] == cfg.num_frames and frames.shape[-1] == 3 and frames.dtype.name == "uint8"
    assert wave.shape == (round(cfg.clip_seconds * cfg.sample_rate),) and sr == cfg.sample_rate


def test_misaligned_captions():
    meta = {"segments": [{"start": 0.0, "end": 5.0}, {"start": 5.0, "end": 9.0}], "caption_segments": [0, 1, -1, 0]}
    caps = {"start": [0.5, 3.0, 5.5, 6.0], "end": [2.0, 4.5, 6.0, 8.0], "text": ["a", "b", "c", "d"]}
    # Caption 1 is said during segment 0 but describes segment 1; caption 3 the other way round; 2 is filler.
    assert demo.misaligned_captions(meta, caps) == [1, 3]
    with pytest.raises(ValueError, match="caption_segments"):
        demo.misaligned_captions({"segments": []}, caps)


def test_narration_hit_rate_grows_with_k():
    cfg = get_config("lite", **{"data.num_candidates": 4}).data
    ds = ClipDataset(SAMPLES, "val", cfg, kinds=("narrated",))
    rate = demo.narration_hit_rate(ds, demo.load_metadata(SAMPLES), ks=(1, 2, 4))
    assert 0 < rate[1] <= rate[2] <= rate[4] <= 1
    with pytest.raises(ValueError, match="num_candidates"):
        demo.narration_hit_rate(ds, demo.load_metadata(SAMPLES), ks=(1, 8))


# ----------------------------------------------------------------------------------------------------------------
# Deflation helpers (notebook 05)
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3dg_pair():
    """A tiny S3D-G (random weights, eval mode) and its naive deflation."""
    from mmv_lite.models.deflation import deflate
    from mmv_lite.models.s3dg import s3dg

    torch.manual_seed(0)
    video = s3dg(width=0.125).eval()
    return video, deflate(video).eval()


def test_boundary_profile_is_zero_inside_the_clip_and_not_at_its_borders(s3dg_pair):
    video, image_net = s3dg_pair
    torch.set_num_threads(1)
    images = torch.rand(2, 3, 32, 32)
    prof = demo.boundary_profile(video, image_net, images, num_frames=16)
    first = prof["Conv2d_1a_7x7"]  # 7-frame kernel, stride 2: 8 output frames
    assert first.shape == (8,)
    assert first[2:-2].max() < 1e-5  # the kernel's window lies inside the clip: summed kernel = 3D kernel
    assert first[0] > 1e-2 and first[-1] > 1e-2  # zero padding at the borders
    assert list(prof)[0] == "Conv2d_1a_7x7" and "Mixed_5c" in prof
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        demo.boundary_profile(video, image_net, images[0], num_frames=8)
    assert not video.training and not image_net.training


def test_gap_by_clip_length_shrinks_for_long_static_clips(s3dg_pair):
    video, image_net = s3dg_pair
    torch.set_num_threads(1)
    gaps = demo.gap_by_clip_length(video, image_net, torch.rand(2, 3, 32, 32), lengths=(8, 64))
    assert set(gaps) == {8, 64} and gaps[64] < gaps[8]


def test_image_embeddings_switch_modes_and_restore_the_model():
    from mmv_lite.models.deflation import deflate, static_clip

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model("lite", word_vectors=torch.randn(5, 300), **{"model.video_width": 0.125}).eval()
    images = torch.rand(3, 3, 32, 32)
    net = deflate(model.video_backbone).eval()
    out = demo.image_embeddings(model, images, net, batch_size=2)
    assert not model.image_mode  # restored
    with torch.no_grad():
        ref = model.embed_image(images, deflated=net)
    assert set(out) == set(ref) and torch.allclose(out["z_v_va"], ref["z_v_va"], atol=1e-5)
    static = demo.image_embeddings(model, images, None, num_frames=4)
    with torch.no_grad():
        ref_static = model(video=static_clip(images, 4))
    assert torch.allclose(static["f_v"], ref_static["f_v"], atol=1e-5)
    model.set_image_mode(True)
    previous = model.image_backbone
    demo.image_embeddings(model, images, net)
    assert model.image_backbone is previous  # an image mode set before is kept
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        demo.image_embeddings(model, images[0], net)


def test_own_clip_ranks_and_relative_l1():
    clips = torch.eye(4)
    ranks, cos = demo.own_clip_ranks(clips, clips)
    assert ranks.tolist() == [1, 1, 1, 1] and torch.allclose(cos, torch.ones(4))
    # Query 0 points at clip 1: its own clip ranks behind it (ties with the two others are counted against it).
    q = clips.clone()
    q[0] = torch.tensor([0.1, 1.0, 0.0, 0.0])
    ranks, _ = demo.own_clip_ranks(q, clips)
    assert ranks.tolist() == [2, 1, 1, 1]
    assert demo.relative_l1(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must match"):
        demo.own_clip_ranks(q[:2], clips)


def test_search_embedding_ranks_the_bank(bank):
    b, _ = bank
    hits = demo.search_embedding(b, b.emb["z_v_va"][3], key="z_v_va", k=4)
    assert hits[0].index == 3 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(ValueError, match="no 'z_x'"):
        demo.search_embedding(b, b.emb["z_v_va"][3], key="z_x")


def test_model_word_vectors_is_the_models_own_tokenizer():
    torch.manual_seed(0)
    wv = torch.randn(4, 300)
    wv[0] = 0
    model = build_model("lite", word_vectors=wv, **{"model.video_width": 0.125})
    vocab = ["<pad>", "red", "star", "spins"]
    words = demo.model_word_vectors(model, vocab)
    assert words.vocab == vocab and np.allclose(words.vectors, wv.numpy())
    ids, mask = words.encode(["a red star"], max_words=4)
    assert ids[0, : int(mask.sum())].tolist() == [1, 2]
    with pytest.raises(ValueError, match="4 word vectors"):
        demo.model_word_vectors(model, vocab[:3])


# ----------------------------------------------------------------------------------------------------------------
# Design tables (notebook 07)
# ----------------------------------------------------------------------------------------------------------------

_RESULTS_PAGE = """# Results

**Table 1a analogue: which modalities (equal budgets)**

HEADER
|---|---|---|---|---|---|---|---|---|
| VA | 27.2 ± 3.1 | 39.5 ± 6.2 | - | 4.8 ± 4.7 | - | 3 | 75.5 | 79.0 |
| VT | 23.1 ± 8.2 | - | 41.7 ± 10.9 | - | - | 3 | 82.7 | - |
| VAT (FAC) | 30.1 ± 1.0 | 39.5 ± 4.2 | 45.6 ± 3.5 | 2.7 ± 3.1 | 43.3 ± 5.8 | 3 | 84.7 | 78.7 |
| chance | 14.3 | 6.1 | 52.3 | 2.0 | 52.8 | - | - | - |

Some other text.
""".replace(
    "HEADER",
    "|  | action probe (acc %) | sound probe (acc %) | t2v R@10 | v2a R@1 | a2t R@10 (zero-shot) | seeds "
    "| paper: UCF101 | paper: ESC-50 |",
)


def test_read_results_markdown_parses_the_design_table(tmp_path):
    page = tmp_path / "RESULTS.md"
    page.write_text(_RESULTS_PAGE)
    tables = demo.read_results_markdown(page)
    assert list(tables) == ["table1a"]
    t = tables["table1a"]
    assert [r["label"] for r in t["rows"]] == ["VA", "VT", "VAT (FAC)", "chance"]
    va = t["rows"][0]
    assert va["cells"]["probe_action"] == {"mean": 27.2, "std": 3.1, "n": 3}
    assert va["cells"]["t2v_R@10"]["mean"] is None and va["paper"] == {"UCF101": 75.5, "ESC-50": 79.0}
    assert t["rows"][-1]["cells"]["v2a_R@1"] == {"mean": 2.0, "std": 0.0, "n": 1}
    assert t["paper_columns"] == ["UCF101", "ESC-50"]
    with pytest.raises(FileNotFoundError, match="experiment"):
        demo.read_results_markdown(tmp_path / "missing.md")
    page.write_text(_RESULTS_PAGE.replace("v2a R@1", "v2a R@2"))
    with pytest.raises(ValueError, match="v2a R@2"):
        demo.read_results_markdown(page)


def test_row_differences_weighs_gaps_against_seed_noise(tmp_path):
    page = tmp_path / "RESULTS.md"
    page.write_text(_RESULTS_PAGE)
    rows = {r["metric"]: r for r in demo.row_differences(demo.read_results_markdown(page)["table1a"])}
    action = rows["action probe (acc %)"]
    assert (action["best"], action["runner-up"]) == ("VAT (FAC)", "VA")
    assert action["gap"] == pytest.approx(2.9) and action["noise"] == pytest.approx(4.1)
    assert action["verdict"] == "within the noise"
    assert rows["a2t R@10 (zero-shot)"]["verdict"] == "only one row"  # chance is not a competitor
    assert rows["t2v R@10"]["best"] == "VAT (FAC)" and rows["t2v R@10"]["verdict"] == "within the noise"


def test_the_shipped_results_page_has_the_design_tables():
    """Notebook 07 reads docs/RESULTS.md in quick mode: its tables must parse."""
    page = Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md"
    if not page.is_file():
        pytest.skip("docs/RESULTS.md not written yet")
    tables = demo.read_results_markdown(page)
    assert {"table1a", "table1b"} <= set(tables)
    assert [r["label"] for r in tables["table1b"]["rows"]][:3] == ["shared", "disjoint", "FAC"]
