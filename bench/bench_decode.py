"""Decoding the sample videos whole, as the decode cache does on first use: CPU ms per video, and what scaling the
frames costs with one scaler per frame (PyAV's ``frame.to_ndarray(width=, height=)``) against one per decode.

    python bench/bench_decode.py                    # the first 20 videos of data_samples/videos, 3 rounds
    python bench/bench_decode.py --videos 60 --rounds 5

One process, one core's worth of work (process CPU time, robust to other processes on a shared machine). Each round
times, on the same videos and alternating which goes first:

- ``per_frame_scaler``: decode every frame and convert it with ``frame.to_ndarray(format="rgb24", width=, height=)``,
  which sets up a new scaler for each frame (the kit did this until the decode cache kept one);
- ``one_scaler``: the same frames through one single-threaded ``VideoReformatter`` (what ``mmv_lite.data.media``
  does now);
- ``decode_ms_per_video``: :func:`mmv_lite.data.media.decode` itself, frames and sound.

The frames of both conversions are compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from mmv_lite.data.media import _target_size, decode
from mmv_lite.runtime import machine

REPO = Path(__file__).resolve().parents[1]


def scaled_frames(path: Path, size: int, shared: bool) -> tuple[np.ndarray, float]:
    """Every frame of ``path`` at shorter side ``size``, and the CPU seconds it took (decoding included)."""
    t0 = time.process_time()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        w, h = _target_size(s.codec_context.width, s.codec_context.height, size)
        scaler = VideoReformatter()
        if shared:
            out = [scaler.reformat(f, width=w, height=h, format="rgb24", threads=1).to_ndarray() for f in c.decode(s)]
        else:
            out = [f.to_ndarray(format="rgb24", width=w, height=h) for f in c.decode(s)]
    return np.stack(out), time.process_time() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(REPO / "data_samples" / "videos"), help="a folder of videos")
    p.add_argument("--videos", type=int, default=20, help="how many (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each way once per round (default 3)")
    p.add_argument("--size", type=int, default=36, help="shorter side after scaling (default 36, the lite preset's)")
    p.add_argument("--sample-rate", type=int, default=16000, help="audio rate for decode() (default 16000)")
    args = p.parse_args()
    videos = sorted(Path(args.root).glob("*.mp4"))[: args.videos]
    if not videos:
        p.error(f"--root {args.root}: no .mp4 files")
    ms: dict[str, list[float]] = {"per_frame_scaler": [], "one_scaler": [], "decode": []}
    equal = True
    for r in range(args.rounds):
        ways = (False, True) if r % 2 == 0 else (True, False)
        got = {}
        for shared in ways:
            frames, cpu = zip(*(scaled_frames(v, args.size, shared) for v in videos))
            got[shared] = frames
            ms["one_scaler" if shared else "per_frame_scaler"].append(1000 * sum(cpu) / len(videos))
        equal &= all(np.array_equal(a, b) for a, b in zip(got[False], got[True]))
        t0 = time.process_time()
        for v in videos:
            decode(v, args.sample_rate, args.size)
        ms["decode"].append(1000 * (time.process_time() - t0) / len(videos))
    med = {k: statistics.median(v) for k, v in ms.items()}
    print(json.dumps({
        "machine": machine(),
        "videos": len(videos),
        "rounds": args.rounds,
        "per_frame_scaler_ms_per_video": med["per_frame_scaler"],
        "one_scaler_ms_per_video": med["one_scaler"],
        "speedup": med["per_frame_scaler"] / med["one_scaler"],
        "frames_equal": bool(equal),
        "decode_ms_per_video": med["decode"],
        "rounds_ms": ms,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
