# %% [markdown]
# # 02 · The losses: NCE, MIL-NCE and the temperature
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. explain the *contrastive* idea: pull the modalities of one moment together, push other moments away;
# 2. read MMV's video-audio loss (symmetric **NCE**) off a similarity matrix;
# 3. say why video-text uses **MIL-NCE** with several candidate narrations, and see what it does to the gradient when
#    the nearest narration is about something else;
# 4. predict what the **temperature** τ does, with a slider;
# 5. measure how misaligned narrations hurt the nearest-narration pairing, and read the finding that MIL-NCE helps
#    only when they are misaligned.
#
# The loss of MMV is $L = \lambda_{va}\,\mathrm{NCE}(v, a) + \lambda_{vt}\,\mathrm{MIL\text{-}NCE}(v, t)$, with every
# embedding L2-normalised and τ = 0.07. No labels anywhere: the supervision is *which things happened together*.

# %%
# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU). Everything here is small.
# Full mode's budget: the same work as quick mode (17 s on a 2-core CPU); under a minute on a T4 by estimate
# (docs/BENCHMARKS.md, "Full mode on a free GPU").
import mmv_lite  # noqa: F401  (first: it sets the threading policy before torch loads)
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import display

from mmv_lite import losses, viz, widgets
from mmv_lite.colab import run_mode
from mmv_lite.config import TEMPERATURE, get_config
from mmv_lite.data.world import bag_hit_rate
from mmv_lite.experiments.findings import load_findings
from mmv_lite.runtime import select_device

MODE = run_mode()
DEVICE = select_device()
B, D = 6, 16  # a toy batch: 6 clips, 16-d embeddings
torch.manual_seed(0)
print(f"mode={MODE}  device={DEVICE}")

# %% [markdown]
# ## 1. A batch as a similarity matrix
#
# Take a batch of B clips. Each clip gives a video embedding $v_i$ and an audio embedding $a_i$. The matrix
# $S_{ij} = \cos(v_i, a_j)$ holds every pairing. Its diagonal are the **positives** (same clip: the sound of what is
# shown); every other entry is a **negative**. We build a toy batch in which each clip has a hidden "content" vector
# $c_i$ and both modalities see it through some noise, so the diagonal stands out.

# %%
content = F.normalize(torch.randn(B, D), dim=1)
v = content + 0.5 * torch.randn(B, D) / D**0.5
a = content + 0.5 * torch.randn(B, D) / D**0.5
sim = F.normalize(v, dim=1) @ F.normalize(a, dim=1).T
fig = viz.show_similarity(sim, torch.eye(B, dtype=torch.bool), title="cos(video i, audio j): positives outlined")
plt.show()

# %% [markdown]
# ## 2. NCE, in both directions
#
# NCE turns each row into a classification problem: "which of these B sounds belongs to video $i$?", scored by a
# softmax over the row, $s/τ$. MMV's version is **symmetric**: the same clip's audio also has to pick out its video
# among all videos (the column). For clip $i$:
#
# $$\mathrm{loss}_i = -\log \frac{\exp(S_{ii}/τ)}{\sum_j \exp(S_{ij}/τ) + \sum_j \exp(S_{ji}/τ)}$$
#
# (one softmax over the row and the column together; the positive sits in both, so the loss never goes below
# log 2). This form is the one the MIL-NCE authors' code computes (`MILNCELoss`), and the kit follows it. The MMV
# paper's formula counts the positive **once** in the denominator: the same sums without one of the two
# $\exp(S_{ii}/τ)$. Only the paper's form can reach 0. The loss is small when the diagonal beats every other entry
# of its row and column by a margin of a few τ. Below, the same toy batch with more and more noise between the two
# modalities: as the positives stop standing out, the loss climbs to the value of unrelated embeddings.
#
# **Predict, then run.** With B clips of unrelated embeddings, roughly what loss do you expect (hint: 2B entries in one softmax)?

# %%
noise = np.linspace(0.0, 3.0, 13)
draws = 20  # average over a few random batches: one batch of 6 is noisy
curve = []
for s in noise:
    vals = []
    for _ in range(draws):
        va = content + s * torch.randn(B, D) / D**0.5
        aa = content + s * torch.randn(B, D) / D**0.5
        vals.append(losses.nce(va, aa, tau=TEMPERATURE).item())
    curve.append(np.mean(vals))
unrelated = np.mean([losses.nce(torch.randn(B, D), torch.randn(B, D)).item() for _ in range(200)])
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(noise, curve, marker="o", ms=3, label=f"NCE(v, a), mean of {draws} toy batches")
ax.axhline(unrelated, color="grey", ls="--", label="unrelated embeddings")
ax.axhline(np.log(2), color="grey", ls=":", label="floor: log 2 (positive counted in row and column)")
ax.set_xlabel("noise between the two modalities (× content size)")
ax.set_ylabel("loss")
ax.set_title("NCE falls as the modalities agree", fontsize=10, loc="left")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ### Exercise: NCE from a similarity matrix
#
# Write `nce_loss(z_v, z_a, tau)` for a batch of B clips, `z_v` and `z_a` of shape `(B, D)`, unnormalised, as
# `mmv_lite.losses.nce` computes it: L2-normalise both, build $S_{ij} = \cos(v_i, a_j)/τ$, take for clip $i$ one
# softmax over row $i$ and column $i$ together (the formula above), and return the mean over the clips as a tensor
# that `backward()` can follow. The check compares your loss with the library's on random batches and several
# temperatures, and says what differs.

# %%
from mmv_lite import exercises


@exercises.exercise("nce")
def nce_loss(z_v, z_a, tau=0.07):
    raise NotImplementedError("your code here: the mean symmetric NCE loss of the batch")


# %%
exercises.check("nce", nce_loss)

# %%
exercises.reveal("nce")

# %% [markdown]
# ## 3. What the temperature does
#
# The scores are divided by τ before the softmax. A cold (small) τ sharpens the softmax: the loss then cares only
# about the *hardest* negatives, the ones closest to the positive. A hot τ spreads attention over every candidate,
# so even a correct ranking costs almost log N. Move the slider and watch the share of the positive and the loss;
# the paper's τ = 0.07 (dotted line) is cold.

# %%
names = ["own audio"] + [f"audio of clip {j}" for j in range(1, B)]
app = widgets.TemperatureApp(sim[0], positive=0, names=names)
display(app.widget)

# %% [markdown]
# **Try this.** Set τ to 1.0: what share does the positive get, and why is the loss close to log 6 ≈ 1.8 although
# the positive still has the highest similarity? Then set τ to 0.01: which candidate decides the loss now?
#
# ## 4. Narrations are not aligned: MIL-NCE
#
# In narrated videos, people talk about what they *are about to do* or *just did*. The narration nearest in time to
# a clip is often about a neighbouring moment. MIL-NCE (multiple-instance NCE) therefore gives each clip a **bag of K
# candidate narrations**, the K nearest in time, and asks only that *some* of them match:
#
# $$\mathrm{loss}_i = -\log \frac{\sum_{k} \exp(S(v_i, t_{ik})/τ)}{\sum_{j,k} \exp(S(v_i, t_{jk})/τ) + \sum_{j,k} \exp(S(v_j, t_{ik})/τ)}$$
#
# The numerator is a *soft maximum* over the bag. Its gradient is shared among the candidates by a softmax of their
# scores, so the candidate that already fits best gets most of the pull, and a narration about something else gets
# little. The similarity matrix now has B rows and B × K columns; the bags are outlined.

# %%
K = 4
text = F.normalize(torch.randn(B, K, D), dim=-1)  # off-topic narrations by default
good = torch.tensor([1, 0, 2, 3, 1, 0])  # which candidate of each bag really describes the clip
text[torch.arange(B), good] = content + 0.5 * torch.randn(B, D) / D**0.5
video = content + 0.5 * torch.randn(B, D) / D**0.5
sim_vt = F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).reshape(B * K, D).T
bags = torch.zeros(B, B * K, dtype=torch.bool)
for i in range(B):
    bags[i, i * K : (i + 1) * K] = True
fig = viz.show_similarity(
    sim_vt, bags, col_label="narration (clip j, candidate k)", col_groups=K, title="cos(video i, narration jk): bags"
)
plt.show()

# %% [markdown]
# Now the gradient. Suppose clip 0's nearest narration is candidate 0, which is about a neighbouring moment; the
# matching one is candidate 1. Plain NCE with the nearest narration pulls the video entirely towards the wrong words.
# MIL-NCE with the whole bag pulls mostly towards the matching one.
#
# **Predict, then run.** Which candidate gets the largest gradient under NCE, and which under MIL-NCE?


# %%
def pull_on_candidates(loss_fn):
    """Share of the gradient that goes to each of clip 0's K candidate narrations (sums to 1)."""
    t = text.clone().requires_grad_(True)
    loss_fn(video, t).backward()
    g = t.grad[0].norm(dim=-1).numpy()
    return g / g.sum()


nearest = torch.zeros(B, dtype=torch.long)  # "the nearest narration": candidate 0 of every clip
g_nce = pull_on_candidates(lambda v_, t_: losses.nce(v_, t_[torch.arange(B), nearest]))
g_mil = pull_on_candidates(lambda v_, t_: losses.mil_nce(v_, t_))
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
fig.suptitle("Which of clip 0's narrations does the loss move?", fontsize=10)
for ax, g, name in zip(axes, (g_nce, g_mil), ("NCE with the nearest narration", "MIL-NCE with the bag of K")):
    colours = [viz.MODALITY_COLOURS["t"] if k == good[0] else "#9e9e9e" for k in range(K)]
    ax.bar(range(K), g, color=colours)
    ax.set_xticks(range(K))
    ax.set_xticklabels([f"cand. {k}" + ("\n(matches)" if k == good[0] else "") for k in range(K)], fontsize=8)
    ax.set_title(name, fontsize=10, loc="left")
axes[0].set_ylabel("share of the gradient")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise: MIL-NCE with bags and padding
#
# Write `mil_nce_loss(z_v, z_t, text_valid, tau)`: `z_v (B, D)`, the K candidate narrations `z_t (B, K, D)`, and
# `text_valid (B, K)`, False where a candidate is padding (a clip near the start of a video has fewer narrations).
# Follow the MIL-NCE formula above, with three rules for the masks:
# * a padding candidate counts nowhere: not in its bag's numerator, not in any denominator;
# * the numerator is a soft maximum over the clip's valid candidates, $\log\sum_k \exp(S(v_i, t_{ik})/τ)$;
# * a clip with no valid candidate at all takes no part: it is no anchor, and its video is no negative for others;
#   the loss is the mean over the clips that remain.
#
# The check compares your loss with `mmv_lite.losses.mil_nce`, first with every candidate valid, then with padding,
# then with an empty bag.

# %%
from mmv_lite import exercises


@exercises.exercise("mil_nce")
def mil_nce_loss(z_v, z_t, text_valid, tau=0.07):
    raise NotImplementedError("your code here: the mean MIL-NCE loss of the batch")


# %%
exercises.check("mil_nce", mil_nce_loss)

# %%
exercises.reveal("mil_nce")

# %% [markdown]
# ## 5. How misaligned are the narrations, and does MIL-NCE pay off?
#
# The sample world's narrator speaks about every 1.5 s; with the dial `world.misalignment` at 0.5 (HowTo100M is often
# quoted at about half of its narrations not matching what is on screen) half of the captions describe a moment a
# few seconds away. We ask the world directly, before any network is trained: for training clips, how often is the
# **nearest** caption about the segment the clip shows (what NCE pairs the clip with), and how often does the **bag
# of the K nearest** contain one that is (what MIL-NCE needs)?
#
# **Predict, then run.** At the default misalignment (0.5), what share of clips has a right nearest caption, and a right one
# in the bag of 4?

# %%
lite = get_config("lite")
clip_seconds = lite.data.num_frames / lite.data.fps
dials = (0.0, 0.25, 0.5, 0.75)
rates = {m: bag_hit_rate(replace(lite.world, misalignment=m), clip_seconds) for m in dials}
fig, ax = plt.subplots(figsize=(6, 3))
for m, r in rates.items():
    ax.plot(list(r), list(r.values()), marker="o", label=f"misalignment {m:g}")
ax.set_xlabel("K (narrations nearest in time)")
ax.set_ylabel("% of clips with a right one")
ax.set_title("Does the bag hold a narration about the clip?", fontsize=10, loc="left")
ax.legend(fontsize=8)
plt.show()
r = rates[0.5]
print(
    f"misalignment 0.5: the nearest narration is right for {r[1]:.0f} % of clips; a bag of 4 holds a right one for {r[4]:.0f} %"
)

# %% [markdown]
# So at the default dial NCE trains on a wrong pair for a large share of clips, while MIL-NCE's bag of K = 4 almost
# always contains a right caption and, as section 4 showed, pulls mostly on it. Whether that turns into better
# retrieval is an experiment: `python -m mmv_lite experiment findings` pretrains the lite network both ways (the
# main job's 800 steps, three seeds each) and scores text→video R@10 on the world's 500 test clips, then repeats
# the comparison with aligned narrations (`world.misalignment = 0`), the **control** where the bag has nothing to
# recover.

# %%
finding = load_findings()["findings"]["mil_nce"]  # docs/results/findings.json
fig = viz.show_finding(finding)
plt.show()

# %% [markdown]
# Misaligned: MIL-NCE [54.5](../docs/results/findings.json "findings.mil_nce.checks.0.a.mean") % against NCE
# [36.5](../docs/results/findings.json "findings.mil_nce.checks.0.b.mean") %, a gap of [18.0](../docs/results/findings.json "findings.mil_nce.checks.0.gap") points
# (pooled seed std [5.7](../docs/results/findings.json "findings.mil_nce.checks.0.pooled_std")). Aligned: a gap of
# [-2.1](../docs/results/findings.json "findings.mil_nce.control.checks.0.gap") points. The finding holds with
# misaligned narrations, and the control closes the gap: the bag pays only where there is misalignment to recover.
#
# **Try this.** Change `good[0]` to 0 (the nearest narration *is* the right one) and rerun the two cells of section 4:
# NCE and MIL-NCE then agree. With `K = 1` MIL-NCE *is* NCE (the library checks this in its tests). In section 5,
# which K would you choose at misalignment 0.75, and what does a bigger bag cost (look at the denominator)?
#
# ## What we learned
# * A contrastive loss is a classification over the batch: each clip must pick out its own other modality among
#   everyone else's. Positives sit on the diagonal of the similarity matrix.
# * The kit's NCE is symmetric (row and column in one softmax, the positive counted twice, as in the MIL-NCE
#   authors' code; the MMV paper's formula counts it once); MIL-NCE replaces the single positive by a bag of K nearby
#   narrations and a soft maximum over it, which tolerates narrations that talk about a neighbouring moment.
# * The temperature sets how hard the loss looks at the closest negatives; τ = 0.07 is cold.
# * Misalignment is measurable before any training: it decides how often the nearest narration is a wrong pair, and
#   the findings' control (aligned narrations) shows when MIL-NCE's bag is worth having.
#
# Next: **03 · pretraining** puts these losses to work on the sample clips.
