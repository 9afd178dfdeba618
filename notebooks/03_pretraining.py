# %% [markdown]
# # 03 · Pretraining: from random weights to a model that matches sounds, pictures and words
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. run MMV's self-supervised pretraining on the sample world, and say what one training step does;
# 2. read the training curves: the two loss terms and the learning-rate schedule (warm-up, then cosine decay);
# 3. measure what training bought: zero-shot retrieval on held-out clips, against the chance level;
# 4. reproduce the shipped checkpoint `data_samples/mmv_lite_fac.pt` with the project's own train command;
# 5. ask *what* the video network learnt to read, with factor probes beside the same network at random weights;
# 6. state two findings MMV builds on, as measured here, each beside the control that makes it vanish:
#    self-supervised features beat random ones (the premise of any self-supervised method), and MIL-NCE beats NCE
#    when narrations are misaligned (Miech et al.'s finding, CVPR 2020, which MMV adopts for video-text).
#
# We train on the **sample world's stream**: an unlimited supply of synthetic clips (a coloured object that moves and
# makes a sound, on a background, narrated like a how-to video about every 1.5 s, and about half the time about
# another moment). In **quick** mode (a CPU, the tests) we train for about a minute, enough to see the losses fall and
# retrieval leave chance, then load the shipped checkpoint, trained with the full budget (800 steps). In **full**
# mode (a GPU session) we train the full budget here, with the shipped checkpoint's own configuration.

# %%
# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU).
# Full mode's budget: the main job's 800 steps of 32 clips, the full held-out sets; about 2-5 minutes on a T4 by
# estimate, bounded by the CPU that renders the world (docs/BENCHMARKS.md, "Full mode on a free GPU").
import mmv_lite  # noqa: F401  (first: it sets the threading policy before torch loads)

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, display

from mmv_lite import build_model, viz
from mmv_lite.checkpoints import config_from_checkpoint, load_checkpoint, load_model
from mmv_lite.colab import run_mode, runs_dir, samples_dir
from mmv_lite.data.world import WorldClips, world_word_vectors
from mmv_lite.embedding import embed_dataset
from mmv_lite.experiments.findings import load_findings
from mmv_lite.experiments.sources import InMemory
from mmv_lite.optim import lr_factor
from mmv_lite.probes import PROBE_CS, attach_factors, factor_probes
from mmv_lite.retrieval import chance_levels, zero_shot_retrieval
from mmv_lite.runlog import read_metrics
from mmv_lite.runtime import select_device
from mmv_lite.train import WORLD, train

MODE = run_mode()
QUICK = MODE == "quick"
DEVICE = select_device()
SAMPLES = samples_dir()
SHIPPED = SAMPLES / "mmv_lite_fac.pt"
RUN_DIR = runs_dir() / f"03_pretraining_{MODE}"  # runs/ beside data_samples/

# The shipped checkpoint carries the configuration it was trained with: we train with the same one.
cfg = config_from_checkpoint(load_checkpoint(SHIPPED), SHIPPED)
if QUICK:  # about a minute on 2 CPU cores: the losses fall and retrieval leaves chance
    cfg.train.steps, cfg.train.warmup_steps = 80, 10
    cfg.train.eval_every, cfg.train.log_every, cfg.train.checkpoint_every = 40, 5, 80
    cfg.world.num_probe, cfg.world.num_eval = 300, 200  # smaller held-out sets (the first clips of the full ones)
cfg.train.num_workers = 0 if QUICK else cfg.train.num_workers
WORDS = world_word_vectors()  # the frozen word2vec vectors of the world's narrations
print(f"mode={MODE}  device={DEVICE}  steps={cfg.train.steps}  batch={cfg.train.batch_size}  graph={cfg.model.graph}")

# %% [markdown]
# ## 1. One training step
#
# A step takes a batch of B clips, runs the three towers, and computes
# $L = \lambda_{va}\,\mathrm{NCE}(z_{v,va}, z_{a,va}) + \lambda_{vt}\,\mathrm{MIL\text{-}NCE}(z_{v,vat}, z_{t,vat})$
# (notebook 02). The other B - 1 clips of the batch are the negatives, so a bigger batch gives a harder task. Each
# clip brings its K = 4 narrations nearest in time as a bag for MIL-NCE. Adam updates every weight except the frozen
# word vectors.
#
# The learning rate first rises linearly (*warm-up*: early gradients are large and noisy, and Adam's statistics are
# still empty), then follows half a cosine down to zero:

# %%
steps = np.arange(cfg.train.steps + 1)
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(steps, [cfg.train.lr * lr_factor(int(s), cfg.train.warmup_steps, cfg.train.steps) for s in steps])
ax.axvline(cfg.train.warmup_steps, color="grey", ls=":", label=f"end of warm-up ({cfg.train.warmup_steps} steps)")
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.set_title("Warm-up, then half-period cosine decay", fontsize=10, loc="left")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Exercise: one training step
#
# Write `training_step(model, inputs, loss_fn, optimizer)`: run the model on the batch, `model(**inputs)`, get the
# loss with `loss_fn(output)` (a scalar tensor), update every parameter once with the optimiser, and return the loss
# as a number. Four calls, in an order that matters. The check runs your step and the library's
# (`mmv_lite.optim.train_step`, what `train` below calls) side by side on two copies of a small video-audio model,
# three batches in a row, and compares the parameters after every step.

# %%
from mmv_lite import exercises


@exercises.exercise("train_step")
def training_step(model, inputs, loss_fn, optimizer):
    raise NotImplementedError("your code here: forward, loss, gradients, update; return the loss")


# %%
exercises.check("train_step", training_step)

# %%
exercises.reveal("train_step")

# %% [markdown]
# ## 2. Train
#
# `mmv_lite.train.train` is the same function the command line runs (`python -m mmv_lite train`). With `WORLD` as
# its data it draws every batch fresh from the world stream (no clip is seen twice), writes a checkpoint and a
# `metrics.jsonl` log into `RUN_DIR`, and evaluates zero-shot retrieval on the world's validation clips every
# `eval_every` steps. The progress bar shows the loss.
#
# **Predict, then run.** Which of the two loss terms (video-audio NCE, video-text MIL-NCE) will fall faster, and why?

# %%
summary = train(cfg, WORLD, RUN_DIR, device=DEVICE, progress=True, verbose=False)
print(f"{summary['step']} steps in {summary['train_seconds']:.0f} s ({summary['clips_per_second']:.1f} clips/s)")

# %% [markdown]
# ## 3. The training curves
#
# Both loss terms should fall. The numbers themselves depend on the batch size (more negatives, a higher starting
# loss: about log of twice the batch), so compare shapes, not values, across runs.

# %%
log = read_metrics(RUN_DIR / "metrics.jsonl", metric="R@5")
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3))
viz.show_history(log, keys=["loss", "loss_va", "loss_vt"], ax=a1, title="training loss")
viz.show_history(log, keys=["val t2v R@5", "val v2a R@5", "val a2t R@5"], ax=a2, title="validation retrieval R@5 (%)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. What did training buy? Retrieval on held-out clips
#
# *Zero-shot retrieval*: embed every validation clip, then for each query (a narration, a sound, a video) rank all
# candidates of another modality by cosine similarity, and ask whether the right one is among the top 5 (R@5).
# No labels are used: the "right" answer is the same moment of the same video. We compare three models: random
# weights, the run we just made, and the shipped checkpoint. The dashes mark chance (a random ranking).
#
# **Predict, then run.** Will random weights sit at chance, and which direction will the shipped checkpoint do best in?

# %%
# fixed held-out clips, never in the training stream, each rendered once and kept in memory for the three models
val = InMemory(WorldClips(cfg.data, "val", cfg.world, WORDS))
shipped, _, _ = load_model(SHIPPED, device=DEVICE)
ours, _, _ = load_model(RUN_DIR / "checkpoint.pt", device=DEVICE)
torch.manual_seed(0)
random_init = build_model(cfg, word_vectors=WORDS.as_tensor()).to(DEVICE)
results, emb = {}, None
for name, model in (
    ("random weights", random_init),
    (f"this run ({summary['step']} steps)", ours),
    ("shipped", shipped),
):
    emb = embed_dataset(model, val, device=DEVICE, progress=f"validation clips, {name}")
    results[name] = zero_shot_retrieval(emb, cfg.model.graph)
chance = chance_levels(emb, cfg.model.graph)
fig = viz.show_retrieval(results, chance, metric="R@5", title="validation clips, R@5")
plt.show()
for name, r in results.items():
    print(f"{name:>22}: " + "  ".join(f"{d} {r[d]['R@5']:4.1f}" for d in ("t2v", "v2a", "a2t")), end="")
    print(f"   (R@5 %; chance {chance['t2v']['R@5']:.1f} / {chance['v2a']['R@5']:.1f} / {chance['a2t']['R@5']:.1f})")

# %% [markdown]
# Read the bars direction by direction. *text→video* and *video→audio* were trained directly. **audio→text** was
# never trained: no loss ever compared a sound with a narration. In the FAC graph, audio reaches the text space only
# through the video's path $g_{va\to vat}$, so its bar measures whether that path carries sounds to the matching
# narrations. Compare each bar with its dash, and the run you just trained with random weights: how far does a
# minute of training lift the trained directions off chance? The printed R@5 values answer it for this run.
#
# On the world's 500 test clips the shipped checkpoint reaches text→video R@10
# [56.0](../docs/results/shipped_checkpoint.json "retrieval.t2v.R@10") % (chance [2.0](../docs/results/shipped_checkpoint.json "chance.t2v.R@10") %), video→audio R@1
# [4.0](../docs/results/shipped_checkpoint.json "retrieval.v2a.R@1") % (chance [0.2](../docs/results/shipped_checkpoint.json "chance.v2a.R@1") %) and the untrained direction audio→text R@10
# [8.8](../docs/results/shipped_checkpoint.json "retrieval.a2t.R@10") % (chance [2.0](../docs/results/shipped_checkpoint.json "chance.a2t.R@10") %)
# (`python -m mmv_lite evaluate --checkpoint data_samples/mmv_lite_fac.pt --factors --no-images`).
#
# ## 5. Reproducing the shipped checkpoint
#
# The shipped checkpoint was made by the project's own train command, then reduced to what inference needs (its
# configuration is stored inside it; `data_samples/CHECKPOINT.md` tells the whole story):
#
# ```bash
# python -m mmv_lite train --preset lite --out runs/lite-fac-vat          # seed 0, the preset's defaults
# python -c "from mmv_lite.checkpoints import *; save_checkpoint('data_samples/mmv_lite_fac.pt', inference_only(load_checkpoint('runs/lite-fac-vat/checkpoint.pt')))"
# ```
#
# In **full** mode the cell above trained with exactly that configuration, so "this run" and "shipped" should be
# close: seeds make a run repeat bit for bit on one machine and installation. On another machine (or library
# version) the rounding differs, and 800 steps amplify that into a different run, as another seed would: rerun on a
# second machine, the findings' means moved by up to 7.9 points (docs/RESULTS.md, section "Time"). In **quick**
# mode "this run" is a minute in.

# %%
key = "t2v"
rows = [{"model": n, **{m: r[key][m] for m in ("R@1", "R@5", "R@10", "MedR")}} for n, r in results.items()]
display(
    HTML(
        f"<b>{key}</b> on the validation clips (%; MedR = median rank, lower is better)"
        + viz.html_table(rows, floatfmt="{:.1f}")
    )
)

# %% [markdown]
# ## 6. What did the video network learn to read? Factor probes, beside random weights
#
# Retrieval says *how well* two modalities match; it does not say *what* each network reads from its input. The
# world knows the truth for every clip: the object's kind (its shape), colour, size and motion. A **factor probe**
# fits a linear classifier on frozen features of the world's probe clips, one factor at a time, and scores it on the
# held-out test clips. A factor the feature makes linearly readable beats chance (the dash: always answering the most
# common value). A random network is not blind: its features are random projections of the pixels, which a linear
# probe can read too. So we show the same video backbone **at random initialisation** beside the trained one: only
# the difference is what pretraining taught. The narration's embedding $z_{t,vat}$ shows what the words make
# available to learn.
#
# **Predict, then run.** Which factor will random video weights already read well, and which will need training?

# %%
probe_sets = {  # probes fit on the probe clips, choose C on the validation clips of section 4, score on the test clips
    "train": InMemory(WorldClips(cfg.data, "probe", cfg.world, WORDS)),
    "val": val,
    "test": InMemory(WorldClips(cfg.data, "test", cfg.world, WORDS)),
}
Cs = (1e-2,) if QUICK else PROBE_CS  # quick mode: one C instead of choosing among five on the val clips
probes = {}
# (name, network, features probed, the modalities it embeds: at random init only the video network is probed)
for name, model, features, mods in (
    ("", shipped, ("f_v", "f_a", "z_t_vat"), "vat"),
    (" at random init", random_init, ("f_v",), "v"),
):
    embs = {
        s: attach_factors(embed_dataset(model, ds, device=DEVICE, modalities=mods, progress=f"{s} clips{name}"), ds)
        for s, ds in probe_sets.items()
    }
    got = factor_probes(
        embs["train"], embs["val"], embs["test"], features=features, factors=("kind", "colour", "size", "motion"), Cs=Cs
    )
    probes.update({f + name: res for f, res in got.items()})
fig = viz.show_factor_probes(probes, title="shipped checkpoint vs the same network at random weights (test clips)")
plt.show()

# %% [markdown]
# With the full probe and test sets (`python -m mmv_lite evaluate --checkpoint data_samples/mmv_lite_fac.pt
# --factors --no-images`, and the same with `--random-init`), the shipped video features read the object's kind at
# [58.0](../docs/results/shipped_checkpoint.json "factors.f_v.kind.accuracy") % against [28.2](../docs/results/shipped_checkpoint_random_init.json "factors.f_v.kind.accuracy") % for the same network at
# random weights (chance [13.8](../docs/results/shipped_checkpoint.json "factors.f_v.kind.chance") %), and its motion at
# [55.4](../docs/results/shipped_checkpoint.json "factors.f_v.motion.accuracy") % against [31.0](../docs/results/shipped_checkpoint_random_init.json "factors.f_v.motion.accuracy") %
# (chance [12.8](../docs/results/shipped_checkpoint.json "factors.f_v.motion.chance") %). The narrations name the kind, the motion and often the colour, and the sound
# carries the size (pitch) and the motion (rhythm): that is what the losses could teach the video network to see.
#
# ## 7. Two findings MMV builds on, measured here
#
# Neither is MMV's own claim: the first is the premise of every self-supervised method, the second is the finding of
# the MIL-NCE paper (Miech et al., CVPR 2020), whose loss MMV adopts for video and text.
#
# One run is an anecdote. `python -m mmv_lite experiment findings` trains every comparison the findings need
# with the same budget (the main job's 800 steps), three seeds each, and scores them on the world's fixed test clips;
# `docs/RESULTS.md` shows all six. A finding **holds** when its gap is larger than twice the seed-to-seed standard
# deviation (and than the margin the claim states). Each has a **control**: the same comparison in a world where the
# finding's cause is switched off, where the gap should close.
#
# **Self-supervision.** The claim: pretraining makes kind and motion readable from the video features at least 15
# points better than random weights. Its control pretrains on a world whose narrations and sounds are shuffled across
# clips: the losses can still be lowered a little, but nothing in a clip's sound or words is about its picture.

# %%
FINDINGS = load_findings()  # docs/results/findings.json
fig = viz.show_finding(FINDINGS["findings"]["self_supervision"])
plt.show()

# %% [markdown]
# Over three seeds, pretraining reads the kind at [54.7](../docs/results/findings.json "findings.self_supervision.checks.0.a.mean") % against
# [30.2](../docs/results/findings.json "findings.self_supervision.checks.0.b.mean") % at random weights, and the motion at
# [55.5](../docs/results/findings.json "findings.self_supervision.checks.1.a.mean") % against [35.1](../docs/results/findings.json "findings.self_supervision.checks.1.b.mean") %.
# With shuffled narrations and sounds the kind gap is [-6.5](../docs/results/findings.json "findings.self_supervision.control.checks.0.gap") points and
# the motion gap [-4.7](../docs/results/findings.json "findings.self_supervision.control.checks.1.gap") points.
# The finding holds, and its control closes the gap: what the network learnt came from the correspondence between
# what a clip shows, sounds like and is said to be, not from training as such.
#
# **MIL-NCE vs NCE.** The world's narrator is misaligned half of the time: a caption describes a moment a few seconds
# away. NCE pairs each clip with its single nearest caption; MIL-NCE with a bag of the K = 4 nearest, any of which may
# be the right one (notebook 02). The control is a world with aligned narrations (`world.misalignment = 0`).

# %%
fig = viz.show_finding(FINDINGS["findings"]["mil_nce"])
plt.show()

# %% [markdown]
# With misaligned narrations MIL-NCE reaches text→video R@10 [54.5](../docs/results/findings.json "findings.mil_nce.checks.0.a.mean") % and NCE
# [36.5](../docs/results/findings.json "findings.mil_nce.checks.0.b.mean") % (pooled seed std [5.7](../docs/results/findings.json "findings.mil_nce.checks.0.pooled_std")); with aligned
# narrations the gap is [-2.1](../docs/results/findings.json "findings.mil_nce.control.checks.0.gap") points. It
# holds where the narrations are misaligned and vanishes where they are not.

# %% [markdown]
# **Try this.**
# * Train with `cfg.model.graph = "shared"` or `"disjoint"` (a new `RUN_DIR`): which retrieval directions disappear
#   for disjoint, and why?
# * Set `cfg.world.misalignment = 0.0` and train again: does text→video improve, and by how much compared with the
#   findings' control above?
# * Set `cfg.data.num_candidates = 1` (NCE on the nearest narration): what happens to text→video in this run?
# * Probe the model you trained in section 2 (`ours`) with `factor_probes`: after a minute of training, does it read the
#   motion better than random weights? The kind?
#
# ## What we learned
# * Pretraining needs no labels: the loss pulls together the modalities of the same moment and pushes apart the
#   others in the batch.
# * The learning rate warms up, then decays along half a cosine; both loss terms fall.
# * Retrieval on held-out clips, beside chance, says what training bought (section 4 prints it for this run and the
#   shipped checkpoint); audio→text, a direction no loss ever trained, is a different story (notebook 06).
# * The shipped checkpoint is reproducible with `python -m mmv_lite train` and the configuration stored inside it:
#   bit for bit on the same machine and installation, as another seed would be on another machine.
# * A probe means something only beside the same network at random weights: random features are not blind.
# * The findings above are measured with three seeds and a control each; `docs/RESULTS.md` says which hold.
#
# Next: **04 · the shared spaces**, seen in two dimensions.
