# %% [markdown]
# # 03 · Pretraining: from random weights to a model that matches sounds, pictures and words
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. run MMV's self-supervised pretraining on the sample clips, and say what one training step does;
# 2. read the training curves: the two loss terms and the learning-rate schedule (warm-up, then cosine decay);
# 3. measure what training bought: zero-shot retrieval on held-out clips, against the chance level;
# 4. reproduce the shipped checkpoint `data_samples/mmv_lite_fac.pt` with the project's own train command;
# 5. ask *what* each network learnt to read from its input, with factor probes, and recognise shortcut learning.
#
# In **quick** mode (a CPU, the tests) we train a few steps to see the machinery move, then load the shipped
# checkpoint, which was trained with the full budget. In **full** mode (a GPU session) we train the full budget here,
# with the shipped checkpoint's own configuration, and compare the two.

# %%
# Set-up. On Colab: clone the repository this notebook's "Open in Colab" badge names, then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import re, subprocess, sys; from google.colab import _message
    repo = re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("This notebook's badge names no published repository. To run a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge (README.md, 'Colab').")
    subprocess.run(f"[ -d /content/mmv_lite ] || git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); sys.path.insert(0, "/content/mmv_lite"); from mmv_lite.colab import setup_colab; setup_colab()

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU).
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, display

from mmv_lite import build_model, viz
from mmv_lite.checkpoints import config_from_checkpoint, load_checkpoint, load_model
from mmv_lite.colab import run_mode, samples_dir
from mmv_lite.data.clips import ClipDataset
from mmv_lite.embedding import embed_dataset
from mmv_lite.optim import lr_factor
from mmv_lite.probes import PROBE_CS, attach_factors, factor_probes
from mmv_lite.retrieval import chance_levels, zero_shot_retrieval
from mmv_lite.runlog import read_metrics
from mmv_lite.runtime import select_device
from mmv_lite.train import train

MODE = run_mode()
QUICK = MODE == "quick"
DEVICE = select_device()
SAMPLES = samples_dir()
SHIPPED = SAMPLES / "mmv_lite_fac.pt"
RUN_DIR = Path("runs") / f"03_pretraining_{MODE}"

# The shipped checkpoint carries the configuration it was trained with: we train with the same one.
cfg = config_from_checkpoint(load_checkpoint(SHIPPED), SHIPPED)
if QUICK:  # a few small steps, enough to watch the losses move on 2 CPU cores
    cfg.train.steps, cfg.train.batch_size, cfg.train.warmup_steps = 4, 8, 1
    cfg.train.eval_every, cfg.train.log_every, cfg.train.checkpoint_every = 4, 1, 4
cfg.train.num_workers = 0 if QUICK else cfg.train.num_workers
print(f"mode={MODE}  device={DEVICE}  steps={cfg.train.steps}  batch={cfg.train.batch_size}  graph={cfg.model.graph}")

# %% [markdown]
# ## 1. One training step
#
# A step takes a batch of B clips, runs the three towers, and computes
# $L = \lambda_{va}\,\mathrm{NCE}(z_{v,va}, z_{a,va}) + \lambda_{vt}\,\mathrm{MIL\text{-}NCE}(z_{v,vat}, z_{t,vat})$
# (notebook 02). The other B - 1 clips of the batch are the negatives, so a bigger batch gives a harder task. Sound
# clips have no narration: they are simply left out of the MIL-NCE term. Adam updates every weight except the frozen
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
# `mmv_lite.train.train` is the same function the command line runs (`python -m mmv_lite train`). It writes a
# checkpoint and a `metrics.jsonl` log into `RUN_DIR`, and evaluates zero-shot retrieval on the validation clips
# every `eval_every` steps. The progress bar shows the loss.

# %%
summary = train(cfg, SAMPLES, RUN_DIR, device=DEVICE, progress=True, verbose=False)
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

# %%
val = ClipDataset(SAMPLES, "val", cfg.data)
shipped, _, _ = load_model(SHIPPED, device=DEVICE)
ours, _, _ = load_model(RUN_DIR / "checkpoint.pt", device=DEVICE)
torch.manual_seed(0)
random_init = build_model(cfg, word_vectors=val.word_vectors.as_tensor()).to(DEVICE)
results, emb = {}, None
for name, model in (
    ("random weights", random_init),
    (f"this run ({summary['step']} steps)", ours),
    ("shipped", shipped),
):
    emb = embed_dataset(model, val, device=DEVICE)
    results[name] = zero_shot_retrieval(emb, cfg.model.graph)
fig = viz.show_retrieval(results, chance_levels(emb, cfg.model.graph), metric="R@5", title="validation clips, R@5")
plt.show()

# %% [markdown]
# Read the bars direction by direction. *text→video* and *video→audio* were trained directly. **audio→text** was
# never trained: no loss ever compared a sound with a narration. In the FAC graph, audio reaches the text space only
# through the video's path $g_{va\to vat}$, so its bar measures whether that path carries sounds to the matching
# narrations. Compare each bar with its dash: within the shipped budget of 600 CPU steps, video↔audio and
# text↔video rise to about three times chance, while audio→text stays at chance (`data_samples/CHECKPOINT.md` has
# the numbers): a path no loss trained needs the two spaces to line up first, and that takes longer.
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
# close (seeds make the run deterministic on one device; a different device or library version changes the last
# digits, not the picture). In **quick** mode "this run" is only a few steps in.

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
# ## 6. What did each network learn to read? Factor probes
#
# Retrieval says *how well* two modalities match; it does not say *what* each network reads from its input. The
# sample world knows the truth for every clip: the object's kind, colour, shade (dark or light), size and motion,
# and the video's background. A **factor probe** fits a linear classifier on frozen features of the training clips,
# one factor at a time, and scores it on the held-out test clips. A factor the feature makes linearly readable beats
# chance (the dash: always answering the most common value). We probe three features of the shipped checkpoint: the
# video backbone's $f_v$, the audio backbone's $f_a$, and a clip's nearest narration in the text space, $z_{t,vat}$.

# %%
splits = {s: ClipDataset(SAMPLES, s, cfg.data) for s in ("train", "val", "test")}
embs = {s: attach_factors(embed_dataset(shipped, ds, device=DEVICE), ds) for s, ds in splits.items()}
# Quick mode fits each probe with one C instead of choosing among five on the val clips (five times fewer fits).
probes = factor_probes(
    embs["train"], embs["val"], embs["test"], features=("f_v", "f_a", "z_t_vat"), Cs=(1e-2,) if QUICK else PROBE_CS
)
fig = viz.show_factor_probes(probes, title="shipped checkpoint: what each feature makes readable (test clips)")
plt.show()

# %% [markdown]
# Read the groups one by one. The **narrations** name the kind and the motion (and usually the colour), and their
# embedding reads those well above chance: the text tower knows what to look for. The **audio** network reads what
# the sound carries: size (pitch), background (the noise of the scene), motion (rhythm) and, less well, kind
# (timbre). The **video** network reads the motion well above chance, which is what lets text→video retrieval work
# (the narrations name it), and the background and the object's overall brightness (its shade) even better; but it
# hardly reads the object's kind or colour, although nearly every narration names the kind.
#
# Within 600 CPU steps the video network learnt first what tells one clip's sound from another's most cheaply: the
# scene, which the background noise gives away, and the motion, which the rhythm gives away. The scene is
# **shortcut learning**: a true, easy cue that solves the training task without the concept we care about. It is
# also why retrieval tops out where it does: the narrations talk about the object, whose shape the video features
# hardly see yet. The paper trains for 500k steps on 100M clips, where the scene no longer tells clips apart and the
# objects and actions must be learnt.
#
# `python -m mmv_lite evaluate --checkpoint data_samples/mmv_lite_fac.pt --factors` prints the same table.

# %% [markdown]
# **Try this.**
# * Train with `cfg.model.graph = "shared"` or `"disjoint"` (a new `RUN_DIR`): which retrieval directions disappear
#   for disjoint, and why?
# * Set `cfg.train.modalities = "va"`: the text loss is off. What happens to text→video retrieval?
# * Halve `cfg.train.batch_size`: what happens to the starting loss, and why?
# * Probe the model you trained in section 2 (`ours`) with `factor_probes`: which factors does it read after a few
#   steps, and does the background come first?
#
# ## What we learned
# * Pretraining needs no labels: the loss pulls together the modalities of the same moment and pushes apart the
#   others in the batch.
# * The learning rate warms up, then decays along half a cosine; both loss terms fall.
# * Retrieval on held-out clips between video and audio, and from text to video, rises far above chance in a few
#   hundred steps; audio→text, a direction no loss ever trained, needs a longer budget.
# * The shipped checkpoint is reproducible with `python -m mmv_lite train` and the configuration stored inside it.
# * Factor probes show what a network reads: here the video network reads the motion, but also took a shortcut (the
#   scene) and hardly sees the objects' shapes the narrations name, which limits text→video retrieval.
#
# Next: **04 · the shared spaces**, seen in two dimensions.
