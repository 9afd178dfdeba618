"""Results: retrieval bars, factor probes, 2-D maps of a space, small HTML tables, the design tables."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..experiments.tables import TABLES  # the paper's numbers of Tables 1 and 3, stored once there
from .common import as_numpy, fig_ax


def show_retrieval(
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    chance: Mapping[str, Mapping[str, float]] | None = None,
    metric: str = "R@5",
    ax=None,
    title: str | None = None,
) -> Figure:
    """Grouped bars of one retrieval metric per direction for several models, with the chance level as a tick.

    Args:
        results: ``{model name: {direction: {metric: value}}}`` as returned by ``retrieval.zero_shot_retrieval``.
        chance: ``{direction: {metric: value}}`` (``retrieval.chance_levels``), drawn as black dashes.
    """
    if not results:
        raise ValueError("no results to plot")
    dirs = [d for d in next(iter(results.values())) if all(d in r for r in results.values())]
    fig, ax = fig_ax(ax, (1.2 * len(dirs) + 2.5, 3.2))
    w = 0.8 / len(results)
    x = np.arange(len(dirs))
    for j, (name, res) in enumerate(results.items()):
        ax.bar(x + (j - (len(results) - 1) / 2) * w, [res[d][metric] for d in dirs], width=w, label=name)
    if chance is not None:
        for xi, d in zip(x, dirs):
            if d in chance:
                ax.plot([xi - 0.42, xi + 0.42], [chance[d][metric]] * 2, color="black", ls="--", lw=1)
        ax.plot([], [], color="black", ls="--", lw=1, label="chance")
    pretty = {"t": "text", "v": "video", "a": "audio"}
    ax.set_xticks(x)
    ax.set_xticklabels([f"{pretty.get(d[0], d[0])}→{pretty.get(d[2], d[2])}" for d in dirs], fontsize=8)
    ax.set_ylabel(f"{metric} (%)" if metric.startswith("R@") else metric)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return fig


FEATURE_NAMES = {
    "f_v": "video backbone f_v",
    "f_a": "audio backbone f_a",
    "z_t_vat": "narration z_t_vat",
    "z_t_vt": "narration z_t_vt",
}


def show_factor_probes(
    probes: Mapping[str, Mapping[str, Mapping[str, Any]]], ax=None, title: str | None = None
) -> Figure:
    """Grouped bars of factor-probe accuracy: one group per factor, one bar per feature, chance as a dash.

    Args:
        probes: ``{feature: {factor: linear_probe result}}`` as returned by ``probes.factor_probes``.
    """
    if not probes:
        raise ValueError("no factor probes to plot")
    factors = list(dict.fromkeys(f for per in probes.values() for f in per))
    fig, ax = fig_ax(ax, (1.1 * len(factors) + 3.0, 3.2))
    w = 0.8 / len(probes)
    x = np.arange(len(factors))
    for j, (key, per) in enumerate(probes.items()):
        xs = [xi + (j - (len(probes) - 1) / 2) * w for xi, f in zip(x, factors) if f in per]
        ax.bar(xs, [per[f]["accuracy"] for f in factors if f in per], width=w, label=FEATURE_NAMES.get(key, key))
    for xi, f in zip(x, factors):
        chance = max(per[f]["chance"] for per in probes.values() if f in per)
        ax.plot([xi - 0.42, xi + 0.42], [chance] * 2, color="black", ls="--", lw=1)
    ax.plot([], [], color="black", ls="--", lw=1, label="chance (majority class)")
    ax.set_xticks(x)
    ax.set_xticklabels(factors, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return fig


def show_map(
    points: Mapping[str, np.ndarray],
    labels: Mapping[str, Any] | Any | None = None,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    ax=None,
    title: str | None = None,
    markers: Mapping[str, str] | None = None,
    legend: bool = True,
    s: float = 18,
) -> Figure:
    """Scatter 2-D points of several groups (marker per group), coloured by a label (e.g. the action or the sound).

    Args:
        points: ``{group: (N, 2)}`` from :func:`project_2d`.
        labels: ``{group: (N,) int}`` (or one array when there is one group); ``-1`` = unknown, drawn grey.
        label_names: names of the label values, for the legend.
    """
    fig, ax = fig_ax(ax, (5, 4.5))
    default_markers = ["o", "^", "s", "D", "P"]
    markers = dict(markers or {})
    if labels is not None and not isinstance(labels, Mapping):
        labels = {next(iter(points)): labels}
    n_classes = len(label_names) if label_names is not None else 10
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    ncol = cmap.N
    seen: dict[Any, Any] = {}
    for gi, (group, xy) in enumerate(points.items()):
        m = markers.get(group, default_markers[gi % len(default_markers)])
        lab = None if labels is None else as_numpy(labels[group]).astype(int)
        if lab is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=s, marker=m, label=group, alpha=0.8)
            continue
        colours = np.array([cmap(v % ncol) if v >= 0 else (0.7, 0.7, 0.7, 1.0) for v in lab])
        ax.scatter(xy[:, 0], xy[:, 1], s=s, marker=m, c=colours, alpha=0.85, edgecolors="none")
        ax.scatter([], [], marker=m, c="black", label=group, s=s)  # legend entry for the group's marker
        for v in np.unique(lab):
            seen.setdefault(int(v), cmap(v % ncol) if v >= 0 else (0.7, 0.7, 0.7, 1.0))
    if legend:
        handles, names = ax.get_legend_handles_labels()
        for v, colour in sorted(seen.items()):
            name = "unknown" if v < 0 else (label_names[v] if label_names is not None else str(v))
            handles.append(plt.Line2D([], [], marker="o", ls="", color=colour))
            names.append(name)
        ax.legend(handles, names, fontsize=7, loc="best", framealpha=0.7)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------------------------------
# Small tables (no pandas needed)
# --------------------------------------------------------------------------------------------------------------------


def html_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = "{:.3g}"
) -> str:
    """An HTML table of a list of records; floats formatted with ``floatfmt``. Display with ``IPython.display.HTML``."""
    if not rows:
        return "<table></table>"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, float):
            return floatfmt.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------------------------------------------------
# Design tables: the paper's Table 1 in miniature (notebook 07)
# --------------------------------------------------------------------------------------------------------------------

# Which of the paper's columns answers the same question as one of ours (tables.TABLES column keys).
PAPER_COLUMN_FOR = {"probe_action": "UCF101", "probe_sound": "ESC-50", "t2v_R@10": "YC2 R@10"}
_REFERENCE_ROWS = ("chance", "supervised")


def show_design_table(
    table: Mapping[str, Any],
    columns: Sequence[str] | None = None,
    paper_for: Mapping[str, str] | None = None,
    axes=None,
) -> Figure:
    """One panel per metric of a design table (``tables.build_table``, or stored: ``tables.load_tables``).

    In each panel: our rows as bars (mean, with the seed-to-seed standard deviation as an error bar), the chance and
    supervised rows as horizontal lines, and, where the paper has a matching column (``paper_for``, default
    :data:`PAPER_COLUMN_FOR`), the paper's number for the same row as a grey hatched bar beside ours. The paper's
    task is another one: compare the order of the rows, not the values.
    """
    paper_for = PAPER_COLUMN_FOR if paper_for is None else paper_for
    cols = [c for c in table["columns"] if columns is None or c["key"] in columns]
    if not cols:
        raise ValueError(f"none of the columns {columns} is in the table {table.get('name')!r}")
    rows = [r for r in table["rows"] if r["label"] not in _REFERENCE_ROWS and not r["label"].startswith("supervised")]
    refs = {r["label"]: r for r in table["rows"] if r["label"] in _REFERENCE_ROWS}
    if axes is None:
        fig, axes = plt.subplots(1, len(cols), figsize=(2.9 * len(cols) + 0.6, 4.0), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    x = np.arange(len(rows))
    palette = plt.get_cmap("tab10")
    for ax, col in zip(axes, cols):
        key, pcol = col["key"], paper_for.get(col["key"])
        has_paper = pcol is not None and any(r["paper"].get(pcol) is not None for r in rows)
        w = 0.4 if has_paper else 0.7
        means = [r["cells"][key]["mean"] for r in rows]
        stds = [r["cells"][key]["std"] or 0.0 for r in rows]
        for i, (m, s) in enumerate(zip(means, stds)):
            if m is None:
                ax.text(x[i], 0, "n/a", ha="center", va="bottom", fontsize=7, color="#757575")
                continue
            ax.bar(x[i] - (w / 2 if has_paper else 0), m, width=w, yerr=s, capsize=3, color=palette(i))
        if has_paper:
            ax.bar(
                x + w / 2,
                [r["paper"].get(pcol) or 0.0 for r in rows],
                width=w,
                color="#bdbdbd",
                hatch="//",
                edgecolor="white",
                label=f"paper: {pcol}",
            )
        for name, style in (("chance", "--"), ("supervised", ":")):
            ref = refs.get(name, {}).get("cells", {}).get(key, {})
            if ref.get("mean") is not None:
                ax.axhline(ref["mean"], color="black", ls=style, lw=1, label=f"{name}: {ref['mean']:.0f}")
        ax.set_xticks(x)
        ax.set_xticklabels([r["label"] for r in rows], fontsize=8)
        ax.set_title(col["title"], fontsize=9)
        tops = [m + s for m, s in zip(means, stds) if m is not None]
        tops += [r["paper"].get(pcol) or 0.0 for r in rows] if has_paper else []
        tops += [refs.get(n, {}).get("cells", {}).get(key, {}).get("mean") or 0.0 for n in _REFERENCE_ROWS]
        ax.set_ylim(0, min(100.0, 1.3 * max(tops + [1.0])))
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    axes[0].set_ylabel("%  (bars: mean ± std over seeds)")
    fig.suptitle(table.get("title", ""), fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    return fig


_SHOWN, _NOT_SHOWN = "#2e7d32", "#c62828"
_CONTROL_COLOURS = {"closes": "#2e7d32", "stays": "#ef6c00", "nothing to close": "#757575"}


def check_words(c: Mapping[str, Any]) -> str:
    """A check's verdict in words a student reads without the rule at hand: what was compared, against what noise
    (twice the pooled seed std), and whether the check passes (``findings.RULE``)."""
    gap, noise, thr, passed = c["gap"], 2 * c["pooled_std"], c["threshold"], c["passed"]
    verdict = "passes" if passed else "does not pass"
    if c["kind"] == "beats":
        return f"ahead by {gap:.1f}, needs > {thr:.1f}: {verdict}" if gap > 0 else f"not ahead ({gap:+.1f}): {verdict}"
    if c["kind"] == "not_below":
        where = "inside" if passed else "beyond"
        return (
            f"behind by {-gap:.1f}, {where} the noise {noise:.1f}: {verdict}" if gap < 0 else f"not behind: {verdict}"
        )
    if c["kind"] == "within":
        margin = thr + noise
        return f"{abs(gap):.1f} apart + noise {noise:.1f}, needs <= {margin:g}: {verdict}"
    if c["kind"] == "times_chance":
        return f"{c['a']['mean']:.1f}, needs >= {thr:.1f} (x chance + noise): {verdict}"
    raise ValueError(f"unknown check kind {c['kind']!r}")


def _control_words(finding_check: Mapping[str, Any], c: Mapping[str, Any]) -> str:
    """What a control's check says: the finding's gap closes, stays, or there is none to close."""
    verdict = c.get("control")
    if verdict is None:  # a document written before controls said so
        shows = finding_check["passed"] and finding_check["kind"] not in ("not_below", "within")
        verdict = ("stays" if c["passed"] else "closes") if shows else "nothing to close"
    return verdict


def show_finding(entry: Mapping[str, Any], axes=None) -> Figure:
    """One finding of ``findings.json`` (``doc["findings"][name]``): a panel per check, the finding's beside its
    control's. A condition (``doc["conditions"][name]``: the finding's checks in another world) has no control.

    In each panel the two sides of a comparison (``a``, ``b``) are bars at their mean over seeds with the std as an
    error bar and each seed as a dot; the title says in words what the check found (:func:`check_words`). A
    control's panel says whether the finding's gap closes where its cause is removed, stays, or was never there
    ("no gap to close"). Titles and labels are 10 pt or larger.
    """
    control = entry.get("control")
    pairs = [("finding" if control else "condition", c, None) for c in entry["checks"]]
    if control:
        pairs += [("control", c, f) for f, c in zip(entry["checks"], control["checks"])]
    if axes is None:
        fig, axes = plt.subplots(1, len(pairs), figsize=(3.8 * len(pairs) + 0.6, 4.6), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, (label, c, finding_check) in zip(axes, pairs):
        if finding_check is None:
            colour, words = (_SHOWN if c["passed"] else _NOT_SHOWN), check_words(c)
        else:
            said = _control_words(finding_check, c)
            colour = _CONTROL_COLOURS[said]
            words = {"closes": "the gap closes", "stays": "the gap stays", "nothing to close": "no gap to close"}[said]
            words += f" ({c['gap']:+.1f})"
        for i, side in enumerate((c["a"], c["b"])):
            ax.bar(i, side["mean"], yerr=side["std"], capsize=3, width=0.6, color="#90a4ae" if i else colour)
            seeds = side["per_seed"]
            ax.scatter(
                np.full(len(seeds), i) + np.linspace(-0.12, 0.12, len(seeds)), seeds, s=12, color="black", zorder=3
            )
        ax.set_xticks([0, 1])
        ax.set_xticklabels([_arm_label(c["a"]["ref"]), _arm_label(c["b"]["ref"])], fontsize=10)
        ax.tick_params(axis="y", labelsize=10)
        title = textwrap.fill(f"{label}: {c['what']}", 34)  # long checks wrap instead of running into the next panel
        ax.set_title(f"{title}\n{textwrap.fill(words, 34)}", fontsize=10, color=colour)
        ax.set_ylim(0, min(100.0, 1.25 * max(c["a"]["mean"] + c["a"]["std"], c["b"]["mean"] + c["b"]["std"], 1.0)))
    axes[0].set_ylabel("%  (bar: mean ± std; dots: seeds)", fontsize=10)
    if control:
        verdict = "holds" if entry["holds"] else "does not hold"
    else:
        verdict = f"condition of {entry['finding']}, " + ("passes" if entry["holds"] else "does not pass")
    fig.suptitle(f"{entry['name']}: {verdict}", fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    return fig


# Table 1's rows and the findings' arm that trains the same thing (None: no arm of the findings trains it).
TABLE1_ARMS = {
    "table1a": (("VA", "va"), ("VT", "vt"), ("VAT (FAC)", "vat_fac")),
    "table1b": (("shared", "vat_shared"), ("disjoint", None), ("FAC", "vat_fac")),
}
# The miniature's columns beside the paper's: the probes stand for UCF101/HMDB51, retrieval for YouCook2/MSRVTT.
TABLE1_HERE = (("motion probe", "f_v.motion"), ("kind probe", "f_v.kind"), ("t2v R@10", "t2v_R@10"))


def table1_beside_paper(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The paper's Table 1a and 1b rows (``mmv_lite.experiments.tables.TABLES``, with their citation in ``note``)
    beside the same rows of the findings document ``doc`` (mean ± std over its seeds, test clips, %). The paper's
    columns are real benchmarks, ours the sample world's: compare the order of the rows, not the values."""
    rows = []
    for name, pairs in TABLE1_ARMS.items():
        table = TABLES[name]
        for label, arm in pairs:
            row: dict[str, Any] = {"table": name.replace("table", ""), "row": label}
            row |= {f"paper: {c}": v if v is not None else "-" for c, v in zip(table.paper_columns, table.paper[label])}
            for title, metric in TABLE1_HERE:
                cell = (doc["arms"].get(arm) or {}).get(metric) if arm else None
                row[f"here: {title}"] = f"{cell['mean']:.1f} ± {cell['std']:.1f}" if cell else "no arm"
            rows.append(row)
    return rows


def _arm_label(ref: str) -> str:
    """``"vat_fac:f_v.kind"`` -> ``"vat_fac\\nf_v.kind"``; ``"chance"`` stays."""
    return ref.replace(":", "\n")
