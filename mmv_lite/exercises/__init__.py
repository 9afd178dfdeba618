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
A check recognises a typical mistake by recomputing the answer with that one mistake and comparing.

Layout: :mod:`.solutions` (the reference solutions), :mod:`.core` (registry, :func:`check`, :func:`reveal`, helpers),
:mod:`.check_networks` (``fac``, ``train_step``, ``deflate``), :mod:`.check_losses` (``nce``, ``mil_nce``),
:mod:`.check_spaces` (``gap``, ``recall``). Adding an exercise: a solution, a check registered with
:func:`.core.register`, a section in its notebook, wrong answers in ``tests/test_exercises.py`` and its answer and
mistakes in ``docs/TEACHING.md``.
"""

from __future__ import annotations

from ..colab import SOLUTIONS_ENV
from . import check_losses, check_networks, check_spaces  # noqa: F401  (each registers its exercises)
from .core import EXERCISES, Exercise, Reveal, check, exercise, get, reveal, solution, solutions_on
from .solutions import (
    centre_modalities,
    deflate_conv,
    fac_embeddings,
    mil_nce_loss,
    nce_loss,
    recall_and_median_rank,
    training_step,
)

__all__ = [
    "EXERCISES",
    "SOLUTIONS_ENV",
    "Exercise",
    "Reveal",
    "centre_modalities",
    "check",
    "deflate_conv",
    "exercise",
    "fac_embeddings",
    "get",
    "mil_nce_loss",
    "nce_loss",
    "recall_and_median_rank",
    "reveal",
    "solution",
    "solutions_on",
    "training_step",
]
