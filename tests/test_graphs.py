"""The embedding graphs as one table (mmv_lite.graphs), and what is derived from it.

The last test adds a made-up fourth graph to the table and checks that everything follows from that one entry:
the heads and embeddings of the network, the loss pairs, a training step, the retrieval directions and the figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmv_lite import build_model, get_config, viz  # noqa: E402
from mmv_lite.graphs import GRAPHS, Graph, Head, embedding_key, get_graph, space_for  # noqa: E402
from mmv_lite.losses import MMVLoss  # noqa: E402
from mmv_lite.models.mmv import model_inputs  # noqa: E402
from mmv_lite.official import _FAC_HEADS  # noqa: E402
from mmv_lite.optim import build_optimiser, train_step  # noqa: E402
from mmv_lite.retrieval import zero_shot_retrieval  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


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
    with pytest.raises(ValueError, match="unknown graph"):
        space_for("late_fusion", "v", "a")


def test_fac_audio_reaches_vat_only_at_evaluation():
    fac = GRAPHS["fac"]
    assert fac.spaces("a") == {"va": 1, "vat": 2}
    assert fac.spaces("a", training=True) == {"va": 1}
    assert fac.spaces("v", training=True) == {"va": 1, "vat": 2}
    assert fac.head_of("z_a_vat").name == "g_va_to_vat" and fac.head_of("z_t_va") is None


@pytest.mark.parametrize("name", list(GRAPHS))
def test_every_compared_pair_meets_in_its_space(name):
    g = GRAPHS[name]
    for pair, space in g.pairs().items():
        assert all(space in g.spaces(m) for m in pair), (name, pair, space)
    # a modality reaches no space in which it is compared with nothing
    for m in "vat":
        compared = {s for p, s in g.pairs().items() if m in p}
        assert set(g.spaces(m)) <= compared, (name, m)


def test_the_official_weight_names_come_from_the_table():
    assert {h: module for h, (module, _) in _FAC_HEADS.items()} == {
        "g_v_to_va": "vid2audio_embd",
        "g_a_to_va": "audio_embd",
        "g_va_to_vat": "vis_embd",
        "g_t_to_vat": "txt_embd",
    }
    assert _FAC_HEADS["g_v_to_va"][1]["bn"] == "bn_1"  # the MLP's second BatchNorm


def test_a_table_entry_is_checked():
    with pytest.raises(ValueError, match="form"):
        Graph("bad", "bad", (Head("g_v_to_va", "v", "va", "deep"),))
    with pytest.raises(ValueError, match="made of"):
        Graph("bad", "bad", (Head("g_v_to_vx", "v", "vx"),))


# A made-up fourth graph: FAC mirrored. Video and text meet in a fine space vt; video goes on to vat through
# g_vt_to_vat, where audio is; text takes that road only at evaluation.
MIRROR = Graph(
    "mirror",
    "mirror: fine (vt) then coarse (vat)",
    (
        Head("g_v_to_vt", "v", "vt", "video"),
        Head("g_t_to_vt", "t", "vt"),
        Head("g_vt_to_vat", "vt", "vat", "linear_bn", eval_only=("t",)),
        Head("g_a_to_vat", "a", "vat"),
    ),
)


def _batch(cfg, b=4, vocab=6):
    d, g = cfg.data, torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab, (b, d.num_candidates, d.max_words), generator=g)
    return {
        "video": torch.rand(b, 3, d.num_frames, d.crop_size, d.crop_size, generator=g),
        "audio": torch.randn(b, 1, 20, d.n_mels, generator=g),
        "text_ids": ids,
        "text_mask": ids != 0,
        "text_valid": torch.ones(b, d.num_candidates, dtype=torch.bool),
        "has_audio": torch.ones(b, dtype=torch.bool),
        "has_text": torch.ones(b, dtype=torch.bool),
    }


def test_a_fourth_graph_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(GRAPHS, "mirror", MIRROR)
    assert (space_for("mirror", "v", "t"), space_for("mirror", "v", "a"), space_for("mirror", "a", "t")) == (
        "vt",
        "vat",
        "vat",
    )
    small = {"video_width": 0.125, "audio_depth": 10, "audio_width": 0.25, "num_frames": 4, "crop_size": 32}
    cfg = get_config("lite", graph="mirror", **small, **{"train.steps": 2, "train.warmup_steps": 1})
    torch.manual_seed(0)
    model = build_model(cfg, word_vectors=torch.randn(6, 300))
    assert list(model.heads.heads) == ["g_v_to_vt", "g_t_to_vt", "g_vt_to_vat", "g_a_to_vat"]
    batch = _batch(cfg)

    # training: text stays in vt; the loss pairs come from the table
    loss_fn = MMVLoss(cfg)
    assert {name: keys for name, (_, *keys) in loss_fn.terms.items()} == {
        "va": ["z_v_vat", "z_a_vat"],
        "vt": ["z_v_vt", "z_t_vt"],
    }
    opt = build_optimiser(model.parameters(), cfg.train)
    before = {k: v.clone() for k, v in model.heads.state_dict().items()}
    losses = train_step(model, model_inputs(batch), lambda out: loss_fn(out, batch), opt)
    assert torch.isfinite(losses["loss"]) and set(losses) == {"loss", "loss_va", "loss_vt"}
    after = model.heads.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith(".weight"))

    # evaluation: text also reaches vat, so audio and text can be compared there
    model.eval()
    with torch.no_grad():
        out = model(**model_inputs(batch))
    assert {k for k in out if k.startswith("z_")} == {"z_v_vt", "z_v_vat", "z_t_vt", "z_t_vat", "z_a_vat"}
    emb = {k: v for k, v in out.items() if k.startswith("z_")}
    emb |= {k: batch[k] for k in ("text_ids", "text_valid", "has_audio", "has_text")}
    emb["video_id"] = [f"clip{i}" for i in range(4)]
    assert set(zero_shot_retrieval(emb, "mirror")) == {"t2v", "v2t", "v2a", "a2v", "a2t", "t2a"}

    # and its figure
    fig = viz.draw_embedding_graph("mirror")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "g_vt→vat" in texts and any("text → vat at eval only" in t for t in texts)
    assert fig.axes[0].get_title() == get_graph("mirror").title
    plt.close(fig)
