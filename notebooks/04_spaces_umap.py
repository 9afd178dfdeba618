# %% [markdown]
# # 04 · The shared spaces, seen in two dimensions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. draw a map of an embedding space with UMAP and say what it preserves (neighbours) and what it does not
#    (distances between far-apart groups);
# 2. see the difference between the fine video-audio space $S_{va}$ and the coarse space $S_{vat}$ of the FAC graph:
#    which factors of the sample world organise each one;
# 3. see training at work: the same maps before and after pretraining;
# 4. see audio and text placed together in $S_{vat}$ although no loss ever compared them;
# 5. read the finding behind FAC (the paper's Table 1b), tested here: the claim that a factor heard but never said
#    survives in FAC's fine space and is squeezed out of a single shared space, and its control.
#
# The maps use the **trained** checkpoint `data_samples/mmv_lite_fac.pt` on held-out clips.

# %%
# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU).
# Full mode's budget: every sample clip instead of the 50 test clips; about a minute on a T4 by estimate
# (docs/BENCHMARKS.md, "Full mode on a free GPU").
import mmv_lite  # noqa: F401  (first: it sets the threading policy before torch loads)
import matplotlib.pyplot as plt
import numpy as np
import torch

from mmv_lite import build_model, viz
from mmv_lite.checkpoints import load_model
from mmv_lite.colab import run_mode, samples_dir
from mmv_lite.data.clips import ClipDataset
from mmv_lite.embedding import embed_dataset, project_2d
from mmv_lite.experiments.findings import load_findings
from mmv_lite.runtime import select_device

MODE = run_mode()
DEVICE = select_device()
SAMPLES = samples_dir()
SPLIT = "test" if MODE == "quick" else "all"  # held-out clips only in quick mode (about 50): UMAP stays fast
model, cfg, vocab = load_model(SAMPLES / "mmv_lite_fac.pt", device=DEVICE)
clips = ClipDataset(SAMPLES, SPLIT, cfg.data)
names = clips.class_names
print(f"mode={MODE}  device={DEVICE}  {len(clips)} clips from split {SPLIT!r}")

# %% [markdown]
# ## 1. Embed the clips
#
# One forward pass per clip in evaluation mode gives every embedding of the FAC graph. Each clip also carries its
# ground-truth labels, used here *only to colour the points*: motion (`action`), instrument × register (`sound`)
# and shape (`image`).

# %%
emb = embed_dataset(model, clips, device=DEVICE, progress="clips")
has_a = emb["has_audio"].bool()
labels = {k: emb[f"{k}_label"].numpy() for k in ("action", "sound", "image")}
print({k: tuple(v.shape) for k, v in emb.items() if k.startswith("z_")})

# %% [markdown]
# ## 2. The fine space $S_{va}$: pictures and sounds
#
# UMAP builds a graph of each point's nearest neighbours (here by cosine, the similarity the loss uses) and lays it
# out in 2-D so that neighbours stay neighbours. Distances between far-apart clusters mean little.
#
# We map the videos (circles) and the sounds (triangles) of the same clips **together**, in one fit, and colour
# the same map three times, once per factor. Two things to look for: whether videos and sounds mix at all, and
# which factor, if any, groups points *within* each modality.
#
# **Predict, then run.** Will the videos and the sounds of the same clips overlap on the map, or sit apart?

# %%
print(f"fitting UMAP to {len(emb['z_v_va']) + int(has_a.sum())} points (videos and sounds) ...", flush=True)
pts = project_2d({"video": emb["z_v_va"], "audio": emb["z_a_va"][has_a]}, method="umap", seed=0)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
for ax, (key, title) in zip(axes, (("sound", "sound"), ("image", "shape"), ("action", "motion"))):
    lab = {"video": labels[key], "audio": labels[key][has_a.numpy()]}
    viz.show_map(pts, lab, names[key], ax=ax, title=f"$S_{{va}}$ coloured by {title}", s=14)
fig.tight_layout()
plt.show()
from mmv_lite.embedding import modality_gap  # noqa: E402  (the exercise below writes it)

print(f"modality gap in S_va: {modality_gap(emb['z_v_va'], emb['z_a_va'][has_a]):.2f} (0: one centre, 2: opposite)")

# %% [markdown]
# Videos and sounds fall into **separate** regions, and the printed distance between their centres (the *modality
# gap*, which the exercise below computes) is far from 0. The loss only asks that each video be closer
# to its own sound than to the other sounds in the batch, which holds just as well when all sounds sit a little
# apart from all videos. Retrieval reads the *order* of similarities, so such a gap need not hurt it. To compare the
# structure of the two modalities on one map, remove each modality's mean direction first (`center=True`):

# %%
print("fitting UMAP again, each modality centred ...", flush=True)
pts_c = project_2d({"video": emb["z_v_va"], "audio": emb["z_a_va"][has_a]}, method="umap", seed=0, center=True)
lab = {"video": labels["sound"], "audio": labels["sound"][has_a.numpy()]}
fig = viz.show_map(pts_c, lab, names["sound"], title="$S_{va}$, each modality centred, coloured by sound", s=14)
plt.show()

# %% [markdown]
# ### Exercise: centring, and the size of the gap
#
# Write `centre_modalities(z_a, z_b)` for two modalities of one space, `z_a (N, D)` and `z_b (M, D)`. Return
# `(c_a, c_b, gap)`:
# * `c_a`, `c_b`: each row L2-normalised, minus the mean of its own modality's normalised rows (what
#   `project_2d(..., center=True)` maps above);
# * `gap`: the distance between the two modalities' centres, $\lVert \bar u_a - \bar u_b \rVert$, where $\bar u$ is
#   the mean of a modality's normalised rows. It lies between 0 (one shared centre) and 2 (opposite poles).
#
# The check compares you with `mmv_lite.embedding.centred` and `modality_gap` on two random clouds. Then measure the
# gap of the fine space above: `modality_gap(emb["z_v_va"], emb["z_a_va"][has_a])`, against the same network at
# random init.

# %%
from mmv_lite import exercises


@exercises.exercise("gap")
def centre_modalities(z_a, z_b):
    raise NotImplementedError("your code here: return (c_a, c_b, gap)")


# %%
exercises.check("gap", centre_modalities)

# %%
exercises.reveal("gap")

# %% [markdown]
# ## 3. The coarse space $S_{vat}$: pictures, words, and sounds that never met words
#
# Now the video embeddings $z_{v,vat}$, the narrations $z_{t,vat}$ (squares; each clip's K = 4 candidates) and the sounds carried over by the video's head, $z_{a,vat} = g_{va\to vat}(\mathrm{relu}(z_{a,va}))$
# (triangles), coloured by motion. The narrations name motions, so one might expect this space to group by motion.
# The probes say it does not, here: over three seeds of the shipped recipe, a linear probe reads the motion from
# $z_{v,vat}$ at [52.8](../docs/results/findings.json "arms.vat_fac.z_v_vat.motion.mean") %, *less* than from $z_{v,va}$
# ([59.1](../docs/results/findings.json "arms.vat_fac.z_v_va.motion.mean") %). Read the map below with that in mind.
# Narrations repeat across clips, so many squares sit on top of each other, and some sit in the "wrong" colour: they
# talk about a neighbouring moment (notebook 00).

# %%
valid = (emb["text_valid"].bool() & emb["has_text"].bool()[:, None]).numpy()
text_z = emb["z_t_vat"].numpy()[valid]
text_lab = np.repeat(labels["action"][:, None], valid.shape[1], axis=1)[valid]
groups = {"video": emb["z_v_vat"], "text": text_z, "audio": emb["z_a_vat"][has_a]}
print(f"fitting UMAP to {sum(len(g) for g in groups.values())} points ...", flush=True)
pts_vat = project_2d(groups, method="umap", seed=0)
lab_vat = {"video": labels["action"], "text": text_lab, "audio": labels["action"][has_a.numpy()]}
fig = viz.show_map(
    pts_vat,
    lab_vat,
    names["action"],
    title="$S_{vat}$: video, text and audio, coloured by motion",
    markers={"video": "o", "text": "s", "audio": "^"},
    s=16,
)
plt.show()

# %% [markdown]
# **Try this.** Colour the $S_{vat}$ map by `labels["sound"]` instead (and `names["sound"]`): is the coarse space
# still organised by instrument? Compare with $S_{va}$ above. Which space keeps the fine audio detail?
#
# ## 4. Before and after training
#
# The same coarse space for the same clips, from the same architecture with random weights. Random networks do map
# similar inputs close together (the frames of one shape on one background look alike), but nothing ties a motion
# seen to a motion heard or said.
#
# **Predict, then run.** Will the random network's map also separate videos, narrations and sounds?

# %%
torch.manual_seed(0)
untrained = build_model(cfg, word_vectors=clips.word_vectors.as_tensor()).to(DEVICE)
emb0 = embed_dataset(untrained, clips, device=DEVICE, progress="clips, random weights")
groups0 = {"video": emb0["z_v_vat"], "text": emb0["z_t_vat"].numpy()[valid], "audio": emb0["z_a_vat"][has_a]}
print(f"fitting UMAP to {sum(len(g) for g in groups0.values())} points ...", flush=True)
pts0 = project_2d(groups0, method="umap", seed=0)
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
kw = dict(label_names=names["action"], markers={"video": "o", "text": "s", "audio": "^"}, s=14)
viz.show_map(pts0, lab_vat, ax=axes[0], title="before training (random weights)", legend=False, **kw)
viz.show_map(pts_vat, lab_vat, ax=axes[1], title="after training (shipped checkpoint)", **kw)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. What FAC keeps: the finding behind Table 1b
#
# In the sample world the object's **size** is heard (a bigger object sounds lower) but, by default, never said: the
# narrator names the kind, the colour and the motion. FAC gives video and audio a fine space of their own, $S_{va}$,
# and only then maps into the space shared with text; the **shared** graph puts all three modalities in one space,
# where the text loss pulls the video embedding towards what narrations say. The claim: the size stays more linearly
# readable from the video's $S_{va}$ embedding under FAC than from the video's embedding in the single shared
# space, and FAC's text→video retrieval is no worse. The control: a world whose narrations *name* the size
# (`world.size_said = 1`), where the shared space has a reason to keep it too.

# %%
finding = load_findings()["findings"]["fac_vs_shared"]  # docs/results/findings.json
fig = viz.show_finding(finding)
plt.show()

# %% [markdown]
# The size probe reads [94.9](../docs/results/findings.json "findings.fac_vs_shared.checks.0.a.mean") % from FAC's $z_{v,va}$ and
# [92.9](../docs/results/findings.json "findings.fac_vs_shared.checks.0.b.mean") % from the shared space (pooled seed std
# [2.5](../docs/results/findings.json "findings.fac_vs_shared.checks.0.pooled_std")); text→video R@10 is
# [54.5](../docs/results/findings.json "findings.fac_vs_shared.checks.1.a.mean") % under FAC and [59.0](../docs/results/findings.json "findings.fac_vs_shared.checks.1.b.mean") % shared.
# With the size said aloud the size gap is [-0.2](../docs/results/findings.json "findings.fac_vs_shared.control.checks.0.gap") points.

# %% [markdown]
# So the finding does **not** hold in the sample world, and the reason is in the world, not in FAC: the size is heard
# but it is also *seen* (the object's radius is on screen). The same video network at random weights already reads
# it at [78.5](../docs/results/findings.json "arms.random_init.f_v.size.mean") %, and every trained space reads it near its ceiling, so no graph
# can squeeze it out. FAC's text retrieval is not below the shared graph's beyond the noise, which is the other half
# of the claim.

# %% [markdown]
# What would it need? The shared space here has 64 dimensions, room enough for the size beside everything the
# narrations name. A *condition* (notebook 07) repeats the checks with the common space of both graphs cut to 8
# dimensions: then FAC's $z_{v,va}$ reads the size at [91.7](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.0.a.mean") % and the shared space at
# [85.7](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.0.b.mean") % (twice the pooled std: [3.4](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.0.threshold")), and FAC's text→video R@10 is
# [27.5](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.1.a.mean") % against [15.5](../docs/results/findings.json "conditions.fac_vs_shared_narrow.checks.1.b.mean") %: both checks pass. A single space that must also match
# narrations gives up what only the sound carries once it has no room to spare. But FAC's $S_{va}$ was not cut
# with it (it keeps its 128 dimensions), so this condition confounds the graph with the capacity of the space.

# %% [markdown]
# **Try this.**
# * UMAP has knobs: rerun section 3 with `n_neighbors=5` and `n_neighbors=40` in `project_2d`. What changes,
#   and what stays?
# * Use `method="pca"` instead: a linear projection. Which factors can you still see?
#
# ## What we learned
# * UMAP maps keep neighbourhoods; they are for looking at who is near whom, not for measuring.
# * The maps show structure, the probes measure it: in the trained FAC model the motion is read less well from the
#   coarse space $S_{vat}$ than from the fine space $S_{va}$ (section 3), although the narrations name it.
# * Audio reaches $S_{vat}$ through the video's head; whether it lands near the *matching* narrations is what
#   zero-shot audio→text retrieval measures (notebook 06).
# * Whether FAC's fine space keeps what is heard but never said better than a shared space: section 5 measures it;
#   here it does not hold, because the size is also seen.
# * A random network arranges similar inputs too (section 4): a map's structure means little without that baseline.
#
# Next: **05 · deflation**: the video network, applied to single images.
