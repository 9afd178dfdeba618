"""The machinery of the exercises: the registry, the check that never raises on a wrong answer, the solution
reveal, and helpers shared by the checks (:mod:`.check_networks`, :mod:`.check_losses`, :mod:`.check_spaces`)."""

from __future__ import annotations

import html
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import runtime
from ..colab import SOLUTIONS_ENV


def solutions_on() -> bool:
    """True when ``MMV_LITE_SOLUTIONS`` is ``1`` (or ``true``/``yes``/``on``): starters then use the solutions."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Hint(Exception):
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


class Verdict:
    """What :func:`check` returns: true when the answer passed. A notebook cell ending in ``exercises.check(...)``
    shows only the printed verdict, not a stray ``True`` / ``False`` (IPython calls ``_ipython_display_``)."""

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        return bool(self) == other if isinstance(other, (bool, Verdict)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.passed)

    def __repr__(self) -> str:
        return f"Verdict(passed={self.passed})"

    def _ipython_display_(self) -> None:  # the check already printed its verdict
        pass


def check(name: str, fn: Callable, quiet: bool = False) -> Verdict:
    """Run exercise ``name``'s check on ``fn``: print ✓ or a hint, return a :class:`Verdict` (true when it passed).
    Never raises for a wrong answer or a crash inside ``fn``; a reference solution that fails its own check raises
    AssertionError."""
    ex = get(name)
    with torch.random.fork_rng(devices=[]):
        try:
            hint = ex.diagnose(fn)
        except Hint as h:
            hint = str(h)
    if hint is not None and fn is ex.solution:
        raise AssertionError(f"the reference solution of exercise {name!r} fails its own check: {hint}")
    if not quiet:
        if hint is None:
            print(f"✓ {ex.title}: correct, {ex.passed}.")
        else:
            print(f"✗ {ex.title}: {hint}\n  (exercises.reveal({name!r}) shows a solution.)")
    return Verdict(hint is None)


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


def register(name: str, notebook: str, title: str, solution_fn: Callable, passed: str):
    def deco(diagnose: Callable[[Callable], str | None]) -> Callable[[Callable], str | None]:
        EXERCISES[name] = Exercise(name, notebook, title, solution_fn, diagnose, passed)
        return diagnose

    return deco


# --------------------------------------------------------------------------------------------------------------------
# Helpers shared by the checks
# --------------------------------------------------------------------------------------------------------------------


def fn_name(fn: Callable) -> str:
    return getattr(fn, "__name__", "your function")


def call(fn: Callable, *args: Any, on_error: Callable[[Exception], str | None] | None = None) -> Any:
    """``fn(*args)``; a NotImplementedError or any other exception becomes a hint."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise Hint(
            f"{fn_name(fn)} is not written yet: replace `raise NotImplementedError` with your code, then run this "
            "cell again."
        ) from None
    except Exception as e:  # the student's code crashed: say where and, when we can, why
        extra = on_error(e) if on_error is not None else None
        text = f"{fn_name(fn)} raised {type(e).__name__}: {e}"
        raise Hint(text + (f"\n  Hint: {extra}" if extra else "")) from None


def as_tensor(x: Any, what: str) -> torch.Tensor:
    if x is None:
        raise Hint(f"{what} is None: did you forget the `return`?")
    if isinstance(x, torch.Tensor):
        return x.detach().double()
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError):
        raise Hint(f"{what} should be a tensor (or a number); got {type(x).__name__}") from None


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


def scalar(x: Any, fn: Callable, per_item: str) -> torch.Tensor:
    t = as_tensor(x, f"{fn_name(fn)}'s result")
    if t.numel() != 1:
        raise Hint(
            f"{fn_name(fn)} returned shape {tuple(t.shape)}; the loss is one number (a 0-d tensor). If these are the "
            f"{per_item}, return their mean."
        )
    if not torch.isfinite(t).all():
        raise Hint(f"{fn_name(fn)} returned {t.item()}; a loss must be finite.")
    return t.reshape(())


def randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen)


def paired_embeddings(gen: torch.Generator, B: int, D: int, noise: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """Two modalities of B clips that share a hidden content, with row norms far from 1 (normalising matters)."""
    content = F.normalize(randn(gen, B, D), dim=1)
    scale_a = 0.5 + 3 * torch.rand(B, 1, generator=gen)
    scale_b = 0.5 + 3 * torch.rand(B, 1, generator=gen)
    a = (content + noise * randn(gen, B, D) / D**0.5) * scale_a
    b = (content + noise * randn(gen, B, D) / D**0.5) * scale_b
    return a, b


def needs_grad(fn: Callable, out: Any) -> str | None:
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return (
            f"the value is right, but {fn_name(fn)} returns a number without a gradient (a float, .item(), numpy or "
            "torch.no_grad): training calls loss.backward(), so keep it a tensor built from the inputs."
        )
    return None


def match_mistake(values: list[torch.Tensor], variants: list[list[torch.Tensor]], hints: list[str]) -> str | None:
    for outs, hint in zip(variants, hints):
        if all(close(v, o, rtol=2e-4, atol=1e-5) for v, o in zip(values, outs)):
            return hint
    return None


def to_numpy(x: Any, what: str) -> np.ndarray:
    if x is None:
        raise Hint(f"{what} is None: did you forget the `return`?")
    if isinstance(x, torch.Tensor):
        return runtime.to_numpy(x.double())
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise Hint(f"{what} should be an array or a tensor; got {type(x).__name__}") from None
