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
(:class:`RestrictedUnpickler` rebuilds only numpy arrays and plain containers) and returns an ``MMV`` in eval mode::

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
  kernel and :func:`released_s3dg_stem` is the layer that replaces our S3D-G's ``Conv2d_1a_7x7.conv``.
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

import _codecs
import collections
import io
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RELEASE_URL = "https://storage.googleapis.com/deepmind-research-mmv/{file}"
RELEASE_LICENSE = "CC BY-NC 4.0 (https://creativecommons.org/licenses/by-nc/4.0/legalcode)"

# Released file -> (our preset, official `visual_backbone`, width multiplier), from the official `config.py`.
RELEASES: dict[str, tuple[str, str, int]] = {
    "mmv_s3d.pkl": ("s3dg", "s3d", 1),
    "mmv_tsm_resnet_x1.pkl": ("tsm_r50", "resnet50tsm", 1),
    "mmv_tsm_resnet_x2.pkl": ("tsm_r50x2", "resnet50tsm", 2),
}

# Sizes fixed by the released configuration (official `config.py` and `eval_ucf101.py`).
OFFICIAL_VOCAB_SIZE = 65_536
OFFICIAL_WORD_DIM = 300
OFFICIAL_SENTENCE_DIM = 2048
OFFICIAL_TOP = "text_audio_video"


class OfficialCheckpointError(ValueError):
    """The file is not a released MMV checkpoint, or it does not fit the model it is loaded into."""


# ----------------------------------------------------------------------------------------------------------------
# Reading a pickle without running code from it
# ----------------------------------------------------------------------------------------------------------------


def _as_dict(mapping: Any = (), **kwargs: Any) -> dict:
    """Rebuild Haiku's immutable mappings (``FlatMapping``, ``FlatMap``, ``frozendict``) as plain dicts."""
    return dict(mapping, **kwargs)


def _numpy_attr(path: str) -> Any:
    # numpy >= 2 moved numpy.core to numpy._core; pickles written by either name must load with either numpy.
    import importlib

    module, name = path.rsplit(".", 1)
    for candidate in (module, module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core")):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {path}")


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles of numpy arrays store raw bytes as latin-1 text and call _codecs.encode on it.
    if encoding.lower().replace("-", "") not in ("latin1", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return _codecs.encode(obj, encoding, errors)


_SAFE_TYPES = {t.__name__: t for t in (dict, list, tuple, set, frozenset, int, float, bool, str, bytes, complex)}


def _dill_load_type(name: str) -> type:
    # dill writes some builtin types as dill._dill._load_type("dict"); resolve only plain container/scalar types.
    if name not in _SAFE_TYPES:
        allowed = sorted(_SAFE_TYPES)
        raise pickle.UnpicklingError(f"refusing dill._dill._load_type({name!r}): only {allowed} are allowed")
    return _SAFE_TYPES[name]


_NUMPY_GLOBALS = {
    f"{root}.{name}"
    for root in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {f"{root}.numeric._frombuffer" for root in ("numpy.core", "numpy._core")}

# (module, name) -> what the pickle gets instead. Nothing else can be named by a pickle read here.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("dill._dill", "_load_type"): _dill_load_type,
    ("haiku._src.data_structures", "FlatMapping"): _as_dict,
    ("haiku._src.data_structures", "FlatMap"): _as_dict,
    ("haiku._src.data_structures", "frozendict"): _as_dict,
    ("haiku.data_structures", "FlatMapping"): _as_dict,
    **{("builtins", name): t for name, t in _SAFE_TYPES.items()},
    **{("__builtin__", name): t for name, t in _SAFE_TYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle reader that rebuilds numpy arrays, dicts, lists, tuples and scalars, and refuses everything else.

    A pickle names the functions it calls; an ordinary ``pickle.load`` imports and calls whatever is named
    (``os.system``, ``builtins.eval``...). Here every name is looked up in a short allow-list; anything else raises
    :class:`pickle.UnpicklingError` naming the refused ``module.name`` before anything is called.
    Haiku's ``FlatMapping`` is rebuilt as a plain ``dict`` without importing Haiku.
    """

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if f"{module}.{name}" in _NUMPY_GLOBALS:
            return _numpy_attr(f"{module}.{name}")
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: this reader only rebuilds numpy arrays and plain containers "
            "(a released MMV checkpoint needs nothing else; a pickle that names other code may be malicious)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a pickle with persistent ids (not a released MMV checkpoint)")


def safe_unpickle(data: bytes | io.IOBase) -> Any:
    """Unpickle ``data`` (bytes or a binary file) with :class:`RestrictedUnpickler`."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return RestrictedUnpickler(f).load()


def _flatten_tree(tree: Any, where: str) -> dict[str, np.ndarray]:
    """``{module: {name: array}}`` -> ``{"module:name": array}``, checking that every leaf is a numeric array."""
    if not isinstance(tree, Mapping):
        raise OfficialCheckpointError(f"{where}: expected a mapping of module names, got {type(tree).__name__}")
    flat = {}
    for module, leaves in tree.items():
        if not isinstance(leaves, Mapping):
            got = type(leaves).__name__
            raise OfficialCheckpointError(f"{where}[{module!r}]: expected a mapping of arrays, got {got}")
        for name, value in leaves.items():
            arr = np.asarray(value) if isinstance(value, (np.ndarray, np.generic, int, float)) else None
            if arr is None or arr.dtype.kind not in "fiub":
                kind = type(value).__name__ if arr is None else f"array of {arr.dtype}"
                raise OfficialCheckpointError(f"{where}[{module!r}][{name!r}]: expected a numeric array, got {kind}")
            flat[f"{module}:{name}"] = arr
    return flat


def read_official(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a released MMV pickle safely: ``(params, state)``, each flat ``{"haiku/module/path:leaf": array}``.

    Raises :class:`OfficialCheckpointError` (file missing, not a dict with ``params``/``state``, non-array leaves)
    or :class:`pickle.UnpicklingError` (the pickle asks for code outside the allow-list).
    """
    path = Path(path)
    if not path.is_file():
        names = ", ".join(RELEASES)
        raise OfficialCheckpointError(
            f"{path}: no such file. The released checkpoints ({names}) are downloaded from "
            f"{RELEASE_URL.format(file='<file>')}"
        )
    with path.open("rb") as f:
        try:
            data = RestrictedUnpickler(f).load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"{path}: {e}") from None
    if not isinstance(data, Mapping) or "params" not in data:
        got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise OfficialCheckpointError(f"{path}: expected a dict with 'params' and 'state' (Haiku layout), got {got}")
    return _flatten_tree(data["params"], f"{path} params"), _flatten_tree(data.get("state", {}), f"{path} state")


# ----------------------------------------------------------------------------------------------------------------
# Names: Haiku module paths -> a canonical form that does not depend on the Haiku version or BN flavour
# ----------------------------------------------------------------------------------------------------------------

_BN_RE = re.compile(r"^_*(?:cross_replica_)?batch_norm(_\d+)?$")


def canonical_name(key: str) -> str:
    """A Haiku ``"module/path:leaf"`` key in a form independent of naming details that do not change the math.

    - ``~`` and ``~method`` path segments (modules built in ``__init__`` or a helper method) are dropped;
    - the top module (``text_audio_video`` in the release) is dropped;
    - ``__batch_norm_1`` / ``__cross_replica_batch_norm_1`` (single- and multi-device BatchNorm) become ``bn_1``;
    - BatchNorm state ``bn/~/mean_ema:average`` becomes ``bn:mean`` (``var`` likewise; ``counter``/``hidden`` keep
      their EMA name: ``bn:mean_ema.counter``).

    >>> canonical_name("text_audio_video/visual_module/~/S3D/Mixed_3b/__batch_norm/~/var_ema:average")
    'visual_module/S3D/Mixed_3b/bn:var'
    >>> canonical_name("text_audio_video/~_get_pair_embedding_heads/vis_embd/__cross_replica_batch_norm_1:scale")
    'vis_embd/bn_1:scale'
    """
    module, _, leaf = key.rpartition(":")
    parts = [p for p in module.split("/") if not p.startswith("~")]
    parts = parts[1:] if len(parts) > 1 else parts
    if parts and parts[-1] in ("mean_ema", "var_ema"):
        ema = parts.pop()
        leaf = ema[: -len("_ema")] if leaf == "average" else f"{ema}.{leaf}"
    parts = [("bn" + (m.group(1) or "")) if (m := _BN_RE.match(p)) else p for p in parts]
    return "/".join(parts) + ":" + leaf


def canonicalize(flat: Mapping[str, np.ndarray]) -> dict[str, tuple[str, np.ndarray]]:
    """``{canonical: (original key, array)}``; two keys with the same canonical name are an error."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    for key, arr in flat.items():
        c = canonical_name(key)
        if c in out:
            raise OfficialCheckpointError(f"checkpoint keys {out[c][0]!r} and {key!r} mean the same tensor ({c})")
        out[c] = (key, arr)
    return out


# ----------------------------------------------------------------------------------------------------------------
# The release's parameter table, derived from the official model code (mmv/models/*.py, config.py)
# ----------------------------------------------------------------------------------------------------------------

# S3D-G inception blocks: (name, [b0 1x1, b1 1x1, b1 3x3, b2 1x1, b2 3x3, b3 pool-1x1]); official s3d.py.
S3DG_MIXED: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET_CHANNELS = (256, 512, 1024, 2048)


@dataclass
class _Table:
    """Haiku keys and shapes of one checkpoint, as the official code creates them."""

    bn_name: str = "__cross_replica_batch_norm"
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)
    state: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def w(self, module: str, shape: Iterable[int], bias: bool = False) -> None:
        shape = tuple(shape)
        self.params[f"{module}:w"] = shape
        if bias:
            self.params[f"{module}:b"] = (shape[-1],)

    def bn(self, scope: str, index: int, channels: int, ndim: int) -> None:
        name = f"{scope}/{self.bn_name}" + (f"_{index}" if index else "")
        shape = (1,) * (ndim - 1) + (channels,)
        self.params[f"{name}:scale"] = shape
        self.params[f"{name}:offset"] = shape
        for ema in ("mean_ema", "var_ema"):
            self.state[f"{name}/~/{ema}:average"] = shape
            self.state[f"{name}/~/{ema}:hidden"] = shape
            self.state[f"{name}/~/{ema}:counter"] = ()


def _s3dg_table(t: _Table, top: str, space_to_depth: bool) -> None:
    root = f"{top}/visual_module/~/S3D"

    def unit(scope: str, cin: int, cout: int, kernel: tuple[int, int, int], gating: bool) -> None:
        k0, k1, k2 = kernel
        if k1 != 1:  # separable (every k x 3 x 3 unit after the stem): spatial 1xkxk, then temporal kx1x1, each with BN
            t.w(f"{scope}/~/conv3_d", (1, k1, k2, cin, cout))
            t.bn(scope, 0, cout, 5)
            t.w(f"{scope}/~/conv3_d_1", (k0, 1, 1, cout, cout))
            t.bn(scope, 1, cout, 5)
        else:
            t.w(f"{scope}/~/conv3_d", (k0, k1, k2, cin, cout))
            t.bn(scope, 0, cout, 5)
        if gating:
            t.w(f"{scope}/self_gating", (cout, cout), bias=True)

    if space_to_depth:
        t.w(f"{root}/Conv2d_1a_7x7/~/conv3_d", (2, 4, 4, 24, 64))
        t.bn(f"{root}/Conv2d_1a_7x7", 0, 64, 5)
    else:  # `separable=False` in the official stem: one 7x7x7 kernel
        t.w(f"{root}/Conv2d_1a_7x7/~/conv3_d", (7, 7, 7, 3, 64))
        t.bn(f"{root}/Conv2d_1a_7x7", 0, 64, 5)
    unit(f"{root}/Conv2d_2b_1x1", 64, 64, (1, 1, 1), False)
    # The official `separable` flag only splits kernels whose spatial size is not 1: Conv2d_2c is (3, 3, 3).
    t.w(f"{root}/Conv2d_2c_3x3/~/conv3_d", (1, 3, 3, 64, 192))
    t.bn(f"{root}/Conv2d_2c_3x3", 0, 192, 5)
    t.w(f"{root}/Conv2d_2c_3x3/~/conv3_d_1", (3, 1, 1, 192, 192))
    t.bn(f"{root}/Conv2d_2c_3x3", 1, 192, 5)
    t.w(f"{root}/Conv2d_2c_3x3/self_gating", (192, 192), bias=True)
    cin = 192
    for name, c in S3DG_MIXED:
        s = f"{root}/{name}"
        unit(f"{s}/Branch_0_Conv2d_0a_1x1", cin, c[0], (1, 1, 1), True)
        unit(f"{s}/Branch_1_Conv2d_0a_1x1", cin, c[1], (1, 1, 1), False)
        unit(f"{s}/Branch_1_Conv2d_0b_3x3", c[1], c[2], (3, 3, 3), True)
        unit(f"{s}/Branch_2_Conv2d_0a_1x1", cin, c[3], (1, 1, 1), False)
        unit(f"{s}/Branch_2_Conv2d_0b_3x3", c[3], c[4], (3, 3, 3), True)
        unit(f"{s}/Branch_3_Conv2d_0b_1x1", cin, c[5], (1, 1, 1), True)
        cin = c[0] + c[2] + c[4] + c[5]


def _tsm_table(t: _Table, top: str, width: int) -> None:
    root = f"{top}/visual_module/~/TSMResNetV2"
    t.w(f"{root}/tsm_resnet_stem", (7, 7, 3, 64 * width))
    cin = 64 * width
    for u, (blocks, channels) in enumerate(zip(RESNET50_BLOCKS, RESNET_CHANNELS)):
        cout = channels * width
        for b in range(blocks):
            s = f"{root}/tsm_resnet_unit_{u}/block_{b}"
            t.bn(s, 0, cin, 4)
            if b == 0:
                t.w(f"{s}/shortcut_conv", (1, 1, cin, cout))
            t.w(f"{s}/conv_0", (1, 1, cin, cout // 4))
            t.bn(s, 1, cout // 4, 4)
            t.w(f"{s}/conv_1", (3, 3, cout // 4, cout // 4))
            t.bn(s, 2, cout // 4, 4)
            t.w(f"{s}/conv_2", (1, 1, cout // 4, cout))
            cin = cout
    t.bn(root, 0, cin, 4)


def _audio_table(t: _Table, top: str) -> None:
    root = f"{top}/audio_module/~/res_net_v2"
    t.w(f"{root}/~/initial_conv", (7, 7, 1, 64))
    cin = 64
    for g, (blocks, cout) in enumerate(zip(RESNET50_BLOCKS, RESNET_CHANNELS)):
        for b in range(blocks):
            s = f"{root}/~/block_group_{g}/block_{b}"
            if b == 0 and cin != cout:
                t.w(f"{s}/~/shortcut_conv", (1, 1, cin, cout))
            t.bn(s, 0, cin, 4)
            t.w(f"{s}/~/conv_0", (1, 1, cin, cout // 4))
            t.bn(s, 1, cout // 4, 4)
            t.w(f"{s}/~/conv_1", (3, 3, cout // 4, cout // 4))
            t.bn(s, 2, cout // 4, 4)
            t.w(f"{s}/~/conv_2", (1, 1, cout // 4, cout))
            cin = cout
    t.bn(root, 0, cin, 4)


def official_shapes(
    backbone: str,
    *,
    space_to_depth: bool = True,
    vocab_size: int = OFFICIAL_VOCAB_SIZE,
    bn_name: str = "__cross_replica_batch_norm",
    top: str = OFFICIAL_TOP,
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Keys and shapes of a released checkpoint: ``(params, state)``, flat ``{"module/path:leaf": shape}``.

    ``backbone``: ``"s3d"``, ``"tsm_x1"`` or ``"tsm_x2"``. Derived from the official model code with the released
    configuration (``fac_relu`` graph, heads of ``config.py``, audio ResNet-V2-50, text Conv1D over 300-d words).
    ``space_to_depth``: the S3D-G stem as released (``[2, 4, 4, 24, 64]``) or on RGB (``[7, 7, 7, 3, 64]``).
    ``bn_name``: ``"__cross_replica_batch_norm"`` (multi-device training, as released) or ``"__batch_norm"``.
    """
    if backbone not in ("s3d", "tsm_x1", "tsm_x2"):
        raise ValueError(f"backbone={backbone!r}; expected 's3d', 'tsm_x1' or 'tsm_x2'")
    t = _Table(bn_name=bn_name)
    if backbone == "s3d":
        _s3dg_table(t, top, space_to_depth)
        d_v = 1024
    else:
        width = 1 if backbone == "tsm_x1" else 2
        _tsm_table(t, top, width)
        d_v = 2048 * width
    _audio_table(t, top)
    t.params[f"{top}/text_module/~/embed:embeddings"] = (vocab_size, OFFICIAL_WORD_DIM)
    t.w(f"{top}/text_module/~/text_conv1", (1, OFFICIAL_WORD_DIM, OFFICIAL_SENTENCE_DIM), bias=True)
    heads = f"{top}/~_get_pair_embedding_heads"
    # g_v->va: mlp@512 with BN after the output layer (whose bias is then dropped).
    t.w(f"{heads}/vid2audio_embd/final_projection_inner", (d_v, 512), bias=True)
    t.bn(f"{heads}/vid2audio_embd", 0, 512, 2)
    t.w(f"{heads}/vid2audio_embd/final_projection", (512, 512))
    t.bn(f"{heads}/vid2audio_embd", 1, 512, 2)
    # g_va->vat: a linear head keeps its bias even with BN after it.
    t.w(f"{heads}/vis_embd/final_projection", (512, 256), bias=True)
    t.bn(f"{heads}/vis_embd", 0, 256, 2)
    t.w(f"{heads}/audio_embd/final_projection", (2048, 512), bias=True)  # g_a->va
    t.w(f"{heads}/audio2txt_embd/final_projection", (2048, 512), bias=True)  # unused by fac
    t.w(f"{heads}/txt_embd/final_projection", (OFFICIAL_SENTENCE_DIM, 256), bias=True)  # g_t->vat
    t.w(f"{heads}/txt2audio_embd/final_projection", (OFFICIAL_SENTENCE_DIM, 512), bias=True)  # unused by fac
    return t.params, t.state


def detect_backbone(keys: Iterable[str]) -> str:
    """``"s3d"``, ``"tsm_x1"`` or ``"tsm_x2"`` from a checkpoint's (canonical or Haiku) parameter names and shapes.

    ``keys`` may be a mapping ``{key: array}``: the TSM width is read from the stem's output channels.
    """
    items = keys.items() if isinstance(keys, Mapping) else ((k, None) for k in keys)
    for key, value in items:
        c = canonical_name(key) if "~" in key or key.startswith(OFFICIAL_TOP) else key
        if c.startswith("visual_module/S3D/"):
            return "s3d"
        if c == "visual_module/TSMResNetV2/tsm_resnet_stem:w":
            if value is None:
                raise OfficialCheckpointError("cannot tell TSM-ResNet50 from x2 without the stem's shape")
            out = int(np.shape(value)[-1])
            if out not in (64, 128):
                raise OfficialCheckpointError(f"TSM stem has {out} output channels; expected 64 (x1) or 128 (x2)")
            return "tsm_x1" if out == 64 else "tsm_x2"
    raise OfficialCheckpointError(
        "no video backbone found: expected parameters under 'visual_module/~/S3D' or 'visual_module/~/TSMResNetV2'"
    )


# ----------------------------------------------------------------------------------------------------------------
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


def _torch_stem_class():
    import torch.nn.functional as F
    from torch import nn

    class ReleasedS3DGStem(nn.Conv3d):
        """The released S3D-G's first convolution, on RGB frames ``(B, 3, T, H, W) -> (B, C, T/2, H/2, W/2)``.

        The release folds every 2 x 2 x 2 block of the clip into 24 channels and applies a ``2 x 4 x 4`` kernel
        with stride 1 and TensorFlow SAME padding. On the unfolded clip that is a ``4 x 8 x 8`` kernel with stride 2,
        padding ``(0, 2)`` in time and ``(2, 4)`` in height and width: same numbers, no folding step. Identical to
        the release for even T, H, W (the only sizes the release accepts); odd sizes give ``ceil(n / 2)`` outputs.
        Its weight is ``[C, 3, 4, 8, 8]`` (see :func:`space_to_depth_kernel`).
        """

        def __init__(self, out_channels: int = 64):
            super().__init__(3, out_channels, (4, 8, 8), stride=2, padding=0, bias=False)

        def forward(self, x):
            # F.pad takes the last axis first: (W_before, W_after, H_before, H_after, T_before, T_after).
            return F.conv3d(F.pad(x, (2, 4, 2, 4, 0, 2)), self.weight, None, self.stride)

        def extra_repr(self) -> str:
            return super().extra_repr() + ", padding=(T 0-2, H 2-4, W 2-4): the released space-to-depth stem"

    return ReleasedS3DGStem


def released_s3dg_stem(out_channels: int = 64):
    """A ``ReleasedS3DGStem`` module (see :func:`space_to_depth_kernel`); replaces ``Conv2d_1a_7x7.conv``."""
    return _torch_stem_class()(out_channels)


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

_FAC_HEADS = {  # our head -> (official EmbeddingModule, {our sub-module: official sub-module})
    "g_v_to_va": ("vid2audio_embd", {"inner": "final_projection_inner", "inner_bn": "bn", "proj": "final_projection",
                                     "bn": "bn_1"}),
    "g_a_to_va": ("audio_embd", {"proj": "final_projection"}),
    "g_va_to_vat": ("vis_embd", {"proj": "final_projection", "bn": "bn"}),
    "g_t_to_vat": ("txt_embd", {"proj": "final_projection"}),
}  # fmt: skip
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
    from torch import nn

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
    import torch

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
    (:func:`released_s3dg_stem`) instead of the 7 x 7 x 7 one.
    """
    import torch

    from .models.mmv import build_model

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
    try:
        import torch

        if torch.is_tensor(word_vectors):
            word_vectors = word_vectors.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
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
            backbone is read from the parameter names and shapes). Read with :class:`RestrictedUnpickler`.
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
    try:
        import torch

        if torch.is_tensor(matrix):
            matrix = matrix.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    vectors = np.ascontiguousarray(word_vectors.vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != vectors.shape[1]:
        raise ValueError(f"matrix {matrix.shape} and word vectors {vectors.shape} differ in width")
    by_bytes: dict[bytes, str] = {}
    for word, row in zip(word_vectors.vocab, vectors):
        by_bytes.setdefault(row.tobytes(), word)
    return [by_bytes.get(row.tobytes()) for row in matrix]
