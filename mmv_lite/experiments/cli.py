"""The paper's design tables in miniature, regenerated on the sample clips.

    python -m mmv_lite experiment design    [--seeds 0 1 2] [--quick] [--data data_samples] [--out runs/experiments]
    python -m mmv_lite experiment deflation [--seeds 0 1 2] [--quick] [--data data_samples] [--out runs/experiments]

``design`` trains the grid of the paper's Table 1 with one equal budget per run and several seeds:

- **Table 1a, which modalities**: VA, VT and VAT (FAC). The two-modality runs use the ``disjoint`` graph, which gives
  each pair its own single space (with only one pair trained, that is the paper's one pairwise space);
- **Table 1b, which embedding graph** for VAT: ``shared``, ``disjoint``, ``fac``.

``deflation`` evaluates the paper's Table 3 (video network -> image network) on the VAT/FAC runs: naive deflation,
deflation with calibrated BatchNorm, and the video network on the static clip.

Every table has a *chance* row and a *supervised* row: the same backbones trained with the same budget on the
ground-truth labels (video -> action and image labels, audio -> sound labels; :func:`train_supervised`) and probed
with the same protocol, i.e. what the labels alone can teach these backbones in this budget.

Runs are cached: ``<out>/runs/<run>-seed<seed>/result.json`` is reused when its budget and specification match, so an
interrupted grid resumes and ``deflation`` reuses the FAC runs of ``design``. Tables are written as markdown and JSON
(mean +- sample std over seeds) to ``<out>/table1a.md``, ``table1a.json``, etc. (:mod:`mmv_lite.experiments.tables`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..checkpoints import load_model
from ..cli import check_at_least
from ..config import Config, budget_overrides, get_config
from ..data.clips import ClipDataset
from ..data.sampling import step_loader
from ..data.text import WordVectors
from ..embedding import window_groups
from ..evaluate import evaluate_model, load_eval_datasets
from ..files import atomic_write
from ..models.deflation import CALIB_STEPS
from ..models.mmv import build_model
from ..optim import build_optimiser, train_step
from ..train import train
from . import findings
from .findings import FINDINGS
from .tables import EXPERIMENTS, TABLES, load_tables, row_differences, write_tables

__all__ = [
    "EXPERIMENTS",
    "FULL",
    "QUICK",
    "RUNS",
    "TABLES",
    "Budget",
    "RunSpec",
    "load_tables",
    "row_differences",
    "run_experiment",
    "train_supervised",
]

# --------------------------------------------------------------------------------------------------------------------
# What is trained
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: ``kind`` is "mmv" (self-supervised) or "supervised" (trained on the labels)."""

    name: str
    kind: str = "mmv"
    modalities: str = "vat"
    graph: str = "fac"


RUNS: dict[str, RunSpec] = {
    "va": RunSpec("va", modalities="va", graph="disjoint"),
    "vt": RunSpec("vt", modalities="vt", graph="disjoint"),
    "vat_fac": RunSpec("vat_fac", modalities="vat", graph="fac"),
    "vat_shared": RunSpec("vat_shared", modalities="vat", graph="shared"),
    "vat_disjoint": RunSpec("vat_disjoint", modalities="vat", graph="disjoint"),
    "supervised": RunSpec("supervised", kind="supervised"),
}


@dataclass(frozen=True)
class Budget:
    """Equal for every run of a grid: the training length and what the evaluation looks at.

    ``max_segments`` caps the ground-truth segments per split used by evaluation (None = all); ``calib_steps`` is
    the length of the BatchNorm calibration of the deflated network.
    """

    steps: int = 200
    batch_size: int = 32
    warmup_steps: int = 20
    lr: float = 5e-3  # the lite preset's rate: short runs from scratch learn faster with it than with 2e-3
    max_segments: int | None = None
    calib_steps: int = CALIB_STEPS
    preset: str = "lite"
    test_windows: int = 3  # windows per test segment, averaged by the action / sound probes
    num_workers: int = 1
    config: tuple[tuple[str, Any], ...] = ()  # extra config overrides, e.g. (("data.crop_size", 32),)


FULL = Budget()
# The quick variant checks the pipeline, not the science: 2 steps on smaller clips, a few segments per split.
QUICK = Budget(
    steps=2,
    batch_size=4,
    warmup_steps=1,
    max_segments=6,
    calib_steps=2,
    test_windows=2,
    num_workers=0,
    config=(("data.num_frames", 4), ("data.crop_size", 32), ("data.resize_to", 36)),
)


def runs_of(experiment: str) -> list[str]:
    """The run names an experiment needs (the supervised reference included)."""
    names: list[str] = []
    for t in EXPERIMENTS[experiment]:
        for _, row in TABLES[t].rows:
            run = row.split(":")[0]
            if run not in names:
                names.append(run)
    return names + ["supervised"]


# --------------------------------------------------------------------------------------------------------------------
# Training: self-supervised runs through mmv_lite.train, the supervised reference here
# --------------------------------------------------------------------------------------------------------------------


def run_config(spec: RunSpec, seed: int, budget: Budget) -> Config:
    """The training config of one run: the preset with the budget's optimisation settings, the run's graph and
    modalities, no periodic validation or intermediate checkpoints (evaluation happens once, after training)."""
    return get_config(
        budget.preset,
        **{
            "model.graph": spec.graph,
            "train.modalities": spec.modalities,
            **budget_overrides(budget, seed),
            **dict(budget.config),
        },
    )


class SupervisedHeads(nn.Module):
    """Linear classifiers on the backbone features: video -> action and image labels, audio -> sound labels."""

    def __init__(self, d_v: int, d_a: int, num_classes: dict[str, int]):
        super().__init__()
        self.action = nn.Linear(d_v, num_classes["action"])
        self.image = nn.Linear(d_v, num_classes["image"])
        self.sound = nn.Linear(d_a, num_classes["sound"])

    def forward(self, f_v: Tensor, f_a: Tensor) -> dict[str, Tensor]:
        return {"action": self.action(f_v), "image": self.image(f_v), "sound": self.sound(f_a)}


def supervised_loss(logits: dict[str, Tensor], batch: dict[str, Any]) -> dict[str, Tensor]:
    """Sum of the cross-entropies of the three label sets; unknown labels (-1) and clips without audio (sound) are
    left out of their term."""
    terms = {}
    for name in ("action", "image", "sound"):
        y = batch[f"{name}_label"].long().clone()
        if name == "sound" and "has_audio" in batch:
            y[~batch["has_audio"].bool()] = -1
        terms[name] = F.cross_entropy(logits[name], y, ignore_index=-1) if (y >= 0).any() else logits[name].sum() * 0.0
    return {"loss": sum(terms.values()), **{f"loss_{k}": v for k, v in terms.items()}}


def train_supervised(cfg: Config, train_ds: Dataset, word_vectors: Tensor, device: str = "cpu") -> nn.Module:
    """The supervised reference: the MMV backbones trained on the ground-truth labels with the run budget.

    Same network (:func:`~mmv_lite.models.mmv.build_model`), same clips in the same order with the same
    augmentation (:func:`~mmv_lite.data.sampling.step_loader` seeded by ``train.seed``), same optimiser, schedule
    and step (:mod:`mmv_lite.optim`), same number of steps and batch size as the self-supervised runs; only the loss
    differs (:func:`supervised_loss` through :class:`SupervisedHeads`). Returns the model (eval mode); its heads
    ``model.supervised_heads`` are kept.
    """
    tc = cfg.train
    torch.manual_seed(tc.seed)
    model = build_model(cfg, word_vectors=word_vectors).to(device)
    num_classes = {k: len(v) for k, v in getattr(train_ds, "class_names", {}).items()}
    if set(num_classes) != {"action", "image", "sound"}:
        labels = train_ds.labels  # type: ignore[attr-defined]
        num_classes = {k: int(labels[k].max()) + 1 for k in ("action", "image", "sound")}
    model.supervised_heads = SupervisedHeads(model.video_backbone.out_dim, model.audio_backbone.out_dim, num_classes)
    model.to(device)
    opt = build_optimiser(model.parameters(), tc, device)

    def logits(video: Tensor, audio: Tensor) -> dict[str, Tensor]:
        out = model(video=video, audio=audio)
        return model.supervised_heads(out["f_v"], out["f_a"])

    model.train()
    for batch in step_loader(train_ds, tc, 0, tc.steps):
        batch = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
        inputs = {"video": batch["video"], "audio": batch["audio"]}
        train_step(logits, inputs, lambda out, batch=batch: supervised_loss(out, batch), opt)
    return model.eval()


# --------------------------------------------------------------------------------------------------------------------
# One run: train, evaluate, flatten, cache
# --------------------------------------------------------------------------------------------------------------------


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    """:func:`~mmv_lite.evaluate.evaluate_model`'s nested result as flat keys: ``probe_action``, ``probe_sound``
    (test accuracy %), ``image_<mode>_acc`` / ``image_<mode>_mAP``, ``<direction>_<R@k|MedR>``, and ``chance_<key>``
    for each of them."""
    flat: dict[str, float] = {}
    for task, p in (result.get("probes") or {}).items():
        if task.startswith("image_"):
            flat[f"{task}_acc"], flat[f"{task}_mAP"] = p["accuracy"], p["mAP"]
            flat[f"chance_{task}_acc"], flat[f"chance_{task}_mAP"] = p["chance"], p["chance_mAP"]
        else:
            flat[f"probe_{task}"], flat[f"chance_probe_{task}"] = p["accuracy"], p["chance"]
    for d, m in (result.get("retrieval") or {}).items():
        for k in ("R@1", "R@5", "R@10", "MedR"):
            flat[f"{d}_{k}"] = m[k]
            flat[f"chance_{d}_{k}"] = result["chance"][d][k]
    if result.get("deflation"):
        flat["deflation_l1_before"] = result["deflation"]["before"]
        flat["deflation_l1_after"] = result["deflation"]["after"]
    return flat


class EvalData:
    """The data of a grid, built once and shared by every run: the augmented train split for training and the
    evaluation splits held in memory (each clip decoded and cropped once for the whole grid).

    Held-in-memory datasets keep their ``windows`` so that probes still average over a segment's windows.
    """

    def __init__(self, data_dir: str | os.PathLike, budget: Budget):
        cfg = get_config(budget.preset, **dict(budget.config))
        self.data_dir = Path(data_dir)
        self.word_vectors = WordVectors.load(self.data_dir / "word_vectors.bin")
        self.train = ClipDataset(self.data_dir, "train", cfg.data, train=True, word_vectors=self.word_vectors)
        evals = load_eval_datasets(
            self.data_dir,
            cfg,
            ["train", "val", "test"],
            self.word_vectors.vocab,
            self.word_vectors.as_tensor(),
            windows={"test": budget.test_windows},
            max_segments=budget.max_segments,
        )
        self.eval = {name: _InMemory(ds) for name, ds in evals.items()}


class _InMemory(Dataset):
    def __init__(self, ds: Dataset):
        self.items = [ds[i] for i in range(len(ds))]  # type: ignore[arg-type]
        info = window_groups(ds)
        if info is not None:  # window_groups reads .windows: keep (video_id, segment, start) per item
            self.windows = [_Win(vid, seg, float(it["start"])) for (vid, seg), it in zip(info[0], self.items)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


@dataclass(frozen=True)
class _Win:
    video_id: str
    segment: Any
    start: float


def run_one(
    spec: RunSpec,
    seed: int,
    budget: Budget,
    data: EvalData,
    out_dir: str | os.PathLike,
    device: str = "cpu",
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one run of the grid and evaluate it; cached in ``<out_dir>/runs/<name>-seed<seed>/result.json``.

    Returns ``{"run", "seed", "spec", "budget", "flat": flat metrics, "result": full evaluation, "train_seconds",
    "eval_seconds"}``; ``flat`` also holds ``seed``.
    """
    run_dir = Path(out_dir) / "runs" / f"{spec.name}-seed{seed}"
    cache = run_dir / "result.json"
    # through JSON, so that it compares equal to the saved copy (tuples come back as lists)
    key = json.loads(
        json.dumps({"spec": asdict(spec), "budget": asdict(budget), "seed": seed, "data": str(data.data_dir)})
    )
    if cache.exists() and not force:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            log(f"  {spec.name} seed {seed}: cached ({cache})")
            return saved
    cfg = run_config(spec, seed, budget)
    t0 = time.perf_counter()
    if spec.kind == "supervised":
        model = train_supervised(cfg, data.train, data.word_vectors.as_tensor(), device)
    else:
        summary = train(
            cfg,
            data.data_dir,
            run_dir,
            device=device,
            datasets=(data.train, None, data.word_vectors),
            progress=False,
            verbose=False,
        )
        model, _, _ = load_model(summary["checkpoint"], device=device)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = evaluate_model(
        model,
        data.eval,
        retrieval=spec.kind != "supervised",
        images=spec.name in runs_of("deflation"),  # the image probes of Table 3 only where that table reads them
        calib_steps=budget.calib_steps,
        batch_size=32,
        device=device,
        modalities=spec.modalities if spec.kind != "supervised" else "va",
        seed=seed,
    )
    eval_seconds = time.perf_counter() - t0
    flat = {"seed": seed, **flat_metrics(result)}
    out = {
        "key": key,
        "run": spec.name,
        "seed": seed,
        "flat": flat,
        "result": result,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
    }
    atomic_write(cache, json.dumps(out, indent=2))
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():  # the optimiser state is not needed again; keep the evaluation only
        ckpt.unlink()
    log(f"  {spec.name} seed {seed}: train {train_seconds:.0f} s, eval {eval_seconds:.0f} s")
    return out


# --------------------------------------------------------------------------------------------------------------------
# The experiments and the command line
# --------------------------------------------------------------------------------------------------------------------


def run_experiment(
    experiment: str,
    seeds: Sequence[int] = (0, 1, 2),
    budget: Budget = FULL,
    data_dir: str | os.PathLike = "data_samples",
    out_dir: str | os.PathLike = "runs/experiments",
    device: str = "cpu",
    force: bool = False,
    log: Callable[[str], None] = print,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train and evaluate every run of ``experiment`` ("design" or "deflation") for every seed, write its tables.

    ``jobs`` > 1 trains that many runs at once in separate processes (each with this process's torch thread count);
    every run is seeded on its own, so the numbers do not depend on ``jobs``.

    Returns ``{"tables": {name: built table}, "markdown": str, "runs": {run: [flat metrics per seed]},
    "seconds": {"total", "train", "eval"}}``.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; expected one of {sorted(EXPERIMENTS)}")
    if not seeds:
        raise ValueError("at least one seed is needed")
    t0 = time.perf_counter()
    out = Path(out_dir)
    names = runs_of(experiment)
    tasks = [(name, seed) for seed in seeds for name in names]
    if jobs > 1:
        log(f"{experiment}: {len(tasks)} runs in {jobs} processes of {torch.get_num_threads()} thread(s)")
        init = (str(data_dir), budget, torch.get_num_threads())
        # spawn, not fork: forking a process whose torch thread pools are running can deadlock
        with ProcessPoolExecutor(jobs, mp.get_context("spawn"), initializer=_init_pool_worker, initargs=init) as pool:
            futures = [pool.submit(_worker_run, n, s, budget, str(out), device, force) for n, s in tasks]
            done = [f.result() for f in futures]
    else:
        log(f"{experiment}: loading {data_dir}")
        data = EvalData(data_dir, budget)
        done = [run_one(RUNS[n], s, budget, data, out, device=device, force=force, log=log) for n, s in tasks]
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    train_s = eval_s = 0.0
    for r in done:
        results[r["run"]].append(r["flat"])
        train_s += r["train_seconds"]
        eval_s += r["eval_seconds"]
    seconds = {"total": time.perf_counter() - t0, "train": train_s, "eval": eval_s}
    meta = {
        "experiment": experiment,
        "seeds": list(seeds),
        "budget": asdict(budget),
        "data": str(data_dir),
        "device": device,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "jobs": jobs,
    }
    md = write_tables(experiment, results, out, meta)
    atomic_write(out / f"{experiment}_runs.json", json.dumps({"meta": meta, "runs": results}, indent=2))
    tables = load_tables(out, EXPERIMENTS[experiment])
    return {"tables": tables, "markdown": md, "runs": results, "seconds": seconds}


_WORKER_DATA: EvalData | None = None


def _init_pool_worker(data_dir: str, budget: Budget, threads: int) -> None:
    global _WORKER_DATA
    torch.set_num_threads(threads)
    _WORKER_DATA = EvalData(data_dir, budget)


def _worker_run(name: str, seed: int, budget: Budget, out: str, device: str, force: bool) -> dict[str, Any]:
    assert _WORKER_DATA is not None, "worker not initialised"
    return run_one(
        RUNS[name], seed, budget, _WORKER_DATA, out, device=device, force=force, log=lambda m: print(m, flush=True)
    )


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmv_lite experiment design|deflation|findings [--seeds 0 1 2] [--quick] [--jobs N] ...``."""
    ap = argparse.ArgumentParser(
        prog="python -m mmv_lite experiment",
        description="Regenerate the paper's findings and tables in miniature: 'findings' (six findings in the sample "
        "world, each with its control), 'design' (Table 1a modalities, Table 1b graphs) or 'deflation' (Table 3), "
        "with equal training budgets, several seeds and chance levels.",
    )
    ap.add_argument("experiment", choices=sorted([*EXPERIMENTS, "findings"]))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    ap.add_argument("--quick", action="store_true", help="tiny budget on a few clips: checks the pipeline only")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default: the budget's)")
    ap.add_argument("--only", nargs="+", default=None, metavar="NAME", help=f"findings: some of {list(FINDINGS)}")
    ap.add_argument(
        "--conditions",
        action="store_true",
        help="findings: also measure the conditions (each finding's checks in another world, "
        "mmv_lite.experiments.findings.CONDITIONS; 5 more arms)",
    )
    ap.add_argument("--data", default="data_samples", help="design/deflation: folder of clips (default data_samples)")
    ap.add_argument("--out", default=None, help="where runs and tables go (default runs/experiments, runs/findings)")
    ap.add_argument(
        "--results",
        default="docs/results",
        help="findings: where the full run (all six, --conditions, not --quick) also writes findings.json "
        "(default docs/results)",
    )
    ap.add_argument(
        "--reuse",
        default=None,
        metavar="FINDINGS_JSON",
        help="findings: take the runs this findings.json has (same budget) instead of training them again; train "
        "only the others (e.g. a new condition's arms)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--force", action="store_true", help="retrain runs even when a cached result matches")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the runs are small, and on a busy 2-core machine more threads mostly wait "
        "for each other)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    check_at_least(args, steps=1, jobs=1, threads=1)
    if args.experiment != "findings" and not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data!r} is not a folder of clips (make one with make-samples)")
    torch.set_num_threads(args.threads)
    if args.experiment == "findings":
        return _findings_cli(args)
    budget = QUICK if args.quick else FULL
    if args.steps is not None:
        budget = replace(budget, steps=args.steps, warmup_steps=min(budget.warmup_steps, max(1, args.steps // 10)))
    out = args.out or "runs/experiments"
    res = run_experiment(args.experiment, args.seeds, budget, args.data, out, args.device, args.force, jobs=args.jobs)
    print()
    print(res["markdown"])
    s = res["seconds"]
    print(f"{args.experiment}: {s['total']:.0f} s in all (training {s['train']:.0f} s, evaluation {s['eval']:.0f} s)")
    print(f"tables written to {out}/")
    return 0


def _findings_cli(args: argparse.Namespace) -> int:
    budget = findings.QUICK if args.quick else findings.FULL
    if args.steps is not None:
        budget = replace(budget, steps=args.steps)
    out = Path(args.out or "runs/findings")
    reuse = findings.load_findings(args.reuse) if args.reuse else None
    doc = findings.run_findings(
        args.only, args.seeds, budget, out, jobs=args.jobs, force=args.force, conditions=args.conditions, reuse=reuse
    )
    print()
    print(findings.findings_markdown(doc))
    s = doc["meta"]["seconds"]
    cached = f"; {s['runs_from_cache']} of {s['runs']} runs read from the cache" if s["runs_from_cache"] else ""
    if "reused" in s:
        cached += f"; {s['reused']['runs']} runs taken from {args.reuse}"
    print(f"findings: {s['total']:.0f} s in all (training {s['train']:.0f} s, evaluation {s['eval']:.0f} s{cached})")
    print(f"written to {out}/findings.json and findings.md")
    if not args.quick and args.only is None and args.results:
        if args.conditions:  # the documented results: every finding and every condition
            atomic_write(Path(args.results) / "findings.json", json.dumps(doc, indent=2))
            print(f"and to {args.results}/findings.json")
        else:
            print(f"not written to {args.results}/findings.json, whose documents cite the conditions: add --conditions")
    return 0
