"""A video backbone is one module and one entry of mmv_lite.backbones.BACKBONES: a made-up one is checked by the
config, trained by the train command, evaluated (its single frames too) by the evaluate command, and deflated."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mmv_lite.__main__ import main
from mmv_lite.backbones import BACKBONES, Backbone
from mmv_lite.checkpoints import load_model
from mmv_lite.config import get_config
from mmv_lite.models.deflation import deflate, static_clip

pytestmark = pytest.mark.usefixtures("one_thread")


class ToyFrames(nn.Module):
    """One conv, BatchNorm and ReLU per frame, averaged over space: ``(N, 3, H, W) -> (N, out_dim)``."""

    def __init__(self, norm_layer, out_dim: int = 8):
        super().__init__()
        self.conv, self.bn, self.out_dim = nn.Conv2d(3, out_dim, 3, padding=1), norm_layer(out_dim), out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


class ToyVideo(ToyFrames):
    """The frames' features averaged over time: ``(B, 3, T, H, W) -> (B, out_dim)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        return super().forward(x.transpose(1, 2).reshape(b * t, c, h, w)).view(b, t, -1).mean(dim=1)


def deflate_toy(net: ToyVideo, alpha: float) -> ToyFrames:
    image_net = ToyFrames(nn.BatchNorm2d, net.out_dim)
    image_net.load_state_dict({k: v.detach().clone() for k, v in net.state_dict().items()})
    return image_net


def _check(m) -> str | None:
    return "model.video_backbone='toy' has no temporal shift to scale" if m.deflation_alpha != 1.0 else None


TOY = Backbone(network=ToyVideo, build=lambda cfg, norm: ToyVideo(norm), deflate=deflate_toy, norm_dims=2, check=_check)
TINY = [
    "--device", "cpu", "--no-progress", "--threads", "1", "--num-workers", "0", "--batch-size", "4", "--steps", "2",
    "--set", "data.crop_size=16", "--set", "data.resize_to=16", "--set", "data.num_frames=4",
    "--set", "world.num_eval=8", "--set", "world.num_probe=8", "--set", "train.warmup_steps=1",
]  # fmt: skip


def test_a_toy_backbone_is_one_table_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(BACKBONES, "toy", TOY)
    # the config reads the entry: its name is a choice, its check is the config's
    assert get_config("lite", **{"model.video_backbone": "toy"}).model.video_backbone == "toy"
    with pytest.raises(ValueError, match="'toy' has no temporal shift"):
        get_config("lite", **{"model.video_backbone": "toy", "model.deflation_alpha": 0.3})
    with pytest.raises(ValueError, match="expected one of .*'toy'"):
        get_config("lite", **{"model.video_backbone": "toy2"})

    # the train command builds it from the table and trains it
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run), "--set", "model.video_backbone=toy"]) == 0
    model, cfg, _ = load_model(run / "checkpoint.pt")
    assert isinstance(model.video_backbone, ToyVideo) and cfg.model.video_backbone == "toy"
    assert isinstance(model.video_backbone.bn, nn.BatchNorm2d)  # the entry's norm_dims

    # the evaluate command scores it, its single frames through its deflation rule included
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--calib-steps", "2", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert {"image_naive", "image_calibrated", "image_static"} <= set(result["probes"])
    assert {"t2v", "v2a", "a2t"} <= set(result["retrieval"])
    assert result["deflation"]["after"] <= result["deflation"]["before"] + 1e-6
    capsys.readouterr()

    # deflate reads the entry: a per-frame network deflates to itself on a static clip
    image_net = deflate(model).eval()
    assert isinstance(image_net, ToyFrames) and not isinstance(image_net, ToyVideo)
    images = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        video = model.video_backbone.eval()(static_clip(images, 4))
        assert torch.allclose(image_net(images), video, atol=1e-5)
