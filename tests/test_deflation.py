"""Deflation: S3D-G kernels summed over time, TSM without the shift, BatchNorm calibration."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmv_lite import build_model, get_config
from mmv_lite.models import S3DG, ResNetV2, deflate, s3dg, tsm_resnet
from mmv_lite.models.deflation import calibrate_deflated_bn, deflation_gap, static_clip
from mmv_lite.models.tsm_resnet import deflated_shift

pytestmark = pytest.mark.usefixtures("one_thread")


def _smooth_images(n, size=32, seed=0):
    # Blurry random images: closer to natural frames than white noise.
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size // 4, size // 4, generator=g)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _randomise_bn(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_s3dg_deflated_conv_equals_3d_conv_on_static_clip():
    torch.manual_seed(0)
    video = s3dg(width=0.125).eval()
    _randomise_bn(video)
    image_net = deflate(video)
    assert isinstance(image_net, S3DG) and image_net.dims == 2 and not image_net.training
    img = torch.rand(2, 3, 20, 20)
    t = 16
    clip = static_clip(img, t)
    with torch.no_grad():
        # First unit: 7x7x7 conv, stride 2, SAME pads (2, 3) in time: output frame i reads input frames 2i-2..2i+4,
        # all real frames for i in 1..5.
        u3, u2 = video.Conv2d_1a_7x7, image_net.Conv2d_1a_7x7
        out3, out2 = u3.conv(clip), u2.conv(img)
        for i in range(1, 6):
            assert torch.allclose(out3[:, :, i], out2, atol=1e-4), i
        assert not torch.allclose(out3[:, :, 0], out2, atol=1e-3)  # the border frame differs
        assert torch.allclose(u3(clip)[:, :, 3], u2(img), atol=1e-4)  # + BN + ReLU
        # A separable unit: 1x3x3 then 3x1x1 (the deflated temporal conv is a 1x1 conv); frames 1..T-2.
        s3, s2 = video.Mixed_3b.Branch_1_Conv2d_0b_3x3, image_net.Mixed_3b.Branch_1_Conv2d_0b_3x3
        x = torch.randn(2, s3.conv.in_channels, 20, 20)
        h3 = s3.bn_t(s3.conv_t(F.relu(s3.bn(s3.conv(static_clip(x, 6))))))
        h2 = s2.bn_t(s2.conv_t(F.relu(s2.bn(s2.conv(x)))))
        for i in range(1, 5):
            assert torch.allclose(h3[:, :, i], h2, atol=1e-4)
        # Pools lose their temporal axis; gating averages over H, W.
        assert image_net.MaxPool_4a_3x3.kernel == (3, 3) and image_net.MaxPool_4a_3x3.stride == (2, 2)
        assert image_net(img).shape == (2, video.out_dim)
    # The video network itself is untouched.
    assert video.Conv2d_1a_7x7.conv.weight.dim() == 5


class _StemWithOwnPadding(torch.nn.Conv3d):
    """Like the released space-to-depth S3D-G stem: 4x8x8 kernel, stride 2, its own asymmetric padding."""

    def __init__(self, out_channels):
        super().__init__(3, out_channels, (4, 8, 8), stride=2, bias=False)

    def forward(self, x):
        return F.conv3d(F.pad(x, (2, 4, 2, 4, 0, 2)), self.weight, None, self.stride)


def test_s3dg_with_a_replaced_stem_deflates_too():
    torch.manual_seed(0)
    video = s3dg(width=0.125).eval()
    video.Conv2d_1a_7x7.conv = _StemWithOwnPadding(video.Conv2d_1a_7x7.bn.num_features)
    image_net = deflate(video)
    img = torch.rand(2, 3, 20, 20)
    with torch.no_grad():
        out3 = video.Conv2d_1a_7x7.conv(static_clip(img, 8))
        out2 = image_net.Conv2d_1a_7x7.conv(img)
        assert out2.dim() == 4 and torch.allclose(out3[:, :, 1], out2, atol=1e-4)  # frame 1 reads frames 2..5
        assert image_net(img).shape == (2, video.out_dim)


def test_tsm_deflated_is_the_resnet_without_shift():
    torch.manual_seed(0)
    video = tsm_resnet(depth=14, width=0.25).eval()
    _randomise_bn(video)
    image_net = deflate(video)
    assert isinstance(image_net, ResNetV2) and image_net.shift_fraction == 0
    img = torch.rand(2, 3, 24, 24)
    no_shift = tsm_resnet(depth=14, width=0.25, shift_fraction=0.0).eval()
    no_shift.load_state_dict(video.state_dict())
    with torch.no_grad():
        # Without shift, a static clip of any length gives the image network's output exactly.
        assert torch.allclose(image_net(img), no_shift(static_clip(img, 5)), atol=1e-5)
        # A one-frame clip with the shift on is NOT the deflated network (a quarter of the channels are zeroed).
        assert not torch.allclose(image_net(img), video(static_clip(img, 1)), atol=1e-3)


def test_tsm_deflation_alpha_scales_the_shifted_channels():
    torch.manual_seed(0)
    video = tsm_resnet(depth=10, width=0.25).eval()
    _randomise_bn(video)
    img = torch.rand(3, 3, 24, 24)
    with torch.no_grad():
        # alpha = 0: a one-frame clip through the video network, whose shift brings in zeros.
        assert torch.allclose(deflate(video, alpha=0.0)(img), video(static_clip(img, 1)), atol=1e-5)
        # alpha = 1 (default): the shift switched off, as before.
        assert torch.equal(deflate(video, alpha=1.0)(img), deflate(video)(img))
        between = deflate(video, alpha=0.3)(img)
        assert not torch.allclose(between, deflate(video)(img), atol=1e-3)
        assert not torch.allclose(between, deflate(video, alpha=0.0)(img), atol=1e-3)
    # The scaled channels are the shifted ones: the first and last n = int(C / 8).
    x = torch.ones(1, 16, 2, 2)
    scale = deflated_shift(x, 0.125, 0.3)[0, :, 0, 0]
    assert torch.equal(scale, torch.tensor([0.3, 0.3] + [1.0] * 12 + [0.3, 0.3]))
    assert torch.equal(deflated_shift(x, 0.125, 1.0), x)


def test_deflation_alpha_is_checked_and_follows_the_config():
    with pytest.raises(ValueError, match="alpha must be in"):
        deflate(tsm_resnet(depth=10, width=0.25), alpha=1.5)
    with pytest.raises(ValueError, match="S3D-G has none"):
        deflate(s3dg(width=0.125), alpha=0.3)
    torch.manual_seed(0)
    model = build_model(get_config("lite", **{"model.deflation_alpha": 0.0}), vocab_size=10).eval()
    model.set_image_mode(True)
    img = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.image_backbone(img), model.video_backbone(static_clip(img, 1)), atol=1e-5)


def test_calibration_learns_only_new_batchnorm_affine_and_shrinks_the_gap():
    torch.manual_seed(0)
    video = s3dg(width=0.125)
    video.train()
    with torch.no_grad():  # give the BN layers realistic running statistics from a few training batches
        for i in range(3):
            video(static_clip(_smooth_images(8, size=24, seed=10 + i), 8))
    video.eval()
    image_net = deflate(video)
    images = _smooth_images(24, size=24)
    video_state = {k: v.clone() for k, v in video.state_dict().items()}
    before_state = {k: v.clone() for k, v in image_net.state_dict().items()}
    flags = {n: p.requires_grad for n, p in image_net.named_parameters()}
    report = calibrate_deflated_bn(image_net, video, images, steps=60, lr=2e-2, batch_size=8, num_frames=8)
    print(f"deflation L1 gap before {report['before']:.4f} -> after {report['after']:.4f}")
    assert report["after"] < 0.7 * report["before"]
    assert len(report["history"]) == 60
    assert report["by_step"] == {50: pytest.approx(sum(report["history"][:50]) / 50)}  # the curve, up to 60 steps
    assert report["before"] == pytest.approx(deflation_gap(deflate(video), video, images, 8), rel=1e-5)
    # Only BatchNorm weight/bias of the deflated copy changed; running statistics and convs did not.
    changed = {k for k, v in image_net.state_dict().items() if not torch.equal(v, before_state[k])}
    assert changed and all(k.endswith((".bn.weight", ".bn.bias", ".bn_t.weight", ".bn_t.bias")) for k in changed)
    assert all(torch.equal(v, video_state[k]) for k, v in video.state_dict().items())
    assert {n: p.requires_grad for n, p in image_net.named_parameters()} == flags
    assert not video.training and not image_net.training


def test_deflate_rejects_other_modules():
    with pytest.raises(TypeError, match="no video backbone of mmv_lite.backbones.BACKBONES"):
        deflate(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net = s3dg(width=0.125)
        calibrate_deflated_bn(deflate(net), net, torch.rand(2, 3, 4, 8, 8))
