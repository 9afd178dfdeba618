"""Score a trained checkpoint on the sample world's held-out sets with some world dials set otherwise.

    python bench/rescore_world.py --checkpoint data_samples/mmv_lite_fac.pt --set world.object_scale=1.0 \
        --json docs/results/world_defaults/object_scale_1.0.json

The checkpoint's own config is taken, ``--set`` (``world.*`` fields only) changes its world, and the held-out probe,
val and test sets of that world are built as ``evaluate`` builds them (:func:`mmv_lite.evaluate.
load_world_eval_datasets`). The scoring is ``evaluate --factors --no-images``'s: zero-shot retrieval, the action and
sound probes and the factor probes on the test set. With no ``--set`` it reproduces the checkpoint's own evaluation
(``docs/results/shipped_checkpoint.json``). The JSON records the dials set and the command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import torch

from mmv_lite.checkpoints import load_checkpoint, model_from_state
from mmv_lite.config import apply_overrides
from mmv_lite.evaluate import evaluate_model, format_report, load_world_eval_datasets
from mmv_lite.files import atomic_write
from mmv_lite.runtime import machine


def parse_set(items: list[str]) -> dict[str, float]:
    """``["world.object_scale=1.0"]`` -> ``{"world.object_scale": 1.0}``; only the world's dials may change."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("world."):
            raise SystemExit(f"--set {item!r}: expected world.FIELD=VALUE (only the world's dials change)")
        out[key] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="world.FIELD=VALUE")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    overrides = parse_set(args.set)
    t0 = time.perf_counter()
    state = load_checkpoint(args.checkpoint)
    model, cfg, vocab = model_from_state(state, args.checkpoint)
    cfg = apply_overrides(cfg, overrides)
    model.cfg = cfg
    model.eval()
    datasets = load_world_eval_datasets(cfg, ["test", "train", "val"], vocab, model.text_backbone.word_vectors)
    result = evaluate_model(model, datasets, split="test", images=False, factors=True, modalities=cfg.train.modalities)
    result.update(checkpoint=args.checkpoint, data="world", random_init=False, world_overrides=overrides)
    result["world"] = cfg.to_dict()["world"]
    result["machine"] = machine()
    result["command"] = shlex.join(["python", "bench/rescore_world.py", *(argv if argv is not None else sys.argv[1:])])
    result["seconds"]["total"] = time.perf_counter() - t0
    print(format_report(result))
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
