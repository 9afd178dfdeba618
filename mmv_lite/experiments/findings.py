"""The paper's findings, measured in the sample world: six claims, each beside a control that removes its cause.

    python -m mmv_lite experiment findings [--only mil_nce ...] [--seeds 0 1 2] [--jobs 2] [--conditions] [--quick]

Every finding compares *arms* (:mod:`mmv_lite.experiments.arms`): pretraining runs of the ``lite`` preset on the world
stream (:mod:`mmv_lite.data.world`) that differ in one thing (the loss, the embedding graph, the modalities, or one
dial of the world), trained with one equal budget and scored on the world's fixed held-out sets. A finding *holds*
when each of its checks passes on the test set over the seeds: a gap larger than twice the pooled seed standard
deviation (and than the claim's own margin where it states one). Its *control* is the same comparison in a world
where the finding's cause is switched off (aligned narrations, the size said aloud, shuffled sounds and narrations,
...): there the gap should close.

=========================== =================================================================================
F1 ``self_supervision``     video features after pretraining read the object's kind and motion >= 15 points
                            better than the same network at random initialisation. Control: narrations and
                            sounds shuffled across clips.
F2 ``mil_nce``              with HowTo100M-like misalignment, MIL-NCE over the K = 4 nearest narrations beats
                            NCE on the nearest one (text -> video R@10). Control: aligned narrations.
F3 ``fac_vs_shared``        a factor that is heard but never said (size, as pitch) stays readable in FAC's fine
                            space S_va and is squeezed out of the single shared space; FAC's text -> video is
                            at least the shared graph's. Control: narrations that name the size.
F4 ``modalities``           VAT reads motion better than VA and at least as well as VT; adding audio does not
                            hurt text -> video. Control: narrations that never name the motion.
F5 ``deflation``            on single frames, the deflated network with calibrated BatchNorm reads the kind better
                            than naive deflation, and within 5 points of the video network on static clips.
                            Control: the same network at random initialisation.
F6 ``zero_shot_audio_text`` audio -> text retrieval, never trained, at least twice chance under FAC (the disjoint
                            graph has no common space for it). Control: every sound from off screen.
=========================== =================================================================================

A *condition* (:data:`CONDITIONS`) repeats a finding's checks with some arms swapped for arms of another world, to
measure where a finding that fails in the default world does appear (``modalities_aligned``: the modality checks
with aligned narrations). It is reported beside the finding and never changes its verdict; ``--conditions`` measures
them (their arms are not part of the findings' run).

Runs are cached (``<out>/runs/<arm>-seed<s>/result.json``, reused while the arm, budget and seed match), so an
interrupted run resumes and ``--only`` reuses what other findings trained. The results go to ``<out>/findings.json``
and ``<out>/findings.md``; ``docs/results/findings.json`` is the copy the documentation and notebooks read.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write
from ..runtime import machine
from ..train import WORLD
from .arms import ARMS as ALL_ARMS
from .arms import (  # noqa: F401  (re-exported: the findings' arms are part of its API)
    IMAGE_ARMS,
    PROBE_FEATURES,
    PROBED,
    RANDOM_INIT,
    arm_config,
    run_key,
)
from .budget import FULL, QUICK, Budget  # noqa: F401  (re-exported: the budget the findings are measured with)
from .measure import measure  # noqa: F401
from .runs import run_arm, run_arms  # noqa: F401
from .sources import HeldOut  # noqa: F401

# --------------------------------------------------------------------------------------------------------------------
# The findings: checks over seeds
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One comparison over seeds. ``a``, ``b``: ``"arm:metric"``; ``b`` may be ``"chance"`` (``a``'s chance level).

    ``kind``: ``"beats"`` (a - b > max(2 pooled std, margin)); ``"not_below"`` (a - b >= -2 pooled std: not worse beyond
    the noise); ``"within"`` (|a - b| <= margin); ``"times_chance"`` (a >= margin x chance).
    """

    kind: str
    a: str
    b: str
    margin: float = 0.0
    what: str = ""


@dataclass(frozen=True)
class Finding:
    name: str
    claim: str
    checks: tuple[Check, ...]
    control: tuple[Check, ...]
    control_dial: str
    paper: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _swap(checks: tuple[Check, ...], mapping: dict[str, str]) -> tuple[Check, ...]:
    """The same checks with some arms replaced (the control's arms)."""

    def arm(ref: str) -> str:
        name, _, metric = ref.partition(":")
        return f"{mapping.get(name, name)}:{metric}" if metric else ref

    return tuple(Check(c.kind, arm(c.a), arm(c.b), c.margin, c.what) for c in checks)


_F1 = (
    Check("beats", "vat_fac:f_v.kind", f"{RANDOM_INIT}:f_v.kind", 15.0, "kind probe: pretrained vs random init"),
    Check("beats", "vat_fac:f_v.motion", f"{RANDOM_INIT}:f_v.motion", 15.0, "motion probe: pretrained vs random init"),
)
_F2 = (Check("beats", "vat_fac:t2v_R@10", "vat_fac_nce:t2v_R@10", 0.0, "text->video R@10: MIL-NCE K=4 vs NCE K=1"),)
_F3 = (
    Check("beats", "vat_fac:z_v_va.size", "vat_shared:z_v_vat.size", 0.0, "size probe: FAC's S_va vs the shared space"),
    Check("not_below", "vat_fac:t2v_R@10", "vat_shared:t2v_R@10", 0.0, "text->video R@10: FAC vs shared"),
)
_F4 = (
    Check("beats", "vat_fac:f_v.motion", "va:f_v.motion", 0.0, "motion probe: VAT vs VA"),
    Check("not_below", "vat_fac:f_v.motion", "vt:f_v.motion", 0.0, "motion probe: VAT vs VT"),
    Check("not_below", "vat_fac:t2v_R@10", "vt:t2v_R@10", 0.0, "text->video R@10: VAT vs VT"),
)
_F5 = (
    Check("beats", "vat_fac:image_calibrated", "vat_fac:image_naive", 0.0, "kind from one frame: calibrated vs naive"),
    Check(
        "within", "vat_fac:image_calibrated", "vat_fac:image_static", 5.0, "calibrated vs the video net on static clips"
    ),
)
_F6 = (Check("times_chance", "vat_fac:a2t_R@10", "chance", 2.0, "audio->text R@10 (never trained) vs chance"),)

FINDINGS: dict[str, Finding] = {
    f.name: f
    for f in (
        Finding(
            "self_supervision",
            "Pretraining on video, sound and narration makes the object's kind and motion linearly readable from the "
            "video features, well beyond the same network at random initialisation.",
            _F1,
            _swap(_F1, {"vat_fac": "vat_fac_shuffled"}),
            "narrations and sounds shuffled across clips (world.text_correspondence=0, world.av_correspondence=0)",
            "Table 2 / the premise of the paper: self-supervised features transfer to action recognition.",
        ),
        Finding(
            "mil_nce",
            "When narrations are often spoken before or after what they describe, MIL-NCE over the K=4 nearest "
            "narrations retrieves videos from text better than NCE on the nearest narration.",
            _F2,
            _swap(_F2, {"vat_fac": "vat_fac_aligned", "vat_fac_nce": "vat_fac_nce_aligned"}),
            "narrations aligned with what they describe (world.misalignment=0)",
            "MIL-NCE (Miech et al. 2020), the video-text loss MMV uses.",
        ),
        Finding(
            "fac_vs_shared",
            "A factor that is heard but never said (the size, as pitch) stays readable in FAC's fine space S_va and is "
            "squeezed out of the single shared space, without costing FAC text retrieval.",
            _F3,
            _swap(_F3, {"vat_fac": "vat_fac_size_said", "vat_shared": "vat_shared_size_said"}),
            "narrations that name the size (world.size_said=1)",
            "Table 1b: FAC beats shared on audio and is as good on text.",
        ),
        Finding(
            "modalities",
            "Training with all three modalities reads motion better than video-audio alone and as well as "
            "video-text, and adding audio does not hurt text retrieval.",
            _F4,
            _swap(_F4[:1], {"vat_fac": "vat_fac_motion_unsaid"}),
            "narrations that never name the motion (world.motion_said=0)",
            "Table 1a: VAT > VT > VA on UCF101/HMDB51.",
        ),
        Finding(
            "deflation",
            "A video network read one frame at a time works far better with its BatchNorm recalibrated to match the "
            "network on static clips than deflated naively.",
            _F5,
            _swap(_F5, {"vat_fac": RANDOM_INIT}),
            "the same network at random initialisation (features that carry little single-frame information)",
            "Table 3: learned-BatchNorm deflation closes most of the gap to static-video input.",
        ),
        Finding(
            "zero_shot_audio_text",
            "Audio reaches text through FAC's composed path: audio->text retrieval works without ever training on "
            "audio-text pairs (the disjoint graph has no space in which to compare them).",
            _F6,
            _swap(_F6, {"vat_fac": "vat_fac_offscreen"}),
            "every sound from something off screen (world.av_correspondence=0)",
            "Section 4.1: zero-shot audio-to-text retrieval through S_vat.",
        ),
    )
}


@dataclass(frozen=True)
class Condition:
    """A finding's checks repeated with some arms swapped for arms of another world: the conditions under which a
    finding that fails in the default world appears (or not). Reported beside the finding; never its verdict."""

    name: str
    finding: str
    arms: tuple[tuple[str, str], ...]  # (arm of the finding, arm that replaces it here)
    dial: str
    question: str
    own_checks: tuple[Check, ...] = ()  # instead of the finding's (e.g. another probe the finding allows)

    @property
    def checks(self) -> tuple[Check, ...]:
        return _swap(self.own_checks or FINDINGS[self.finding].checks, dict(self.arms))


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition(
            "modalities_aligned",
            "modalities",
            (("vat_fac", "vat_fac_aligned"), ("vt", "vt_aligned")),
            "narrations aligned with what they describe (world.misalignment=0); the VA arm reads no narration, so it "
            "is the same in both worlds",
            "With half of the narrations spoken at another moment, text teaches motion worse than the sound, which "
            "always follows the motion. Does VAT lead once the narrations are aligned?",
        ),
        Condition(
            "fac_vs_shared_narrow",
            "fac_vs_shared",
            (("vat_fac", "vat_fac_narrow"), ("vat_shared", "vat_shared_narrow")),
            "a common space of 8 dimensions instead of 64 (model.d_vat=8) in both graphs; FAC's S_va keeps its 128",
            "The size fits in the 64-d shared space beside everything the narrations name. Is it squeezed out when the "
            "single space is too narrow to hold every factor?",
        ),
        Condition(
            "deflation_s3dg",
            "deflation",
            (("vat_fac", "s3dg_vat_fac"),),
            "a 3D CNN (S3D-G x0.25 with the official 7-frame stem) instead of the TSM-ResNet; the colour from one "
            "frame, since this S3D-G reads the kind poorly",
            "Summing 3D kernels over time is exact only far from the clip's ends; on 8 frames the 7-frame stem and "
            "the gates see the zero padding everywhere. Does calibration rescue a deflated S3D-G?",
            (
                Check(
                    "beats",
                    "vat_fac:f_image_calibrated.colour",
                    "vat_fac:f_image_naive.colour",
                    0.0,
                    "colour from one frame: calibrated vs naive",
                ),
                Check(
                    "within",
                    "vat_fac:f_image_calibrated.colour",
                    "vat_fac:f_image_static.colour",
                    5.0,
                    "calibrated vs the video net on static clips (colour)",
                ),
            ),
        ),
        Condition(
            "deflation_alpha",
            "deflation",
            (("vat_fac", "vat_fac_alpha03"),),
            "the TSM deflated with its shifted channels scaled by 0.3 (model.deflation_alpha=0.3, the deflated mode of "
            "DeepMind's later TSM code) instead of kept; the network is trained exactly as vat_fac",
            "Switching the shift off leaves the image network almost the video network on a static clip, so naive "
            "deflation has nothing to lose. Scaled as in DeepMind's later TSM code, does naive deflation lose, and "
            "does calibration win it back, as in Table 3's TSM rows?",
        ),
    )
}


def conditions_of(names: Sequence[str]) -> list[Condition]:
    """The conditions of the findings ``names``."""
    return [c for c in CONDITIONS.values() if c.finding in names]


def arms_of(names: Sequence[str], conditions: bool = False) -> list[str]:
    """Every arm the findings ``names`` compare, their controls included (and with ``conditions`` their
    conditions')."""
    out: list[str] = []
    for n in names:
        f = FINDINGS[n]
        extra = tuple(check for cond in conditions_of([n]) for check in cond.checks) if conditions else ()
        for c in f.checks + f.control + extra:
            for ref in (c.a, c.b):
                arm = ref.partition(":")[0]
                if ref != "chance" and arm not in out:
                    out.append(arm)
    return out


# The arms the findings and their conditions compare, and their changes (the design tables add vat_disjoint).
ARMS = {arm: changes for arm, changes in ALL_ARMS.items() if arm in arms_of(list(FINDINGS), conditions=True)}


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
    gap = ma - mb
    if c.kind == "beats":
        threshold = max(2 * pooled, c.margin)
        passed = gap > threshold
    elif c.kind == "not_below":
        threshold = -2 * pooled
        passed = gap >= threshold  # equal is not below
    elif c.kind == "within":
        threshold = c.margin
        passed = abs(gap) <= threshold
    elif c.kind == "times_chance":
        threshold = c.margin * mb
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
        "threshold": threshold,
        "passed": bool(passed),
    }


def evaluate_finding(f: Finding, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The finding's entry of findings.json: its checks, whether it holds, and its control."""
    checks = [evaluate_check(c, runs) for c in f.checks]
    control = [evaluate_check(c, runs) for c in f.control]
    main_gap, control_gap = checks[0]["gap"], control[0]["gap"]
    return {
        "name": f.name,
        "claim": f.claim,
        "paper": f.paper,
        "checks": checks,
        "holds": all(c["passed"] for c in checks),
        "gap": main_gap,
        "pooled_std": checks[0]["pooled_std"],
        "control": {
            "dial": f.control_dial,
            "checks": control,
            "gap": control_gap,
            "holds": all(c["passed"] for c in control),
            "gap_closes": not all(c["passed"] for c in control) and control_gap < main_gap,
        },
    }


def evaluate_condition(cond: Condition, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """The condition's entry of findings.json: the finding's checks on the swapped arms, and whether all pass."""
    checks = [evaluate_check(c, runs) for c in cond.checks]
    return {
        "name": cond.name,
        "finding": cond.finding,
        "dial": cond.dial,
        "question": cond.question,
        "checks": checks,
        "holds": all(c["passed"] for c in checks),
        "gap": checks[0]["gap"],
    }


# --------------------------------------------------------------------------------------------------------------------
# Running them all
# --------------------------------------------------------------------------------------------------------------------


def run_findings(
    names: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    budget: Budget = FULL,
    out_dir: str | Path = "runs/findings",
    jobs: int = 1,
    force: bool = False,
    log: Callable[[str], None] = print,
    conditions: bool = False,
    reuse: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and measure every arm the findings ``names`` need (all six by default) for every seed, evaluate the
    findings, write ``<out_dir>/findings.json`` and ``findings.md``. Returns the JSON document.

    ``jobs`` > 1 trains that many arms at once in separate processes; each arm is seeded on its own, so the numbers
    do not depend on ``jobs``. ``conditions``: also train and evaluate the findings' :data:`CONDITIONS`.
    ``reuse``: an earlier findings document; its runs are taken as they are where it has them (:func:`reusable_runs`),
    and only the others are trained (e.g. a new condition's arms, without the cache the document was made from)."""
    names = list(names or FINDINGS)
    unknown = [n for n in names if n not in FINDINGS]
    if unknown:
        raise ValueError(f"unknown finding(s) {unknown}; expected some of {list(FINDINGS)}")
    t0 = time.perf_counter()
    arms = arms_of(names, conditions)
    reused = reusable_runs(reuse, budget, arms, seeds) if reuse is not None else []
    have = {(r["arm"], r["seed"]) for r in reused}
    tasks = [(arm, seed) for seed in seeds for arm in arms if (arm, seed) not in have]
    log(f"findings {names}: {len(tasks) + len(have)} runs ({len(arms)} arms x {len(seeds)} seeds), {len(have)} "
        f"from the document reused, {jobs} at a time")  # fmt: skip
    done = run_arms(tasks, budget, WORLD, out_dir, jobs, force, log)
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(done + reused, key=lambda r: r["seed"]):
        by_arm.setdefault(r["arm"], []).append({"seed": r["seed"], **r["flat"]})
    runs = {arm: by_arm[arm] for arm in arms}
    seconds = {
        "total": time.perf_counter() - t0,  # this invocation's wall clock (runs read from the cache cost ~nothing)
        "train": sum(r["train_seconds"] for r in done),  # summed over the runs, as they were measured when trained
        "eval": sum(r["eval_seconds"] for r in done),
        "runs_from_cache": sum(bool(r.get("cached")) for r in done),
        "runs": len(done),
    }
    if reused:  # their time is the reused document's, as it recorded it for all of its runs
        old = reuse["meta"]["seconds"]
        seconds["reused"] = {"runs": len(reused), "of": old["runs"], "train": old["train"], "eval": old["eval"]}
    doc = {
        "meta": {
            "seeds": list(seeds),
            "budget": asdict(budget),
            "jobs": jobs,
            "threads": torch.get_num_threads(),
            "machine": machine(),  # this invocation's; each run's own is in runs/<arm>-seed<s>/result.json
            "seconds": seconds,
            "command": "python -m mmv_lite experiment findings"
            + (" --conditions" if conditions else "")
            + (" --reuse FINDINGS_JSON" if reused else ""),
            "arm_changes": {arm: ARMS.get(arm, {}) for arm in arms},
        },
        "findings": {n: evaluate_finding(FINDINGS[n], runs) for n in names},
        "conditions": {c.name: evaluate_condition(c, runs) for c in conditions_of(names) if conditions},
        "arms": arm_summary(runs),
        "runs": runs,
    }
    out = Path(out_dir)
    atomic_write(out / "findings.json", json.dumps(doc, indent=2))
    atomic_write(out / "findings.md", findings_markdown(doc))
    return doc


def reusable_runs(
    doc: dict[str, Any], budget: Budget, arms: Sequence[str], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """The runs of findings document ``doc`` that stand for this invocation's: arms of ``arms`` and seeds of ``seeds``
    measured with ``budget``, and with the arm's changes of today's :data:`ARMS` (where ``doc`` records them, in
    ``meta.arm_changes``). Returned as :func:`run_arm` results (no time of their own; ``"reused": True``)."""
    if json.loads(json.dumps(doc["meta"]["budget"])) != json.loads(json.dumps(asdict(budget))):
        raise ValueError(f"reuse: the document's budget {doc['meta']['budget']} is not this run's {asdict(budget)}")
    changes = doc["meta"].get("arm_changes", {})
    out = []
    for arm in arms:
        if arm in changes and changes[arm] != json.loads(json.dumps(ARMS.get(arm, {}))):
            continue  # the arm means something else now: train it again
        for r in doc["runs"].get(arm, []):
            if r["seed"] in seeds:
                flat = {k: v for k, v in r.items() if k != "seed"}
                out.append({"arm": arm, "seed": r["seed"], "flat": flat, "train_seconds": 0.0, "eval_seconds": 0.0,
                            "reused": True})  # fmt: skip
    return out


def arm_summary(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Every metric of every arm over the seeds: ``{arm: {metric: {"mean", "std"}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm, per_seed in runs.items():
        metrics = [m for m in per_seed[0] if m != "seed" and all(m in r for r in per_seed)]
        out[arm] = {m: dict(zip(("mean", "std"), mean_std([r[m] for r in per_seed]))) for m in metrics}
    return out


def _side(s: dict[str, Any]) -> str:
    return f"{s['mean']:.1f} ± {s['std']:.1f}"


STORED = Path(__file__).resolve().parents[2] / "docs" / "results" / "findings.json"


def load_findings(path: str | Path = STORED) -> dict[str, Any]:
    """The findings document a full run wrote (by default the project's, ``docs/results/findings.json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: measure the findings with `python -m mmv_lite experiment findings --jobs 2` "
            "(writes docs/results/findings.json)"
        )
    return json.loads(path.read_text())


def findings_summary_markdown(doc: dict[str, Any]) -> str:
    """One row per finding: its first check (both sides, mean ± std), the gap against twice the pooled std, the
    verdict, and the same gap under the control."""
    lines = [
        "| finding | first check | a | b | gap | 2 x pooled std | holds | control: gap | gap closes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in doc["findings"].items():
        c, control = f["checks"][0], f["control"]
        yes = {True: "yes", False: "no"}
        lines.append(
            f"| {name} | {c['what']} | {_side(c['a'])} | {_side(c['b'])} | {c['gap']:+.1f} | {2 * c['pooled_std']:.1f} "
            f"| {yes[f['holds']]} | {control['gap']:+.1f} | {yes[control['gap_closes']]} |"
        )
    return "\n".join(lines)


def conditions_summary_markdown(doc: dict[str, Any]) -> str:
    """One row per condition: the finding it repeats, what changed, its first check and whether all checks pass."""
    lines = [
        "| condition | of | the change | first check | a | b | gap | 2 x pooled std | passes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, cond in doc.get("conditions", {}).items():
        c = cond["checks"][0]
        lines.append(
            f"| {name} | {cond['finding']} | {cond['dial']} | {c['what']} | {_side(c['a'])} | {_side(c['b'])} "
            f"| {c['gap']:+.1f} | {2 * c['pooled_std']:.1f} | {'yes' if cond['holds'] else 'no'} |"
        )
    return "\n".join(lines)


def findings_markdown(doc: dict[str, Any]) -> str:
    """One table per finding: each check with both sides (mean ± std over seeds), the gap, the threshold and the
    verdict, then the same under the control."""
    lines = []
    for f in doc["findings"].values():
        verdict = "holds" if f["holds"] else "does not hold"
        lines += [f"### {f['name']}: {verdict}", "", f["claim"], ""]
        lines += ["| | check | a | b | gap | needs | passed |", "|---|---|---|---|---|---|---|"]
        for label, checks in (("finding", f["checks"]), ("control", f["control"]["checks"])):
            for c in checks:
                lines.append(f"| {label} {_check_row(c)}")
        closes = "closes" if f["control"]["gap_closes"] else "does not close"
        lines += ["", f"Control: {f['control']['dial']}; the gap {closes} ({f['control']['gap']:+.1f}).", ""]
    for cond in doc.get("conditions", {}).values():
        verdict = "passes" if cond["holds"] else "does not pass"
        lines += [f"### condition {cond['name']} (of {cond['finding']}): {verdict}", "", cond["question"], ""]
        lines += [f"Dial: {cond['dial']}.", "", "| check | a | b | gap | needs | passed |", "|---|---|---|---|---|---|"]
        for c in cond["checks"]:
            lines.append(_check_row(c))
        lines.append("")
    return "\n".join(lines)


def _check_row(c: dict[str, Any]) -> str:
    need = {"beats": "> ", "not_below": "> ", "within": "|gap| <= ", "times_chance": "a >= "}[c["kind"]]
    return (
        f"| {c['what']} | {_side(c['a'])} | {_side(c['b'])} | {c['gap']:+.1f} | {need}{c['threshold']:.1f} | "
        f"{'yes' if c['passed'] else 'no'} |"
    )
