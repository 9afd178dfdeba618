"""Checkpoints: atomic saving, safe loading, and rebuilding a trained model.

An mmv_lite checkpoint is one ``torch.save`` file holding only plain containers, tensors, strings and numbers, so it
loads with ``torch.load(weights_only=True)``: opening a checkpoint never executes code from it. Keys:

=================  ======================================================================================
``format``         ``"mmv_lite.checkpoint"`` (marks the file as ours)
``format_version`` ``1``
``kind``           ``"training"`` (everything ``--resume`` needs) or ``"inference"`` (model + config + vocab)
``config``         ``Config.to_dict()``
``model``          the model's ``state_dict()`` (the frozen word-vector matrix included)
``vocab``          the word list of that matrix, row by row (``"<pad>"`` first)
``step``           optimisation steps done
``metrics``        the latest validation metrics, e.g. ``{"t2v": {"R@10": ...}, ...}``
``optimizer``      ``optimizer.state_dict()``            (training only)
``scheduler``      ``scheduler.state_dict()``            (training only)
``rng``            Python, NumPy, torch and CUDA RNG states (training only, see :func:`rng_state`)
``extra``          anything else the trainer needs to continue exactly (e.g. the sampler position)
=================  ======================================================================================

Writing is atomic (:func:`save_checkpoint`): the file is written under a temporary name in the same folder, flushed to
disk, and renamed over the old one; a crash or ``SIGKILL`` at any moment leaves either the old or the new checkpoint.
The released MMV weights (Haiku pickles) load with :func:`load_official` (:mod:`mmv_lite.official`).
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .config import Config
from .files import atomic_write
from .models.mmv import build_model
from .official import load_official  # noqa: F401  (the released weights load from here too)
from .runtime import machine

FORMAT = "mmv_lite.checkpoint"
FORMAT_VERSION = 1
INFERENCE_KEYS = (
    "format",
    "format_version",
    "kind",
    "config",
    "model",
    "vocab",
    "step",
    "metrics",
    "mmv_lite_version",
    "data",
    "machine",
)


class CheckpointError(ValueError):
    """A file that cannot be used as an mmv_lite checkpoint; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------------------------


def make_state(
    model: torch.nn.Module,
    cfg: Config,
    vocab: list[str] | None = None,
    *,
    step: int = 0,
    metrics: dict | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    extra: dict | None = None,
    with_rng: bool = True,
    data: str | None = None,
) -> dict[str, Any]:
    """The checkpoint dictionary for ``model`` (unwrapped from DDP if needed).

    With ``optimizer`` it is a ``"training"`` checkpoint (optimizer, scheduler, RNG states); otherwise ``"inference"``.
    ``data``: what the model was trained on, ``"world"`` (the sample-world stream of ``cfg.world``) or a folder;
    ``evaluate`` scores on that data's test set when it is given no other.
    """
    model = getattr(model, "module", model)  # DistributedDataParallel keeps the network in .module
    state: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mmv_lite_version": __version__,
        "kind": "inference" if optimizer is None else "training",
        "config": cfg.to_dict(),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "vocab": list(vocab) if vocab is not None else None,
        "step": int(step),
        "metrics": _plain(metrics or {}),
        "data": data,
        "machine": machine(),  # the one that wrote it: runs on other CPUs differ in their last bits
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
        state["scheduler"] = scheduler.state_dict() if scheduler is not None else None
        if with_rng:
            state["rng"] = rng_state()
        state["extra"] = _plain(extra or {})
    return state


def inference_only(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of a checkpoint dict without the optimiser, scheduler and RNG states (about a third of the size)."""
    small = {k: state[k] for k in INFERENCE_KEYS if k in state}
    small["kind"] = "inference"
    return small


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically and durably (:func:`mmv_lite.files.atomic_write`).

    Readers see either the previous file or the complete new one, never a partial write, even if the process is
    killed mid-write. Returns the path.
    """
    if state.get("format") != FORMAT:
        state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    return atomic_write(path, lambda f: torch.save(state, f), durable=True)


def _plain(x: Any) -> Any:
    """Turn numpy scalars/arrays and tuples inside metrics into types ``weights_only`` loading accepts."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


# --------------------------------------------------------------------------------------------------------------------
# RNG states
# --------------------------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (CPU) and CUDA RNG states as weights_only-loadable values."""
    # The legacy global NumPy RNG is what third-party augmentation code draws from: save it too.
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": random.getstate(),  # (version, tuple of ints, float | None)
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where the same devices exist)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load an mmv_lite checkpoint safely (``torch.load(weights_only=True)``) and check that it is one.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not a PyTorch file, holds objects other than tensors and plain containers,
            or is not an mmv_lite checkpoint (no format marker, or a newer format version).
    """
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder; training writes <out>/checkpoint.pt)" if path.is_dir() else ""
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist{hint}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{str(path)!r} is not a PyTorch checkpoint file (not the zip format torch.save writes); "
            "was it truncated, or is it another kind of file?"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{str(path)!r} holds Python objects other than tensors and plain containers, so it is not an mmv_lite "
            f"checkpoint; it was not loaded, because unpickling arbitrary objects can run code ({e})"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} could not be read as a PyTorch file: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        what = f"a dict with keys {sorted(map(str, state))[:8]}" if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{str(path)!r} is a PyTorch file but not an mmv_lite checkpoint (it holds {what}, without "
            f"format={FORMAT!r}); for the released MMV weights use mmv_lite.checkpoints.load_official"
        )
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format version {version!r}; this mmv_lite reads versions up to "
            f"{FORMAT_VERSION}: upgrade mmv_lite"
        )
    for key in ("config", "model"):
        if not isinstance(state.get(key), dict):
            raise CheckpointError(f"{str(path)!r} is an mmv_lite checkpoint without its {key!r} entry")
    return state


def config_from_checkpoint(state: dict[str, Any], path: str | os.PathLike = "<checkpoint>") -> Config:
    """The :class:`Config` stored in a loaded checkpoint, with an error naming the file if it does not parse."""
    try:
        return Config.from_dict(state["config"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{str(path)!r}: its config does not fit this version of mmv_lite: {e}") from e


def _vocab_size(state: dict[str, Any], cfg: Config) -> int | None:
    vocab = state.get("vocab")
    if vocab:
        return len(vocab)
    # Older or hand-made files: read the word matrix's row count from the state dict.
    for k, v in state["model"].items():
        if "word" in k and v.ndim == 2 and v.shape[1] == cfg.data.word_dim:
            return int(v.shape[0])
    return None


def load_state_into(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """``model.load_state_dict(weights)`` with an error that lists what does not fit, naming the file."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    wrong = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        lines = [f"{str(path)!r}: the saved weights do not fit the model built from its config"]
        if wrong:
            lines.append(
                "  shape mismatch: "
                + ", ".join(f"{k} saved {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:6])
                + (" ..." if len(wrong) > 6 else "")
            )
        if missing:
            lines.append(f"  missing from the file: {missing[:6]}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            lines.append(f"  not in the model: {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}")
        lines.append("  (was the file saved with a different preset/graph, or was its config edited?)")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(weights)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Config, list]:
    """Rebuild the trained network of a checkpoint: ``(model in eval mode, Config, vocab list)``.

        >>> model, cfg, vocab = load_model("data_samples/mmv_lite_fac.pt")

    The model is built from the saved config with a word-vector matrix of the saved vocabulary's size; the saved
    weights (the word vectors among them) are then loaded into it.
    """
    model, cfg, vocab = model_from_state(load_checkpoint(path), path)
    return model.to(device).eval(), cfg, vocab


def model_from_state(
    state: dict[str, Any], path: str | os.PathLike = "<checkpoint>", random_init_seed: int | None = None
) -> tuple[torch.nn.Module, Config, list]:
    """The network of a loaded checkpoint ``state``: ``(model, Config, vocab)``.

    ``random_init_seed``: the same architecture with fresh random weights (drawn with that seed), keeping only the
    checkpoint's frozen word vectors: the baseline that shows what training added.
    """
    cfg = config_from_checkpoint(state, path)
    with torch.random.fork_rng():
        if random_init_seed is not None:
            torch.manual_seed(random_init_seed)
        try:
            model = build_model(cfg, vocab_size=_vocab_size(state, cfg))
        except (ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{str(path)!r}: could not build the model its config describes: {e}") from e
    weights = state["model"]
    if random_init_seed is not None:  # keep the fresh weights; only the frozen word vectors come from the checkpoint
        weights = {k: v for k, v in model.state_dict().items()}
        weights["text_backbone.word_vectors"] = state["model"]["text_backbone.word_vectors"]
    load_state_into(model, weights, path)
    return model, cfg, list(state.get("vocab") or [])
