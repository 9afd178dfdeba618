"""The released MMV checkpoint files (Haiku/JAX pickles): what they hold, and reading them without running code.

* :class:`RestrictedUnpickler` / :func:`read_official`: a pickle reader that rebuilds only numpy arrays and plain
  containers, and refuses every other name a pickle asks for (unpickling arbitrary files can execute code);
* :func:`canonical_name`: Haiku module paths in a form that does not depend on the Haiku version or BatchNorm flavour;
* :func:`official_shapes`: the keys and shapes of each release, derived from the official model code (the tests
  build synthetic checkpoints from it; ``python -m mmv_lite.tools.check_official`` checks it against Haiku);
* :func:`detect_backbone`: which video backbone a checkpoint holds.

:mod:`mmv_lite.official` maps these tensors into an :class:`~mmv_lite.models.mmv.MMV`.
"""

from __future__ import annotations

import _codecs
import collections
import importlib
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
