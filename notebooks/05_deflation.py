# %% [markdown]
# # 05 · Deflation: the video network, applied to single images
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](../README.md#colab)
#
# **Learning goals.** After this notebook you can
# 1. turn a trained 3D video network into a 2D image network by summing every 3D kernel over time (*deflation*),
#    and switch an MMV model between video and image input with one call;
# 2. explain why this naive deflation is not the same function as the video network on a still image: the zero
#    padding at the clip's borders in time;
# 3. shrink the gap the paper's way: keep every weight and learn only BatchNorm's scale and offset so that the
#    image network imitates the video network on a static clip;
# 4. (notebook 05b) measure the three options (naive, calibrated, the video network on a static clip) with an
#    image-classification probe, against chance, and compare with the paper's Table 3.
#
# Why bother? MMV learns from videos only, yet the paper reports strong *image* results (PASCAL VOC, ImageNet):
# a network trained on moving pictures, applied to still ones. This notebook uses the trained checkpoint
# `data_samples/mmv_lite_fac.pt` (notebook 03) and the sample clips' frames as images.

# %%
# Set-up. On Colab: use the kit already in /content (an uploaded mmv_lite.zip, unzipped here; a clone) or on Drive, else clone the repository this notebook's "Open in Colab" badge names; then install what Colab lacks, never torch or ipywidgets (mmv_lite/colab.py).
if "google.colab" in __import__("sys").modules:
    # fmt: off
    import glob, re, subprocess, sys; from google.colab import _message; find = lambda: sorted(glob.glob("/content/*/mmv_lite/colab.py")) + sorted(glob.glob("/content/drive/MyDrive/*/mmv_lite/colab.py")); [subprocess.run(["unzip", "-qn", z, "-d", "/content"], check=True) for z in sorted(glob.glob("/content/mmv_lite*.zip"))[:1] if not find()]
    kit = (find() + [""])[0][:-18]; repo = kit or re.search(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", str(_message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]["cells"][0])) or sys.exit("No copy of mmv_lite in /content or on Drive, and this notebook's badge names no published repository. Three ways (README.md, 'Colab'): 1. upload mmv_lite.zip (python -m mmv_lite bundle --out mmv_lite.zip) in the Files pane and run this cell again; 2. put the unzipped mmv_lite folder in MyDrive, mount Drive (drive.mount('/content/drive')) and run this cell again; 3. a fork: set Repository under [project.urls] in pyproject.toml to its address, run python -m mmv_lite.tools.notebook_pairs --sync, push, and open the notebook from its badge.")
    kit or subprocess.run(f"git clone -q --depth 1 -b {repo[2]} https://github.com/{repo[1]} /content/mmv_lite", shell=True, check=True); kit = kit or "/content/mmv_lite"; sys.path.insert(0, kit); from mmv_lite.colab import setup_colab; setup_colab(kit)

# %%
# Parameters. MMV_LITE_MODE=quick|full (default: full on a GPU, quick on a CPU).
# Full mode's budget: the full BatchNorm calibration, 64 profile images; about a minute on a T4 by estimate
# (docs/BENCHMARKS.md, "Full mode on a free GPU").
import mmv_lite  # noqa: F401  (first: it sets the threading policy before torch loads)
import matplotlib.pyplot as plt
import numpy as np
import torch

from mmv_lite import viz
from mmv_lite.checkpoints import load_model
from mmv_lite.colab import run_mode, samples_dir
from mmv_lite.embedding import embed_dataset
from mmv_lite.evaluate import load_eval_datasets
from mmv_lite.images import boundary_profile, gap_by_clip_length
from mmv_lite.models.deflation import calibrate_deflated_bn, deflate, deflation_gap
from mmv_lite.models.deflation import CALIB_STEPS as LIBRARY_CALIB_STEPS
from mmv_lite.runtime import select_device

MODE = run_mode()
QUICK = MODE == "quick"
DEVICE = select_device()
SAMPLES = samples_dir()
# BatchNorm calibration steps (Adam on gamma/beta only); the TSM-ResNet's L1 is flat after ~100 (docs/RESULTS.md)
CALIB_STEPS = 40 if QUICK else LIBRARY_CALIB_STEPS
CALIB_IMAGES = 64 if QUICK else 1024  # frames of training clips used for the calibration
PROFILE_IMAGES = 8 if QUICK else 64  # images for the boundary figures
LENGTHS = (8, 16, 32, 64) if QUICK else (8, 16, 32, 64, 128)  # static-clip lengths compared with the image net
model, cfg, vocab = load_model(SAMPLES / "mmv_lite_fac.pt", device=DEVICE)
T = cfg.data.num_frames  # the clip length the network was trained on
print(f"mode={MODE}  device={DEVICE}  video backbone={cfg.model.video_backbone}  clips of {T} frames")

# %% [markdown]
# ## 1. The images: one frame per clip
#
# Each clip of the sample world shows one object (its *shape* is the image label: circle, square, star, ...) moving
# on a background. A single frame shows the shape but not the motion. We embed the train and test clips once,
# keeping each clip's middle frame: those frames are our image data set, labelled by shape.

# %%
words = model.text_backbone.word_vectors  # narrations are tokenised with the model's own vocabulary
splits = load_eval_datasets(SAMPLES, cfg, ["train", "test"], vocab=vocab, word_matrix=words)
emb = {}
for name, ds in splits.items():  # a few seconds per split on a quiet laptop CPU; more on a busy one
    emb[name] = embed_dataset(model, ds, device=DEVICE, keep_frames=True, progress=f"{name} clips")
shape_names = splits["test"].class_names["image"]
print({name: tuple(e["frames"].shape) for name, e in emb.items()}, "shapes:", shape_names)
test_frames = emb["test"]["frames"]
fig, axes = plt.subplots(1, 8, figsize=(12, 1.9))
for ax, i in zip(axes, np.linspace(0, len(test_frames) - 1, 8).round().astype(int)):
    ax.imshow(test_frames[i].permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(shape_names[int(emb["test"]["image_label"][i])], fontsize=9)
    ax.set_axis_off()
fig.suptitle("test images (middle frames of test clips), titled by their label", fontsize=10, x=0.01, ha="left")
plt.show()

# %% [markdown]
# ## 2. From a 3D kernel to a 2D kernel
#
# A 3D convolution with kernel $W_\tau$ ($\tau$ runs over the kernel's time steps) applied to a **static clip**, the
# same image $x$ at every frame, gives at frame $t$
#
# $$y_t = \sum_\tau W_\tau * x_{t+\tau} = \Big(\sum_\tau W_\tau\Big) * x ,$$
#
# a 2D convolution with the summed kernel. So S3D-G *deflates*: sum every kernel over time, drop the temporal
# strides and the time axis of the pools, and the result is an ordinary image network. A **TSM-ResNet** (the paper's
# other video network, and the `lite` preset's) has 2D kernels already, applied to each frame; time enters only
# through the *temporal shift*, which moves a few channels one frame forward or back before some convolutions. On a
# static clip every frame is the same, so the shift changes nothing, except where it reaches past the clip's ends;
# deflating a TSM-ResNet means switching the shift off. `deflate` builds the image network with its own copy of
# every weight:

# %%
video_net = model.video_backbone.eval()
naive_net = deflate(video_net).eval()
print(f"video backbone {type(video_net).__name__} -> image network {type(naive_net).__name__}")
if hasattr(video_net, "Conv2d_1a_7x7"):  # S3D-G: 3D kernels, summed over time
    w3, w2 = video_net.Conv2d_1a_7x7.conv.weight, naive_net.Conv2d_1a_7x7.conv.weight
    print(f"first conv: video kernel {tuple(w3.shape)} (out, in, T, H, W) -> image kernel {tuple(w2.shape)}")
    print(f"summed over time: {torch.allclose(w3.sum(2), w2)}")
else:  # TSM-ResNet: the same 2D kernels; only the shift is gone
    video_w, image_w = video_net.state_dict(), naive_net.state_dict()
    same = all(torch.equal(video_w[k], image_w[k]) for k in image_w)
    print(f"{len(image_w)} tensors of weights and statistics, every one unchanged: {same}")

# %% [markdown]
# ### Exercise: deflate one 3D convolution
#
# Write `deflate_conv(conv3d)`: given an `nn.Conv3d` with kernel $k_T \times k_H \times k_W$, return the `nn.Conv2d`
# that does on an image what the 3D convolution does on a static clip of that image, far from the clip's ends. Sum
# the kernel over its time axis (the weight is `(out, in, kT, kH, kW)`), keep the spatial stride and padding, copy
# the bias, and leave `conv3d` itself unchanged. The check compares your convolution with the library's deflation
# (`mmv_lite.models.deflation`) and with the 3D convolution on static clips, for kernels with and without temporal
# padding, temporal stride and bias.

# %%
from mmv_lite import exercises


@exercises.exercise("deflate")
def deflate_conv(conv3d):
    raise NotImplementedError("your code here: return an nn.Conv2d")


# %%
exercises.check("deflate", deflate_conv)

# %%
exercises.reveal("deflate")

# %% [markdown]
# ## 3. Why naive deflation is not the video network on a still image
#
# The equation above holds only where the kernel's time window lies **inside** the clip. At the first and last
# frames the window reaches past the clip, where the video network sees *zero padding*, not more copies of the
# image. In S3D-G, kernels of 3 to 7 frames and the self-gating (a mean over all frames) carry that far into an
# 8-frame clip. In a TSM-ResNet the first frame's forward-shifted channels and the last frame's backward-shifted ones
# come from beyond the clip, zeros; every block shifts again, so the border effect creeps one frame further in per
# block.
#
# Below: the image repeated 16 times as a static clip through the video network, compared frame by frame with the
# deflated network on the image alone, at three depths (left), and averaged over frames at every layer (right).
#
# **Predict, then run.** At the first stage and at the last, which of the 16 frames will differ? And in an 8-frame
# clip?

# %%
probe_images = test_frames[:: max(1, len(test_frames) // PROFILE_IMAGES)][:PROFILE_IMAGES].to(DEVICE)
profile = boundary_profile(video_net, naive_net, probe_images, num_frames=16)
ends = list(profile)  # the endpoints, input to output
fig = viz.show_boundary_profile(profile, num_frames=16, endpoints=[ends[0], ends[len(ends) // 2], ends[-1]])
plt.show()
print("relative L1 difference per frame (%), 16-frame static clip:")
for name, d in profile.items():
    print(f"{name:>12}: " + " ".join(f"{100 * x:4.1f}" for x in d))
last = boundary_profile(video_net, naive_net, probe_images, num_frames=T)[ends[-1]]  # the trained clip length
print(f"{ends[-1]:>12}, {T}-frame clip: " + " ".join(f"{100 * x:4.1f}" for x in last))

# %% [markdown]
# The printed rows: before the first shift (the stem and its pool) the two networks agree at every frame. From the
# first block on, the border frames differ, and each stage reaches one frame further in; in a 16-frame clip the
# middle frames still agree exactly at the last stage. The last row is the 8-frame clip the network was trained
# on: there the borders reach every frame, most at the two ends, least in the middle. The deflated network is the
# video network on an **endless** static clip, with no borders at all. The longer the static clip, the less its
# borders weigh, and the closer the two networks get:

# %%
gaps = gap_by_clip_length(video_net, naive_net, probe_images, lengths=LENGTHS)
fig = viz.show_gap_by_length(gaps, trained_length=T)
plt.show()

# %% [markdown]
# The network was trained on 8-frame clips: the function it learned, heads and downstream uses included, is the
# one *with* those borders. Naive deflation hands the heads features of another scale and offset per channel.
#
# Notebook **05b** deflates the TSM another way (the shifted channels scaled, as in DeepMind's later code).
#
# ## 4. Switching the model between video and image mode
#
# One call switches an MMV model's video input to images: `model.set_image_mode(True)` plugs in a naive deflation
# (or pass your own image network), `model.set_image_mode(None)` switches back. In image mode `model(video=...)`
# takes `(B, 3, H, W)` images and returns the same embeddings as for video, in the same spaces:

# %%
images = test_frames[:4].to(DEVICE)
model.set_image_mode(True)  # naive deflation
with torch.no_grad():
    out = model(video=images)
print("image mode:", model.image_mode, {k: tuple(v.shape) for k, v in out.items()})
model.set_image_mode(None)  # back to video
print("image mode:", model.image_mode)

# %% [markdown]
# ## 5. Calibration: learn BatchNorm's scale and offset
#
# The paper's fix keeps every weight of the deflated network and learns new BatchNorm $\gamma, \beta$ (one scale
# and one offset per channel) by minimising the L1 distance between `deflated(image)` and
# `video_net(image repeated as a static clip)`. It needs no labels and little data: we use frames of training clips
# and check the gap on held-out test frames.
#
# **Predict, then run.** By what factor will calibration shrink the held-out L1 gap: 1.5x, 5x, 50x?

# %%
train_frames = emb["train"]["frames"]
calib_frames = train_frames[np.linspace(0, len(train_frames) - 1, min(CALIB_IMAGES, len(train_frames))).astype(int)]
calibrated_net = deflate(video_net).eval()
report = calibrate_deflated_bn(
    calibrated_net, video_net, calib_frames.to(DEVICE), steps=CALIB_STEPS, num_frames=T, batch_size=16, progress=True
)
held_out = (
    deflation_gap(naive_net, video_net, test_frames.to(DEVICE), num_frames=T),
    deflation_gap(calibrated_net, video_net, test_frames.to(DEVICE), num_frames=T),
)
fig = viz.show_calibration(report["history"], report["before"], report["after"], held_out=held_out)
plt.show()
print(f"held-out L1 gap: naive {held_out[0]:.4f} -> calibrated {held_out[1]:.4f} ({held_out[0] / held_out[1]:.1f}x)")

# %% [markdown]
# **Try this.**
# * Calibrate with `steps=5` and with `num_frames=32`. With 32 frames the target is a longer static clip: is the
#   naive gap smaller to start with (section 3)?
# * Deflate an *untrained* network (`build_model(cfg, word_vectors=...)`): is the boundary effect (section 3)
#   a property of training or of the architecture?
#
# ## What we learned
# * Summing a 3D kernel over time (S3D-G) or switching off the temporal shift (TSM-ResNet) gives the network a static
#   clip would see; `deflate` does it for every layer and `model.set_image_mode(...)` switches an MMV model to image
#   input in one call.
# * The deflated network equals the video network on an endless static clip; on the 8-frame clips of training, zero
#   padding in time at the borders (S3D-G's kernels and gates, TSM's shift) makes the two differ, more with depth.
# * Learning only BatchNorm's scale and offset on a few unlabelled frames shrinks the L1 gap, on held-out frames too
#   (section 5, printed); whether that buys accuracy, and a frame that finds its own clip, notebook 05b measures.
#
# Next: **05b**: the three image networks measured (a probe, the paper's Table 3, search by frame), and a TSM
# deflated another way.
