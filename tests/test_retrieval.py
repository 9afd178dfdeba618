"""Zero-shot retrieval (mmv_lite.retrieval): ranking metrics against hand-worked examples, chance levels, the tasks."""

from __future__ import annotations

import pytest
import torch

from mmv_lite import retrieval as rt


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def _b(rows):
    return torch.tensor(rows, dtype=torch.bool)


# ---------------------------------------------------------------------------- ranking metrics


def test_perfect_ranking():
    sim = torch.eye(12) + 0.01 * torch.arange(12.0)  # diagonal is always the largest entry of its row
    m = rt.retrieval_metrics(sim, torch.eye(12, dtype=torch.bool))
    assert m["R@1"] == 100.0 and m["R@5"] == 100.0 and m["R@10"] == 100.0
    assert m["MedR"] == 1.0
    assert m["num_queries"] == 12 and m["gallery_size"] == 12


def test_worst_ranking():
    n = 12
    sim = -torch.eye(n)  # the positive is the only strictly lowest score
    m = rt.retrieval_metrics(sim, torch.eye(n, dtype=torch.bool))
    assert m["R@1"] == 0.0 and m["R@5"] == 0.0 and m["R@10"] == 0.0
    assert m["MedR"] == float(n)


def test_hand_worked_ranks():
    # query 0: positive scores 0.5, beaten by 0.9 and 0.7 -> rank 3
    # query 1: two positives (0.2, 0.8); best one beaten by nothing -> rank 1
    # query 2: positive 0.1 is the lowest of 4 -> rank 4
    sim = _t([[0.9, 0.5, 0.7, 0.1], [0.3, 0.2, 0.8, 0.4], [0.5, 0.6, 0.7, 0.1]])
    pos = _b([[0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    assert rt.positive_ranks(sim, pos).tolist() == [3, 1, 4]
    m = rt.retrieval_metrics(sim, pos, ks=(1, 3))
    assert m["R@1"] == pytest.approx(100 / 3)
    assert m["R@3"] == pytest.approx(200 / 3)
    assert m["MedR"] == 3.0


def test_ties_are_pessimistic():
    # A collapsed model (all scores equal) must get the worst rank, not the best.
    sim = torch.zeros(5, 5)
    m = rt.retrieval_metrics(sim, torch.eye(5, dtype=torch.bool))
    assert m["R@1"] == 0.0 and m["MedR"] == 5.0
    # Ties with other positives do not hurt; ties with a negative do.
    sim = _t([[0.5, 0.5, 0.5, 0.1]])
    assert rt.positive_ranks(sim, _b([[1, 1, 0, 0]])).tolist() == [2]  # tied with the negative at index 2
    assert rt.positive_ranks(sim, _b([[1, 1, 1, 0]])).tolist() == [1]


def test_queries_without_positive_are_dropped_and_median_even():
    sim = _t([[0.9, 0.1], [0.9, 0.1], [0.3, 0.2]])
    pos = _b([[1, 0], [0, 1], [0, 0]])
    m = rt.retrieval_metrics(sim, pos)
    assert m["num_queries"] == 2
    assert m["R@1"] == 50.0
    assert m["MedR"] == 1.5  # numpy median of ranks [1, 2]


def test_metric_input_errors():
    with pytest.raises(ValueError, match="equal shape"):
        rt.retrieval_metrics(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        rt.retrieval_metrics(torch.zeros(2, 2), torch.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        rt.retrieval_metrics(torch.full((2, 2), float("nan")), torch.eye(2, dtype=torch.bool))


# ---------------------------------------------------------------------------- chance levels


def test_chance_single_positive():
    c = rt.chance_metrics(torch.eye(20, dtype=torch.bool))
    assert c["R@1"] == pytest.approx(5.0)
    assert c["R@5"] == pytest.approx(25.0)
    assert c["R@10"] == pytest.approx(50.0)
    assert c["MedR"] == 10.5  # ranks 1..20 uniformly: numpy median of many queries


def test_chance_several_positives_matches_simulation():
    # 2 positives among 10: P(best in top 1) = 0.2, P(top 5) = 1 - C(8,5)/C(10,5) = 1 - 56/252
    pos = torch.zeros(1, 10, dtype=torch.bool)
    pos[0, :2] = True
    c = rt.chance_metrics(pos, ks=(1, 5))
    assert c["R@1"] == pytest.approx(20.0)
    assert c["R@5"] == pytest.approx(100 * (1 - 56 / 252))
    g = torch.Generator().manual_seed(0)
    sims = torch.rand(20000, 10, generator=g)
    sim_m = rt.retrieval_metrics(sims, pos.expand(20000, 10).contiguous(), ks=(1, 5))
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
    fac = rt.zero_shot_retrieval(emb, "fac")
    assert set(fac) == set(rt.DIRECTIONS)
    emb_dis = dict(emb)
    emb_dis["z_v_vt"], emb_dis["z_t_vt"] = emb["z_v_vat"], emb["z_t_vat"]
    dis = rt.zero_shot_retrieval(emb_dis, "disjoint")
    assert set(dis) == {"t2v", "v2t", "v2a", "a2v"}  # disjoint: audio and text share no space
    no_text = {k: v for k, v in emb.items() if not k.startswith("z_t")}
    assert set(rt.zero_shot_retrieval(no_text, "fac")) == {"v2a", "a2v"}


def test_zero_shot_aligned_beats_chance_and_random_does_not():
    emb = _toy_embeddings(aligned=True)
    res, chance = rt.zero_shot_retrieval(emb, "fac"), rt.chance_levels(emb, "fac")
    for d in rt.DIRECTIONS:
        assert res[d]["R@1"] == 100.0, d
        assert chance[d]["R@1"] < 40.0
    rnd = rt.zero_shot_retrieval(_toy_embeddings(aligned=False, seed=3), "fac")
    assert rnd["v2a"]["R@1"] < 50.0


def test_texts_shared_by_clips_are_one_item():
    emb = _toy_embeddings(n=8, k=2)
    tasks = rt.retrieval_tasks(emb, "fac")
    sim, pos = tasks["t2v"]
    assert sim.shape == (8, 8)  # 8 distinct narrations (each clip's own), 8 clips
    # a narration belongs to the clip it is nearest to ...
    assert pos[1].nonzero().squeeze(1).tolist() == [1]
    # ... and, counting the second candidates too, also to clip 0, which lists it as a neighbour
    assert rt.retrieval_tasks(emb, "fac", candidates=2)["t2v"][1][1].nonzero().squeeze(1).tolist() == [0, 1]
    # the v2t view is the transpose
    assert torch.equal(tasks["v2t"][1], pos.T)
    # clips without audio leave the audio tasks
    emb["has_audio"][:3] = False
    assert rt.retrieval_tasks(emb, "fac")["v2a"][0].shape == (5, 5)
    assert rt.retrieval_tasks(emb, "fac")["a2t"][0].shape[0] == 5


def test_retrieval_table_shows_chance():
    m = {"t2v": {"R@1": 10.0, "R@5": 40.0, "R@10": 70.0, "MedR": 3.0, "num_queries": 20}}
    c = {"t2v": {"R@1": 5.0, "R@5": 25.0, "R@10": 50.0, "MedR": 10.5}}
    text = rt.format_retrieval(m, c, title="val")
    assert "t2v" in text and "70.0 (50.0)" in text and "chance" in text
    with_gallery = rt.format_retrieval({"t2v": {**m["t2v"], "gallery_size": 39}}, c, gallery=True)
    assert "gallery" in with_gallery and with_gallery.splitlines()[1].rstrip().endswith("39")
