"""What can the lite video network learn about the sample world's objects at all? Three diagnostics.

    python bench/video_factor_bounds.py init --checkpoint data_samples/mmv_lite_fac.pt
    python bench/video_factor_bounds.py supervised --factor kind --net s3dg --steps 750
    python bench/video_factor_bounds.py supervised --factor kind --net cnn --steps 750
    python bench/video_factor_bounds.py captions --mode clean --out /tmp/ds_clean

``init``: factor probes (``mmv_lite.probes.factor_probes``: linear classifiers fitted on train clips, scored on
test clips, chance = train's majority answer) of a trained checkpoint's video features ``f_v`` next to those of
the *same architecture at random initialisation* (the checkpoint's text tower, so the same clips are kept). If
pretraining taught the video network about the objects, the trained column reads kind / motion better than the
random one.

``supervised``: an upper bound with labels. A classifier is trained with cross-entropy on one ground-truth factor
(``kind`` or ``motion``) of the train clips (the train-mode augmentation of the preset), then scored on the train
clips (eval mode: how well it fits) and the held-out test clips (how well it generalises). ``--net``:

* ``s3dg``: the preset's video backbone (S3D-G, all frames) + a linear layer;
* ``s3dg2d``: the same S3D-G as an image network (``dims=2``) on one random frame per clip (eval: the middle one);
* ``cnn``: a plain 3-layer CNN (3x3 convs, 2x2 max pools, a global *max* pool) on one frame.

Training: Adam at a constant ``--lr`` (``mmv_lite.optim.build_optimiser(schedule=False)``), one
``mmv_lite.optim.train_step`` per batch.

No label is used anywhere else in the project's training: this only says how far the video side could go.

``captions``: a copy of a sample folder (videos, metadata and word vectors linked, not copied) whose narrations are
rewritten from the ground truth of the segment under each caption's midpoint, to see which part of the narration
noise keeps text -> video retrieval down. ``--mode``:

* ``oracle``: "the {colour} {kind} {motion}s", the factors' own names, every caption;
* ``clean``: "the {colour} {kind synonym} {motion synonym}", the world's synonyms, no other noise;
* ``aligned``: the world's own wording and speech-recognition noise, but no caption about a neighbouring segment and
  no filler-only caption.

    python bench/video_factor_bounds.py captions --mode oracle --out /tmp/ds_oracle
    python -m mmv_lite train --preset lite --data /tmp/ds_oracle --out runs/oracle ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmv_lite.checkpoints import load_model
from mmv_lite.config import get_config
from mmv_lite.data.clips import ClipDataset
from mmv_lite.data.synth import KIND_WORDS, MOTION_WORDS, Segment, asr_noise, describe
from mmv_lite.embedding import embed_dataset
from mmv_lite.evaluate import load_eval_datasets
from mmv_lite.models.layers import eval_mode
from mmv_lite.models.mmv import MMV, build_video_backbone
from mmv_lite.models.s3dg import S3DG
from mmv_lite.optim import build_optimiser, train_step
from mmv_lite.probes import attach_factors, factor_probes, format_factor_table

PROBED = ("kind", "colour", "shade", "size", "motion", "background")


def cmd_init(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    model, cfg, vocab = load_model(args.checkpoint)
    words = dict(model.named_buffers())["text_backbone.word_vectors"]
    random_model = MMV(cfg, words)
    ds = load_eval_datasets(args.data, cfg, ["train", "val", "test"], vocab=vocab, word_matrix=words)
    for name, net in (("trained", model), (f"random init (seed {args.seed})", random_model)):
        embs = {s: attach_factors(embed_dataset(net, ds[s], modalities="v"), ds[s]) for s in ds}
        probes = factor_probes(embs["train"], embs["val"], embs["test"], features=["f_v"], factors=PROBED)
        print(format_factor_table(probes, title=f"f_v of {name}"))


class SmallCNN(nn.Module):
    """3x3 conv + BN + ReLU + 2x2 max pool, three times (32, 64, 128 channels), then a global max pool."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in (32, 64, 128):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).amax(dim=(2, 3))


def _labels(ds: ClipDataset, factor: str, classes: list[str]) -> torch.Tensor:
    return torch.tensor([classes.index(v) if v in classes else -1 for v in ds.factors[factor]])


def cmd_supervised(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cfg = get_config("lite")
    train = ClipDataset(args.data, "train", cfg.data, train=True)
    sets = {s: ClipDataset(args.data, s, cfg.data, train=False) for s in ("train", "test")}
    classes = sorted({v for v in train.factors[args.factor] if v})
    y_train = _labels(train, args.factor, classes)
    y_eval = {s: _labels(d, args.factor, classes) for s, d in sets.items()}
    frames_only = args.net != "s3dg"
    if args.net == "s3dg":
        body: nn.Module = build_video_backbone(cfg)
    elif args.net == "s3dg2d":
        body = S3DG(width=cfg.model.video_width, dims=2)
    else:
        body = SmallCNN()
    net = nn.Sequential(body, nn.Linear(body.out_dim, len(classes)))
    tc = dataclasses.replace(cfg.train, lr=args.lr, steps=args.steps, weight_decay=0.0)
    opt = build_optimiser(net.parameters(), tc, schedule=False)
    loader = torch.utils.data.DataLoader(
        train, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=1, persistent_workers=True
    )

    def inputs(video: torch.Tensor, train_mode: bool) -> torch.Tensor:
        if not frames_only:
            return video
        T = video.shape[2]
        if train_mode:  # one random frame per clip
            t = torch.randint(T, (video.shape[0],))
            return video[torch.arange(video.shape[0]), :, t]
        return video[:, :, T // 2]

    def accuracy(split: str) -> float:
        right = total = 0
        with eval_mode(net), torch.no_grad():
            for b in torch.utils.data.DataLoader(sets[split], batch_size=64):
                y = y_eval[split][b["index"]]
                keep = y >= 0
                pred = net(inputs(b["video"], False)).argmax(1)
                right += int((pred[keep] == y[keep]).sum())
                total += int(keep.sum())
        return 100.0 * right / max(total, 1)

    chance = {s: 100.0 * np.bincount(y[y >= 0].numpy()).max() / int((y >= 0).sum()) for s, y in y_eval.items()}
    print(
        f"{args.net} on {args.factor} ({len(classes)} classes, {int((y_train >= 0).sum())} train clips); "
        f"chance (majority) train {chance['train']:.1f} %, test {chance['test']:.1f} %"
    )
    print("step  loss   train acc %  test acc %  seconds")
    step, t0 = 0, time.time()
    while step < args.steps:
        for b in loader:
            y = y_train[b["index"]]
            keep = y >= 0

            def loss_fn(logits, y=y, keep=keep):
                return {"loss": nn.functional.cross_entropy(logits[keep], y[keep])}

            loss = train_step(net, inputs(b["video"], True), loss_fn, opt)["loss"]
            step += 1
            if step % args.eval_every == 0 or step == args.steps:
                print(
                    f"{step:4d}  {loss.item():.3f}  {accuracy('train'):10.1f}  {accuracy('test'):9.1f}  "
                    f"{time.time() - t0:7.0f}",
                    flush=True,
                )
            if step >= args.steps:
                break


def rewrite_captions(data: Path, out: Path, mode: str, seed: int = 1) -> int:
    """Write ``out`` = ``data`` with captions rewritten per ``mode``; returns the number of captions."""
    meta = json.loads((data / "metadata.json").read_text())
    captions = json.loads((data / "captions.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for name in ("videos", "metadata.json", "word_vectors.bin"):
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((data / name).resolve())
    rng = np.random.default_rng(seed)
    names = {f.name for f in dataclasses.fields(Segment)}
    count = 0
    for vid, cap in captions.items():
        segments = meta["videos"][vid]["segments"]
        texts = []
        for start, end in zip(cap["start"], cap["end"]):
            mid = (start + end) / 2
            g = next((x for x in segments if x["start"] <= mid < x["end"]), segments[-1])
            if mode == "oracle":
                texts.append(f"the {g['colour']} {g['kind']} {g['motion']}s")
            elif mode == "clean":
                kind = KIND_WORDS[g["kind"]][rng.integers(len(KIND_WORDS[g["kind"]]))]
                motion = MOTION_WORDS[g["motion"]][rng.integers(len(MOTION_WORDS[g["motion"]]))][1]
                texts.append(f"the {g['colour']} {kind} {motion}")
            else:
                seg = Segment(**{k: v for k, v in g.items() if k in names})
                texts.append(asr_noise(describe(seg, rng), rng))
        cap["text"] = texts
        count += len(texts)
    (out / "captions.json").write_text(json.dumps(captions))
    return count


def cmd_captions(args: argparse.Namespace) -> None:
    n = rewrite_captions(args.data, args.out, args.mode, args.seed)
    print(f"{args.out}: {n} captions rewritten ({args.mode})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("init", help="factor probes of trained vs randomly initialised video features")
    a.add_argument("--checkpoint", type=Path, default=Path("data_samples/mmv_lite_fac.pt"))
    a.add_argument("--data", type=Path, default=Path("data_samples"))
    a.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("supervised", help="train a classifier on one factor with labels (an upper bound)")
    b.add_argument("--factor", choices=("kind", "motion"), default="kind")
    b.add_argument("--net", choices=("s3dg", "s3dg2d", "cnn"), default="s3dg")
    b.add_argument("--data", type=Path, default=Path("data_samples"))
    b.add_argument("--steps", type=int, default=750)
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--eval-every", type=int, default=250)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("captions", help="a copy of the samples with narrations rewritten from the ground truth")
    c.add_argument("--mode", choices=("oracle", "clean", "aligned"), required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--data", type=Path, default=Path("data_samples"))
    c.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    {"init": cmd_init, "supervised": cmd_supervised, "captions": cmd_captions}[args.cmd](args)


if __name__ == "__main__":
    main()
