# %% [markdown]
# # 07 · Design exploration: which modalities, which embedding graph, and when each finding vanishes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. say what the paper's design table (Table 1) compares: *which modalities* to train on (VA, VT, VAT) and *which
#    embedding graph* joins them (shared, disjoint, FAC);
# 2. read a comparison the way it was made: equal training budgets, three seeds, mean ± standard deviation, chance,
#    and a rule for when a gap is larger than the noise;
# 3. use a **control** (the same comparison in a world where the cause is switched off) to tell *why* a gap exists;
# 4. say which of the six findings the sample world reproduces, sorted by *whose* claim each one tests (the premise
#    of any self-supervised method, MIL-NCE's, MMV's own), and use a **condition** (the same checks in another
#    world) to find out what a failing finding would need.
#
# Every number here comes from `python -m mmv_lite experiment findings --jobs 2 --conditions` (17 arms × 3 seeds on
# the world stream; `docs/RESULTS.md` says how long it took on a 2-core CPU). In **quick** mode this notebook reads
# what that command stored in `docs/results/findings.json`; in **full** mode (a GPU session) it runs the command
# itself: 51 pretraining runs (the cell below counts them), whose time on a GPU has not been measured (they are cached in `runs/findings/runs/`,
# so a second run only re-reads them).

# %%
# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU).
# Full mode's budget: both modes read docs/results/findings.json (15 s on a 2-core CPU). TRAIN = True trains every
# arm here instead: 1 h 46 min to 2 h 05 min on 2 CPU cores, more than a free GPU's session; see docs/BENCHMARKS.md,
# "Full mode on a free GPU".
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from mmv_lite import viz
from mmv_lite.experiments import findings
from mmv_lite.colab import run_mode, runs_dir
from mmv_lite.runtime import select_device

MODE = run_mode()
DEVICE = select_device()
SEEDS = (0, 1, 2)
TRAIN = False  # True: train every arm of every finding here, whatever the mode (cached per run in runs/findings/runs/)
if TRAIN:
    doc = findings.run_findings(seeds=SEEDS, out_dir=runs_dir() / "findings", conditions=True)
    source = f"trained here ({doc['meta']['seconds']['total']:.0f} s)"
else:  # what the same command measured, stored in docs/results/findings.json (and shown in docs/RESULTS.md)
    doc, source = findings.load_findings(), "docs/results/findings.json"
pretrained = sum(len(seeds) for arm, seeds in doc["runs"].items() if arm != findings.RANDOM_INIT)
print(f"mode={MODE}  device={DEVICE}  {len(doc['findings'])} findings, {len(doc['runs'])} arms, from {source}")
print(f"{pretrained} pretraining runs, and the untrained network ({findings.RANDOM_INIT}) on each seed")

# %% [markdown]
# ## 1. What is compared, and how
#
# Every **arm** is a full pretraining run of the `lite` network on the world stream with the **same budget** (the
# main job's 800 steps of 32 clips), so that arms differ in one thing: the loss, the embedding graph, the modalities
# trained on, or one dial of the world. Each network is then measured on the world's fixed held-out clips without
# further training of its backbones: linear probes on frozen features for the object's kind, colour, size and motion
# (the analogues of UCF101/HMDB51 linear classification), and zero-shot retrieval (the analogue of YouCook2/MSRVTT).
# The arms:

# %%
rows = [
    {"arm": arm, "differs from vat_fac in": ", ".join(f"{k}={v}" for k, v in change.items()) or "(the main job)"}
    for arm, change in findings.ARMS.items()
]
rows.append({"arm": findings.RANDOM_INIT, "differs from vat_fac in": "not trained: random weights"})
conditions_only = set(findings.arms_of(list(findings.FINDINGS), conditions=True)) - set(
    findings.arms_of(list(findings.FINDINGS))
)
for row in rows:  # the arms that only the conditions of section 5 compare
    row["used by"] = "a condition (section 5)" if row["arm"] in conditions_only else "the findings"
display(HTML(viz.html_table(rows)))

# %% [markdown]
# **The rule.** Every check holds its number against the same **noise**: twice the pooled seed standard deviation
# of its two sides. "A beats B" needs a gap larger than the noise (and than the margin a claim states); "A is not
# below B" needs the gap to be at least minus the noise; "A within m of B" needs |gap| + noise <= m; "A at least
# k x chance" needs A >= k x chance + noise. The charts below say which comparison each check made. The embedding
# graphs being compared, as drawn in notebook 01:

# %%
fig = viz.draw_embedding_graphs()
plt.show()

# %% [markdown]
# ## 2. Table 1a: which modalities?
#
# * **VA**: video with audio only (NCE); the sound is the only teacher, and in this world it carries the size (as
#   pitch) and the motion (as rhythm), never the colour;
# * **VT**: video with narrations only (MIL-NCE); the narrations are the only teacher, and they name the kind, the
#   colour and the motion (half of them about another moment);
# * **VAT**: all three, in the FAC graph (the main job).
#
# The paper (HowTo100M, S3D-G) found VAT > VT > VA on UCF101/HMDB51, and adding audio did not hurt text retrieval.
# Here the claim is checked on the motion probe of the video features, with a control in which the narrations never
# name the motion (`world.motion_said = 0`): then text has nothing to teach about motion.

# %%
fig = viz.show_finding(doc["findings"]["modalities"])
plt.show()

# %% [markdown]
# Motion read from the video features: VAT [55.5](../docs/results/findings.json "findings.modalities.checks.0.a.mean") %, VA
# [65.9](../docs/results/findings.json "findings.modalities.checks.0.b.mean") %, VT [64.3](../docs/results/findings.json "findings.modalities.checks.1.b.mean") %;
# text→video R@10: VAT [54.5](../docs/results/findings.json "findings.modalities.checks.2.a.mean") %, VT
# [61.1](../docs/results/findings.json "findings.modalities.checks.2.b.mean") %.
#
# The finding does **not** hold: VAT (under FAC) reads the motion worse than video-audio training alone, beyond the
# noise. That does not make VA the best reader of motion: VT's [64.3](../docs/results/findings.json "findings.modalities.checks.1.b.mean") % has a
# seed std of [12.0](../docs/results/findings.json "arms.vt.f_v.motion.std") and is level with VA within the noise, and the shared graph's VAT
# (next section) reads it at [74.6](../docs/results/findings.json "arms.vat_shared.f_v.motion.mean") %. The world's sounds follow the motion (a
# bounce is a struck note at each impact, a rise a climbing pitch), so matching the sound is already a motion task;
# VA's video features drop the colour, which no sound carries
# ([47.6](../docs/results/findings.json "arms.va.f_v.colour.mean") % against [99.9](../docs/results/findings.json "arms.vat_fac.f_v.colour.mean") %). The two checks
# against VT pass only by the width of the seed spread. The control shows what the narrations add to VAT: when they
# never name the motion, VAT's motion probe falls to [40.5](../docs/results/findings.json "arms.vat_fac_motion_unsaid.f_v.motion.mean") %.
#
# ## 3. Table 1b: which embedding graph for three modalities?
#
# * **shared**: one space for all three; the space must serve the fine detail of sound and the coarse vocabulary of
#   narrations at once;
# * **disjoint**: one space per pair; no compromise, but audio and text can never be compared;
# * **FAC**: a fine space for video and audio, and a coarser one for text that video (and, at test time, audio)
#   reaches *through* the fine one.
#
# Notebook 04 showed the check: the size, heard but never said, read from the video's embedding in FAC's fine space
# and in the shared space, with the control where the narrations say the size.

# %%
fig = viz.show_finding(doc["findings"]["fac_vs_shared"])
plt.show()

# %% [markdown]
# The size is read near its ceiling from both spaces ([94.9](../docs/results/findings.json "findings.fac_vs_shared.checks.0.a.mean") % from
# FAC's $S_{va}$, [92.9](../docs/results/findings.json "findings.fac_vs_shared.checks.0.b.mean") % from the shared space), so F3 does not hold. The same arms also measure what no finding
# states, and by the same rule they reverse Table 1b's order on motion: the shared graph's video features read it at
# [74.6](../docs/results/findings.json "observations.shared_vs_fac.checks.0.a.mean") %, FAC's at
# [55.5](../docs/results/findings.json "observations.shared_vs_fac.checks.0.b.mean") % (gap
# [19.1](../docs/results/findings.json "observations.shared_vs_fac.checks.0.gap"), noise [15.1](../docs/results/findings.json "observations.shared_vs_fac.checks.0.noise")).
# On text→video R@10 the shared graph is ahead only in the mean
# ([59.0](../docs/results/findings.json "observations.shared_vs_fac.checks.1.a.mean") against
# [54.5](../docs/results/findings.json "observations.shared_vs_fac.checks.1.b.mean") %, inside the noise). For F3 this means the shared space
# gives up nothing that was measured here; for F4 it means the misaligned narrations do not by themselves keep a VAT
# network below VA, since the shared graph's VAT, trained on the same narrations, is above VA in the mean.

# %%
rows = [
    {
        "check": c["what"],
        "a": f"{c['a']['mean']:.1f} ± {c['a']['std']:.1f}",
        "b": f"{c['b']['mean']:.1f} ± {c['b']['std']:.1f}",
        "gap": c["gap"],
        "needs (the rule)": findings.needs(c),
        "passes": "yes" if c["passed"] else "no",
    }
    for c in doc["observations"]["shared_vs_fac"]["checks"]
]
display(HTML(viz.html_table(rows, floatfmt="{:+.1f}")))

# %% [markdown]
# ### The paper's Table 1 beside the miniature
#
# The paper's numbers (`mmv_lite.experiments.tables.TABLES`, from Alayrac et al. 2020, Table 1a: S3D-G on HowTo100M; Table 1b:
# on HowTo100M + AudioSet) are real benchmarks (UCF101 and HMDB51 linear probes, YouCook2 and MSRVTT retrieval,
# ESC-50); ours are the sample world's (probes of the video features, text→video among 500 test clips). Compare
# the order of the rows, not the values. No arm of the findings trains the disjoint graph.

# %%
display(HTML(viz.html_table(viz.table1_beside_paper(doc), floatfmt="{:.1f}")))

# %% [markdown]
# **Try this.** The disjoint graph has no a2t bar anywhere in the findings: check it against the diagram in section
# 1 (where does audio reach the space that text lives in?).
#
# ## 4. All six findings at a glance, by whose claim they test
#
# The six findings test three kinds of claim, and one count over all six would mix them: F1 is the premise of any
# self-supervised method (pretrained features beat random ones), F2 is the MIL-NCE paper's claim (Miech et al. 2020),
# and F3-F6 are MMV's own. `findings.json` stores the groups with the count that holds in each:

# %%
rows = [
    {"claims of": g["title"], "whose": g["whose"], "findings": ", ".join(g["findings"]), "hold": f"{g['hold']} of {g['of']}"}
    for g in doc["groups"].values()
]  # fmt: skip
display(HTML(viz.html_table(rows)))

# %% [markdown]
# The premise and MIL-NCE's claim hold here; [0](../docs/results/findings.json "groups.mmv.hold") of MMV's own
# [4](../docs/results/findings.json "groups.mmv.of") do. F6 comes closest: audio→text R@10 is
# [7.7](../docs/results/findings.json "findings.zero_shot_audio_text.checks.0.a.mean") %, over twice chance
# ([2.0](../docs/results/findings.json "findings.zero_shot_audio_text.checks.0.b.mean") %) in the mean but not beyond the seed noise (it needs
# [9.0](../docs/results/findings.json "findings.zero_shot_audio_text.checks.0.threshold") %).
#
# For each finding: its first check's gap and the noise (twice the pooled seed std), whether the finding holds, and
# what its control says: the gap *closes* where the cause is switched off, *stays*, or there is *no gap to close*
# (the finding's own check does not pass).

# %%
rows = [
    {
        "finding": name,
        "claim of": doc["groups"][f["group"]]["title"],
        "gap": f["gap"],
        "noise": 2 * f["pooled_std"],
        "holds": "yes" if f["holds"] else "no",
        "control": f["control"]["dial"],
        "control gap": f["control"]["gap"],
        "control says": {"closes": "the gap closes", "stays": "the gap stays"}.get(f["control"]["verdict"], "no gap to close"),
    }
    for name, f in doc["findings"].items()
]  # fmt: skip
display(HTML(viz.html_table(rows, floatfmt="{:.1f}")))
fig, ax = plt.subplots(figsize=(9, 4))
names = list(doc["findings"])
ax.barh(names, [doc["findings"][n]["gap"] for n in names], color="#1565c0", label="finding")
ax.barh(names, [doc["findings"][n]["control"]["gap"] for n in names], color="#bdbdbd", height=0.4, label="control")
ax.errorbar(
    [doc["findings"][n]["gap"] for n in names],
    names,
    xerr=[2 * doc["findings"][n]["pooled_std"] for n in names],
    fmt="none",
    color="black",
    capsize=3,
)
ax.axvline(0, color="black", lw=0.8)
ax.set_xlabel("gap of the first check (points; whisker: the noise, 2 pooled std)", fontsize=11)
ax.set_title("Each finding's first gap beside its control's", fontsize=12)
ax.tick_params(labelsize=10)
ax.legend(fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. What would a failing finding need? Conditions
#
# A control removes a finding's cause and watches the gap close. A **condition** asks the opposite question of a
# finding that fails: repeat its checks, with the same rule, on arms trained with *one* change, and see whether they
# pass. The change is a hypothesis about why the finding failed. A condition never changes the finding's verdict:
# the finding was stated for the default world, and that is where it was measured.
#
# Four were measured (`--conditions`): F4's checks with **aligned narrations** (is misalignment why VA led?), F3's
# with a **common space of 8 dimensions** instead of 64 in both graphs, FAC's $S_{va}$ keeping its 128 (is the
# shared space simply wide enough to keep the size?),
# and F5's twice: on a **3D CNN** (S3D-G, whose summed kernels see the clip's zero padding, unlike TSM), and on the
# same TSM **deflated as DeepMind's later TSM code does** (the shifted channels scaled by 0.3 instead of kept).

# %%
for name, cond in doc["conditions"].items():
    print(f"{name}: {cond['dial']}")
    fig = viz.show_finding(cond)
    plt.show()

# %% [markdown]
# * **Aligned narrations** (`modalities_aligned`): VAT reads the motion at [81.3](../docs/results/findings.json "conditions.modalities_aligned.checks.0.a.mean") %, VA at
#   [65.9](../docs/results/findings.json "conditions.modalities_aligned.checks.0.b.mean") %, VT at [87.9](../docs/results/findings.json "conditions.modalities_aligned.checks.1.b.mean") %: all three checks pass. Misalignment was the cause: with half the narrations
#   describing another moment, text teaches motion worse than a sound that always follows it. Note what this means
#   for the default world: F2 needs misaligned narrations and F4 (at this budget) aligned ones, so one world cannot
#   show both.
# * **A narrow common space** (`fac_vs_shared_narrow`): the size is read at [91.7](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.0.a.mean") % from FAC's $S_{va}$ and
#   [85.7](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.0.b.mean") % from the shared space, and FAC retrieves text better: both checks pass. But FAC's
#   $S_{va}$ keeps its 128 dimensions while the shared space has 8, so this comparison confounds the space's
#   capacity with the graph: it cannot say whether FAC's design or its 16 times wider space keeps the size.
# * **A 3D CNN** (`deflation_s3dg`): naive deflation reads the colour from one frame at [36.7](../docs/results/findings.json "conditions.deflation_s3dg.checks.0.b.mean") %, the calibrated
#   network at [59.8](../docs/results/findings.json "conditions.deflation_s3dg.checks.0.a.mean") %, the video network on static clips at [78.7](../docs/results/findings.json "conditions.deflation_s3dg.checks.1.b.mean") %. Calibration beats naive deflation by
#   far (the first check passes) but stays short of the static clip (the second fails): half of F5 appears, on the
#   architecture whose deflation has something to fix.
# * **Another TSM deflation** (`deflation_alpha`): naive [42.0](../docs/results/findings.json "conditions.deflation_alpha.checks.0.b.mean") %, calibrated
#   [43.2](../docs/results/findings.json "conditions.deflation_alpha.checks.0.a.mean") %, static clips [44.8](../docs/results/findings.json "conditions.deflation_alpha.checks.1.b.mean") % (the kind from one frame). The naive network is four
#   times further from the video network than with the shift switched off, but a probe refitted on its features
#   loses little: the first check fails again.
#
# `docs/RESULTS.md` discusses every finding and condition: what it means, why a finding that does not hold here
# fails, and where the miniature differs from the paper.
#
# **Try this.**
# * Run the findings yourself, quick and tiny, to see the machinery:
#   `python -m mmv_lite experiment findings --quick --seeds 0 --out runs/quick_findings` (about a minute on a CPU;
#   its numbers are noise: 3 steps per arm). Load `runs/quick_findings/findings.json` with `findings.load_findings`
#   and draw one with `viz.show_finding`.
# * Turn a dial the findings do not: `python -m mmv_lite train --set world.misalignment=0.8 --out runs/m08`, then
#   `python -m mmv_lite evaluate --checkpoint runs/m08/checkpoint.pt`. Where does text→video land?
# * Add a fourth seed (`--seeds 0 1 2 3`): runs already trained are read from the cache. How much does a pooled
#   std move?
#
# ## What we learned
# * Table 1 asks two questions with equal budgets: which modalities to learn from (VA, VT, VAT) and how to join them
#   (shared, disjoint, FAC); each measurement tests a different thing the network might have learned.
# * Seeds and a rule for noise make a comparison readable; a control makes it explainable: when the cause is
#   switched off, the gap should close.
# * Some conclusions are structural and hold at any budget (disjoint cannot compare audio with text); others need a
#   world and a budget in which their cause is present, and the table above says which appear in this one.
# * A condition turns "it failed" into a tested reason: one change, the same rule, and a verdict of its own.
# * A count of findings says little until it says whose claims they are: here the premise and MIL-NCE's claim hold,
#   and none of MMV's own four does. And a world has dials: `docs/RESULTS.md` ("How the world's defaults were
#   chosen") lists the defaults that were set after a measurement, and how the shipped network's numbers move when
#   each is set back.
#
# This is the last notebook of the course. Go back to **03** to train longer, or point `python -m mmv_lite train`
# at your own videos (see the README).
