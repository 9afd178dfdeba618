"""Embedding a dataset (mmv_lite.embedding)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmv_lite import embedding as em
from mmv_lite.retrieval import retrieval_metrics


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
    emb = em.embed_dataset(model, DS(), batch_size=2)
    assert model.training  # mode restored
    assert emb["f_v"].shape == (5, 4) and emb["z_v_va"].shape == (5, 3) and emb["z_a_va"].shape == (5, 3)
    assert emb["video_id"] == [f"v{i}" for i in range(5)]
    assert emb["action_label"].tolist() == [0, 1, 0, 1, 0]
    assert emb["has_audio"].tolist() == [True, True, False, True, True]
    assert torch.allclose(emb["start"].double(), torch.arange(5.0).double())
    assert not math.isnan(retrieval_metrics(torch.eye(2), torch.eye(2, dtype=torch.bool))["R@1"])


def test_embed_dataset_shows_progress_over_the_clips_when_asked(capsys):
    class Toy(torch.nn.Module):
        def forward(self, video):
            return {"f_v": video.flatten(1)}

    DS = [{"video": torch.full((3, 2, 2, 2), float(i)), "index": i} for i in range(5)]
    quiet = em.embed_dataset(Toy(), DS, batch_size=2)
    assert capsys.readouterr().err == ""
    shown = em.embed_dataset(Toy(), DS, batch_size=2, progress="test clips")
    err = capsys.readouterr().err
    assert "test clips" in err and "5/5" in err  # every clip counted, once
    assert torch.equal(quiet["index"], shown["index"])


def test_project_2d_pca_keeps_groups_and_separates_directions():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 8)) * 0.05 + np.eye(8)[0]
    b = rng.normal(size=(10, 8)) * 0.05 - np.eye(8)[0]
    pts = em.project_2d({"video": a, "text": torch.tensor(b)}, method="pca")
    assert pts["video"].shape == (20, 2) and pts["text"].shape == (10, 2)
    # Two opposite directions end up on opposite sides of the first axis.
    assert np.sign(pts["video"][:, 0]).std() == 0 and np.sign(pts["video"][0, 0]) != np.sign(pts["text"][0, 0])
    with pytest.raises(ValueError, match="same dimension"):
        em.project_2d({"a": a, "b": b[:, :4]}, method="pca")
    with pytest.raises(ValueError, match="umap"):
        em.project_2d({"a": a}, method="tsne")


def test_project_2d_center_removes_the_offset_between_groups():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(20, 8))
    offset = np.zeros(8)
    offset[0] = 20.0  # the "modality gap": group b is group a moved far along one axis
    pts = em.project_2d({"a": shared, "b": shared + offset}, method="pca")
    gap = np.linalg.norm(pts["a"].mean(0) - pts["b"].mean(0))
    pts_c = em.project_2d({"a": shared, "b": shared + offset}, method="pca", center=True)
    gap_c = np.linalg.norm(pts_c["a"].mean(0) - pts_c["b"].mean(0))
    assert gap > 0.5 and gap_c < 0.05 * gap  # the renormalisation after centring leaves a trace


def test_umap_is_handed_each_points_nearest_neighbours_by_cosine_itself_first():
    """project_2d hands UMAP the kNN of its small-data path (every distance, then the k nearest), so that its first
    fit does not compile UMAP's own kNN kernel; bench/bench_umap.py shows the maps equal bit for bit."""
    rng = np.random.default_rng(3)
    X = em._unit(rng.normal(size=(40, 8))).astype(np.float32)
    indices, dists = em._umap_knn(X, 5)["precomputed_knn"]
    cos = 1.0 - X.astype(np.float64) @ X.T.astype(np.float64)
    assert indices.shape == dists.shape == (40, 5)
    assert (indices[:, 0] == np.arange(40)).all() and np.allclose(dists[:, 0], 0.0, atol=1e-6)
    for i in range(40):
        assert set(indices[i]) == set(np.argsort(cos[i], kind="stable")[:5])
        assert np.allclose(dists[i], cos[i, indices[i]], atol=1e-5) and (np.diff(dists[i]) >= 0).all()
    assert em._umap_knn(np.zeros((em._UMAP_EXACT_BELOW, 2), np.float32), 5) == {}  # UMAP's own search above
