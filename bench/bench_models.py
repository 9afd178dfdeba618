"""Forward + backward time of our backbones against torchvision's, side by side in one process.

    python bench/bench_models.py                      # CPU, 1 thread, small clips (minutes on a laptop)
    python bench/bench_models.py --threads 2 --repeats 7
    python bench/bench_models.py --device cuda --amp --clip 8,3,32,200,200   # paper-size clips on a GPU
    python bench/bench_models.py --lite-step               # one training step of the lite preset, batch 32
    python bench/bench_models.py --deflation data_samples   # deflation L1 gap on sample frames (not a timing)

Pairs (same input tensors, training mode, gradients of every parameter):

* our S3D-G (``mmv_lite.models.s3dg``) vs torchvision's ``s3d`` on the same clips. torchvision's head pools with a
  fixed 2x7x7 kernel, so its ``features`` are followed by a global mean, as ours: both are backbone -> (B, 1024).
* our TSM-ResNet50 (``tsm_resnet(50)``, shift on, clip folded to frames inside) vs torchvision ``resnet50``
  (``fc`` removed) on the same ``B * T`` frames.

torchvision runs in its default (contiguous) layout; with ``--tv-channels-last`` it also runs channels-last, as ours
does internally. Rounds alternate ours / theirs so that load changes on a shared machine hit both; each round gives a
ratio ours / theirs, reported as median and [min, max] over rounds. On CPU with one thread the timer is process CPU
time (robust to other processes on the machine); otherwise wall-clock (synchronised on CUDA).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

from mmv_lite.models import s3dg, tsm_resnet


class GlobalMean(nn.Module):
    """Wrap a feature extractor: features -> mean over all positions, ``(B, C, ...) -> (B, C)``."""

    def __init__(self, features: nn.Module):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return f.mean(dim=tuple(range(2, f.dim())))


def _step(model: nn.Module, x: torch.Tensor, amp: bool) -> None:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    out.float().square().mean().backward()
    for p in model.parameters():
        p.grad = None


def _timer(device: torch.device, threads: int):
    if device.type == "cuda":

        def now():
            torch.cuda.synchronize()
            return time.perf_counter()

        return now
    return time.process_time if threads == 1 else time.perf_counter


def compare(name, ours, theirs, x_ours, x_theirs, repeats, amp, now):
    """Alternate ``ours``/``theirs`` fwd+bwd ``repeats`` times after one warm-up; returns a result dict."""
    for m, x in ((ours, x_ours), (theirs, x_theirs)):
        m.train()
        _step(m, x, amp)  # warm-up: allocator, oneDNN / cuDNN kernel choice
    t_ours, t_theirs = [], []
    for r in range(repeats):
        pair = [(ours, x_ours, t_ours), (theirs, x_theirs, t_theirs)]
        for m, x, acc in pair if r % 2 == 0 else pair[::-1]:
            s = now()
            _step(m, x, amp)
            acc.append(now() - s)
    ratios = [a / b for a, b in zip(t_ours, t_theirs)]
    return {
        "name": name,
        "ours_ms": 1000 * statistics.median(t_ours),
        "theirs_ms": 1000 * statistics.median(t_theirs),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def _sample_frames(samples: Path, size: int, per_video: int, max_videos: int):
    """Centre-cropped ``(N, 3, size, size)`` frames and ``(V, 3, T, size, size)`` clips from the sample videos."""
    from mmv_lite.data.clips import decode

    paths = sorted((samples / "videos").glob("*.mp4"))[:max_videos]
    if not paths:
        raise SystemExit(f"no videos in {samples / 'videos'}: make the samples first (python -m mmv_lite make-samples)")
    images, clips = [], []
    for path in paths:
        frames = decode(path, sample_rate=16_000, max_short_side=size, stop=4.0).frames  # (N, H, W, 3) uint8
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
        x = x[:, :, top : top + size, left : left + size]
        images.append(x[torch.linspace(0, len(x) - 1, per_video).long()])
        clips.append(x[:8].transpose(0, 1))
    return images, torch.stack(clips)


def deflation_report(samples: Path, steps: int, seed: int = 0) -> None:
    """Deflation L1 gap before/after BatchNorm calibration on sample frames, on calibration and held-out videos."""
    from mmv_lite.models.deflation import calibrate_deflated_bn, deflate, deflation_gap

    torch.manual_seed(seed)
    ckpt = samples / "mmv_lite_fac.pt"
    if ckpt.exists():
        from mmv_lite.checkpoints import load_model

        model, cfg, _ = load_model(ckpt)
        video, size, t, what = model.video_backbone, cfg.data.crop_size, cfg.data.num_frames, f"trained ({ckpt})"
        images, _ = _sample_frames(samples, size, per_video=8, max_videos=40)
    else:
        video, size, t = s3dg(width=0.25), 56, 8
        images, clips = _sample_frames(samples, size, per_video=8, max_videos=40)
        video.train()
        with torch.no_grad():  # BatchNorm statistics of real clips instead of the initial 0 / 1
            for i in range(0, len(clips), 8):
                video(clips[i : i + 8])
        what = "random init, BN statistics from sample clips"
    video.eval()
    half = len(images) // 2
    calib, held = torch.cat(images[:half]), torch.cat(images[half:])
    net = deflate(video)
    held_before = deflation_gap(net, video, held, t)
    r = calibrate_deflated_bn(net, video, calib, steps=steps, lr=1e-2, batch_size=16, num_frames=t)
    held_after = deflation_gap(net, video, held, t)
    print(f"S3D-G width {video.width} ({what}); static clips of {t} frames at {size}px")
    print(f"calibration frames ({len(calib)} from {half} videos): L1 {r['before']:.4f} -> {r['after']:.4f} "
          f"({r['after'] / r['before']:.2f}x) after {steps} steps")  # fmt: skip
    print(f"held-out frames ({len(held)} from {len(images) - half} other videos): L1 {held_before:.4f} -> "
          f"{held_after:.4f} ({held_after / held_before:.2f}x)")  # fmt: skip


def lite_step_report(repeats: int, batch: int = 32) -> None:
    """Forward + backward + Adam step of the ``lite`` preset on a batch of random inputs of the lite shapes."""
    import dataclasses

    import mmv_lite
    from mmv_lite.models import count_parameters
    from mmv_lite.optim import build_optimiser, train_step

    cfg = mmv_lite.get_config("lite")
    d = cfg.data
    frames = int(d.clip_seconds * d.sample_rate) // d.hop_length + 1  # STFT frames of the clip span (centred)
    model = mmv_lite.build_model(cfg, vocab_size=1000).train()
    g = torch.Generator().manual_seed(0)
    inputs = {
        "video": torch.rand(batch, 3, d.num_frames, d.crop_size, d.crop_size, generator=g),
        "audio": torch.randn(batch, 1, frames, d.n_mels, generator=g),
        "text_ids": torch.randint(1, 1000, (batch, d.num_candidates, d.max_words), generator=g),
    }
    opt = build_optimiser(model.parameters(), dataclasses.replace(cfg.train, lr=1e-3), schedule=False)

    def step():
        train_step(
            model, inputs, lambda out: {"loss": sum((z**2).mean() for k, z in out.items() if k.startswith("z_"))}, opt
        )

    step()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        step()
        wall.append(1000 * (time.perf_counter() - w))
        cpu.append(1000 * (time.process_time() - c))
    shapes = {k: tuple(v.shape) for k, v in inputs.items()}
    print(f"lite training step, {shapes}, {torch.get_num_threads()} thread(s), {repeats} steps")
    parts = {
        n: count_parameters(getattr(model, n)) for n in ("video_backbone", "audio_backbone", "text_backbone", "heads")
    }
    print("trainable parameters: " + ", ".join(f"{n} {c:,}" for n, c in parts.items()))
    for name, v in (("wall-clock", wall), ("process CPU", cpu)):
        print(f"{name}: median {statistics.median(v):.0f} ms, min {min(v):.0f}, max {max(v):.0f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = CPU-time timer)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--clip", default="2,3,16,112,112", help="B,C,T,H,W of the clips (C must be 3)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    p.add_argument("--tv-channels-last", action="store_true", help="also time torchvision in channels-last layout")
    p.add_argument("--only", choices=["s3dg", "tsm"], default=None)
    p.add_argument("--deflation", type=Path, default=None, metavar="SAMPLES", help="report the deflation L1 gap")
    p.add_argument("--steps", type=int, default=100, help="calibration steps (--deflation)")
    p.add_argument("--lite-step", action="store_true", help="time a training step of the lite preset")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.lite_step:
        lite_step_report(max(args.repeats, 3))
        return
    if args.deflation is not None:
        deflation_report(args.deflation, args.steps)
        return
    torch.manual_seed(0)
    device = torch.device(args.device)
    b, c, t, h, w = (int(v) for v in args.clip.split(","))
    clips = torch.rand(b, c, t, h, w, device=device)
    frames = clips.transpose(1, 2).reshape(b * t, c, h, w).contiguous()  # the same frames, batch-major
    now = _timer(device, args.threads)

    results = []
    if args.only in (None, "s3dg"):
        ours = s3dg().to(device)
        tv = GlobalMean(torchvision.models.video.s3d().features).to(device)
        results.append(compare("S3D-G vs torchvision s3d", ours, tv, clips, clips, args.repeats, args.amp, now))
        if args.tv_channels_last:
            tv_cl = tv.to(memory_format=torch.channels_last_3d)
            clips_cl = clips.contiguous(memory_format=torch.channels_last_3d)
            results.append(
                compare("S3D-G vs torchvision s3d (channels-last)", ours, tv_cl, clips, clips_cl, args.repeats,
                        args.amp, now)
            )  # fmt: skip
        del ours, tv
    if args.only in (None, "tsm"):
        ours = tsm_resnet(50).to(device)
        r50 = torchvision.models.resnet50()
        r50.fc = nn.Identity()
        r50 = r50.to(device)
        results.append(
            compare("TSM-R50 vs torchvision resnet50", ours, r50, clips, frames, args.repeats, args.amp, now)
        )
        if args.tv_channels_last:
            r50_cl = r50.to(memory_format=torch.channels_last)
            frames_cl = frames.contiguous(memory_format=torch.channels_last)
            results.append(
                compare("TSM-R50 vs torchvision resnet50 (channels-last)", ours, r50_cl, clips, frames_cl,
                        args.repeats, args.amp, now)
            )  # fmt: skip

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    timer = "wall-clock" if now is not time.process_time else "process CPU time"
    print(f"\nforward+backward, clips {tuple(clips.shape)}, frames {tuple(frames.shape)}, {where}, amp={args.amp}, "
          f"{args.repeats} alternating rounds, {timer}")  # fmt: skip
    print("| pair | ours (ms, median) | torchvision (ms, median) | ratio ours/tv: median [min, max] |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['ours_ms']:.0f} | {r['theirs_ms']:.0f} | "
              f"{r['ratio']:.2f} [{r['ratio_min']:.2f}, {r['ratio_max']:.2f}] |")  # fmt: skip


if __name__ == "__main__":
    main()
