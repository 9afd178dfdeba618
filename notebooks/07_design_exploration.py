# %% [markdown]
# # 07 · Design exploration: which modalities, which embedding graph? The paper's Table 1 in miniature
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. say what the paper's design table (Table 1) compares, and which question each comparison answers:
#    *which modalities* to train on (VA, VT, VAT) and *which embedding graph* joins them (shared, disjoint, FAC);
# 2. read such a table the way it was made: equal training budgets, several seeds, mean ± standard deviation,
#    a chance row and a supervised reference row;
# 3. tell a difference between two rows from seed-to-seed noise, and say where the small sample world agrees with
#    the paper and where it does not.
#
# The grid trains 6 networks × 3 seeds with `python -m mmv_lite experiment design` (about 40 minutes on a 2-core
# CPU, a few minutes on a GPU). In **quick** mode this notebook reads the tables that command measured and the
# project stored in `docs/results/` (as JSON; `docs/RESULTS.md` shows them); in **full** mode it trains the grid itself (runs are cached in
# `runs/experiments/`, so a second run only re-reads them).

# %%
# Set-up. On Colab: clone the repository this notebook's "Open in Colab" badge names, then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import re, subprocess, sys; from google.colab import _message
    repo = re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("This notebook's badge names no published repository. To run a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge (README.md, 'Colab').")
    subprocess.run(f"[ -d /content/mmv_lite ] || git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); sys.path.insert(0, "/content/mmv_lite"); from mmv_lite.colab import setup_colab; setup_colab()

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU).
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from mmv_lite import experiments, viz
from mmv_lite.colab import run_mode, samples_dir
from mmv_lite.runtime import select_device
from mmv_lite.tables import load_tables, row_differences

MODE = run_mode()
DEVICE = select_device()
SAMPLES = samples_dir()
ROOT = SAMPLES.parent  # the repository: docs/ and runs/ sit beside data_samples/
SEEDS = (0, 1, 2)
if MODE == "full":  # train the whole grid (cached per run in runs/experiments/runs/<run>-seed<seed>/)
    grid = experiments.run_experiment(
        "design", SEEDS, experiments.FULL, SAMPLES, ROOT / "runs" / "experiments", device=str(DEVICE)
    )
    tables, source = grid["tables"], f"trained here ({grid['seconds']['total']:.0f} s)"
else:  # the tables the same command measured, stored as JSON in docs/results/ (and shown in docs/RESULTS.md)
    tables, source = load_tables(ROOT / "docs" / "results"), "docs/results/"
    if not {"table1a", "table1b"} <= set(tables):  # none stored: a tiny grid, about a minute (a pipeline check only)
        grid = experiments.run_experiment(
            "design", (0,), experiments.QUICK, SAMPLES, ROOT / "runs" / "experiments_quick", log=lambda msg: None
        )
        tables, source = grid["tables"], "a quick grid trained here (2 steps per run: its numbers are noise)"
print(f"mode={MODE}  device={DEVICE}  tables {sorted(tables)} from {source}")

# %% [markdown]
# ## 1. What is compared, and how
#
# Every cell of the grid is a full pretraining run with the **same budget** (steps, batch size, learning rate,
# clips, augmentation), so that rows differ in one design choice only. Each network is then measured without any
# further training of its backbones, by the analogues of the paper's benchmarks:
#
# | paper | here | what it asks of the network |
# |---|---|---|
# | UCF101 / HMDB51, linear | **action probe** (7 motions) | do the video features carry the *motion*? |
# | ESC-50, linear | **sound probe** (12 instrument × pitch classes) | do the audio features carry the *sound*? |
# | YouCook2 / MSRVTT R@10 | **t2v R@10** | can a narration find its clip (zero-shot)? |
# | — | **v2a R@1** | can a clip find its own sound among all test sounds? |
# | — | **a2t R@10** | can a sound find the narration of its clip, never trained together? |
#
# Two reference rows make the numbers readable: **chance** (a random ranking, or always answering the most common
# class) and **supervised** (the same network trained on the ground-truth labels with the same budget). Three seeds
# per row give a mean and a standard deviation.
#
# The embedding graphs being compared, as drawn in notebook 01:

# %%
fig = viz.draw_embedding_graphs()
plt.show()

# %% [markdown]
# ## 2. Table 1a: which modalities?
#
# Three networks, each trained on one set of modalities:
# * **VA** — video with audio only (NCE); the video network learns whatever the sound reveals (the object's kind and
#   size, the rhythm of its motion);
# * **VT** — video with narrations only (MIL-NCE; with the `lite` preset's one narration per clip it is plain NCE);
#   it learns what people *say* about the clip, such as the motion;
# * **VAT** — all three, in the FAC graph.
#
# The questions: does audio or text teach the video network more about actions (action probe)? Does adding the
# third modality help, or do the two losses compete for the same capacity? Some cells cannot exist: VT has no
# trained audio network (no sound probe), VA no text network (no text retrieval), and only VAT can relate audio to
# text. In the figure, grey hatched bars are the paper's numbers for the same row on its own benchmark.

# %%
fig = viz.show_design_table(tables["table1a"])
plt.show()

# %% [markdown]
# In the paper (HowTo100M, S3D-G): VAT > VT > VA on UCF101 and HMDB51; VA and VAT are close on ESC-50; VT and VAT
# are close on text retrieval. Adding a modality helped and did not hurt the others.
#
# ## 3. Table 1b: which embedding graph for three modalities?
#
# All three networks train on video, audio and text; only the heads differ (notebook 01):
# * **shared** — one space for all three: audio and text must agree with each other through the video, so the
#   space has to serve the fine detail of sound and the coarse vocabulary of narrations at once;
# * **disjoint** — one space per pair (va and vt): no compromise, but audio and text can never be compared;
# * **FAC** — a fine space for video and audio, and a coarser one for text that video (and, at test time, audio)
#   reaches *through* the fine one.
#
# The question is the compromise: does a shared space cost audio detail or text retrieval, and does FAC get the
# best of both while still letting audio meet text (a2t)?

# %%
fig = viz.show_design_table(tables["table1b"])
plt.show()

# %% [markdown]
# In the paper (HowTo100M + AudioSet): FAC is best or close to best on every column, shared is best on ESC-50 but
# worst on text retrieval (the compromise), and disjoint cannot do a2t at all.
#
# **Try this.** The a2t panel: which graphs have a bar at all, and why? Check it against the diagram in section 1
# (where does audio reach the space that text lives in?).
#
# ## 4. A difference, or noise?
#
# A row that is 3 points ahead with a seed-to-seed standard deviation of 5 points is not ahead. For each metric,
# the best row and the runner-up, the gap between them, and the noise (their two standard deviations added):

# %%
for name in ("table1a", "table1b"):
    rows = row_differences(tables[name])
    display(HTML(f"<b>{tables[name]['title']}</b>" + viz.html_table(rows, floatfmt="{:.1f}")))

# %% [markdown]
# With the budget of the stored tables (a few hundred steps per run, three seeds, 49 test segments), most gaps
# are within the noise: the small world reproduces some of the paper's *facts* (self-supervised audio features far
# above chance, text→video retrieval above chance for every network trained with narrations; a2t possible only
# where the graph gives audio and text a common space) but not, beyond the noise, its *orderings*.
# The discussion in `docs/RESULTS.md` says what a longer budget should change first.
#
# **Try this.**
# * Run the grid yourself, quick and tiny, to see the machinery:
#   `python -m mmv_lite experiment design --quick --seeds 0 --out runs/quick` (about a minute on a CPU; its
#   numbers are noise: 2 steps on 6 segments). It writes `runs/quick/table1a.json`: `json.load` it and pass it to
#   `viz.show_design_table`.
# * On a GPU, run `python -m mmv_lite experiment design --steps 600 --seeds 0 1 2 --out runs/steps600`: four times
#   the budget. Which gaps leave the noise?
# * Add a fourth seed (`--seeds 0 1 2 3`): runs already trained are read from the cache. How much does the
#   standard deviation of the action probe move?
#
# ## What we learned
# * Table 1 asks two questions with equal budgets: which modalities to learn from (VA, VT, VAT) and how to join
#   them (shared, disjoint, FAC); each benchmark column tests a different thing the network might have learned.
# * Chance and supervised rows, and the spread over seeds, are what make a table readable: a difference smaller
#   than the noise is not a result.
# * Some conclusions are structural and hold at any budget (disjoint cannot compare audio with text; FAC and shared
#   can), others (VAT beating VA and VT, FAC beating shared) need the paper's scale of data and training.
#
# This is the last notebook of the course. Go back to **03** to train longer, or point `python -m mmv_lite train`
# at your own videos (see the README).
