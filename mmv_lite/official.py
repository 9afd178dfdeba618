"""Run the released MMV weights (Haiku/JAX pickles) in PyTorch.

DeepMind released three pretrained MMV networks, trained on HowTo100M + AudioSet with the ``fac_relu`` graph:

==========================  ==========================  ==========
file                        video backbone              d_v
==========================  ==========================  ==========
``mmv_s3d.pkl``             S3D-G                       1024
``mmv_tsm_resnet_x1.pkl``   TSM-ResNet50                2048
``mmv_tsm_resnet_x2.pkl``   TSM-ResNet50x2              4096
==========================  ==========================  ==========

from ``https://storage.googleapis.com/deepmind-research-mmv/<file>`` (weights under CC BY-NC 4.0). Each is a pickle of
``{"params": ..., "state": ...}`` in Haiku naming. :func:`load_official` reads one **without executing code from it**
(:class:`~mmv_lite.official_files.RestrictedUnpickler` rebuilds only numpy arrays and plain containers) and returns
an ``MMV`` in eval mode::

    from mmv_lite.checkpoints import load_official
    model = load_official("mmv_s3d.pkl")                 # backbone chosen from the checkpoint's names
    out = model(video=video, audio=audio)                # z_v_va, z_a_va, z_v_vat, z_a_vat, f_v, f_a

How Haiku tensors become PyTorch tensors
----------------------------------------
- Linear ``w [in, out]`` -> ``weight [out, in]``; Conv3D ``w [kT, kH, kW, in, out]`` -> ``[out, in, kT, kH, kW]``;
  Conv2D ``w [kH, kW, in, out]`` -> ``[out, in, kH, kW]``; the text tower's Conv1D ``w [1, 300, d_t]`` is a
  per-token linear.
- BatchNorm ``scale``/``offset`` (shape ``[1, ..., 1, C]``) -> ``weight``/``bias``; the state's
  ``mean_ema/average`` and ``var_ema/average`` -> ``running_mean``/``running_var`` (``counter`` and ``hidden`` only
  drive the moving average during training and are not needed).
- TSM: the official shift writes its output channels in the order [from t+1 (the *last* n input channels),
  unshifted middle, from t-1 (the *first* n)], a permutation of the input channels. Our shift keeps every channel
  in place, so the importer permutes the input channels of the ``conv_0`` that reads the shifted tensor.
- S3D-G: the released network was trained on *space-to-depth* input (frames folded 2 x 2 x 2 into 24 channels,
  first conv ``[2, 4, 4, 24, 64]`` at stride 1). That layer is exactly a ``4 x 8 x 8`` convolution at stride 2 with
  padding ``(0, 2)`` in time and ``(2, 4)`` in space on the RGB frames: :func:`space_to_depth_kernel` unfolds the
  kernel and :class:`~mmv_lite.models.s3dg.ReleasedS3DGStem` is the layer that replaces our S3D-G's
  ``Conv2d_1a_7x7.conv``.
- Heads of the ``fac_relu`` graph (official module names): ``vid2audio_embd`` = g_v->va (MLP), ``audio_embd`` =
  g_a->va, ``vis_embd`` = g_va->vat (Linear + BN), ``txt_embd`` = g_t->vat. The checkpoint also holds
  ``audio2txt_embd`` and ``txt2audio_embd``: audio-text heads the ``fac`` graph never uses (audio reaches S_vat
  through g_va->vat); they are reported as skipped, never silently dropped.
- Text: the pickle holds the word matrix the text tower was trained with (65,536 x 300 in the official code; frozen
  word2vec vectors, GoogleNews in the paper), but not the vocabulary (which word each row is). Pass word vectors with
  their words to embed sentences (``load_official(path, word_vectors=...)``); :func:`release_vocabulary` names the
  release's rows that equal one of those vectors.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .graphs import GRAPHS
from .models.heads import LinearHead, MLPHead
from .models.mmv import build_model
from .official_files import (
    OFFICIAL_VOCAB_SIZE,
    OFFICIAL_WORD_DIM,
    RELEASE_URL,
    RELEASES,
    OfficialCheckpointError,
    canonicalize,
    detect_backbone,
    read_official,
)
from .runtime import to_numpy

__all__ = [
    "RELEASE_URL",
    "RELEASES",
    "LoadReport",
    "OfficialCheckpointError",
    "build_official_model",
    "load_official",
    "map_official",
    "official_module_name",
    "release_vocabulary",
    "space_to_depth_kernel",
]

# The released S3D-G stem: a space-to-depth convolution, unfolded into a convolution on RGB frames
# ----------------------------------------------------------------------------------------------------------------


def space_to_depth_kernel(w: np.ndarray) -> np.ndarray:
    """Unfold the released stem kernel ``[2, 4, 4, 24, C]`` (space-to-depth input) into ``[C, 3, 4, 8, 8]`` (RGB).

    The official input fold puts frame ``2t + dt``, row ``2h + dh``, column ``2w + dw``, colour ``c`` at channel
    ``((dt * 2 + dh) * 2 + dw) * 3 + c`` of folded position ``(t, h, w)`` (``eval_ucf101.space_to_depth_batch``).
    Tap ``(a, b, e)`` of the folded kernel over channel ``(dt, dh, dw, c)`` therefore weighs RGB tap
    ``(2a + dt, 2b + dh, 2e + dw)``.
    """
    w = np.asarray(w)
    if w.shape[:4] != (2, 4, 4, 24):
        raise OfficialCheckpointError(f"space-to-depth stem kernel must be [2, 4, 4, 24, C], got {list(w.shape)}")
    c_out = w.shape[4]
    # [a, b, e, dt, dh, dw, c, o] -> [o, c, a, dt, b, dh, e, dw] -> [o, c, 2a+dt, 2b+dh, 2e+dw]
    x = w.reshape(2, 4, 4, 2, 2, 2, 3, c_out).transpose(7, 6, 0, 3, 1, 4, 2, 5)
    return np.ascontiguousarray(x.reshape(c_out, 3, 4, 8, 8))


# ----------------------------------------------------------------------------------------------------------------
# Mapping: our state-dict keys <- canonical official keys
# ----------------------------------------------------------------------------------------------------------------

# Official leaves that are deliberately not loaded, and why.
_SKIPPED_LEAVES = {
    "mean_ema.counter": "moving-average bookkeeping (training only)",
    "mean_ema.hidden": "moving-average bookkeeping (training only)",
    "var_ema.counter": "moving-average bookkeeping (training only)",
    "var_ema.hidden": "moving-average bookkeeping (training only)",
}
_SKIPPED_MODULES = {
    "audio2txt_embd/": "audio->text head of the official code; the fac graph never uses it (audio reaches S_vat "
    "through g_va_to_vat)",
    "txt2audio_embd/": "text->audio head of the official code; the fac graph never uses it",
}

# Our fac head -> (its official module, {our sub-module: official sub-module}), from the graph table.
_HEAD_CLASS = {"video": MLPHead, "linear": LinearHead, "linear_bn": LinearHead}  # the release's video heads are MLPs
_FAC_HEADS = {h.name: (h.official, _HEAD_CLASS[h.form].OFFICIAL_NAMES) for h in GRAPHS["fac"].heads}
_RESNET_BLOCK = {"bn_0": "bn", "bn_1": "bn_1", "bn_2": "bn_2", "conv_0": "conv_0", "conv_1": "conv_1",
                 "conv_2": "conv_2", "shortcut_conv": "shortcut_conv"}  # fmt: skip
_S3DG_UNIT = {"conv": "conv3_d", "conv_t": "conv3_d_1", "bn": "bn", "bn_t": "bn_1", "self_gating": "self_gating"}


def official_module_name(ours: str) -> str:
    """The canonical official module for one of our module paths (as in ``model.named_modules()``).

    >>> official_module_name("video_backbone.Mixed_4b.Branch_1_Conv2d_0b_3x3.conv_t")
    'visual_module/S3D/Mixed_4b/Branch_1_Conv2d_0b_3x3/conv3_d_1'
    >>> official_module_name("audio_backbone.units.2.0.bn_0")
    'audio_module/res_net_v2/block_group_2/block_0/bn'
    """
    parts = ours.split(".")
    head, rest = parts[0], parts[1:]
    if head == "heads" and len(rest) == 3 and rest[0] == "heads" and rest[1] in _FAC_HEADS:
        module, subs = _FAC_HEADS[rest[1]]
        if rest[2] in subs:
            return f"{module}/{subs[rest[2]]}"
    elif head == "text_backbone" and rest == ["text_conv1"]:
        return "text_module/text_conv1"
    elif head in ("video_backbone", "audio_backbone") and rest:
        if rest[0] in ("stem", "bn_out", "units"):  # ResNet-V2 / TSM-ResNet
            root, stem, unit = (
                ("visual_module/TSMResNetV2", "tsm_resnet_stem", "tsm_resnet_unit_")
                if head == "video_backbone"
                else ("audio_module/res_net_v2", "initial_conv", "block_group_")
            )
            if rest == ["stem"]:
                return f"{root}/{stem}"
            if rest == ["bn_out"]:
                return f"{root}/bn"
            if len(rest) == 4 and rest[0] == "units" and rest[3] in _RESNET_BLOCK:
                _, i, j, leaf = rest
                return f"{root}/{unit}{i}/block_{j}/{_RESNET_BLOCK[leaf]}"
        elif head == "video_backbone" and rest[-1] in _S3DG_UNIT:  # S3D-G unit, possibly inside a Mixed block
            return "visual_module/S3D/" + "/".join(rest[:-1]) + "/" + _S3DG_UNIT[rest[-1]]
    raise OfficialCheckpointError(f"no official counterpart known for our module {ours!r}")


@dataclass
class LoadReport:
    """What :func:`map_official` did. ``loaded``: our key -> official Haiku key (or the source it came from);
    ``skipped``: official key -> why it was not needed; ``untouched``: our keys the release has no value for."""

    backbone: str
    loaded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    untouched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    vocab: list[str] | None = None  # the words of the text tower's rows, when word_vectors came with words

    def summary(self) -> str:
        reasons = collections.Counter(self.skipped.values())
        lines = [f"{self.backbone}: {len(self.loaded)} tensors loaded, {len(self.skipped)} checkpoint entries skipped"]
        lines += [f"  skipped {n}: {why}" for why, n in reasons.items()]
        if self.untouched:
            lines.append(
                f"  {len(self.untouched)} of our buffers have no release value (BatchNorm num_batches_tracked)"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _vec(w: np.ndarray, key: str) -> np.ndarray:
    if any(d != 1 for d in w.shape[:-1]):
        raise OfficialCheckpointError(f"{key}: expected shape [1, ..., 1, C], got {list(w.shape)}")
    return w.reshape(-1)


def _conv(w: np.ndarray, key: str) -> np.ndarray:
    # Haiku [*kernel, in, out] -> PyTorch [out, in, *kernel]
    if w.ndim < 3:
        raise OfficialCheckpointError(f"{key}: expected a convolution kernel [..., in, out], got {list(w.shape)}")
    return w.transpose(w.ndim - 1, w.ndim - 2, *range(w.ndim - 2))


def _linear(w: np.ndarray, key: str) -> np.ndarray:
    if w.ndim != 2:
        raise OfficialCheckpointError(f"{key}: expected a linear weight [in, out], got {list(w.shape)}")
    return w.T


def _conv1d_as_linear(w: np.ndarray, key: str) -> np.ndarray:
    if w.ndim != 3 or w.shape[0] != 1:
        raise OfficialCheckpointError(f"{key}: expected a width-1 Conv1D kernel [1, in, out], got {list(w.shape)}")
    return w[0].T


def _swap_shifted_channels(w: np.ndarray, fraction: float) -> np.ndarray:
    """Input channels of the conv after the official shift -> after ours (``[out, C, ...]``; first/last n swapped)."""
    c = w.shape[1]
    n = int(c * fraction)
    if n == 0:
        return w
    out = w.copy()
    out[:, :n], out[:, c - n :] = w[:, c - n :], w[:, :n]
    return out


def _plan(model) -> list[tuple[str, str, Any]]:
    """``[(our state-dict key, canonical official key, transform)]`` for every tensor of ``model``."""
    video = model.video_backbone
    shift = getattr(video, "shift_fraction", 0.0)
    plan = []
    for name, module in model.named_modules():
        if name.startswith("image_backbone"):
            continue
        is_bn = isinstance(module, nn.modules.batchnorm._BatchNorm)
        if not (is_bn or isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))):
            continue
        off = official_module_name(name)
        if is_bn:
            for ours, theirs in (("weight", "scale"), ("bias", "offset"), ("running_mean", "mean"),
                                 ("running_var", "var")):  # fmt: skip
                plan.append((f"{name}.{ours}", f"{off}:{theirs}", _vec))
            continue
        if off == "text_module/text_conv1":
            transform = _conv1d_as_linear
        elif isinstance(module, nn.Linear):
            transform = _linear
        elif name.startswith("video_backbone.units.") and name.endswith(".conv_0") and shift > 0:
            # conv_0 reads the temporally shifted tensor: undo the official channel order (see module docstring).
            def transform(w, key, _f=shift):
                return _swap_shifted_channels(_conv(w, key), _f)
        elif name == "video_backbone.Conv2d_1a_7x7.conv" and tuple(module.weight.shape[1:]) == (3, 4, 8, 8):
            transform = lambda w, key: space_to_depth_kernel(w)  # noqa: E731
        else:
            transform = _conv
        plan.append((f"{name}.weight", f"{off}:w", transform))
        if module.bias is not None:
            plan.append((f"{name}.bias", f"{off}:b", lambda w, key: w))
    plan.append(("text_backbone.word_vectors", "text_module/embed:embeddings", lambda w, key: w))
    return plan


def _limited(items: list[str], n: int = 12) -> str:
    more = f"\n    ... and {len(items) - n} more" if len(items) > n else ""
    return "\n    " + "\n    ".join(items[:n]) + more


def map_official(
    model, params: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray], *, word_vectors: Any = None
) -> tuple[dict[str, Any], LoadReport]:
    """Translate a checkpoint's ``params``/``state`` (flat Haiku keys) into a full state dict for ``model``.

    Every tensor of ``model`` must be filled (BatchNorm ``num_batches_tracked`` excepted: the release has no such
    counter) and every checkpoint entry must be used exactly once or skipped for a stated reason; otherwise
    :class:`OfficialCheckpointError` lists the missing names, the unused names and the shape mismatches.
    ``word_vectors``: a ``(V, 300)`` matrix used instead of the checkpoint's word matrix.
    """
    entries = canonicalize({**params, **state})
    ours = model.state_dict()
    report = LoadReport(backbone=detect_backbone({c: a for c, (_, a) in entries.items()}))
    out: dict[str, Any] = {}
    used: dict[str, str] = {}
    missing, mismatched = [], []
    for key, off, transform in _plan(model):
        if key == "text_backbone.word_vectors" and word_vectors is not None:
            value, source = np.asarray(word_vectors, dtype=np.float32), "word_vectors argument"
        elif off not in entries:
            missing.append(f"{key}  <-  {off}")
            continue
        else:
            if off in used:
                raise OfficialCheckpointError(f"checkpoint entry {off} would fill both {used[off]} and {key}")
            used[off] = key
            source, raw = entries[off]
            value = transform(raw, source)
        if tuple(value.shape) != tuple(ours[key].shape):
            mismatched.append(f"{key} {list(ours[key].shape)}  <-  {source} {list(value.shape)} (after layout change)")
            continue
        out[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        report.loaded[key] = source
    for off, (source, _) in entries.items():
        if off in used:
            continue
        module, _, leaf = off.rpartition(":")
        why = _SKIPPED_LEAVES.get(leaf) or next((r for p, r in _SKIPPED_MODULES.items() if off.startswith(p)), None)
        if off == "text_module/embed:embeddings" and word_vectors is not None:
            why = "replaced by the word_vectors argument"
        if why:
            report.skipped[source] = why
    unused = sorted(entries[off][0] for off in entries if off not in used and entries[off][0] not in report.skipped)
    for key, value in ours.items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = torch.zeros_like(value, device="cpu")
            report.untouched.append(key)
    unfilled = sorted(set(ours) - set(out) - {m.split("  <-  ")[0] for m in missing + mismatched})
    if missing or mismatched or unused or unfilled:
        msg = [f"the checkpoint does not fit the {report.backbone} MMV model:"]
        if missing:
            msg.append(
                f"  {len(missing)} of our tensors have no checkpoint entry (ours  <-  expected):{_limited(missing)}"
            )
        if mismatched:
            msg.append(f"  {len(mismatched)} shape mismatches:{_limited(mismatched)}")
        if unused:
            msg.append(f"  {len(unused)} checkpoint entries were not used:{_limited(unused)}")
        if unfilled:
            msg.append(f"  {len(unfilled)} of our tensors have no mapping:{_limited(unfilled)}")
        raise OfficialCheckpointError("\n".join(msg))
    return out, report


# ----------------------------------------------------------------------------------------------------------------
# The model and the entry point
# ----------------------------------------------------------------------------------------------------------------

# Our preset for each released backbone. The presets' heads (fac graph, mlp video head, d_va 512, d_vat 256,
# text 300 -> 2048) and audio ResNet-V2-50 are the released configuration.
PRESET_FOR = {"s3d": "s3dg", "tsm_x1": "tsm_r50", "tsm_x2": "tsm_r50x2"}

_TEXT_HELP = (
    "the release stores the word matrix its text tower was trained with (frozen word2vec vectors; GoogleNews in the "
    "paper) but not the vocabulary: text_ids index the matrix rows directly, and nothing in the file says which word "
    "a row is. To embed sentences, pass word vectors together with their words, e.g. "
    "load_official(path, word_vectors=WordVectors.load('GoogleNews-vectors-negative300.bin', limit=500_000)) "
    "(mmv_lite.data.text.WordVectors); the trained text layers then read those vectors"
)


def build_official_model(backbone: str, *, vocab_size: int = OFFICIAL_VOCAB_SIZE, space_to_depth_stem: bool = True):
    """An ``MMV`` with the released architecture of ``backbone`` (``"s3d"``, ``"tsm_x1"``, ``"tsm_x2"``).

    Built on the ``meta`` device (no memory, no initialisation): fill it with :func:`map_official` after
    ``model.to_empty(device=...)``. ``space_to_depth_stem``: give S3D-G the released first convolution
    (:class:`~mmv_lite.models.s3dg.ReleasedS3DGStem`) instead of the 7 x 7 x 7 one.
    """
    if backbone not in PRESET_FOR:
        raise ValueError(f"backbone={backbone!r}; expected one of {sorted(PRESET_FOR)}")
    stem = {"video_stem": "space_to_depth"} if backbone == "s3d" and space_to_depth_stem else {}
    with torch.device("meta"):
        # The stem lives in the config, so a loaded model saved with save_checkpoint rebuilds with load_model.
        model = build_model(PRESET_FOR[backbone], graph="fac", vocab_size=vocab_size, **stem)
    return model


def _as_matrix(word_vectors: Any) -> tuple[np.ndarray, list[str] | None]:
    if hasattr(word_vectors, "vectors") and hasattr(word_vectors, "vocab"):  # mmv_lite.data.text.WordVectors
        return np.asarray(word_vectors.vectors, dtype=np.float32), list(word_vectors.vocab)
    if torch.is_tensor(word_vectors):
        word_vectors = to_numpy(word_vectors)
    m = np.asarray(word_vectors, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] != OFFICIAL_WORD_DIM:
        raise ValueError(f"word_vectors must be a ({'V'}, {OFFICIAL_WORD_DIM}) matrix, got shape {m.shape}")
    return m, None


def load_official(
    path: str | Path,
    *,
    word_vectors: Any = None,
    device: Any = "cpu",
    return_report: bool = False,
):
    """Load a released MMV checkpoint into an ``MMV`` in eval mode (``model.training`` is False).

    Args:
        path: ``mmv_s3d.pkl``, ``mmv_tsm_resnet_x1.pkl`` or ``mmv_tsm_resnet_x2.pkl`` (any file name: the video
            backbone is read from the parameter names and shapes). Read with
            :class:`~mmv_lite.official_files.RestrictedUnpickler`.
        word_vectors: optional ``WordVectors`` or ``(V, 300)`` matrix (row 0 = padding) for the text tower,
            replacing the checkpoint's word matrix (which has no vocabulary; see below).
        device: where the model goes.
        return_report: also return the :class:`LoadReport` (which entry went where, what was skipped and why).

    The model takes ``video (B, 3, T, H, W)`` RGB in [0, 1] (the release's input; for S3D-G with even T, H, W),
    ``audio (B, 1, F, n_mels)`` log-mel and ``text_ids``/``text_mask``. Without ``word_vectors`` the text tower
    holds the release's word matrix: ids index its rows (row 0 counts as padding unless ``text_mask`` says
    otherwise), and no vocabulary comes with it.

    Raises:
        OfficialCheckpointError: missing file, wrong layout, missing/unused entries or shape mismatches (listed).
        pickle.UnpicklingError: the file asks for anything but numpy arrays and plain containers.
    """
    params, state = read_official(path)
    entries = canonicalize({**params, **state})
    backbone = detect_backbone({c: a for c, (_, a) in entries.items()})
    stem = entries.get("visual_module/S3D/Conv2d_1a_7x7/conv3_d:w")
    s2d = stem is not None and stem[1].shape[:4] == (2, 4, 4, 24)
    vocab = None
    if word_vectors is not None:
        matrix, vocab = _as_matrix(word_vectors)
    elif "text_module/embed:embeddings" in entries:
        matrix = None
    else:
        raise OfficialCheckpointError(
            f"{path}: no text_module/~/embed word matrix in the checkpoint; pass word_vectors=... ({_TEXT_HELP})"
        )
    rows = len(matrix) if matrix is not None else entries["text_module/embed:embeddings"][1].shape[0]
    model = build_official_model(backbone, vocab_size=rows, space_to_depth_stem=s2d)
    model.to_empty(device="cpu")
    try:
        state_dict, report = map_official(model, params, state, word_vectors=matrix)
    except OfficialCheckpointError as e:
        raise OfficialCheckpointError(f"{path}: {e}") from None
    model.load_state_dict(state_dict, strict=True)
    if s2d:
        report.notes.append(
            "S3D-G stem: the release's space-to-depth convolution, run as a 4x8x8 stride-2 convolution on RGB frames"
        )
    if matrix is None:
        report.notes.append(f"text: {rows} x {OFFICIAL_WORD_DIM} word matrix from the checkpoint; {_TEXT_HELP}")
    report.vocab = vocab
    model = model.to(device).eval()
    return (model, report) if return_report else model


def release_vocabulary(matrix: np.ndarray, word_vectors: Any) -> list[str | None]:
    """Name the rows of the release's word matrix: the word of ``word_vectors`` whose vector equals each row.

    ``matrix``: ``(V, 300)``, e.g. ``model.text_backbone.word_vectors`` of a model loaded without ``word_vectors``;
    ``word_vectors``: a ``WordVectors`` (e.g. GoogleNews word2vec loaded with ``WordVectors.load``). Returns one entry
    per row, ``None`` where no vector matches exactly (bit for bit). If most rows match, the release's token ids can be
    produced with that list; if none do, the release's vectors are not those vectors (e.g. normalised differently).
    """
    if not (hasattr(word_vectors, "vectors") and hasattr(word_vectors, "vocab")):
        raise TypeError("release_vocabulary needs a WordVectors (vectors and their vocab), e.g. WordVectors.load(...)")
    if torch.is_tensor(matrix):
        matrix = to_numpy(matrix)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    vectors = np.ascontiguousarray(word_vectors.vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != vectors.shape[1]:
        raise ValueError(f"matrix {matrix.shape} and word vectors {vectors.shape} differ in width")
    by_bytes: dict[bytes, str] = {}
    for word, row in zip(word_vectors.vocab, vectors):
        by_bytes.setdefault(row.tobytes(), word)
    return [by_bytes.get(row.tobytes()) for row in matrix]
