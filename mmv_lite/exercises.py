"""Graded exercises: the student writes a central piece of MMV, a check compares it with the library.

Each exercise has a name, a notebook, a reference solution (plain code a student could write; :func:`solution` returns
its source) and a check that runs the student's function and the library on random inputs. A wrong answer never
raises: the check prints what differs, as specifically as it can (wrong shape, no temperature, one direction only,
padding not masked, ties broken optimistically, ...), and returns False. A crash inside the student's function is
caught and reported the same way.

==============  ==============  ==========================================  =====================================
name            notebook        the student writes                          compared with (``mmv_lite.``...)
==============  ==============  ==========================================  =====================================
``fac``         01_model        the FAC graph's embeddings from its heads   ``models.heads.EmbeddingGraph``
``nce``         02_losses       symmetric NCE from two embedding batches    ``losses.nce``
``mil_nce``     02_losses       MIL-NCE with K candidates and padding       ``losses.mil_nce``
``train_step``  03_pretraining  one optimisation step                       ``optim.train_step``
``gap``         04_spaces_umap  centring each modality; the modality gap    ``embedding.centred``, ``modality_gap``
``deflate``     05_deflation    a 3D convolution summed over time           ``models.deflation``
``recall``      06_retrieval    Recall@K and median rank, pessimistic ties  ``retrieval.retrieval_metrics``
==============  ==============  ==========================================  =====================================

The notebook side is three small cells per exercise (after a markdown cell that states the task)::

    # %%  the starter: the student replaces the raise with code
    @exercises.exercise("nce")
    def nce_loss(z_v, z_a, tau=0.07):
        raise NotImplementedError("your code here")

    # %%  the check: prints "✓ ..." or what is wrong, returns True / False
    exercises.check("nce", nce_loss)

    # %%  a solution, folded until clicked (HTML <details>; plain text outside a notebook)
    exercises.reveal("nce")

:func:`exercise` returns the student's function unchanged, except when the environment variable
``MMV_LITE_SOLUTIONS=1`` is set: then it returns the reference solution, so the notebook runs top to bottom with
every check passing (the notebook tests and ``python -m mmv_lite render-notebooks`` set it). Nothing later in a
notebook depends on the student's function, so a notebook also runs with the stubs in place.

Checks seed their own random generator and leave the global one as they found it (``torch.random.fork_rng``).
"""

from __future__ import annotations

import copy
import html
import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TEMPERATURE

SOLUTIONS_ENV = "MMV_LITE_SOLUTIONS"


def solutions_on() -> bool:
    """True when ``MMV_LITE_SOLUTIONS`` is ``1`` (or ``true``/``yes``/``on``): starters then use the solutions."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# ====================================================================================================================
# Reference solutions. These are what `solution(name)` shows: plain code, one idea per line, as a student would write
# it. The checks compare students with the library, and the tests check that these agree with the library too.
# ====================================================================================================================


def fac_embeddings(heads, f_v, f_a, f_t):
    """FAC: video and audio meet in the fine space S_va; video (and, at evaluation, audio) continue to S_vat.

    heads: the four heads by name (g_v_to_va, g_a_to_va, g_va_to_vat, g_t_to_vat), each (..., d_in) -> (..., d_out).
    f_v (B, d_v), f_a (B, d_a), f_t (B, K, d_t): backbone features.
    Returns {"z_v_va", "z_a_va", "z_v_vat", "z_a_vat", "z_t_vat"}, unnormalised; z_t_vat keeps the K axis.
    """
    z_v_va = heads["g_v_to_va"](f_v)
    z_a_va = heads["g_a_to_va"](f_a)
    z_v_vat = heads["g_va_to_vat"](torch.relu(z_v_va))  # the composed path: S_va -> ReLU -> S_vat
    z_a_vat = heads["g_va_to_vat"](torch.relu(z_a_va))  # audio takes the same path (never trained against text)
    z_t_vat = heads["g_t_to_vat"](f_t)
    return {"z_v_va": z_v_va, "z_a_va": z_a_va, "z_v_vat": z_v_vat, "z_a_vat": z_a_vat, "z_t_vat": z_t_vat}


def nce_loss(z_v, z_a, tau=TEMPERATURE):
    """MMV's symmetric NCE for a batch of B clips: z_v, z_a (B, D) unnormalised -> scalar, the mean over clips."""
    v = F.normalize(z_v, dim=-1)
    a = F.normalize(z_a, dim=-1)
    s = v @ a.T / tau  # s[i, j] = cos(v_i, a_j) / tau, (B, B)
    row_and_column = torch.cat([s, s.T], dim=1)  # row i: s[i, :] (video i vs every sound), then s[:, i]
    loss = torch.logsumexp(row_and_column, dim=1) - s.diagonal()  # one softmax over both; the positive is in both
    return loss.mean()


def mil_nce_loss(z_v, z_t, text_valid, tau=TEMPERATURE):
    """MIL-NCE: z_v (B, D), z_t (B, K, D) the K candidate narrations of each clip, text_valid (B, K) bool -> scalar.

    Invalid candidates (padding) count nowhere; a clip without any valid candidate is neither an anchor nor a negative.
    """
    B, K, D = z_t.shape
    v = F.normalize(z_v, dim=-1)
    t = F.normalize(z_t, dim=-1)
    s = (v @ t.reshape(B * K, D).T / tau).view(B, B, K)  # s[i, j, k] = cos(v_i, t_jk) / tau
    has_text = text_valid.any(dim=1)  # (B,) the clips that take part
    row = s.masked_fill(~text_valid[None, :, :], -math.inf)  # video i against every valid narration
    col_ok = text_valid[:, None, :] & has_text[None, :, None]  # narrations of clip i against every taking-part video
    col = s.transpose(0, 1).masked_fill(~col_ok, -math.inf)  # col[i, j, k] = s[j, i, k]
    own = s.diagonal(dim1=0, dim2=1).T.masked_fill(~text_valid, -math.inf)  # (B, K): s[i, i, k], clip i's bag
    denominator = torch.logsumexp(torch.cat([row.flatten(1), col.flatten(1)], dim=1)[has_text], dim=1)
    numerator = torch.logsumexp(own[has_text], dim=1)  # a soft maximum over the bag
    return (denominator - numerator).mean()


def training_step(model, inputs, loss_fn, optimizer):
    """One optimisation step: model(**inputs) -> loss_fn(output) (a scalar) -> gradients -> update. Returns the loss."""
    output = model(**inputs)  # forward
    loss = loss_fn(output)
    optimizer.zero_grad()  # forget the previous step's gradients (backward adds to .grad)
    loss.backward()  # d loss / d parameter, into every parameter's .grad
    optimizer.step()  # move each parameter against its gradient
    return loss.item()


def centre_modalities(z_a, z_b):
    """Two modalities in one space: z_a (N, D), z_b (M, D) -> (c_a (N, D), c_b (M, D), gap).

    c: each row L2-normalised, minus its own modality's mean direction (the map of notebook 04 with center=True).
    gap: the distance between the two modalities' centres (the means of their normalised rows).
    """
    u_a = F.normalize(torch.as_tensor(z_a, dtype=torch.float32), dim=-1)
    u_b = F.normalize(torch.as_tensor(z_b, dtype=torch.float32), dim=-1)
    centre_a, centre_b = u_a.mean(dim=0), u_b.mean(dim=0)
    gap = (centre_a - centre_b).norm().item()
    return u_a - centre_a, u_b - centre_b, gap


def deflate_conv(conv3d):
    """An nn.Conv3d (kernel kT x kH x kW) -> the nn.Conv2d that it is on a static clip: the kernel summed over time."""
    conv2d = nn.Conv2d(
        conv3d.in_channels,
        conv3d.out_channels,
        kernel_size=conv3d.kernel_size[1:],
        stride=conv3d.stride[1:],  # the spatial stride and padding stay; the temporal ones disappear
        padding=conv3d.padding[1:],
        dilation=conv3d.dilation[1:],
        groups=conv3d.groups,
        bias=conv3d.bias is not None,
    )
    with torch.no_grad():
        conv2d.weight.copy_(conv3d.weight.sum(dim=2))  # (out, in, kT, kH, kW) -> (out, in, kH, kW)
        if conv3d.bias is not None:
            conv2d.bias.copy_(conv3d.bias)  # added once per output, as before
    return conv2d


def recall_and_median_rank(sim, positive, ks=(1, 5, 10)):
    """sim (Nq, Nc) similarities, positive (Nq, Nc) bool -> {"R@1": %, "R@5": %, "R@10": %, "MedR": rank}.

    A query's rank is that of its best-ranked positive, 1 = first; a negative tied with it is ranked before it.
    Queries without any positive are left out.
    """
    best_positive = sim.masked_fill(~positive, -math.inf).max(dim=1).values  # (Nq,)
    rank = 1 + ((sim >= best_positive[:, None]) & ~positive).sum(dim=1)  # negatives at or above it, plus one
    rank = rank[positive.any(dim=1)].double()
    out = {f"R@{k}": 100.0 * (rank <= k).double().mean().item() for k in ks}
    out["MedR"] = rank.quantile(0.5).item()  # an even count: the mean of the two middle ranks (as np.median)
    return out


# ====================================================================================================================
# The machinery: registry, decorator, check, reveal
# ====================================================================================================================


class _Hint(Exception):
    """Raised inside a diagnosis to stop at the first problem found; its message is the hint."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``diagnose(fn)`` returns None when ``fn`` is right, else a hint (str)."""

    name: str
    notebook: str
    title: str
    solution: Callable
    diagnose: Callable[[Callable], str | None]
    passed: str  # what a pass means, e.g. "matches mmv_lite.losses.nce on 6 random batches"


EXERCISES: dict[str, Exercise] = {}


def get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def exercise(name: str) -> Callable[[Callable], Callable]:
    """Decorator for a starter function: returns it unchanged, or the reference solution when ``MMV_LITE_SOLUTIONS=1``.

    >>> @exercise("nce")
    ... def nce_loss(z_v, z_a, tau=0.07):
    ...     raise NotImplementedError
    """
    ex = get(name)

    def wrap(fn: Callable) -> Callable:
        return ex.solution if solutions_on() else fn

    return wrap


def check(name: str, fn: Callable, quiet: bool = False) -> bool:
    """Run exercise ``name``'s check on ``fn``: print ✓ or a hint, return True / False. Never raises for a wrong
    answer or a crash inside ``fn``; a reference solution that fails its own check raises AssertionError."""
    ex = get(name)
    with torch.random.fork_rng(devices=[]):
        try:
            hint = ex.diagnose(fn)
        except _Hint as h:
            hint = str(h)
    if hint is not None and fn is ex.solution:
        raise AssertionError(f"the reference solution of exercise {name!r} fails its own check: {hint}")
    if not quiet:
        if hint is None:
            print(f"✓ {ex.title}: correct, {ex.passed}.")
        else:
            print(f"✗ {ex.title}: {hint}\n  (exercises.reveal({name!r}) shows a solution.)")
    return hint is None


def solution(name: str) -> str:
    """The source code of exercise ``name``'s reference solution."""
    return inspect.getsource(get(name).solution)


class Reveal:
    """A solution to show: folded in a notebook (HTML ``<details>``), the plain source elsewhere."""

    def __init__(self, name: str):
        self.name, self.source = name, solution(name)

    def __repr__(self) -> str:
        return self.source

    def _repr_html_(self) -> str:
        title = html.escape(get(self.name).title)
        return (
            f"<details class='mmv-solution'><summary>Show a solution: {title}</summary>"
            f"<pre><code>{html.escape(self.source)}</code></pre></details>"
        )


def reveal(name: str) -> Reveal:
    """Exercise ``name``'s solution, folded until clicked when displayed in a notebook."""
    return Reveal(name)


def _register(name: str, notebook: str, title: str, solution_fn: Callable, passed: str):
    def deco(diagnose: Callable[[Callable], str | None]) -> Callable[[Callable], str | None]:
        EXERCISES[name] = Exercise(name, notebook, title, solution_fn, diagnose, passed)
        return diagnose

    return deco


# --------------------------------------------------------------------------------------------------------------------
# Helpers shared by the checks
# --------------------------------------------------------------------------------------------------------------------


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", "your function")


def _call(fn: Callable, *args: Any, on_error: Callable[[Exception], str | None] | None = None) -> Any:
    """``fn(*args)``; a NotImplementedError or any other exception becomes a hint."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _Hint(
            f"{_name(fn)} is not written yet: replace `raise NotImplementedError` with your code, then run this "
            "cell again."
        ) from None
    except Exception as e:  # the student's code crashed: say where and, when we can, why
        extra = on_error(e) if on_error is not None else None
        text = f"{_name(fn)} raised {type(e).__name__}: {e}"
        raise _Hint(text + (f"\n  Hint: {extra}" if extra else "")) from None


def _as_tensor(x: Any, what: str) -> torch.Tensor:
    if x is None:
        raise _Hint(f"{what} is None: did you forget the `return`?")
    if isinstance(x, torch.Tensor):
        return x.detach().double()
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError):
        raise _Hint(f"{what} should be a tensor (or a number); got {type(x).__name__}") from None


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


def _scalar(x: Any, fn: Callable, per_item: str) -> torch.Tensor:
    t = _as_tensor(x, f"{_name(fn)}'s result")
    if t.numel() != 1:
        raise _Hint(
            f"{_name(fn)} returned shape {tuple(t.shape)}; the loss is one number (a 0-d tensor). If these are the "
            f"{per_item}, return their mean."
        )
    if not torch.isfinite(t).all():
        raise _Hint(f"{_name(fn)} returned {t.item()}; a loss must be finite.")
    return t.reshape(())


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen)


def _embeddings(gen: torch.Generator, B: int, D: int, noise: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """Two modalities of B clips that share a hidden content, with row norms far from 1 (normalising matters)."""
    content = F.normalize(_randn(gen, B, D), dim=1)
    scale_a = 0.5 + 3 * torch.rand(B, 1, generator=gen)
    scale_b = 0.5 + 3 * torch.rand(B, 1, generator=gen)
    a = (content + noise * _randn(gen, B, D) / D**0.5) * scale_a
    b = (content + noise * _randn(gen, B, D) / D**0.5) * scale_b
    return a, b


# ====================================================================================================================
# 01 · FAC embeddings from the heads
# ====================================================================================================================

_FAC_DIMS = {"d_v": 12, "d_a": 10, "d_t": 9, "d_va": 8, "d_vat": 6}
_FAC_KEYS = ("z_v_va", "z_a_va", "z_v_vat", "z_a_vat", "z_t_vat")
_FAC_SIZES = (
    "here f_v has 12 features, f_a 10, f_t 9; S_va has 8 dimensions, S_vat 6: g_v_to_va maps 12 -> 8, g_a_to_va "
    "10 -> 8, g_va_to_vat 8 -> 6 (it takes an embedding of S_va, not a feature), g_t_to_vat 9 -> 6"
)


def _fac_heads(gen: torch.Generator) -> nn.ModuleDict:
    d = _FAC_DIMS
    shapes = {"g_v_to_va": ("d_v", "d_va"), "g_a_to_va": ("d_a", "d_va"), "g_va_to_vat": ("d_va", "d_vat")}
    shapes["g_t_to_vat"] = ("d_t", "d_vat")
    heads = nn.ModuleDict()
    for name, (i, o) in shapes.items():
        layer = nn.Linear(d[i], d[o])
        with torch.no_grad():
            layer.weight.copy_(_randn(gen, d[o], d[i]) / d[i] ** 0.5)
            layer.bias.copy_(0.5 * _randn(gen, d[o]))
        heads[name] = layer
    return heads.eval()


def _fac_reference(heads: nn.ModuleDict, f_v, f_a, f_t) -> dict[str, torch.Tensor]:
    """The library's FAC graph (:class:`mmv_lite.models.heads.EmbeddingGraph`) running on these heads, eval mode."""
    from .models.heads import EmbeddingGraph

    graph = EmbeddingGraph("fac", **_FAC_DIMS)
    graph.heads = heads
    graph.eval()
    with torch.no_grad():
        return {**graph.video(f_v), **graph.audio(f_a), **graph.text(f_t)}


def _fac_error(e: Exception) -> str | None:
    if "shape" in str(e) or "size" in str(e):
        return f"a head got an input of the wrong size; {_FAC_SIZES}."
    if isinstance(e, (KeyError, AttributeError)):
        return "the heads are heads['g_v_to_va'], heads['g_a_to_va'], heads['g_va_to_vat'] and heads['g_t_to_vat']."
    return None


@_register("fac", "01_model", "FAC embeddings", fac_embeddings, "the same five embeddings as the library's FAC graph")
def _check_fac(fn: Callable) -> str | None:
    gen = torch.Generator().manual_seed(1)
    for B, K in ((4, 3), (3, 1)):
        heads = _fac_heads(gen)
        f_v, f_a = _randn(gen, B, _FAC_DIMS["d_v"]), _randn(gen, B, _FAC_DIMS["d_a"])
        f_t = _randn(gen, B, K, _FAC_DIMS["d_t"])
        ref = _fac_reference(heads, f_v, f_a, f_t)
        with torch.no_grad():
            got = _call(fn, heads, f_v, f_a, f_t, on_error=_fac_error)
        if not isinstance(got, dict):
            return f"{_name(fn)} should return a dict with the keys {', '.join(_FAC_KEYS)}; got {type(got).__name__}."
        missing = [k for k in _FAC_KEYS if k not in got]
        if missing == ["z_a_vat"]:
            return (
                "z_a_vat is missing. In FAC the audio reaches S_vat through the video's path: "
                "z_a_vat = g_va_to_vat(relu(z_a_va)). No loss compares audio with text; this path is what makes "
                "zero-shot audio->text retrieval possible (notebook 06)."
            )
        if missing:
            return f"the result has no {', '.join(missing)}; expected the keys {', '.join(_FAC_KEYS)}."
        g = heads["g_va_to_vat"]
        with torch.no_grad():
            for key in _FAC_KEYS:
                z = _as_tensor(got[key], key)
                want = ref[key].double()
                if _close(z, want):
                    continue
                if z.shape != want.shape:
                    extra = ""
                    if key == "z_t_vat" and z.shape == want.shape[:1] + want.shape[2:]:
                        extra = (
                            " Keep the K candidates: g_t_to_vat works on the last axis, so f_t (B, K, d_t) gives "
                            "(B, K, d_vat); MIL-NCE needs every candidate separately."
                        )
                    return f"{key} has shape {tuple(z.shape)}, expected {tuple(want.shape)}.{extra}"
                if _close(z, F.normalize(want, dim=-1)):
                    return (
                        f"{key} is L2-normalised. The heads leave embeddings unnormalised (the losses and the "
                        "retrieval normalise when they compare), so return the heads' outputs as they are."
                    )
                src = "z_v_va" if key == "z_v_vat" else "z_a_va"
                if key in ("z_v_vat", "z_a_vat"):
                    z_src = ref[src]
                    if _close(z, g(z_src).double()):
                        return (
                            f"{key} = g_va_to_vat({src}) has no ReLU: the composed path is "
                            f"{key} = g_va_to_vat(relu({src}))."
                        )
                    if _close(z, torch.relu(g(z_src)).double()) or _close(z, torch.relu(g(torch.relu(z_src))).double()):
                        return (
                            f"the ReLU goes before g_va_to_vat, not after it: {key} = g_va_to_vat(relu({src})); "
                            "embeddings may be negative."
                        )
                    if key == "z_a_vat" and _close(z, ref["z_v_vat"].double()):
                        return "z_a_vat is the video's z_v_vat: start from the audio, g_va_to_vat(relu(z_a_va))."
                    if key == "z_a_vat" and _close(z, g(torch.relu(ref["z_v_va"])).double()):
                        return "z_a_vat was computed from z_v_va: start from the audio, g_va_to_vat(relu(z_a_va))."
                return f"{key} differs from the library's FAC graph ({_FAC_SIZES})."
    return None


# ====================================================================================================================
# 02 · NCE and MIL-NCE
# ====================================================================================================================


def _nce_variant(v, a, tau, normalise=True, temperature="divide", direction="both", positive_twice=True, reduce="mean"):
    """NCE in float64 with one thing changed (the reference when every argument keeps its default)."""
    v, a = v.double(), a.double()
    if normalise:
        v, a = F.normalize(v, dim=-1), F.normalize(a, dim=-1)
    s = v @ a.T
    s = {"divide": s / tau, "none": s, "multiply": s * tau}[temperature]
    diag = s.diagonal()
    lse_row, lse_col = torch.logsumexp(s, dim=1), torch.logsumexp(s, dim=0)
    if direction == "row":
        per = lse_row - diag
    elif direction == "column":
        per = lse_col - diag
    elif direction == "average":  # two softmaxes, averaged (CLIP's loss)
        per = 0.5 * (lse_row - diag) + 0.5 * (lse_col - diag)
    elif positive_twice:
        per = torch.logaddexp(lse_row, lse_col) - diag
    else:  # the union of row and column, the positive once
        off = s.masked_fill(torch.eye(len(s), dtype=torch.bool), -math.inf)
        per = torch.logsumexp(torch.cat([s, off.T], dim=1), dim=1) - diag
    return {"mean": per.mean(), "sum": per.sum(), "negative": -per.mean()}[reduce]


_NCE_MISTAKES = (
    (
        dict(temperature="none"),
        "no temperature: divide the cosine similarities by tau before the softmax. Cosines lie in [-1, 1], so without "
        "it the softmax is nearly flat and even a perfect ranking costs almost log(2B).",
    ),
    (dict(temperature="multiply"), "the similarities were multiplied by tau; divide them: s = cos / tau."),
    (
        dict(normalise=False),
        "the embeddings are not L2-normalised: the score is the cosine, so normalise each row first "
        "(F.normalize(z, dim=-1)); raw dot products let the loss be lowered by growing the vectors.",
    ),
    (
        dict(direction="row"),
        "only one direction: each video picks its sound among all sounds (row i), but MMV's NCE is symmetric: the "
        "sound must also pick its video among all videos (column i). Put row i and column i in one softmax.",
    ),
    (
        dict(direction="column"),
        "only one direction (the columns): add the rows too, row i and column i in one softmax.",
    ),
    (
        dict(direction="average"),
        "two softmaxes averaged (rows, then columns: CLIP's loss). MMV's NCE puts row i and column i into ONE "
        "softmax: loss_i = logsumexp([s[i, :], s[:, i]]) - s[i, i].",
    ),
    (
        dict(positive_twice=False),
        "the positive s[i, i] is in both row i and column i, and MMV's denominator counts it twice "
        "(torch.cat([s, s.T], dim=1)); that is why the loss never goes below log 2.",
    ),
    (dict(reduce="negative"), "wrong sign: the loss is -log(share of the positive), positive and falling as it wins."),
    (dict(reduce="sum"), "summed over the clips: return the mean, so that the loss does not grow with the batch."),
)


def _needs_grad(fn: Callable, out: Any) -> str | None:
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return (
            f"the value is right, but {_name(fn)} returns a number without a gradient (a float, .item(), numpy or "
            "torch.no_grad): training calls loss.backward(), so keep it a tensor built from the inputs."
        )
    return None


def _match_mistake(values: list[torch.Tensor], variants: list[list[torch.Tensor]], hints: list[str]) -> str | None:
    for outs, hint in zip(variants, hints):
        if all(_close(v, o, rtol=2e-4, atol=1e-5) for v, o in zip(values, outs)):
            return hint
    return None


@_register("nce", "02_losses", "symmetric NCE", nce_loss, "it matches mmv_lite.losses.nce on 4 random batches")
def _check_nce(fn: Callable) -> str | None:
    from .losses import nce

    gen = torch.Generator().manual_seed(2)
    cases = [(*_embeddings(gen, B, D), tau) for B, D, tau in ((6, 8, TEMPERATURE), (5, 16, 0.2), (8, 4, 0.5))]
    cases.append((*_embeddings(gen, 4, 8, noise=3.0), TEMPERATURE))
    values, refs = [], []
    for v, a, tau in cases:
        v_in, a_in = v.clone().requires_grad_(True), a.clone().requires_grad_(True)
        out = _call(fn, v_in, a_in, tau)
        val = _scalar(out, fn, "B per-clip losses")
        ref = nce(v, a, tau=tau).double()
        values.append(val)
        refs.append(ref)
        if not _close(val, ref):
            break
    else:
        return _needs_grad(fn, out)
    hint = _match_mistake(
        values,
        [[_nce_variant(v, a, tau, **kw) for v, a, tau in cases[: len(values)]] for kw, _ in _NCE_MISTAKES],
        [h for _, h in _NCE_MISTAKES],
    )
    v, a, tau = cases[len(values) - 1]
    seen = f"on a batch of B={len(v)} clips, tau={tau}: yours {values[-1].item():.4f}, expected {refs[-1].item():.4f}"
    return f"{hint}\n  ({seen})" if hint else f"the loss differs from mmv_lite.losses.nce ({seen})."


def _mil_variant(
    v,
    t,
    valid,
    tau,
    normalise=True,
    temperature=True,
    numerator="logsumexp",
    columns=True,
    mask_numerator=True,
    mask_denominator=True,
    empty_clip="drop",
    reduce="mean",
):
    """MIL-NCE in float64 with one thing changed (the reference when every argument keeps its default).

    numerator: "logsumexp" | "sum_scores" | "mean_scores" | "max" | "log_mean_exp" | "first".
    empty_clip: "drop" (neither anchor nor negative) | "negative" (no anchor, but its video stays a negative) |
    "divide_all" (dropped, but the mean divides by B).
    """
    v, t = v.double(), t.double()
    B, K, D = t.shape
    if normalise:
        v, t = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
    s = (v @ t.reshape(B * K, D).T).view(B, B, K)
    if temperature:
        s = s / tau
    has = valid.any(dim=1)
    ones = torch.ones_like(valid)
    den_valid = valid if mask_denominator else ones
    num_valid = valid if mask_numerator else ones
    row = s.masked_fill(~den_valid[None, :, :], -math.inf).flatten(1)
    col_video = has if empty_clip == "drop" or empty_clip == "divide_all" else torch.ones_like(has)
    col_ok = den_valid[:, None, :] & col_video[None, :, None]
    col = s.transpose(0, 1).masked_fill(~col_ok, -math.inf).flatten(1)
    den = torch.logsumexp(torch.cat([row, col], dim=1) if columns else row, dim=1)
    own = s.diagonal(dim1=0, dim2=1).T  # (B, K)
    masked = own.masked_fill(~num_valid, -math.inf)
    n_valid = num_valid.sum(dim=1).clamp_min(1)
    if numerator == "logsumexp":
        num = torch.logsumexp(masked, dim=1)
    elif numerator == "log_mean_exp":
        num = torch.logsumexp(masked, dim=1) - n_valid.log()
    elif numerator == "max":
        num = masked.max(dim=1).values
    elif numerator == "sum_scores":
        num = own.masked_fill(~num_valid, 0).sum(dim=1)
    elif numerator == "mean_scores":
        num = own.masked_fill(~num_valid, 0).sum(dim=1) / n_valid
    else:  # "first": only the nearest narration
        num = own[:, 0]
    per = (den - num)[has]
    total = per.sum()
    if reduce == "sum":
        return total
    if reduce == "negative":
        return -total / has.sum()
    return total / (B if empty_clip == "divide_all" else has.sum())


_MIL_MISTAKES = (
    (
        dict(numerator="sum_scores"),
        "the bag's numerator sums the scores, sum_k s_ik; MIL-NCE's numerator is log sum_k exp(s_ik), a soft maximum: "
        "torch.logsumexp over the valid candidates (a sum of scores rewards every candidate, also the off-topic ones).",
    ),
    (
        dict(numerator="mean_scores"),
        "the bag's numerator averages the scores; MIL-NCE's numerator is logsumexp_k s_ik over the valid candidates.",
    ),
    (
        dict(numerator="max"),
        "the bag's numerator takes the best candidate (max); MIL-NCE uses the soft maximum logsumexp_k s_ik, which "
        "shares the gradient among the candidates by their softmax.",
    ),
    (
        dict(numerator="log_mean_exp"),
        "the numerator is log(mean_k exp(s_ik)); MIL-NCE uses log(sum_k ...), torch.logsumexp, without dividing by K.",
    ),
    (
        dict(numerator="first"),
        "only the first candidate is in the numerator: that is NCE with the nearest narration. MIL-NCE's numerator "
        "is logsumexp over the whole bag of valid candidates of clip i.",
    ),
    (
        dict(mask_numerator=False, mask_denominator=False),
        "padding is not masked: candidates with text_valid False (padding, no narration) entered the loss. Leave "
        "them out of the numerator and the denominator (masked_fill with -inf before logsumexp).",
    ),
    (
        dict(mask_denominator=False),
        "padding is masked in the numerator but not in the denominator: candidates with text_valid False must leave "
        "the row and the column too.",
    ),
    (
        dict(mask_numerator=False),
        "padding is masked in the denominator but not in the numerator: the bag's logsumexp must skip candidates "
        "with text_valid False too.",
    ),
    (
        dict(empty_clip="negative"),
        "a clip without any valid narration was left out as an anchor, but its video still sits in the other clips' "
        "columns as a negative. Such a clip takes no part at all (its video is not a negative either).",
    ),
    (
        dict(empty_clip="divide_all"),
        "the mean divides by all B clips; divide by the clips that take part (those with a valid narration).",
    ),
    (
        dict(temperature=False),
        "no temperature: divide the cosine similarities by tau before the softmax.",
    ),
    (
        dict(normalise=False),
        "the embeddings are not L2-normalised: normalise z_v and every candidate of z_t (F.normalize(z, dim=-1)).",
    ),
    (
        dict(columns=False),
        "only one direction: MIL-NCE is symmetric like NCE. Besides video i against every narration (the row), clip "
        "i's narrations against every video (the column) belong in the same denominator.",
    ),
    (dict(reduce="negative"), "wrong sign: the loss is denominator minus numerator, positive, falling as it learns."),
    (dict(reduce="sum"), "summed over the clips: return the mean over the clips that take part."),
)


def _mil_cases(gen: torch.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    cases = []
    for stage, B, K, D, tau in (("all", 5, 3, 8, TEMPERATURE), ("padding", 6, 4, 8, 0.1), ("empty", 6, 3, 8, 0.1)):
        v, match = _embeddings(gen, B, D)
        t = _randn(gen, B, K, D) * (0.5 + 2 * torch.rand(B, K, 1, generator=gen))  # off-topic candidates
        t[torch.arange(B), torch.randint(0, K, (B,), generator=gen)] = match  # one candidate of each bag matches
        valid = torch.ones(B, K, dtype=torch.bool)
        if stage != "all":
            valid[1, 2:] = False
            valid[3, 1:] = False
            valid[4, 0] = False
            t[~valid] = 0.7 + 0.1 * _randn(gen, int((~valid).sum()), D)  # padding: an embedding of its own
        if stage == "empty":
            valid[2] = False
        cases.append((stage, v, t, valid, tau))
    return cases


_MIL_STAGE = {
    "all": "every candidate valid",
    "padding": "some candidates are padding (text_valid False)",
    "empty": "one clip has no valid candidate at all",
}


@_register(
    "mil_nce", "02_losses", "MIL-NCE", mil_nce_loss, "it matches mmv_lite.losses.mil_nce, with padding and empty bags"
)
def _check_mil_nce(fn: Callable) -> str | None:
    from .losses import mil_nce

    cases = _mil_cases(torch.Generator().manual_seed(3))
    values, refs = [], []
    for _stage, v, t, valid, tau in cases:
        v_in, t_in = v.clone().requires_grad_(True), t.clone().requires_grad_(True)
        out = _call(fn, v_in, t_in, valid.clone(), tau)
        t_out = _as_tensor(out, f"{_name(fn)}'s result")
        if t_out.numel() == 1 and not torch.isfinite(t_out).all():
            raise _Hint(
                f"{_name(fn)} returned {t_out.item()} when {_MIL_STAGE[_stage]}: a masked entry still reaches a "
                "logsumexp, or a clip with nothing valid is averaged in. Mask with -inf only where something valid "
                "remains in the same logsumexp, and average over the clips with a valid narration."
            )
        val = _scalar(out, fn, "per-clip losses")
        ref = mil_nce(v, t, valid, tau=tau).double()
        values.append(val)
        refs.append(ref)
        if not _close(val, ref):
            break
    else:
        return _needs_grad(fn, out)
    used = cases[: len(values)]
    hint = _match_mistake(
        values,
        [[_mil_variant(v, t, m, tau, **kw) for _, v, t, m, tau in used] for kw, _ in _MIL_MISTAKES],
        [h for _, h in _MIL_MISTAKES],
    )
    stage, v, t, _, tau = used[-1]
    B, K = t.shape[:2]
    seen = (
        f"B={B}, K={K}, tau={tau}, {_MIL_STAGE[stage]}: yours {values[-1].item():.4f}, expected {refs[-1].item():.4f}"
    )
    return f"{hint}\n  ({seen})" if hint else f"the loss differs from mmv_lite.losses.mil_nce ({seen})."


# ====================================================================================================================
# 03 · One training step
# ====================================================================================================================


class _TwoTowers(nn.Module):
    """A toy video-audio model for the training-step check: ``(video (B, 6), audio (B, 5)) -> z_v_va, z_a_va``."""

    def __init__(self):
        super().__init__()
        self.video = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
        self.audio = nn.Linear(5, 4)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"z_v_va": self.video(video), "z_a_va": self.audio(audio)}


def _step_loss(out: dict[str, torch.Tensor]) -> torch.Tensor:
    from .losses import nce

    return nce(out["z_v_va"], out["z_a_va"], tau=0.2)


def _step_setup() -> tuple[_TwoTowers, list[dict[str, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)  # the model's initialisation (inside fork_rng: the caller's generator is untouched)
    model = _TwoTowers()
    batches = []
    for _ in range(3):
        v, a = _embeddings(gen, 8, 4)
        batches.append({"video": torch.cat([v, v[:, :2]], dim=1), "audio": torch.cat([a, a[:, :1]], dim=1)})
    return model, batches


def _step_optimiser(model: nn.Module):
    from .config import TrainConfig
    from .optim import build_optimiser

    return build_optimiser(model.parameters(), TrainConfig(lr=0.05, amp=False), "cpu", amp=False, schedule=False)


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).double()


def _step_variant(kind: str) -> Callable:
    """A wrong training step of the given kind (to recognise a student's mistake by the same trajectory)."""

    def step(model, inputs, loss_fn, optimizer):
        if kind == "eval":
            model.eval()
        out = model(**inputs)
        loss = loss_fn(out)
        if kind not in ("no_zero_grad", "zero_grad_late"):
            optimizer.zero_grad()
        (-loss if kind == "ascent" else loss).backward()
        if kind == "zero_grad_late":
            optimizer.zero_grad()
        optimizer.step()
        if kind == "two_steps":
            optimizer.step()
        return loss.item()

    return step


_STEP_MISTAKES = (
    (
        "no_zero_grad",
        "the first step is right, the next ones are not: the gradients of earlier steps were added in. backward() ADDS "
        "to every parameter's .grad, so call optimizer.zero_grad() before loss.backward() in every step.",
    ),
    (
        "ascent",
        "the parameters moved the wrong way (gradient ascent): backward on the loss itself, loss.backward(), and let "
        "the optimizer subtract.",
    ),
    (
        "eval",
        "the model ran in evaluation mode (model.eval()): BatchNorm then uses its running statistics instead of the "
        "batch's. A training step leaves the mode alone; the model is already in training mode.",
    ),
    ("two_steps", "optimizer.step() was called twice: one step per batch."),
)


@_register(
    "train_step",
    "03_pretraining",
    "one training step",
    training_step,
    "the parameters move exactly as mmv_lite.optim.train_step moves them, three steps in a row",
)
def _check_train_step(fn: Callable) -> str | None:
    from .optim import train_step

    model, batches = _step_setup()
    student, reference = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    opt_s, opt_r = _step_optimiser(student), _step_optimiser(reference)
    start = _flat(student)

    def on_error(e: Exception) -> str | None:
        text = str(e)
        if "does not require grad" in text:
            return (
                "the loss has no gradient to follow: the forward pass ran under torch.no_grad() (or the loss was "
                "detached, e.g. with .item()) before backward."
            )
        if "backward through the graph a second time" in text:
            return "backward was called twice on the same loss: once per step."
        if "positional argument" in text or "keyword argument" in text:
            return "call the model with the batch's entries by name, model(**inputs), and the loss as loss_fn(output)."
        return None

    path, returned, ref_losses = [], [], []
    for inputs in batches:
        returned.append(_call(fn, student, inputs, _step_loss, opt_s.optimizer, on_error=on_error))
        path.append(_flat(student))
        ref_losses.append(train_step(reference, inputs, lambda out: {"loss": _step_loss(out)}, opt_r)["loss"].item())
        if not _close(path[-1], _flat(reference), rtol=1e-5, atol=1e-6):
            break
    else:
        if not student.training:
            return "the model was left in evaluation mode: a training step must not change the mode."
        for got, want in zip(returned, ref_losses):
            if got is None:
                return f"the parameters move as they should, but {_name(fn)} returns None: return loss.item()."
            value = _as_tensor(got, "the returned loss")
            if value.numel() != 1 or not math.isclose(value.item(), want, rel_tol=1e-4, abs_tol=1e-6):
                return (
                    "the parameters move as they should, but the returned value is not this batch's loss "
                    f"(yours {value.flatten()[:3].tolist()}, expected {want:.4f}): return loss.item()."
                )
        return None

    n = len(path)
    if torch.equal(path[0], start):
        grads = [p.grad for p in student.parameters()]
        if any(g is not None and g.abs().sum() > 0 for g in grads):
            return (
                "the parameters did not move, although they have gradients: call optimizer.step() after "
                "loss.backward()."
            )
        return (
            "the parameters did not move, and they hold no gradients when the step ends: loss.backward() must run, "
            "and optimizer.zero_grad() must come BEFORE it (zero_grad after backward throws the gradients away). "
            "The order: forward, loss, zero_grad, backward, step."
        )
    for kind, hint in _STEP_MISTAKES:
        twin = copy.deepcopy(model).train()
        opt = _step_optimiser(twin)
        twin_path = []
        for inputs in batches[:n]:
            _step_variant(kind)(twin, inputs, _step_loss, opt.optimizer)
            twin_path.append(_flat(twin))
        if all(_close(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(path, twin_path)):
            return hint
    where = "the first step" if n == 1 else f"step {n}"
    return f"after {where} the parameters differ from the reference step's (mmv_lite.optim.train_step)."


# ====================================================================================================================
# 04 · Centring and the modality gap
# ====================================================================================================================


def _to_numpy(x: Any, what: str) -> np.ndarray:
    if x is None:
        raise _Hint(f"{what} is None: did you forget the `return`?")
    if isinstance(x, torch.Tensor):
        return x.detach().double().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Hint(f"{what} should be an array or a tensor; got {type(x).__name__}") from None


def _same_directions(a: np.ndarray, b: np.ndarray) -> bool:
    """Row by row the same direction (so that re-normalising after centring is accepted)."""
    if a.shape != b.shape:
        return False
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if not (np.all(na > 1e-9) and np.all(nb > 1e-9)):
        return np.allclose(a, b, atol=1e-5)
    return bool(np.all(np.sum(a * b, axis=1) / (na * nb) > 1 - 1e-5))


@_register(
    "gap",
    "04_spaces_umap",
    "centring and the modality gap",
    centre_modalities,
    "it agrees with mmv_lite.embedding.centred and modality_gap",
)
def _check_gap(fn: Callable) -> str | None:
    from .embedding import centred, modality_gap

    gen = torch.Generator().manual_seed(5)
    for N, M, D in ((20, 14, 8), (9, 12, 5)):
        offset = 1.5 * _randn(gen, D)
        z_a = (_randn(gen, N, D) + offset) * (0.5 + 3 * torch.rand(N, 1, generator=gen))
        z_b = (_randn(gen, M, D) - offset) * (0.5 + 3 * torch.rand(M, 1, generator=gen))
        out = _call(fn, z_a.clone(), z_b.clone())
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            return f"{_name(fn)} should return three things, (c_a, c_b, gap); got {type(out).__name__}."
        c_a, c_b = _to_numpy(out[0], "c_a"), _to_numpy(out[1], "c_b")
        gap_t = _as_tensor(out[2], "gap")
        if gap_t.numel() != 1:
            return f"gap should be one number; got shape {tuple(gap_t.shape)}."
        gap = gap_t.item()
        want_a, want_b, want_gap = centred(z_a), centred(z_b), modality_gap(z_a, z_b)
        u_a, u_b = F.normalize(z_a.double(), dim=-1).numpy(), F.normalize(z_b.double(), dim=-1).numpy()
        m_a, m_b = u_a.mean(0), u_b.mean(0)
        if c_a.shape != want_a.shape or c_b.shape != want_b.shape:
            if c_a.shape == want_b.shape and c_b.shape == want_a.shape:
                return "c_a and c_b are swapped: return (c_a, c_b, gap), in the order of the arguments."
            return (
                f"c_a and c_b should have the shapes of z_a and z_b, {want_a.shape} and {want_b.shape}; "
                f"got {c_a.shape} and {c_b.shape}."
            )
        for c, want, z, name in ((c_a, want_a, z_a, "c_a"), (c_b, want_b, z_b, "c_b")):
            if _same_directions(c, want):
                continue
            raw = z.double().numpy()
            joint = np.concatenate([u_a, u_b]).mean(0)
            u = F.normalize(z.double(), dim=-1).numpy()
            if _same_directions(c, raw - raw.mean(0)):
                return (
                    f"{name}: the rows were centred without being L2-normalised first. Normalise each row (the map, "
                    "the losses and retrieval compare directions), then subtract the modality's mean direction."
                )
            if _same_directions(c, u - joint):
                return (
                    f"{name}: you subtracted the mean of BOTH modalities together. That keeps the gap: each modality "
                    "must be centred by its own mean (its own centre)."
                )
            if _same_directions(c, u):
                return f"{name}: the rows are normalised but not centred: subtract the modality's mean direction."
            return f"{name} differs from mmv_lite.embedding.centred (unit rows minus their own mean)."
        if math.isclose(gap, want_gap, rel_tol=1e-4, abs_tol=1e-6):
            continue
        raw_gap = float(np.linalg.norm(z_a.double().numpy().mean(0) - z_b.double().numpy().mean(0)))
        cos = float(m_a @ m_b / (np.linalg.norm(m_a) * np.linalg.norm(m_b)))
        unit_gap = float(np.linalg.norm(m_a / np.linalg.norm(m_a) - m_b / np.linalg.norm(m_b)))
        if math.isclose(gap, raw_gap, rel_tol=1e-4):
            return "gap: the means were taken of the raw embeddings; take them of the L2-normalised rows."
        if math.isclose(gap, want_gap**2, rel_tol=1e-4):
            return "gap is the squared distance; take the square root (the Euclidean distance between the centres)."
        if math.isclose(gap, cos, rel_tol=1e-4) or math.isclose(gap, 1 - cos, rel_tol=1e-4):
            return (
                "gap is a cosine of the two centres; the gap is the DISTANCE between them, |centre_a - centre_b|: "
                "it also sees how far each centre is from the sphere (how tightly a modality is bunched)."
            )
        if math.isclose(gap, unit_gap, rel_tol=1e-4):
            return (
                "gap: the centres were normalised before the distance. Keep their length: a mean of unit vectors is "
                "shorter than 1, and how much shorter says how spread out the modality is."
            )
        return f"gap = {gap:.4f}, expected {want_gap:.4f} (mmv_lite.embedding.modality_gap)."
    return None


# ====================================================================================================================
# 05 · Deflating one 3D convolution
# ====================================================================================================================


def _deflation_target(conv3d: nn.Conv3d, images: torch.Tensor) -> torch.Tensor:
    """What the deflated conv must give: the library's DeflatedConv3d where it is exact (no temporal padding), else
    the 3D conv on a long static clip (mmv_lite.models.deflation.static_clip) at a frame its window sees no padding."""
    from .models.deflation import DeflatedConv3d, static_clip

    with torch.no_grad():
        if conv3d.padding[0] == 0:
            return DeflatedConv3d(conv3d)(images)
        kT, pT, sT = conv3d.kernel_size[0], conv3d.padding[0], conv3d.stride[0]
        out = conv3d(static_clip(images, 4 * kT * sT + 2 * pT))
        frame = -(-pT // sT)  # the first output frame whose window lies inside the clip
        return out[:, :, frame]


def _deflation_cases(gen: torch.Generator) -> list[tuple[nn.Conv3d, torch.Tensor]]:
    cases = []
    for cin, cout, k, stride, pad, bias in (
        (3, 5, (3, 3, 3), (1, 1, 1), (0, 1, 1), True),
        (4, 6, (5, 3, 3), (1, 2, 2), (2, 1, 1), True),
        (2, 3, (3, 5, 5), (2, 1, 1), (1, 2, 2), False),
    ):
        conv = nn.Conv3d(cin, cout, k, stride=stride, padding=pad, bias=bias)
        with torch.no_grad():
            conv.weight.copy_(_randn(gen, *conv.weight.shape) / (cin * k[0] * k[1] * k[2]) ** 0.5)
            if bias:
                conv.bias.copy_(_randn(gen, cout))
        cases.append((conv.eval(), torch.rand(2, cin, 9, 11, generator=gen)))
    return cases


def _image_conv_error(e: Exception) -> str | None:
    if "Expected" in str(e) or "dim" in str(e) or "size" in str(e):
        return (
            "the deflated convolution takes images (B, C, H, W): build an nn.Conv2d (not an nn.Conv3d) with "
            "kernel_size=conv3d.kernel_size[1:] and a weight of shape (out, in, kH, kW)."
        )
    return None


@_register(
    "deflate",
    "05_deflation",
    "deflating a 3D convolution",
    deflate_conv,
    "on static clips it gives what the 3D convolution gives (mmv_lite.models.deflation)",
)
def _check_deflate(fn: Callable) -> str | None:
    import torch.nn.functional as Fn

    for conv3d, images in _deflation_cases(torch.Generator().manual_seed(6)):
        before = {k: v.clone() for k, v in conv3d.state_dict().items()}
        conv2d = _call(fn, conv3d)
        if any(not torch.equal(before[k], v) for k, v in conv3d.state_dict().items()):
            return (
                "the 3D convolution was changed in place: the video network must stay as it was; build a new "
                "nn.Conv2d and copy the summed kernel into it (conv3d.weight.sum(dim=2) makes a new tensor)."
            )
        if isinstance(conv2d, torch.Tensor):
            return (
                f"{_name(fn)} returned a tensor of shape {tuple(conv2d.shape)}; return a module (an nn.Conv2d) that "
                "takes images (B, C, H, W), with that kernel as its weight."
            )
        if conv2d is None:
            return f"{_name(fn)} returned None: did you forget `return conv2d`?"
        want = _deflation_target(conv3d, images)
        with torch.no_grad():
            got = _call(conv2d, images, on_error=_image_conv_error)
        got = _as_tensor(got, "the deflated convolution's output")
        kT = conv3d.kernel_size[0]
        desc = (
            f"(a Conv3d with kernel {tuple(conv3d.kernel_size)}, stride {tuple(conv3d.stride)}, padding "
            f"{tuple(conv3d.padding)}, bias {conv3d.bias is not None})"
        )
        if got.shape != want.shape:
            return (
                f"on images {tuple(images.shape)} the output has shape {tuple(got.shape)}, expected "
                f"{tuple(want.shape)} {desc}: keep the SPATIAL stride and padding, conv3d.stride[1:] and "
                "conv3d.padding[1:]; only the temporal ones disappear."
            )
        if _close(got, want.double(), rtol=1e-4, atol=1e-5):
            continue
        w, b = conv3d.weight.detach(), conv3d.bias
        s = dict(stride=conv3d.stride[1:], padding=conv3d.padding[1:])

        def out(weight, bias=b, images=images, s=s):
            return Fn.conv2d(images, weight, None if bias is None else bias.detach(), **s).double()

        if _close(got, out(w.mean(dim=2))):
            return (
                f"the kernel was averaged over time. On a static clip all {kT} time steps see the same image and their "
                f"responses ADD UP: sum over time (an average gives 1/{kT} of the video network's response)."
            )
        if any(_close(got, out(w[:, :, i])) for i in range(kT)):
            return (
                "one time slice of the kernel was kept. Each of the kT slices sees the same image on a static clip, "
                "so all of them contribute: sum the kernel over its time axis, weight.sum(dim=2)."
            )
        if b is not None and _close(got, out(w.sum(dim=2), bias=None)):
            return "the bias is missing: copy conv3d.bias into the 2D convolution."
        if b is not None and _close(got, out(w.sum(dim=2), bias=b * kT)):
            return "the bias was multiplied by kT: it is added once per output position, not once per time step."
        return f"the output differs from the 3D convolution on a static clip {desc}."
    return None


# ====================================================================================================================
# 06 · Recall@K and median rank
# ====================================================================================================================


def _recall_cases(gen: torch.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    cases = []
    sim = torch.rand(9, 14, generator=gen)  # no ties, one positive per query, an odd count
    pos = torch.zeros(9, 14, dtype=torch.bool)
    pos[torch.arange(9), torch.randperm(14, generator=gen)[:9]] = True
    cases.append(("one positive per query, no ties", sim, pos))
    sim = (torch.rand(12, 15, generator=gen) * 4).round() / 4  # five levels: many ties
    pos = torch.zeros(12, 15, dtype=torch.bool)
    pos[torch.arange(12), torch.randint(0, 15, (12,), generator=gen)] = True
    cases.append(("tied similarities", sim, pos))
    sim = torch.rand(10, 16, generator=gen)
    pos = torch.rand(10, 16, generator=gen) < 0.2
    pos[0] = False  # a query without any positive
    pos[1, :3] = True
    cases.append(("several positives per query, one query without any", sim, pos))
    sim = torch.rand(6, 20, generator=gen)  # an even count of queries whose best positives rank 1, 3, 4, 8, 11, 15
    order = sim.argsort(dim=1, descending=True)
    pos = torch.zeros(6, 20, dtype=torch.bool)
    pos[torch.arange(6), order[torch.arange(6), torch.tensor([0, 2, 3, 7, 10, 14])]] = True
    cases.append(("an even number of queries", sim, pos))
    return cases


def _recall_variant(sim, positive, kind: str) -> dict[str, float]:
    """Recall@K and MedR with one thing changed (see the hints)."""
    sim, positive = sim.double(), positive.bool()
    best = sim.masked_fill(~positive, -math.inf).max(dim=1).values[:, None]
    keep = positive.any(dim=1)
    if kind == "optimistic":
        rank = 1 + ((sim > best) & ~positive).sum(dim=1)
    elif kind == "zero_based":
        rank = ((sim >= best) & ~positive).sum(dim=1)
    elif kind == "index_order":
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices
        hit = torch.gather(positive, 1, order)
        rank = hit.double().argmax(dim=1) + 1
    elif kind == "first_positive":
        first = positive.double().argmax(dim=1)
        score = sim.gather(1, first[:, None])
        rank = 1 + ((sim >= score) & ~positive).sum(dim=1)
    else:
        rank = 1 + ((sim >= best) & ~positive).sum(dim=1)
    if kind != "keep_empty":
        rank = rank[keep]
    rank = rank.double()
    lt = kind == "strict_k"
    out = {f"R@{k}": 100.0 * ((rank < k) if lt else (rank <= k)).double().mean().item() for k in (1, 5, 10)}
    if kind == "fraction":
        out = {k: v / 100 for k, v in out.items()}
    if kind == "lower_median":
        out["MedR"] = rank.median().item()
    elif kind == "mean_rank":
        out["MedR"] = rank.mean().item()
    else:
        out["MedR"] = float(np.median(rank.numpy()))
    return out


_RECALL_MISTAKES = (
    (
        "optimistic",
        "ties are broken optimistically: a negative with the SAME similarity as the best positive must be ranked "
        "before it (count negatives with sim >= the positive's, not >). Otherwise a collapsed model that gives every "
        "candidate the same score gets rank 1 for every query.",
    ),
    (
        "index_order",
        "ties are broken by position (the order argsort/sort leaves tied candidates in): a negative tied with the best "
        "positive must count as ranked before it, wherever it sits.",
    ),
    ("zero_based", "ranks start at 1: the best candidate has rank 1 (count the negatives above it, then add one)."),
    (
        "first_positive",
        "the rank of the FIRST positive was used; a query with several positives is ranked by its BEST positive "
        "(the highest similarity among them).",
    ),
    ("keep_empty", "queries without any positive must be left out; they were counted."),
    ("strict_k", "R@k counts ranks <= k (rank k is in the top k); you counted rank < k."),
    ("fraction", "R@k is a percentage (0-100): multiply the fraction by 100."),
    (
        "lower_median",
        "MedR: torch.median returns the lower of the two middle values for an even count; the median is their mean "
        "(np.median, or torch.quantile(rank, 0.5)).",
    ),
    ("mean_rank", "MedR is the median rank, not the mean."),
)


@_register(
    "recall",
    "06_retrieval",
    "Recall@K and median rank",
    recall_and_median_rank,
    "it matches mmv_lite.retrieval.retrieval_metrics, ties and several positives included",
)
def _check_recall(fn: Callable) -> str | None:
    from .retrieval import retrieval_metrics

    keys = ("R@1", "R@5", "R@10", "MedR")
    cases = _recall_cases(torch.Generator().manual_seed(7))
    got_all = []
    for i, (what, sim, pos) in enumerate(cases):
        out = _call(fn, sim.clone(), pos.clone())
        if not isinstance(out, dict):
            return f"{_name(fn)} should return a dict with the keys {', '.join(keys)}; got {type(out).__name__}."
        missing = [k for k in keys if k not in out]
        if missing:
            return f"the result has no {', '.join(missing)}; expected the keys {', '.join(keys)}."
        got = {k: _as_tensor(out[k], k).item() for k in keys}
        got_all.append(got)
        ref = retrieval_metrics(sim, pos)
        if all(math.isclose(got[k], ref[k], rel_tol=1e-6, abs_tol=1e-6) for k in keys):
            continue
        for kind, hint in _RECALL_MISTAKES:
            matches = True
            for g, (_, s, p) in zip(got_all, cases[: i + 1]):
                var = _recall_variant(s, p, kind)
                if not all(math.isclose(g[k], var[k], rel_tol=1e-6, abs_tol=1e-6) for k in keys):
                    matches = False
                    break
            if matches:
                return f"{hint}\n  (case: {what})"
        diff = ", ".join(f"{k} yours {got[k]:.2f} vs {ref[k]:.2f}" for k in keys if not math.isclose(got[k], ref[k]))
        return f"on a case with {what}: {diff} (mmv_lite.retrieval.retrieval_metrics)."
    return None
