# %% [markdown]
# # 01 · The model: backbones, heads and three ways to share a space
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. say what each of MMV's three *backbones* turns its input into, with the tensor shapes;
# 2. follow a video clip through the video backbones (the lite model's TSM-ResNet, the paper's S3D-G) and see them
#    trade resolution for channels;
# 3. draw the three *embedding graphs* of the paper (shared, disjoint, fine-and-coarse "FAC") and say which pairs
#    of modalities each one can compare;
# 4. compare the size of the laptop model (`lite`) with the paper's models, without allocating the big ones.

# %%
# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU). This notebook is cheap either way.
# Full mode's budget: the same work as quick mode (14 s on a 2-core CPU); under a minute on a T4 by estimate
# (docs/BENCHMARKS.md, "Full mode on a free GPU").
import mmv_lite  # noqa: F401  (first: it sets the threading policy before torch loads)
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

from mmv_lite import build_model, get_config, viz
from mmv_lite.colab import run_mode, samples_dir
from mmv_lite.data.audio import num_audio_frames
from mmv_lite.data.text import WordVectors
from mmv_lite.models.mmv import parameter_counts
from mmv_lite.runtime import select_device

MODE = run_mode()
DEVICE = select_device()
SAMPLES = samples_dir()
torch.manual_seed(0)
print(f"mode={MODE}  device={DEVICE}  samples={SAMPLES}")

# %% [markdown]
# ## 1. Three towers and a few small heads
#
# MMV reads a video through three of its modalities: the RGB frames **v**, the sound track **a** and the narration
# text **t** (speech turned into words). Each modality has its own *backbone* network $f_m$ that turns the raw input
# into one feature vector. Small *projection heads* $g$ then map those features into **shared spaces** where
# comparing two modalities is just a cosine similarity. Training (notebooks 02-03) pulls together the embeddings of
# things that happen at the same time in the same video.
#
# | modality | input (one clip) | backbone | feature |
# |---|---|---|---|
# | video **v** | frames `(3, T, H, W)` in [0, 1] | TSM-ResNet or S3D-G | `f_v` |
# | audio **a** | log-mel spectrogram `(1, F, n_mels)` | ResNet on the spectrogram image | `f_a` |
# | text **t** | K narrations of L word ids `(K, L)` | frozen word2vec + Linear + ReLU + max | `f_t` |
#
# Let's build the laptop-size model, `lite`, with the sample world's word vectors, and push one batch of the right
# shapes through it.

# %%
wv = WordVectors.load(SAMPLES / "word_vectors.bin")
cfg = get_config("lite")
model = build_model(cfg, word_vectors=wv.as_tensor()).to(DEVICE).eval()

d = cfg.data
B, K, L = 2, d.num_candidates, d.max_words
narrations = [
    "so the big red circle slides across",
    "now a little star spins around",
    "um the square just bounces",
    "and the triangle falls down",
]
candidates = [narrations[k % len(narrations)] for _ in range(B) for k in range(K)]  # each clip's K narrations
ids, mask = wv.encode(candidates, max_words=L)  # (B*K, L)
batch = {
    "video": torch.rand(B, 3, d.num_frames, d.crop_size, d.crop_size),
    "audio": torch.randn(B, 1, num_audio_frames(d), d.n_mels),
    "text_ids": ids.view(B, K, L),
    "text_mask": mask.view(B, K, L),
}
with torch.no_grad():
    out = model(**{k: v.to(DEVICE) for k, v in batch.items()})

rows = [{"tensor": k, "shape": str(tuple(v.shape)), "what": "input"} for k, v in batch.items()]
rows += [
    {"tensor": k, "shape": str(tuple(v.shape)), "what": "backbone feature" if k.startswith("f_") else "embedding"}
    for k, v in out.items()
]
display(HTML(viz.html_table(rows)))

# %% [markdown]
# Read the table from the top: a batch of **B = 2** clips (their size is printed below), their spectrograms, and
# **K** candidate narrations per clip. The text keeps its candidate axis
# all the way (`f_t` is `(B, K, ·)`): the loss in notebook 02 needs every candidate separately. The embeddings are
# named `z_{modality}_{space}`, e.g. `z_v_va` is the video's embedding in the video-audio space.

# %%
print(
    f"lite clips: {d.num_frames} frames at {d.fps:g} fps, {d.crop_size} x {d.crop_size} pixels; "
    f"audio {d.n_mels} mel bands; K = {d.num_candidates} narrations per clip"
)

# %% [markdown]
# ## 2. Inside the video backbone
#
# The paper uses two families of video backbone, and the kit has both at every size:
#
# * **TSM-ResNet**, the lite model's: a 2-D ResNet applied to every frame, in which each block shifts an eighth of
#   its channels one frame forward and an eighth one frame back (the *temporal shift module*). Neighbouring frames
#   mix at no extra cost, so a 2-D network sees motion. The lite one has 10 layers, a quarter of the paper's channels,
#   and a first convolution of stride 1 (32-pixel frames have no detail to spare).
# * **S3D-G**, an Inception-style 3-D network: each block convolves space (k × k) and time (k × 1 × 1) separately, and
#   a *self-gating* layer re-weights channels by a summary of the whole clip.
#
# Watch the shapes: every stage halves the resolution while the number of channels grows; the last step averages
# over what is left. The TSM keeps all its frames to the end; S3D-G also halves time.
#
# **Predict, then run.** What shape does `f_v` have for a batch of 2 clips, and how many frames are left at the TSM's last stage?

# %%
from mmv_lite.models.s3dg import s3dg

with torch.no_grad():
    tsm_endpoints = model.video_backbone(batch["video"].to(DEVICE), return_endpoints=True)
    s3dg_endpoints = s3dg(width=0.25).eval()(torch.rand(1, 3, 16, 64, 64), return_endpoints=True)
fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 6.4))
viz.show_endpoint_shapes(tsm_endpoints, ax=a1, title="lite TSM-ResNet: channels (bars) vs positions T×H×W (line)")
viz.show_endpoint_shapes(s3dg_endpoints, ax=a2, title="S3D-G (width 0.25, a 16-frame 64-pixel clip)")
plt.show()

# %% [markdown]
# Why is the lite model a TSM-ResNet and not S3D-G? Trained with labels on the sample world's 32-pixel clips, the
# small TSM-ResNet tells the objects' shapes apart within a few hundred steps, while a small S3D-G learns the motion
# but hardly the shapes in the same budget (`bench/legibility.py`, docs/BENCHMARKS.md). Both are MMV's.
#
# **Try this.** Feed a longer clip to the TSM: `torch.rand(1, 3, 16, 32, 32)`. Which endpoints change shape, and does
# the final feature `f_v` change size? (It should not: the final mean over T, H, W makes the feature independent of
# the clip length, which is what lets notebook 05 turn the video network into an image network.)
#
# ## 3. Three embedding graphs
#
# Where should the three modalities meet? The paper compares three designs (its Figure 1):
#
# * **shared**: one space for everything. Simple, but audio and text are forced into the same granularity as video.
# * **disjoint**: one space per pair (va and vt). Audio and text never meet, so "find the sound of this sentence"
#   is impossible.
# * **FAC, fine and coarse**: video and audio meet in a *fine* space $S_{va}$ (sounds tell fine differences, like a
#   flute from a clarinet); from there a head $g_{va\to vat}$ leads to a *coarse* space $S_{vat}$ shared with text
#   (words name coarse categories). Text is compared with the video's coarse embedding only.
#
# The arrows are the heads; the labels are the paper's names.

# %%
fig = viz.draw_embedding_graphs()
plt.show()

# %% [markdown]
# The diagram is drawn from the same table the code uses to decide which embeddings to compare
# (`mmv_lite.graphs.GRAPHS`). In FAC, audio can reach $S_{vat}$ through $g_{va\to vat}$ although no loss ever
# compares audio with text: that is how notebook 06 retrieves narrations from sounds *zero-shot*. The model computes
# that path (`z_a_vat`) only in evaluation mode, so training statistics come from video alone.

# %%
rows = []
for graph in ("shared", "disjoint", "fac"):
    g = build_model(cfg, graph=graph, word_vectors=wv.as_tensor()).to(DEVICE)
    for mode_name, train in (("training", True), ("evaluation", False)):
        g.train(train)
        with torch.no_grad():
            keys = sorted(k for k in g(**{k: v.to(DEVICE) for k, v in batch.items()}) if k.startswith("z_"))
        rows.append({"graph": graph, "mode": mode_name, "embeddings": ", ".join(keys)})
display(HTML(viz.html_table(rows)))

# %% [markdown]
# ### Exercise: the FAC embeddings from the heads
#
# Write `fac_embeddings(heads, f_v, f_a, f_t)` as the FAC graph computes it in evaluation mode. `heads` holds the
# four heads by their paper names, each a layer on the last axis: `heads["g_v_to_va"]` ($f_v \to S_{va}$),
# `heads["g_a_to_va"]` ($f_a \to S_{va}$), `heads["g_va_to_vat"]` ($S_{va} \to S_{vat}$) and
# `heads["g_t_to_vat"]` ($f_t \to S_{vat}$). Return the dict of `z_v_va`, `z_a_va`, `z_v_vat`, `z_a_vat` and
# `z_t_vat`:
# * the composed path goes through a ReLU: $z_{v,vat} = g_{va\to vat}(\mathrm{relu}(z_{v,va}))$;
# * audio takes the same path from $z_{a,va}$ (the zero-shot route to text);
# * `f_t` is `(B, K, d_t)` and `z_t_vat` keeps the K candidates; nothing is normalised.
#
# The check runs your function on random features and small random heads and compares it with the library's FAC
# graph (`mmv_lite.models.heads.EmbeddingGraph`); the last cell reveals a solution.

# %%
from mmv_lite import exercises


@exercises.exercise("fac")
def fac_embeddings(heads, f_v, f_a, f_t):
    raise NotImplementedError("your code here: return the dict of the five embeddings")


# %%
exercises.check("fac", fac_embeddings)

# %%
exercises.reveal("fac")

# %% [markdown]
# ## 4. How big is it? Lite versus the paper
#
# The `lite` preset is built from the same code as the paper's models, but it is not the paper's network shrunk
# evenly: its video network is a **10-layer** TSM-ResNet (the paper's has 50) with a quarter of the channels
# (`video_width=0.25`) and a first convolution of **stride 1** (the paper's has stride 2), its audio ResNet is
# shallower and its spaces are smaller, so it trains on a laptop CPU in minutes. The paper's models are the same code
# with the paper's numbers (`get_config("s3dg")`, `"tsm_r50"`, `"tsm_r50x2"`). We can count their parameters without allocating a
# single weight by building them on PyTorch's `meta` device, which records shapes only.
#
# **Predict, then run.** How many times more parameters than `lite` does the paper's S3D-G model have: 10x, 100x, 1,000x?

# %%
counts = {}
for preset in ("lite", "s3dg", "tsm_r50", "tsm_r50x2"):
    with torch.device("meta"):
        counts[preset] = parameter_counts(build_model(preset, vocab_size=len(wv)))
fig = viz.show_parameter_counts(counts)
plt.show()
total = {preset: sum(c.values()) for preset, c in counts.items()}
print("trainable parameters:", {p: f"{n / 1e6:.2f} M" for p, n in total.items()})
print(f"the paper's S3D-G model is {total['s3dg'] / total['lite']:.0f} times the lite model")

# %% [markdown]
# The paper's S3D-G video backbone has 9.16 M parameters and TSM-ResNet50 23.5 M (both match the official code's
# counts); the audio ResNet-50 alone is as large as TSM-ResNet50. The ratio printed above compares the whole lite
# model with the paper's S3D-G model. The word vectors are not counted: they are frozen.
#
# **Try this.**
# * Build `build_model("lite", video_width=0.5)` on the meta device and count again: how do the parameters of a
#   convolution grow with the width?
# * Build a `disjoint` model and compare the size of its heads with FAC's: which one has more, and why?

# %% [markdown]
# ## 5. Use the released MMV weights
#
# DeepMind released the paper's three best networks (S3D-G, TSM-ResNet50, TSM-ResNet50x2, all trained on
# HowTo100M + AudioSet with the FAC graph) as Haiku pickles, under CC BY-NC 4.0. `load_official` turns one into the
# very `MMV` class above, with every tensor mapped (convolution layouts, BatchNorm statistics, the temporal shift's
# channel order) and checked against the official code. It reads the pickle with a restricted unpickler that rebuilds
# only arrays and plain containers, so a file that asks for anything else is refused instead of run.
#
# Nothing here downloads by itself. On Colab, set `DOWNLOAD_RELEASED = True` to fetch the S3D-G file (about 60 MB) and
# look at a real pretrained network; otherwise the cell builds the released architecture on the meta device and shows
# what `load_official` will fill.

# %%
from pathlib import Path

from mmv_lite.official import RELEASE_URL, build_official_model, load_official

DOWNLOAD_RELEASED = False  # set True on Colab to download mmv_s3d.pkl (CC BY-NC 4.0)
released = Path("mmv_s3d.pkl")
if DOWNLOAD_RELEASED and not released.exists():
    import urllib.request

    urllib.request.urlretrieve(RELEASE_URL.format(file=released.name), released)

if released.exists():
    official = load_official(released, device=DEVICE)
    with torch.no_grad():
        out = official(video=torch.rand(1, 3, 32, 224, 224, device=DEVICE))
    print({k: tuple(v.shape) for k, v in out.items()})
else:
    with torch.device("meta"):
        official = build_official_model("s3d")
    stem = official.video_backbone.Conv2d_1a_7x7.conv
    print(f"released S3D-G: {parameter_counts(official)}")
    print(f"its first layer (the release's space-to-depth stem, as an RGB convolution): {stem}")

# %% [markdown]
# The released S3D-G differs from a freshly built one in one layer: it was trained on *space-to-depth* input, so its
# first convolution is a 4 x 8 x 8 kernel with stride 2 rather than 7 x 7 x 7; everything after it is the same network.
# [docs/OFFICIAL_WEIGHTS.md](../docs/OFFICIAL_WEIGHTS.md) has the download links and the equivalence numbers.
#
# ## What we learned
# * Each modality has a backbone: a TSM-ResNet or S3D-G for frames `(3, T, H, W) -> f_v`, a ResNet for the log-mel
#   spectrogram `(1, F, n_mels) -> f_a`, and a word2vec tower that max-pools over words `(K, L) -> f_t (K, ·)`.
# * Heads map features into shared spaces; the embeddings `z_{m}_{space}` leave the model unnormalised and are
#   compared by cosine similarity.
# * The embedding graph decides who meets whom: *shared* (one space), *disjoint* (va and vt), *FAC* (fine va, then
#   coarse vat). Only shared and FAC can compare audio with text.
# * The lite model is the same code as the paper's models, but shallower (a 10-layer video network), narrower and
#   with a stride-1 stem; the meta device counts the big models for free.
# * `load_official` puts DeepMind's released weights into the same PyTorch model.
#
# Next: **02 · the losses** that pull the modalities of one moment together.
