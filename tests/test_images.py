"""Single images through the video network (mmv_lite.images): deflation diagnostics, image embeddings."""

import copy

import numpy as np
import pytest
import torch

from mmv_lite import build_model
from mmv_lite import images as im
from mmv_lite.models.deflation import deflate, static_clip
from mmv_lite.models.s3dg import s3dg
from mmv_lite.models.tsm_resnet import tsm_resnet


@pytest.fixture(scope="module")
def s3dg_pair():
    """A tiny S3D-G (random weights, eval mode) and its naive deflation."""
    torch.manual_seed(0)
    video = s3dg(width=0.125).eval()
    return video, deflate(video).eval()


def test_boundary_profile_is_zero_inside_the_clip_and_not_at_its_borders(s3dg_pair):
    video, image_net = s3dg_pair
    torch.set_num_threads(1)
    images = torch.rand(2, 3, 32, 32)
    prof = im.boundary_profile(video, image_net, images, num_frames=16)
    first = prof["Conv2d_1a_7x7"]  # 7-frame kernel, stride 2: 8 output frames
    assert first.shape == (8,)
    assert first[2:-2].max() < 1e-5  # the kernel's window lies inside the clip: summed kernel = 3D kernel
    assert first[0] > 1e-2 and first[-1] > 1e-2  # zero padding at the borders
    assert list(prof)[0] == "Conv2d_1a_7x7" and "Mixed_5c" in prof
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        im.boundary_profile(video, image_net, images[0], num_frames=8)
    assert not video.training and not image_net.training


def test_tsm_boundary_profile_creeps_in_from_the_borders_one_block_at_a_time():
    """A TSM-ResNet's deflation (the shift switched off) equals the video network on a static clip except where a
    shifted channel came from beyond the clip: nowhere in the stem, at the borders after the first block, further in
    after more blocks."""
    torch.manual_seed(0)
    video = tsm_resnet(depth=10, width=0.25, stem_stride=1).eval()
    prof = im.boundary_profile(video, deflate(video).eval(), torch.rand(2, 3, 32, 32), num_frames=16)
    assert list(prof) == ["stem", "max_pool", "unit_1", "unit_2", "unit_3", "unit_4"]
    assert prof["stem"].max() < 1e-5 and prof["stem"].shape == (16,)
    assert prof["unit_1"][0] > 1e-2 and prof["unit_1"][1:-1].max() < 1e-5  # only the border frames differ...
    reached = {k: int((v > 1e-5).sum()) for k, v in prof.items()}
    assert reached["unit_4"] > reached["unit_1"]  # ... and deeper blocks reach further in


def test_gap_by_clip_length_shrinks_for_long_static_clips(s3dg_pair):
    video, image_net = s3dg_pair
    torch.set_num_threads(1)
    gaps = im.gap_by_clip_length(video, image_net, torch.rand(2, 3, 32, 32), lengths=(8, 64))
    assert set(gaps) == {8, 64} and gaps[64] < gaps[8]


def test_image_embeddings_of_a_deflated_network_and_of_static_clips():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model("lite", word_vectors=torch.randn(5, 300), **{"model.video_width": 0.125}).eval()
    images = torch.rand(3, 3, 32, 32)
    net = deflate(model.video_backbone).eval()
    net.train()
    out = im.image_embeddings(model, images, net, batch_size=2)
    assert not model.image_mode and not model.training and net.training  # modes restored
    net.eval()
    with torch.no_grad():
        ref = model.embed_image(images, deflated=net)
    assert set(out) == set(ref) and torch.allclose(out["z_v_va"], ref["z_v_va"], atol=1e-5)
    static = im.image_embeddings(model, images, None, num_frames=4)
    with torch.no_grad():
        ref_static = model(video=static_clip(images, 4))
    assert torch.allclose(static["f_v"], ref_static["f_v"], atol=1e-5)
    model.set_image_mode(True)
    previous = model.image_backbone
    im.image_embeddings(model, images, net)
    assert model.image_backbone is previous  # an image mode set before is kept
    model.train()
    im.image_embeddings(model, images, net)
    assert model.training
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        im.image_embeddings(model, images[0], net)


def test_own_clip_ranks_and_relative_l1():
    clips = torch.eye(4)
    ranks, cos = im.own_clip_ranks(clips, clips)
    assert ranks.tolist() == [1, 1, 1, 1] and torch.allclose(cos, torch.ones(4))
    # Query 0 points at clip 1: its own clip ranks behind it (ties with the two others are counted against it).
    q = clips.clone()
    q[0] = torch.tensor([0.1, 1.0, 0.0, 0.0])
    ranks, _ = im.own_clip_ranks(q, clips)
    assert ranks.tolist() == [2, 1, 1, 1]
    assert im.relative_l1(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must match"):
        im.own_clip_ranks(q[:2], clips)


def test_the_deflation_diagnostics_run_on_a_device_without_numpy(s3dg_pair, monkeypatch):
    """Notebook 05 on a GPU: the activations live on the device, and every tensor that leaves it for NumPy or Python
    goes through runtime.to_numpy (a plain ``.numpy()`` or ``float()`` fails there). On the meta device any such
    shortcut raises, so the diagnostics run end to end only if they all use the helper, here a stand-in that records
    the device and hands back zeros of the tensor's shape."""
    seen = []

    def fake_to_numpy(x):
        seen.append(x.device.type)
        return np.zeros(tuple(x.shape), dtype=np.float32)

    monkeypatch.setattr(im, "to_numpy", fake_to_numpy)
    video, image_net = (copy.deepcopy(net).to("meta") for net in s3dg_pair)
    images = torch.empty(2, 3, 32, 32, device="meta")
    prof = im.boundary_profile(video, image_net, images, num_frames=16)
    assert prof["Conv2d_1a_7x7"].shape == (8,) and "Mixed_5c" in prof
    gaps = im.gap_by_clip_length(video, image_net, images, lengths=(8, 16))
    assert set(gaps) == {8, 16}
    assert seen and set(seen) == {"meta"}  # every conversion went through the helper, from the device
    with pytest.raises(TypeError, match="meta"):  # the shortcut the helper replaced fails on a device
        torch.empty(3, device="meta").numpy()
