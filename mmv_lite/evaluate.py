"""The whole evaluation of a trained network, and the ``evaluate`` command.

    python -m mmv_lite evaluate --checkpoint data_samples/mmv_lite_fac.pt [--split test] [--json OUT]
    python -m mmv_lite evaluate --checkpoint data_samples/mmv_lite_fac.pt --factors --random-init
    python -m mmv_lite evaluate --checkpoint data_samples/mmv_lite_fac.pt --set world.seed=7   # another world

Without ``--data`` a checkpoint is scored on the held-out sets of the data it was trained on: the sample world's
fixed probe / val / test sets for a network trained on the world stream (the main job, the shipped checkpoint),
the folder's splits otherwise. ``--set world.seed=7`` (any world or data field, checked as ``train --set`` is) scores
on held-out sets drawn with other dials; the JSON records them as ``overrides``. ``--random-init`` scores the same
architecture with fresh random weights, the baseline that shows what training added.

:func:`evaluate_model` embeds each split once (:mod:`mmv_lite.embedding`), then runs zero-shot retrieval
(:mod:`mmv_lite.retrieval`), the linear probes of actions and sounds and, optionally, of images through the deflated
network (:mod:`mmv_lite.probes`, :mod:`mmv_lite.images`) and the factor probes. :func:`format_report` prints it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import load_checkpoint, model_from_state
from .cli import check_at_least
from .config import Config, apply_overrides, override_key, parse_set_options, validate
from .data.clips import ClipDataset, folder_word_vectors, hash_split, media_files
from .data.text import WordVectors
from .data.world import WorldClips
from .embedding import embed_dataset, subset_embeddings, window_groups
from .files import atomic_write
from .images import IMAGE_MODES, image_features
from .models.deflation import CALIB_STEPS
from .probes import PROBE_CS, attach_factors, factor_probes, format_factor_table, format_probes, probe_suite
from .retrieval import chance_levels, format_retrieval, zero_shot_retrieval
from .runtime import machine, select_device, to_numpy


def _labelled(embs: dict[str, dict[str, Any]], key: str) -> bool:
    """Whether every split's embeddings carry ``key`` with at least one known label (>= 0), two classes in train."""
    if not all(key in e and bool((torch.as_tensor(e[key]) >= 0).any()) for e in embs.values()):
        return False
    train = torch.as_tensor(embs["train"][key])
    return len(torch.unique(train[train >= 0])) >= 2


def evaluate_model(
    model: torch.nn.Module,
    datasets: dict[str, torch.utils.data.Dataset],
    *,
    split: str = "test",
    probes: bool = True,
    images: bool = True,
    retrieval: bool = True,
    calib_steps: int = CALIB_STEPS,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    modalities: str = "vat",
    seed: int = 0,
    factors: bool | Mapping[tuple[str, ...], tuple[str, ...] | None] = False,
    tasks: Sequence[str] = ("action", "sound"),
    probe_cs: Sequence[float] = PROBE_CS,
) -> dict[str, Any]:
    """Zero-shot retrieval on ``datasets[split]``; linear probes fitted on "train", tuned on "val", scored on ``split``.

    ``datasets``: ``{"train", "val", split}`` of evaluation-mode datasets (only ``split`` without probes). With
    several windows per segment (``ClipDataset(windows_per_segment=W)``) the action and sound probes average their
    scores over a segment's windows, while retrieval and the image probes use each segment's centre window only
    (one clip per segment, one frame per image). ``modalities``: the inputs given to the model ("va" for a model
    that never saw text).

    Returns ``{"graph", "split", "retrieval": {direction: metrics}, "chance": {direction: chance metrics},
    "probes": {task: linear_probe result}, "deflation": calibration report, "num_clips": {split: N},
    "seconds": {stage: s}}``; with ``factors`` (and ``probes``) also ``"factors"``: :func:`factor_probes` of the
    backbone features and the narrations on each segment's centre window (``factors`` may name them:
    ``{(feature, ...): (factor, ...) or None for all}``, single-frame features such as ``f_image_naive`` included).
    ``tasks``: the label probes of :data:`~mmv_lite.probes.PROBE_TASKS` beside the image probes. ``probe_cs``: the C
    grid of every probe (:func:`~mmv_lite.probes.linear_probe`).
    """
    graph = model.cfg.model.graph
    needed = list(dict.fromkeys([split] + (["train", "val"] if probes else [])))
    missing = [s for s in needed if s not in datasets]
    if missing:
        raise ValueError(f"evaluate_model: datasets lacks the split(s) {missing}; it has {sorted(datasets)}")
    empty = [s for s in needed if len(datasets[s]) == 0]
    if empty:
        raise ValueError(f"evaluate_model: the split(s) {empty} have no clips; nothing to score")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    embs, centres = {}, {}
    for s in needed:
        emb = embed_dataset(
            model, datasets[s], batch_size, device, modalities=modalities, keep_frames=probes and images
        )
        info = window_groups(datasets[s])
        if info is not None:
            emb["group"] = info[0]
        centre = info[1] if info is not None else torch.ones(len(emb["video_id"]), dtype=torch.bool)
        embs[s], centres[s] = emb, subset_embeddings(emb, centre)
    times["embed"] = time.perf_counter() - t0
    result: dict[str, Any] = {
        "graph": graph,
        "split": split,
        "num_clips": {s: len(e["video_id"]) for s, e in embs.items()},
    }
    if retrieval:
        result["retrieval"] = zero_shot_retrieval(centres[split], graph)
        result["chance"] = chance_levels(centres[split], graph)
    if probes:
        t0 = time.perf_counter()
        result["probes"] = probe_suite(embs["train"], embs["val"], embs[split], tasks, seed, probe_cs) if tasks else {}
        times["probes"] = time.perf_counter() - t0
        if images and _labelled(embs, "image_label"):  # calibrating costs minutes: only when a probe can read it
            t0 = time.perf_counter()
            result["deflation"] = image_features(
                model, centres, calib_steps=calib_steps, batch_size=batch_size, device=device, seed=seed
            )
            image_tasks = [f"image_{m}" for m in IMAGE_MODES]
            result["probes"].update(
                probe_suite(centres["train"], centres["val"], centres[split], image_tasks, seed, probe_cs)
            )
            times["images"] = time.perf_counter() - t0
        elif images:
            note = "image probes skipped: no image labels in every split, so the deflated network was not calibrated"
            result.setdefault("notes", []).append(note)
        if factors:
            t0 = time.perf_counter()
            for s in needed:
                attach_factors(centres[s], datasets[s])
            asked = {None: None} if factors is True else dict(factors)  # type: ignore[arg-type]
            result["factors"] = {}
            for features, names in asked.items():
                feats = {} if features is None else {"features": features}
                found = factor_probes(
                    centres["train"], centres["val"], centres[split], **feats, factors=names, seed=seed, Cs=probe_cs
                )
                result["factors"].update(found)
            times["factors"] = time.perf_counter() - t0
    result["seconds"] = times
    return result


def format_report(result: dict[str, Any]) -> str:
    """:func:`evaluate_model`'s result as plain-text tables (retrieval with chance in brackets, then the probes)."""
    parts: list[str] = []
    if result.get("retrieval"):
        title = f"zero-shot retrieval on {result['split']} ({result['graph']} graph; %)"
        parts.append(format_retrieval(result["retrieval"], result.get("chance"), title=title, gallery=True) + "\n")
    if result.get("probes"):
        parts.append(format_probes(result["probes"], result["split"]))
        if result.get("deflation"):
            d = result["deflation"]
            how = f", shifted channels x {d['alpha']:g}" if d.get("alpha", 1.0) != 1.0 else ""
            parts.append(
                f"deflation{how}: L1 gap to the video network on static clips (train frames): "
                f"{d['before']:.4f} naive -> {d['after']:.4f} calibrated"
            )
    if result.get("factors"):
        title = "factor probes (test accuracy %, chance in brackets)"
        parts.append("\n" + format_factor_table(result["factors"], title))
    parts += result.get("notes", [])
    return "\n".join(parts)


def load_eval_datasets(
    data_dir: str | Path,
    cfg: Any,
    splits: Sequence[str],
    vocab: Sequence[str] | None = None,
    word_matrix: torch.Tensor | None = None,
    windows: dict[str, int] | None = None,
    max_segments: int | None = None,
) -> dict[str, torch.utils.data.Dataset]:
    """Evaluation-mode :class:`~mmv_lite.data.clips.ClipDataset` of each split of ``data_dir``.

    Narrations are tokenised with the model's own vocabulary when ``vocab`` and ``word_matrix`` are given (a
    checkpoint's), else with ``data_dir/word_vectors.bin``. ``windows``: windows per ground-truth segment of each
    split (default 1; the scored split usually gets several, as the official protocol averages several clips per
    test video). ``max_segments`` keeps that many evenly spaced segments per split (all their windows), for quick runs.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data {str(data_dir)!r} is not a folder of clips (videos/, captions.json, ...)")
    if vocab and word_matrix is not None and len(vocab) == word_matrix.shape[0]:
        wv: WordVectors | None = WordVectors(list(vocab), to_numpy(word_matrix))
    else:  # a checkpoint without a vocabulary (trained on a folder without narrations)
        wv = folder_word_vectors(data_dir, "t" in cfg.train.modalities)
    out: dict[str, torch.utils.data.Dataset] = {}
    for s in splits:
        w = (windows or {}).get(s, 1)
        ds: torch.utils.data.Dataset = ClipDataset(
            data_dir, s, cfg.data, train=False, word_vectors=wv, windows_per_segment=w, narrations=wv is not None
        )
        info = window_groups(ds)
        if max_segments is not None and info is not None:
            segments = list(dict.fromkeys(info[0]))
            if len(segments) > max_segments:
                picked = {segments[i] for i in np.linspace(0, len(segments) - 1, max_segments).round().astype(int)}
                ds = torch.utils.data.Subset(ds, [i for i, g in enumerate(info[0]) if g in picked])
        out[s] = ds
    return out


def load_world_eval_datasets(
    cfg: Any, splits: Sequence[str], vocab: Sequence[str], word_matrix: torch.Tensor
) -> dict[str, torch.utils.data.Dataset]:
    """The sample world's held-out sets of ``cfg.world`` for each of ``splits``: "train" (what probes are fitted on)
    is the world's fixed probe set, "val" and "test" its val and test sets. Narrations use the model's vocabulary."""
    wv = WordVectors(list(vocab), to_numpy(word_matrix))
    unknown = [s for s in splits if s not in ("train", "val", "test")]
    if unknown:
        raise ValueError(f"--split {unknown[0]!r}: the sample world has the splits train (probe set), val and test")
    return {s: WorldClips(cfg.data, "probe" if s == "train" else s, cfg.world, wv) for s in splits}


def _data_of(args: argparse.Namespace, state: dict[str, Any]) -> str:
    """What to score on: --data, else the data the checkpoint was trained on ("world" or a folder)."""
    if args.data is not None:
        return args.data
    trained_on = state.get("data")
    if trained_on == "world" or (trained_on and Path(trained_on).is_dir()):
        return trained_on
    return "data_samples"


def folder_splits(data_dir: str | Path) -> tuple[dict[str, int], bool]:
    """Videos per split of a folder of clips, as :class:`~mmv_lite.data.clips.ClipDataset` assigns them, and
    whether ``metadata.json`` says so (else a checksum of each video's name does, :func:`hash_split`)."""
    files = media_files(data_dir)
    path = Path(data_dir) / "metadata.json"
    try:
        meta = json.loads(path.read_text()).get("videos") if path.is_file() else None
    except (ValueError, AttributeError):  # unreadable: ClipDataset says what is wrong and goes on without it
        meta = None
    meta = meta if isinstance(meta, dict) and meta else None
    ids = [v for v in meta if v in files] if meta else list(files)
    counts = dict.fromkeys(("train", "val", "test"), 0)
    for vid in ids:
        entry = meta.get(vid) if meta else None
        split = (entry.get("split") if isinstance(entry, dict) else None) or hash_split(vid)
        counts[split] = counts.get(split, 0) + 1
    return counts, meta is not None


def plan_splits(data: str, split: str, probes: bool) -> tuple[list[str], str | None]:
    """The splits to load for scoring ``split`` of folder ``data`` (with the probes' train and val when they can
    run), and why the probes cannot, if they cannot. ``ValueError`` when ``split`` itself is empty."""
    counts, from_metadata = folder_splits(data)
    total = sum(counts.values())
    if total == 0:
        raise ValueError(f"--data {data!r} holds no media files (in it or in its videos/ folder)")
    shares = ", ".join(f"{n} {s}" for s, n in counts.items())
    if split != "all" and counts.get(split, 0) == 0:
        how = "metadata.json splits" if from_metadata else "it has no metadata.json, so a checksum of the names splits"
        raise ValueError(
            f"the {split} split of {data!r} is empty: {how} its {total} videos {shares}; "
            "score them all with --split all"
        )
    if not probes:
        return [split], None
    if split == "all":
        return [split], (
            "linear probes skipped: --split all scores every video, the probes' train and val ones too; "
            "give a split they were not fitted on (--split test) for the probes"
        )
    empty = [s for s in ("train", "val") if counts.get(s, 0) == 0]
    if empty:
        return [split], f"linear probes skipped: they fit on train and tune on val, and {data!r} has {shares} videos"
    return list(dict.fromkeys([split, "train", "val"])), None


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m mmv_lite evaluate",
        description="Zero-shot retrieval and linear probes (video actions, sounds, images through the deflated "
        "network) of a trained mmv_lite checkpoint.",
    )
    ap.add_argument("--checkpoint", required=True, help="an mmv_lite checkpoint (.pt) written by the train command")
    ap.add_argument(
        "--data",
        default=None,
        help="'world' (the sample world's held-out sets) or a folder of clips (default: what the checkpoint was "
        "trained on)",
    )
    ap.add_argument(
        "--random-init",
        action="store_true",
        help="score the checkpoint's architecture with fresh random weights (seeded by --seed) instead",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of --random-init and of the probes (default 0)")
    ap.add_argument(
        "--split",
        default="test",
        choices=("train", "val", "test", "all"),
        help="split to score (default: test); probes train on train, C on val. 'all' (a folder): every video, "
        "retrieval only",
    )
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    ap.add_argument("--no-probes", action="store_true", help="retrieval only")
    ap.add_argument("--no-images", action="store_true", help="skip the deflated-network image probes")
    ap.add_argument(
        "--calib-steps", type=int, default=CALIB_STEPS, help=f"BatchNorm calibration steps (default {CALIB_STEPS})"
    )
    ap.add_argument(
        "--deflation-alpha",
        type=float,
        default=None,
        metavar="A",
        help="TSM-ResNet checkpoints: the image network scales the shifted channels by A (default: the checkpoint's "
        "model.deflation_alpha; 1 = the shift switched off, 0.3 = DeepMind's later TSM code, 0 = a one-frame clip)",
    )
    ap.add_argument(
        "--windows", type=int, default=3, help="windows per segment of the scored split, averaged by the probes"
    )
    ap.add_argument("--max-segments", type=int, default=None, help="evenly spaced segments per split (quick look)")
    ap.add_argument(
        "--factors",
        action="store_true",
        help="also probe which ground-truth factors (kind, colour, motion, background, ...) each feature encodes",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.NAME=VALUE",
        help="score on data drawn with other dials: a world or data field of the checkpoint's config, e.g. --set "
        "world.seed=7 (another sample world), --set world.object_scale=1.0 (repeatable; the same rule as train --set)",
    )
    return ap


EVAL_SECTIONS = ("world", "data")  # what --set may change: the model's own fields come with its weights


def _with_overrides(cfg: Config, items: Sequence[str], data: str) -> tuple[Config, dict[str, Any]]:
    """``cfg`` with evaluate's ``--set`` options (:func:`mmv_lite.config.parse_set_options`, checked by
    :func:`mmv_lite.config.apply_overrides` as ``train --set`` is), and the overrides by their dotted names."""
    over = {override_key(k): v for k, v in parse_set_options(items).items()}
    for key in over:
        section = key.split(".", 1)[0]
        if section not in EVAL_SECTIONS:
            raise ValueError(
                f"--set {key}: evaluate changes only the data it scores ({', '.join(EVAL_SECTIONS)} fields); the "
                f"{section} section comes with the checkpoint"
                + (" (see --deflation-alpha)" if section == "model" else "")
            )
        if section == "world" and data != "world":
            raise ValueError(f"--set {key}: the world's dials change only --data world, not the folder {data!r}")
    return (apply_overrides(cfg, over) if over else cfg), over


def _with_deflation_alpha(cfg: Config, alpha: float) -> Config:
    """``cfg`` with ``model.deflation_alpha = alpha``, checked by :func:`mmv_lite.config.validate` (in [0, 1], only
    for a TSM-ResNet) before any data is loaded."""
    new = replace(cfg, model=replace(cfg.model, deflation_alpha=alpha))
    try:
        validate(new)
    except ValueError as e:
        raise ValueError(f"--deflation-alpha {alpha}: {e}") from None
    return new


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmv_lite evaluate --checkpoint PATH --data DIR [--split test] [--json OUT]``."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    check_at_least(args, batch_size=1, calib_steps=0, windows=1, max_segments=1)
    t0 = time.perf_counter()
    device = select_device(args.device)
    state = load_checkpoint(args.checkpoint)
    model, cfg, vocab = model_from_state(state, args.checkpoint, args.seed if args.random_init else None)
    if args.deflation_alpha is not None:
        cfg = _with_deflation_alpha(cfg, args.deflation_alpha)
        model.cfg = cfg
    data = _data_of(args, state)
    cfg, overrides = _with_overrides(cfg, args.set, data)
    model.cfg = cfg
    model.to(device).eval()
    probes, note = not args.no_probes, None
    if data == "world":
        splits = list(dict.fromkeys([args.split] + (["train", "val"] if probes else [])))
        datasets = load_world_eval_datasets(cfg, splits, vocab, model.text_backbone.word_vectors)
    else:
        if not Path(data).is_dir():
            raise FileNotFoundError(f"--data {data!r} is not a folder of clips (videos/, captions.json, ...)")
        splits, note = plan_splits(data, args.split, probes)
        probes = probes and note is None
        windows = {args.split: args.windows}
        wm = model.text_backbone.word_vectors
        datasets = load_eval_datasets(data, cfg, splits, vocab, wm, windows=windows, max_segments=args.max_segments)
    result = evaluate_model(
        model,
        datasets,
        split=args.split,
        probes=probes,
        images=not args.no_images,
        calib_steps=args.calib_steps,
        batch_size=args.batch_size,
        device=device,
        modalities=cfg.train.modalities,
        factors=args.factors,
        seed=args.seed,
    )
    if probes and not result.get("probes"):
        note = "linear probes: none ran, the clips carry no action, sound or image labels (metadata.json gives them)"
    result.update(checkpoint=str(args.checkpoint), data=str(data), random_init=bool(args.random_init))
    result["overrides"] = overrides  # {"world.seed": 7}: the dials the scored data was drawn with, beside the config's
    result["machine"] = machine()  # what this evaluation ran on; the checkpoint's own is where it was written
    result["checkpoint_machine"] = state.get("machine")  # None for checkpoints older than the field
    result["notes"] = ([note] if note else []) + result.get("notes", [])
    result["seconds"]["total"] = time.perf_counter() - t0
    print(format_report(result))
    print(f"\n({result['seconds']['total']:.0f} s)")
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0
