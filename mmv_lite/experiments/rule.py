"""The findings' rule and their pages: how one check over seeds is judged, and a findings document as Markdown.

Every check compares two sides over seeds (``a``, ``b``: ``"arm:metric"``, or ``b = "chance"``) and holds its number
against the same noise, twice the pooled seed standard deviation of its two sides (:data:`RULE`). The Markdown
functions print each comparison as :func:`evaluate_check` makes it, with its numbers (:func:`needs`), so that the page
and the code cannot say different things. :mod:`mmv_lite.experiments.findings` states the findings with these checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The one rule every check follows: ``noise`` is twice the pooled seed standard deviation of its two sides,
# sqrt((std_a^2 + std_b^2) / 2) (a chance level has std 0), and every kind of check has it.
RULE: dict[str, str] = {
    "beats": "gap > max(noise, margin)",  # a ahead of b beyond the noise (and by the claim's margin)
    "not_below": "gap >= -noise",  # a not behind b beyond the noise
    "within": "|gap| + noise <= margin",  # a and b within the margin even at the noise's edge
    "times_chance": "a >= margin x chance + noise",  # a above margin x chance beyond the noise
}
NOISE = "noise = 2 x pooled seed std"


@dataclass(frozen=True)
class Check:
    """One comparison over seeds. ``a``, ``b``: ``"arm:metric"``; ``b`` may be ``"chance"`` (``a``'s chance level).

    ``kind`` (:data:`RULE`; noise = 2 x pooled std): ``"beats"`` (a - b > max(noise, margin)); ``"not_below"``
    (a - b >= -noise: not worse beyond the noise); ``"within"`` (|a - b| + noise <= margin: within the margin even at
    the noise's edge); ``"times_chance"`` (a >= margin x chance + noise).
    """

    kind: str
    a: str
    b: str
    margin: float = 0.0
    what: str = ""


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _series(ref: str, runs: dict[str, list[dict[str, float]]], chance_of: str | None = None) -> list[float]:
    if ref == "chance":
        arm, _, metric = (chance_of or "").partition(":")
        return [r[f"chance_{metric}"] for r in runs[arm]]
    arm, _, metric = ref.partition(":")
    missing = [i for i, r in enumerate(runs[arm]) if metric not in r]
    if missing:
        raise KeyError(f"arm {arm!r} has no metric {metric!r}")
    return [r[metric] for r in runs[arm]]


def evaluate_check(c: Check, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """One check over the seeds: both sides per seed, means, stds, the gap, the pooled std and whether it passes."""
    a, b = _series(c.a, runs), _series(c.b, runs, chance_of=c.a)
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    pooled = math.sqrt((sa**2 + sb**2) / 2)
    gap, noise = ma - mb, 2 * pooled
    # threshold: what the compared value (the gap; |gap| for "within"; a for "times_chance") is held against
    if c.kind == "beats":
        threshold = max(noise, c.margin)
        passed = gap > threshold
    elif c.kind == "not_below":
        threshold = -noise
        passed = gap >= threshold  # equal is not below
    elif c.kind == "within":
        threshold = c.margin - noise  # |gap| + noise <= margin
        passed = abs(gap) <= threshold
    elif c.kind == "times_chance":
        threshold = c.margin * mb + noise
        passed = ma >= threshold
    else:
        raise ValueError(f"unknown check kind {c.kind!r}")
    return {
        "what": c.what,
        "kind": c.kind,
        "a": {"ref": c.a, "per_seed": a, "mean": ma, "std": sa},
        "b": {"ref": c.b, "per_seed": b, "mean": mb, "std": sb},
        "gap": gap,
        "pooled_std": pooled,
        "noise": noise,
        "margin": c.margin,
        "rule": RULE[c.kind],
        "threshold": threshold,
        "passed": bool(passed),
    }


def control_verdict(finding_check: dict[str, Any], control_check: dict[str, Any]) -> str:
    """What a control's check says about the finding's: ``"closes"`` (the finding's check passes, the control's
    does not), ``"stays"`` (both pass: the cause switched off did not remove the gap) or ``"nothing to close"`` (the
    finding's check shows no gap: it does not pass, or it is a "not_below" or "within" check, which states that
    there is none)."""
    if not finding_check["passed"] or finding_check["kind"] in ("not_below", "within"):
        return "nothing to close"
    return "stays" if control_check["passed"] else "closes"


def _side(s: dict[str, Any]) -> str:
    return f"{s['mean']:.1f} ± {s['std']:.1f}"


_YES = {True: "yes", False: "no"}
_CONTROL_WORDS = {"closes": "the gap closes", "stays": "the gap stays", "nothing to close": "no gap to close"}


def groups_markdown(doc: dict[str, Any]) -> str:
    """One row per group of findings (``doc["groups"]``, ``mmv_lite.experiments.findings.GROUPS``): whose claim
    they test, which findings, how many hold."""
    lines = ["| claims of | whose | findings | hold |", "|---|---|---|---|"]
    for g in doc["groups"].values():
        found = [doc["findings"][n] for n in g["findings"]]
        names = ", ".join(f"{f['number']} {f['name']}" + (" (holds)" if f["holds"] else "") for f in found)
        lines.append(f"| {g['title']} | {g['whose']} | {names} | {g['hold']} of {g['of']} |")
    return "\n".join(lines)


def findings_summary_markdown(doc: dict[str, Any]) -> str:
    """One row per finding: whose claim, its first check (both sides, mean ± std), the gap against the noise (twice
    the pooled std), the verdict, and the same gap under the control with what the control says."""
    lines = [
        "| finding | claim of | first check | a | b | gap | noise (2 x pooled std) | holds | control: gap "
        "| control says |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in doc["findings"].items():
        c, control = f["checks"][0], f["control"]
        group = doc["groups"][f["group"]]["title"]
        lines.append(
            f"| {f['number']} {name} | {group} | {c['what']} | {_side(c['a'])} | {_side(c['b'])} | {c['gap']:+.1f} "
            f"| {2 * c['pooled_std']:.1f} | {_YES[f['holds']]} | {control['gap']:+.1f} "
            f"| {_CONTROL_WORDS[control_verdict(c, control['checks'][0])]} |"
        )
    return "\n".join(lines)


def conditions_summary_markdown(doc: dict[str, Any]) -> str:
    """One row per condition: the finding it repeats, what changed, its first check and whether all checks pass."""
    lines = [
        "| condition | of | the change | first check | a | b | gap | noise (2 x pooled std) | all checks pass |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, cond in doc.get("conditions", {}).items():
        c = cond["checks"][0]
        lines.append(
            f"| {name} | {cond['finding']} | {cond['dial']} | {c['what']} | {_side(c['a'])} | {_side(c['b'])} "
            f"| {c['gap']:+.1f} | {2 * c['pooled_std']:.1f} | {_YES[cond['holds']]} |"
        )
    return "\n".join(lines)


def observations_markdown(doc: dict[str, Any]) -> str:
    """Each observation's checks (``mmv_lite.experiments.findings.OBSERVATIONS``), with the findings' rule."""
    lines = []
    for o in doc.get("observations", {}).values():
        lines += [f"**{o['name']}.** {o['question']}", "", "| check | a | b | gap | needs | passed |"]
        lines += ["|---|---|---|---|---|---|", *(_check_row(c) for c in o["checks"]), ""]
    return "\n".join(lines).rstrip()


def findings_markdown(doc: dict[str, Any]) -> str:
    """One table per finding: each check with both sides (mean ± std over seeds), the gap, the comparison the rule
    makes (:data:`RULE`, with its numbers) and the verdict, then the same under the control with what it says."""
    lines = []
    for name, f in doc["findings"].items():
        verdict = "holds" if f["holds"] else "does not hold"
        whose = doc["groups"][f["group"]]["whose"]
        lines += [f"### {name}: {verdict}", "", f"{f['number']}, a claim of {whose}.", ""]
        lines += [f["claim"], "", "| | check | a | b | gap | needs | passed |", "|---|---|---|---|---|---|---|"]
        lines += [f"| finding {_check_row(c)}" for c in f["checks"]]
        for fc, c in zip(f["checks"], f["control"]["checks"]):
            lines.append(f"| control {_check_row(c, _CONTROL_WORDS[control_verdict(fc, c)])}")
        control = f["control"]
        says = _CONTROL_WORDS[control_verdict(f["checks"][0], control["checks"][0])]
        lines += ["", f"Control: {control['dial']}; {says} ({control['gap']:+.1f}).", ""]
    for cond in doc.get("conditions", {}).values():
        verdict = "passes" if cond["holds"] else "does not pass"
        lines += [f"### condition {cond['name']} (of {cond['finding']}): {verdict}", "", cond["question"], ""]
        lines += [f"Dial: {cond['dial']}.", "", "| check | a | b | gap | needs | passed |", "|---|---|---|---|---|---|"]
        for c in cond["checks"]:
            lines.append(_check_row(c))
        lines.append("")
    return "\n".join(lines)


def needs(c: dict[str, Any]) -> str:
    """The comparison the rule makes for check result ``c``, with its numbers (noise = 2 x pooled std)."""
    noise = 2 * c["pooled_std"]
    if c["kind"] == "beats":
        return f"gap > {c['threshold']:.1f}"
    if c["kind"] == "not_below":
        return f"gap >= {c['threshold']:.1f}"
    if c["kind"] == "within":
        return f"\\|gap\\| + {noise:.1f} <= {c['threshold'] + noise:.1f}"
    if c["kind"] == "times_chance":
        return f"a >= {c['margin']:g} x {c['b']['mean']:.1f} + {noise:.1f} = {c['threshold']:.1f}"
    raise ValueError(f"unknown check kind {c['kind']!r}")


def _check_row(c: dict[str, Any], verdict: str | None = None) -> str:
    """A check's table row; ``verdict`` replaces yes/no (a control's: what it says about the finding's gap)."""
    said = _YES[c["passed"]] + (f": {verdict}" if verdict else "")
    return f"| {c['what']} | {_side(c['a'])} | {_side(c['b'])} | {c['gap']:+.1f} | {needs(c)} | {said} |"
