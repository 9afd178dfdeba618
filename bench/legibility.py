"""Can the lite video network see the sample world's objects? A supervised reference on the world stream.

    python bench/legibility.py                                   # the lite preset's video backbone (TSM-ResNet)
    python bench/legibility.py --net s3dg                        # the lite preset's former S3D-G (stride-2 stem)
    python bench/legibility.py --net s3dg --set model.video_stem_stride=1

The network is trained with labels (cross-entropy on the object's kind and its motion, two linear heads on the
backbone's feature) on clips of the training stream of the ``lite`` preset's world, every clip new, then scored on
the world's held-out test set (500 clips). No label is used anywhere else in the project's training: this says how
far the video side *could* go with this architecture, these frames and this many clips, and is the bar that
self-supervised pretraining is compared with.

``--net lite`` is the preset's own video backbone; ``--net s3dg`` swaps in an S3D-G of width 0.25 (``--set``
changes any other field of the preset, e.g. its stem stride or frame size). Prints one row per evaluation: step,
training loss, held-out kind and motion accuracy (%), seconds.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from mmv_lite.config import get_config
from mmv_lite.data.sampling import step_loader
from mmv_lite.data.world import WorldClips, world_word_vectors
from mmv_lite.models.layers import eval_mode
from mmv_lite.models.mmv import build_video_backbone
from mmv_lite.optim import build_optimiser, train_step

LABELS = {"kind": "image_label", "motion": "action_label"}
NETS = {"lite": {}, "s3dg": {"model.video_backbone": "s3dg", "model.video_width": 0.25}}


class Classifier(nn.Module):
    """The video backbone and one linear head per factor: ``video (B, 3, T, H, W) -> {factor: (B, classes)}``."""

    def __init__(self, backbone: nn.Module, classes: dict[str, int]):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({f: nn.Linear(backbone.out_dim, n) for f, n in classes.items()})

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone(video)
        return {name: head(f) for name, head in self.heads.items()}


def loss_of(logits: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
    terms = {f: nn.functional.cross_entropy(logits[f], batch[LABELS[f]]) for f in logits}
    return {"loss": sum(terms.values()), **terms}


@torch.no_grad()
def accuracy(net: Classifier, held_out: list[dict]) -> dict[str, float]:
    right = {f: 0 for f in LABELS}
    total = 0
    with eval_mode(net):
        for batch in held_out:
            logits = net(batch["video"])
            for f in LABELS:
                right[f] += int((logits[f].argmax(1) == batch[LABELS[f]]).sum())
            total += len(batch["video"])
    return {f: 100.0 * r / total for f, r in right.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--net", choices=sorted(NETS), default="lite")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-clips", type=int, default=500, help="held-out test clips scored (default: all 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.NAME=VALUE", help="any config field")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    over = {**NETS[args.net], **{k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}}
    over.update({"train.steps": args.steps, "train.batch_size": args.batch_size, "train.lr": args.lr})
    over.update({"train.seed": args.seed, "train.num_workers": 1, "train.warmup_steps": max(1, args.steps // 20)})
    cfg = get_config("lite", **over)
    torch.manual_seed(args.seed)
    words = world_word_vectors()
    train = WorldClips(cfg.data, "train", cfg.world, words)
    test = WorldClips(cfg.data, "test", cfg.world, words)
    held_out = list(torch.utils.data.DataLoader(torch.utils.data.Subset(test, range(args.eval_clips)), batch_size=64))
    net = Classifier(build_video_backbone(cfg), {"kind": 6, "motion": 7})
    opt = build_optimiser(net.parameters(), cfg.train)
    chance = {f: 100.0 * max(torch.bincount(torch.cat([b[LABELS[f]] for b in held_out])).tolist()) / args.eval_clips
              for f in LABELS}  # fmt: skip
    print(f"{args.net} video backbone ({cfg.model.video_backbone}, {cfg.data.crop_size} px, stem stride "
          f"{cfg.model.video_stem_stride}); held-out test clips {args.eval_clips}; chance (majority) kind "
          f"{chance['kind']:.1f} %, motion {chance['motion']:.1f} %")  # fmt: skip
    print(" step    loss   kind %  motion %  seconds")
    t0 = time.perf_counter()
    for step, batch in enumerate(step_loader(train, cfg.train, 0, args.steps), start=1):
        losses = train_step(net, batch["video"], lambda out, b=batch: loss_of(out, b), opt)
        if step % args.eval_every == 0 or step == args.steps:
            acc = accuracy(net, held_out)
            print(f"{step:5d}  {losses['loss'].item():6.3f}  {acc['kind']:7.1f}  {acc['motion']:8.1f}  "
                  f"{time.perf_counter() - t0:7.0f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
