"""The design tables: the paper's Tables 1a, 1b and 3 in miniature, their rows, columns and the paper's numbers.

The tables are views over runs of the experiments' arms (:mod:`mmv_lite.experiments.arms`) on a folder of clips:
:func:`run_experiment` trains and measures the arms a table's rows name, with the one budget, cache and pool of
:mod:`mmv_lite.experiments.runs`. :func:`build_table` turns the flat metrics of every arm and seed into a table of
means and standard deviations, with a chance row and a supervised row; :func:`write_tables` stores each table as
JSON (the data) and markdown (to read); :func:`load_tables` reads the JSON back. The tables the project measured
are stored in ``docs/results/`` (and shown in ``docs/RESULTS.md``).

    >>> tables = load_tables("docs/results")                  # {"table1a": {...}, "table1b": {...}, "table3": {...}}
    >>> row_differences(tables["table1a"])                     # best row vs runner-up, against the seed noise
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write
from .arms import SUPERVISED
from .budget import FULL, Budget
from .runs import run_arms


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` names a flat metric of a run (see :func:`flat_metrics`); ``paper`` the paper's column."""

    title: str
    key: str
    paper: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    rows: tuple[tuple[str, str], ...]  # (row label, run name or "run:mode" for deflation rows)
    columns: tuple[Column, ...]
    paper_columns: tuple[str, ...]
    paper: dict[str, tuple[float | None, ...]]  # row label -> the paper's numbers, in paper_columns order
    note: str = ""


ACTION = Column("action probe (acc %)", "probe_action", "UCF101 / HMDB51 lin.")
SOUND = Column("sound probe (acc %)", "probe_sound", "ESC-50 lin.")
T2V = Column("t2v R@10", "t2v_R@10", "YouCook2 / MSRVTT R@10")
V2A = Column("v2a R@1", "v2a_R@1")
A2T = Column("a2t R@10 (zero-shot)", "a2t_R@10")

TABLES: dict[str, Table] = {
    "table1a": Table(
        name="table1a",
        title="Table 1a analogue: which modalities (equal budgets)",
        rows=(("VA", "va"), ("VT", "vt"), ("VAT (FAC)", "vat_fac")),
        columns=(ACTION, SOUND, T2V, V2A, A2T),
        paper_columns=("UCF101", "HMDB51", "YC2 R@10", "MSRVTT R@10", "ESC-50"),
        paper={
            "VA": (75.5, 51.6, None, None, 79.0),
            "VT": (82.7, 55.9, 33.6, 27.5, None),
            "VAT (FAC)": (84.7, 57.3, 32.2, 28.6, 78.7),
        },
        note="Paper: S3D-G pretrained on HowTo100M (Table 1a).",
    ),
    "table1b": Table(
        name="table1b",
        title="Table 1b analogue: which embedding graph for VAT (equal budgets)",
        rows=(("shared", "vat_shared"), ("disjoint", "vat_disjoint"), ("FAC", "vat_fac")),
        columns=(ACTION, SOUND, T2V, V2A, A2T),
        paper_columns=("UCF101", "HMDB51", "YC2 R@10", "MSRVTT R@10", "ESC-50"),
        paper={
            "shared": (84.7, 60.2, 20.8, 22.4, 88.5),
            "disjoint": (85.1, 59.3, 25.0, 22.5, 87.0),
            "FAC": (86.2, 62.5, 23.8, 23.5, 88.0),
        },
        note="Paper: S3D-G pretrained on HowTo100M + AudioSet (Table 1b).",
    ),
    "table3": Table(
        name="table3",
        title="Table 3 analogue: video network -> image network (VAT / FAC runs)",
        rows=(
            ("naive deflation", "vat_fac:naive"),
            ("calibrated deflation", "vat_fac:calibrated"),
            ("video net on static clip", "vat_fac:static"),
        ),
        columns=(
            Column("image probe (acc %)", "image_acc", "ImageNet top-1"),
            Column("image probe (mAP %)", "image_mAP", "PASCAL mAP"),
        ),
        paper_columns=("PASCAL mAP", "ImageNet top-1", "ImageNet top-5"),
        paper={
            "naive deflation": (41.8, 20.7, 40.5),
            "calibrated deflation": (71.4, 45.2, 71.3),
            "video net on static clip": (72.1, 46.7, 72.5),
        },
        note="Paper: S3D-G (Table 3). Deflated modes: single middle frames of the clips.",
    ),
}

EXPERIMENTS: dict[str, tuple[str, ...]] = {"design": ("table1a", "table1b"), "deflation": ("table3",)}


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of the finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "std": None, "n": 0, "values": []}
    std = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return {"mean": float(np.mean(v)), "std": std, "n": len(v), "values": v}


def _cell(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    if stat["n"] > 1:
        return f"{stat['mean']:.1f} ± {stat['std']:.1f}"
    return f"{stat['mean']:.1f}"


def _mode_key(key: str, mode: str) -> str:
    """A deflation column's flat metric for one mode: ``image_acc`` -> ``image_<mode>``, ``image_mAP`` ->
    ``image_<mode>_mAP`` (:func:`~mmv_lite.experiments.measure.flat_metrics`)."""
    return {"image_acc": f"image_{mode}", "image_mAP": f"image_{mode}_mAP"}.get(key, key)


def _row_metric(result: dict[str, Any], row: str, key: str) -> float | None:
    """A row's metric in one run's flat results: deflation rows ("run:mode") read the mode's image probe."""
    if ":" in row:
        key = _mode_key(key, row.split(":")[1])
    value = result.get(key)
    return None if value is None else float(value)


def build_table(table: Table, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean +- std per row and column from ``results`` ({run name: [flat metrics of each seed]}).

    Adds a chance row (per column, from the first run that reports that column's chance level) and a supervised row
    (``results["supervised"]``).
    Returns a JSON-ready dict ``{"name", "title", "columns", "rows"}``, each row
    ``{"label", "run", "seeds", "cells": {metric key: mean_std}, "paper": {paper column: number}}``.
    """
    rows_out = []
    for label, row in table.rows:
        runs = results.get(row.split(":")[0], [])
        cells = {c.key: mean_std([_row_metric(r, row, c.key) for r in runs]) for c in table.columns}
        paper = dict(zip(table.paper_columns, table.paper.get(label, ())))
        rows_out.append(
            {"label": label, "run": row, "seeds": [r.get("seed") for r in runs], "cells": cells, "paper": paper}
        )

    # Supervised reference: for deflation tables the image probe of the supervised video backbone, per mode.
    sup = results.get("supervised", [])
    if table.name == "table3":
        for label, row in table.rows:
            mode = row.split(":")[1]
            cells = {c.key: mean_std([_row_metric(r, f"supervised:{mode}", c.key) for r in sup]) for c in table.columns}
            rows_out.append(
                {
                    "label": f"supervised, {label}",
                    "run": f"supervised:{mode}",
                    "seeds": [r.get("seed") for r in sup],
                    "cells": cells,
                    "paper": {},
                }
            )
    else:
        cells = {c.key: mean_std([r.get(c.key) for r in sup]) for c in table.columns}
        rows_out.append(
            {
                "label": "supervised",
                "run": "supervised",
                "seeds": [r.get("seed") for r in sup],
                "cells": cells,
                "paper": {},
            }
        )

    # Chance depends on the data only, not on the run: take it from the first run that reports it for the column.
    chance_cells = {}
    for c in table.columns:
        key = _mode_key(c.key, "naive") if table.name == "table3" else c.key
        value = next((r[f"chance_{key}"] for runs in results.values() for r in runs if f"chance_{key}" in r), None)
        chance_cells[c.key] = mean_std([value] if value is not None else [])
    rows_out.append({"label": "chance", "run": "chance", "seeds": [], "cells": chance_cells, "paper": {}})
    return {
        "name": table.name,
        "title": table.title,
        "note": table.note,
        "columns": [asdict(c) for c in table.columns],
        "paper_columns": list(table.paper_columns),
        "rows": rows_out,
    }


def table_markdown(t: dict[str, Any]) -> str:
    """A built table (:func:`build_table`) as markdown: ours (mean ± std over seeds) and the paper's side by side."""
    cols = t["columns"]
    head = ["", *[c["title"] for c in cols], "seeds", *[f"paper: {p}" for p in t["paper_columns"]]]
    lines = [f"**{t['title']}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t["rows"]:
        paper = [("-" if r["paper"].get(p) is None else f"{r['paper'][p]:.1f}") for p in t["paper_columns"]]
        n = max((r["cells"][c["key"]]["n"] for c in cols), default=0) if r["run"] != "chance" else "-"
        lines.append(
            "| " + " | ".join([r["label"], *[_cell(r["cells"][c["key"]]) for c in cols], str(n), *paper]) + " |"
        )
    if t.get("note"):
        lines += ["", t["note"]]
    return "\n".join(lines) + "\n"


def write_tables(experiment: str, results: dict[str, list[dict[str, Any]]], out_dir: Path, meta: dict[str, Any]) -> str:
    """Build the experiment's tables, write ``<table>.md`` / ``<table>.json`` into ``out_dir``; return the markdown."""
    chunks = []
    for name in EXPERIMENTS[experiment]:
        built = build_table(TABLES[name], results)
        built["meta"] = meta
        md = table_markdown(built)
        atomic_write(out_dir / f"{name}.md", md)
        atomic_write(out_dir / f"{name}.json", json.dumps(built, indent=2))
        chunks.append(md)
    return "\n".join(chunks)


def load_tables(folder: str | os.PathLike, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The built tables stored as ``<folder>/<name>.json`` (:func:`write_tables`), ``{name: table}``; by default
    every table of :data:`TABLES` found there (missing ones are left out)."""
    folder = Path(folder)
    out = {}
    for name in names if names is not None else TABLES:
        path = folder / f"{name}.json"
        if path.is_file():
            out[name] = json.loads(path.read_text())
    return out


def row_differences(table: dict[str, Any]) -> list[dict[str, Any]]:
    """For every metric of a design table: the best row, the runner-up, and whether the gap between them is larger
    than the seed-to-seed noise (the two rows' standard deviations added). Reference rows (chance, supervised) and
    rows without a value are left out.

    Returns one record per column: ``{"metric", "best", "runner-up", "gap", "noise", "verdict"}``; ``verdict`` is
    ``"larger than the noise"``, ``"within the noise"`` or ``"only one row"``.
    """
    out = []
    rows = [r for r in table["rows"] if r["label"] != "chance" and not r["label"].startswith("supervised")]
    for col in table["columns"]:
        vals = [(r["label"], r["cells"][col["key"]]) for r in rows if r["cells"][col["key"]]["mean"] is not None]
        vals.sort(key=lambda x: -x[1]["mean"])
        rec: dict[str, Any] = {"metric": col["title"]}
        if len(vals) < 2:
            rec.update({"best": vals[0][0] if vals else "-", "runner-up": "-", "gap": float("nan")})
            rec.update({"noise": float("nan"), "verdict": "only one row"})
        else:
            (a, sa), (b, sb) = vals[0], vals[1]
            gap, noise = sa["mean"] - sb["mean"], (sa["std"] or 0.0) + (sb["std"] or 0.0)
            verdict = "larger than the noise" if gap > noise else "within the noise"
            rec.update({"best": a, "runner-up": b, "gap": gap, "noise": noise, "verdict": verdict})
        out.append(rec)
    return out


def runs_of(experiment: str) -> list[str]:
    """The arms an experiment's tables read (the supervised reference included)."""
    names: list[str] = []
    for t in EXPERIMENTS[experiment]:
        for _, row in TABLES[t].rows:
            arm = row.split(":")[0]
            if arm not in names:
                names.append(arm)
    return names + [SUPERVISED]


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
    """Train and measure every arm of ``experiment`` ("design" or "deflation") for every seed on the folder of clips
    ``data_dir`` (:func:`~mmv_lite.experiments.runs.run_arms`, cached in ``<out_dir>/runs``), write its tables.

    Returns ``{"tables": {name: built table}, "markdown": str, "runs": {arm: [flat metrics per seed]},
    "seconds": {"total", "train", "eval"}}``.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; expected one of {sorted(EXPERIMENTS)}")
    if not seeds:
        raise ValueError("at least one seed is needed")
    t0 = time.perf_counter()
    out = Path(out_dir)
    names = runs_of(experiment)
    log(f"{experiment}: {len(names) * len(seeds)} runs on {data_dir}, {jobs} at a time")
    done = run_arms([(n, s) for s in seeds for n in names], budget, data_dir, out, jobs, force, log, device)
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in done:
        results[r["arm"]].append({"seed": r["seed"], **r["flat"]})
    train_s, eval_s = sum(r["train_seconds"] for r in done), sum(r["eval_seconds"] for r in done)
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
    return {"tables": load_tables(out, EXPERIMENTS[experiment]), "markdown": md, "runs": results, "seconds": seconds}
