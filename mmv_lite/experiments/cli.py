"""The experiment command: the paper's findings and design tables in miniature.

    python -m mmv_lite experiment findings  [--only mil_nce ...] [--seeds 0 1 2] [--jobs 2] [--conditions] [--quick]
    python -m mmv_lite experiment design    [--seeds 0 1 2] [--quick] [--data data_samples] [--out runs/experiments]
    python -m mmv_lite experiment deflation [--seeds 0 1 2] [--quick] [--data data_samples] [--out runs/experiments]

``findings`` measures the six findings in the sample world (:mod:`mmv_lite.experiments.findings`); ``design``
(Table 1a, which modalities; Table 1b, which embedding graph) and ``deflation`` (Table 3, video network -> image
network) build the design tables (:mod:`mmv_lite.experiments.tables`) from runs of the same arms on a folder of
clips. Every run has the same budget (``--quick``: the pipeline check; ``--steps``: a shorter or longer run, its
warm-up shortened with it), is cached under ``<out>/runs/<arm>-seed<seed>/result.json`` and trained ``--jobs`` at a
time (:mod:`mmv_lite.experiments.runs`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..cli import check_at_least
from ..files import atomic_write
from . import findings
from .budget import FULL, QUICK, Budget
from .findings import FINDINGS
from .tables import EXPERIMENTS, run_experiment


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
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per run (default: the budget's); the warm-up is shortened to at most a tenth of them",
    )
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
    budget = QUICK if args.quick else FULL
    if args.steps is not None:
        budget = budget.with_steps(args.steps)
    if args.experiment == "findings":
        return _findings_cli(args, budget)
    out = args.out or "runs/experiments"
    res = run_experiment(args.experiment, args.seeds, budget, args.data, out, args.device, args.force, jobs=args.jobs)
    print()
    print(res["markdown"])
    s = res["seconds"]
    print(f"{args.experiment}: {s['total']:.0f} s in all (training {s['train']:.0f} s, evaluation {s['eval']:.0f} s)")
    print(f"tables written to {out}/")
    return 0


def _findings_cli(args: argparse.Namespace, budget: Budget) -> int:
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
