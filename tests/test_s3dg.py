"""S3D-G: exact parameter count, official endpoint shapes, TF SAME padding, self-gating placement."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmv_lite.models import count_parameters, s3dg
from mmv_lite.models.layers import Conv2dSame, Conv3dSame, max_pool_same, same_padding
from mmv_lite.models.s3dg import ENDPOINTS

pytestmark = pytest.mark.usefixtures("one_thread")


# Channels of each endpoint at width 1 (official s3d_test.py / MMV_REFERENCE section 2).
OFFICIAL_CHANNELS = {
    "Conv2d_1a_7x7": 64,
    "MaxPool_2a_3x3": 64,
    "Conv2d_2b_1x1": 64,
    "Conv2d_2c_3x3": 192,
    "MaxPool_3a_3x3": 192,
    "Mixed_3b": 256,
    "Mixed_3c": 480,
    "MaxPool_4a_3x3": 480,
    "Mixed_4b": 512,
    "Mixed_4c": 512,
    "Mixed_4d": 512,
    "Mixed_4e": 528,
    "Mixed_4f": 832,
    "MaxPool_5a_2x2": 832,
    "Mixed_5b": 832,
    "Mixed_5c": 1024,
}
# (T, H, W) divisors of each endpoint relative to the input (TF SAME: ceil division).
DOWNSAMPLE = {
    "Conv2d_1a_7x7": (2, 2, 2),
    "MaxPool_2a_3x3": (2, 4, 4),
    "Conv2d_2b_1x1": (2, 4, 4),
    "Conv2d_2c_3x3": (2, 4, 4),
    "MaxPool_3a_3x3": (2, 8, 8),
    "Mixed_3b": (2, 8, 8),
    "Mixed_3c": (2, 8, 8),
    "MaxPool_4a_3x3": (4, 16, 16),
    "Mixed_4b": (4, 16, 16),
    "Mixed_4c": (4, 16, 16),
    "Mixed_4d": (4, 16, 16),
    "Mixed_4e": (4, 16, 16),
    "Mixed_4f": (4, 16, 16),
    "MaxPool_5a_2x2": (8, 32, 32),
    "Mixed_5b": (8, 32, 32),
    "Mixed_5c": (8, 32, 32),
}


def test_parameter_count_matches_official():
    with torch.device("meta"):
        model = s3dg(width=1.0)
    assert count_parameters(model) == 9_162_704
    assert model.out_dim == 1024


def _check_endpoints(model, x):
    eps = model(x, return_endpoints=True)
    assert list(eps) == [*ENDPOINTS, "Embeddings"]
    b, _, t, h, w = x.shape
    for name in ENDPOINTS:
        dt, dh, dw = DOWNSAMPLE[name]
        want = (b, OFFICIAL_CHANNELS[name], math.ceil(t / dt), math.ceil(h / dh), math.ceil(w / dw))
        assert tuple(eps[name].shape) == want, name
    assert tuple(eps["Embeddings"].shape) == (b, 1024)
    assert torch.allclose(eps["Embeddings"], eps["Mixed_5c"].mean(dim=(2, 3, 4)))


def test_endpoint_shapes_small_input():
    torch.manual_seed(0)
    model = s3dg().eval()
    with torch.no_grad():
        _check_endpoints(model, torch.rand(1, 3, 16, 32, 32))


@pytest.mark.slow
def test_endpoint_shapes_official_input():
    # The official test's 2 x 16 x 224 x 224 clip (about 90 GFLOP forward; tens of seconds on 2 CPU cores).
    torch.manual_seed(0)
    model = s3dg().eval()
    with torch.no_grad():
        _check_endpoints(model, torch.rand(2, 3, 16, 224, 224))


@pytest.mark.parametrize("shape", [(1, 3, 1, 1, 1), (2, 3, 5, 33, 47), (1, 3, 8, 56, 56)])
def test_any_size_works(shape):
    model = s3dg(width=0.125).eval()
    with torch.no_grad():
        out = model(torch.rand(shape))
    assert out.shape == (shape[0], model.out_dim) and torch.isfinite(out).all()


def test_width_multiplier_scales_output():
    assert s3dg(width=0.25).out_dim == 256
    assert s3dg(width=0.5).out_dim == 512


def test_same_padding_values():
    assert same_padding(56, 7, 2) == (2, 3)  # even size, stride 2: the extra element goes after
    assert same_padding(57, 7, 2) == (3, 3)
    assert same_padding(56, 3, 2) == (0, 1)
    assert same_padding(8, 3, 1) == (1, 1)
    assert same_padding(7, 2, 2) == (0, 1)
    assert same_padding(8, 1, 2) == (0, 0)


@pytest.mark.parametrize("size", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (3, 1), (1, 2)])
def test_max_pool_same_matches_explicit_minus_inf_padding(size, kernel, stride):
    torch.manual_seed(size)
    x = torch.randn(2, 3, size, size + 1, size + 2) - 5.0  # negative values: zero padding would win the max
    ks, ss = (kernel, kernel, kernel), (1, stride, stride)
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], ks, ss)]
    flat = [v for b, a in reversed(pads) for v in (b, a)]
    ref = F.max_pool3d(F.pad(x, flat, value=float("-inf")), ks, ss)
    out = max_pool_same(x, ks, ss)
    assert out.shape == ref.shape and torch.equal(out, ref)
    assert out.shape[2:] == tuple(math.ceil(n / s) for n, s in zip(x.shape[2:], ss))


@pytest.mark.parametrize("size", [6, 7])
def test_conv_same_matches_tensorflow_rule(size):
    torch.manual_seed(0)
    conv = Conv3dSame(2, 4, (7, 7, 7), (2, 2, 2))
    x = torch.randn(1, 2, size, size, size)
    p = same_padding(size, 7, 2)
    ref = F.conv3d(F.pad(x, [p[0], p[1]] * 3), conv.weight, stride=2)
    assert torch.allclose(conv(x), ref, atol=1e-5)
    conv2 = Conv2dSame(2, 4, 3, 2)
    q = same_padding(size, 3, 2)
    ref2 = F.conv2d(F.pad(x[:, :, 0], [q[0], q[1]] * 2), conv2.weight, stride=2)
    assert torch.allclose(conv2(x[:, :, 0]), ref2, atol=1e-5)


def test_gating_and_separable_placement():
    model = s3dg(width=0.25)
    # No gating before Conv2d_2c_3x3; gating from there on, on each branch's last unit only.
    assert model.Conv2d_1a_7x7.self_gating is None and model.Conv2d_2b_1x1.self_gating is None
    assert model.Conv2d_2c_3x3.self_gating is not None
    blk = model.Mixed_4c
    assert blk.Branch_1_Conv2d_0a_1x1.self_gating is None and blk.Branch_2_Conv2d_0a_1x1.self_gating is None
    for unit in (blk.Branch_0_Conv2d_0a_1x1, blk.Branch_1_Conv2d_0b_3x3, blk.Branch_2_Conv2d_0b_3x3):
        assert unit.self_gating is not None
    # First conv: full 7x7x7 stride 2; 2c and the inception 3x3 units: 1x3x3 spatial then 3x1x1 temporal.
    assert model.Conv2d_1a_7x7.conv.weight.shape[2:] == (7, 7, 7) and model.Conv2d_1a_7x7.conv_t is None
    assert model.Conv2d_1a_7x7.conv.stride == (2, 2, 2)
    assert model.Conv2d_2c_3x3.conv.weight.shape[2:] == (1, 3, 3)
    assert model.Conv2d_2c_3x3.conv_t.weight.shape[2:] == (3, 1, 1)
    assert blk.Branch_1_Conv2d_0b_3x3.conv_t.weight.shape[2:] == (3, 1, 1)
    # No conv has a bias (BN follows every conv).
    assert all(m.bias is None for m in model.modules() if isinstance(m, Conv3dSame))


def test_self_gating_formula():
    torch.manual_seed(0)
    unit = s3dg(width=0.125).Conv2d_2c_3x3.eval()
    x = torch.randn(2, 8, 3, 5, 5)
    with torch.no_grad():
        h = F.relu(unit.bn(unit.conv(x)))
        h = F.relu(unit.bn_t(unit.conv_t(h)))
        gate = torch.sigmoid(unit.self_gating(h.mean(dim=(2, 3, 4))))
        assert torch.allclose(unit(x), h * gate[:, :, None, None, None], atol=1e-6)
