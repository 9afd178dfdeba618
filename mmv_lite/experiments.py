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
(mean +- sample std over seeds) to ``<out>/table1a.md``, ``table1a.json``, etc.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

    ``max_clips`` caps the clips per split used by evaluation (None = all); ``calib_steps`` is the length of
    the BatchNorm calibration of the deflated network.
    """

    steps: int = 150
    batch_size: int = 32
    warmup_steps: int = 15
    lr: float = 2e-3
    max_clips: int | None = None
    calib_steps: int = 100
    preset: str = "lite"


FULL = Budget()
QUICK = Budget(steps=2, batch_size=4, warmup_steps=1, max_clips=24, calib_steps=2)


# --------------------------------------------------------------------------------------------------------------------
# The tables: rows, columns, the paper's numbers
# --------------------------------------------------------------------------------------------------------------------


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
# Aggregation over seeds and formatting
# --------------------------------------------------------------------------------------------------------------------


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


def _row_metric(result: dict[str, Any], row: str, key: str) -> float | None:
    """A row's metric in one run's flat results: deflation rows ("run:mode") read ``image_<mode>_<acc|mAP>``."""
    if ":" in row:
        mode = row.split(":")[1]
        key = key.replace("image_", f"image_{mode}_")
    value = result.get(key)
    return None if value is None else float(value)


def build_table(table: Table, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean +- std per row and column from ``results`` ({run name: [flat metrics of each seed]}).

    Adds a chance row (from the first run that has chance levels) and a supervised row (``results["supervised"]``).
    Returns a JSON-ready dict: ``{"name", "title", "columns", "rows": [{"label", "run", "cells": {key: stat}, "paper"}]}``.
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

    first = next((r for runs in results.values() for r in runs if any(k.startswith("chance_") for k in r)), {})
    chance_cells = {}
    for c in table.columns:
        key = c.key
        if table.name == "table3":
            key = key.replace("image_", "image_naive_")
        value = first.get(f"chance_{key}")
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
        n = max((r["cells"][c["key"]]["n"] for c in cols), default=0)
        lines.append(
            "| " + " | ".join([r["label"], *[_cell(r["cells"][c["key"]]) for c in cols], str(n), *paper]) + " |"
        )
    if t.get("note"):
        lines += ["", t["note"]]
    return "\n".join(lines) + "\n"


def write_tables(experiment: str, results: dict[str, list[dict[str, Any]]], out_dir: Path, meta: dict[str, Any]) -> str:
    """Build the experiment's tables, write ``<table>.md`` / ``<table>.json`` into ``out_dir``; return the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = []
    for name in EXPERIMENTS[experiment]:
        built = build_table(TABLES[name], results)
        built["meta"] = meta
        md = table_markdown(built)
        (out_dir / f"{name}.md").write_text(md)
        (out_dir / f"{name}.json").write_text(json.dumps(built, indent=2))
        chunks.append(md)
    return "\n".join(chunks)
