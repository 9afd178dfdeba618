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
# 4. say which of the paper's six findings the sample world reproduces, which it does not, and use a **condition**
#    (the same checks in another world) to find out what a failing finding would need.
#
# Every number here comes from `python -m mmv_lite experiment findings --jobs 2 --conditions` (17 arms × 3 seeds on
# the world stream; `docs/RESULTS.md` says how long it took on a 2-core CPU). In **quick** mode this notebook reads
# what that command stored in `docs/results/findings.json`; in **full** mode (a GPU session) it runs the command
# itself: 48 pretraining runs, whose time on a GPU has not been measured (they are cached in `runs/findings/runs/`,
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
from mmv_lite.colab import repo_root, run_mode
from mmv_lite.runtime import select_device

MODE = run_mode()
DEVICE = select_device()
SEEDS = (0, 1, 2)
TRAIN = False  # True: train every arm of every finding here, whatever the mode (cached per run in runs/findings/runs/)
if TRAIN:
    doc = findings.run_findings(seeds=SEEDS, out_dir=repo_root() / "runs" / "findings", conditions=True)
    source = f"trained here ({doc['meta']['seconds']['total']:.0f} s)"
else:  # what the same command measured, stored in docs/results/findings.json (and shown in docs/RESULTS.md)
    doc, source = findings.load_findings(), "docs/results/findings.json"
print(f"mode={MODE}  device={DEVICE}  {len(doc['findings'])} findings, {len(doc['runs'])} arms, from {source}")

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
# A gap between two arms counts when it is larger than **twice the pooled seed standard deviation** (and than the
# margin a claim states). The embedding graphs being compared, as drawn in notebook 01:

# %%
fig = viz.draw_embedding_graphs()
plt.show()

# %% [markdown]
# ## 2. Table 1a: which modalities?
#
# * **VA**: video with audio only (NCE); the video network learns whatever the sound reveals (size as pitch, the
#   rhythm of the motion);
# * **VT**: video with narrations only (MIL-NCE); it learns what people *say* about the clip (kind, colour, motion);
# * **VAT**: all three, in the FAC graph (the main job).
#
# The paper (HowTo100M, S3D-G) found VAT > VT > VA on UCF101/HMDB51, and adding audio did not hurt text retrieval.
# Here the claim is checked on the motion probe of the video features, with a control in which the narrations never
# name the motion (`world.motion_said = 0`): then text has no more to teach about motion than sound does.

# %%
fig = viz.show_finding(doc["findings"]["modalities"])
plt.show()

# %% [markdown]
# Motion read from the video features: VAT [55.5](../docs/results/findings.json "findings.modalities.checks.0.a.mean") %, VA
# [65.9](../docs/results/findings.json "findings.modalities.checks.0.b.mean") %, VT [64.3](../docs/results/findings.json "findings.modalities.checks.1.b.mean") %;
# text→video R@10: VAT [54.5](../docs/results/findings.json "findings.modalities.checks.2.a.mean") %, VT
# [61.1](../docs/results/findings.json "findings.modalities.checks.2.b.mean") %.
#
# The finding does **not** hold: video-audio training alone reads the motion best. The world's sounds spell the motion
# out (a bounce is a struck note at each impact, a rise a climbing pitch), so matching the sound is already a motion
# task; VA's video network also reads the kind better than VAT and drops the colour, which no sound carries
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
# **Try this.** The disjoint graph has no a2t bar anywhere in the findings: check it against the diagram in section
# 1 (where does audio reach the space that text lives in?).
#
# ## 4. All six findings at a glance
#
# For each finding: its first check's gap and the pooled seed std, whether the finding holds, and the same gap under
# its control.

# %%
rows = [
    {
        "finding": name,
        "gap": f["gap"],
        "pooled std": f["pooled_std"],
        "holds": "yes" if f["holds"] else "no",
        "control": f["control"]["dial"],
        "control gap": f["control"]["gap"],
        "gap closes": "yes" if f["control"]["gap_closes"] else "no",
    }
    for name, f in doc["findings"].items()
]
display(HTML(viz.html_table(rows, floatfmt="{:.1f}")))
fig, ax = plt.subplots(figsize=(7, 3))
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
ax.set_xlabel("gap of the first check (points; whisker: 2 pooled std)")
ax.legend(fontsize=8)
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
# with a **common space of 8 dimensions** instead of 64 (is the shared space simply wide enough to keep the size?),
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
#   [85.7](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.0.b.mean") % from the shared space, and FAC retrieves text better: both checks pass. The shared space gives
#   up the heard-only factor when it has no room to spare; at 64 dimensions it has room.
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
#
# This is the last notebook of the course. Go back to **03** to train longer, or point `python -m mmv_lite train`
# at your own videos (see the README).
