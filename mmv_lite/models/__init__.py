"""The MMV network: video/audio/text backbones, projection heads and embedding graphs, deflation.

>>> from mmv_lite.models import build_model, s3dg, tsm_resnet
>>> model = build_model("lite", graph="fac")
"""

from .audio_resnet import AudioResNet, audio_resnet
from .deflation import calibrate_deflated_bn, deflate
from .heads import EmbeddingGraph, LinearHead, MLPHead
from .layers import count_parameters
from .mmv import MMV, build_model, build_video_backbone
from .s3dg import S3DG, s3dg
from .text import TextTower
from .tsm_resnet import ResNetV2, TSMResNet, temporal_shift, tsm_resnet

__all__ = [
    "MMV",
    "S3DG",
    "AudioResNet",
    "EmbeddingGraph",
    "LinearHead",
    "MLPHead",
    "ResNetV2",
    "TSMResNet",
    "TextTower",
    "audio_resnet",
    "build_model",
    "build_video_backbone",
    "calibrate_deflated_bn",
    "count_parameters",
    "deflate",
    "s3dg",
    "temporal_shift",
    "tsm_resnet",
]
