"""The embedding graphs of MMV, declared once as data (MMV_REFERENCE section 1).

A graph is a table of projection heads. A head ``g_{src->space}`` maps into ``space`` either a backbone feature
``f_src`` (``src`` a modality: ``"v"`` video, ``"a"`` audio, ``"t"`` text) or, for a *composed* head such as FAC's
``g_va_to_vat``, the embedding ``relu(z_m_src)`` of every modality ``m`` that already reached the space ``src``.
The embedding of modality ``m`` in space ``s`` is ``z_{m}_{s}`` (:func:`z_key`).

Everything else is derived from :data:`GRAPHS`:

* the head modules and the embeddings each modality gets (:class:`mmv_lite.models.heads.EmbeddingGraph`);
* the space in which two modalities are compared (:func:`space_for`): the loss pairs of
  :class:`mmv_lite.losses.MMVLoss` and the retrieval directions of :mod:`mmv_lite.retrieval`;
* the figure of the graph (:func:`mmv_lite.viz.draw_embedding_graph`);
* the names of the released weights (:mod:`mmv_lite.official`).

Adding a graph is adding one entry to :data:`GRAPHS` (``tests/test_graphs.py`` builds and trains a made-up one).

    >>> space_for("fac", "v", "t")
    'vat'
    >>> [h.name for h in GRAPHS["fac"].heads]
    ['g_v_to_va', 'g_a_to_va', 'g_va_to_vat', 'g_t_to_vat']
"""

from __future__ import annotations

from dataclasses import dataclass

MODALITIES = ("v", "a", "t")
# Head forms: "video" is the model's video head (``model.head``: the released MLP, or Linear + BN);
# "linear" is a Linear layer; "linear_bn" a Linear layer followed by BatchNorm.
HEAD_FORMS = ("video", "linear", "linear_bn")


def z_key(m: str, space: str) -> str:
    """Key of modality ``m``'s embedding in ``space``: ``z_key("v", "va") == "z_v_va"``."""
    return f"z_{m}_{space}"


@dataclass(frozen=True)
class Head:
    """One projection head: ``name`` (the paper's ``g_v_to_va``) maps ``source`` (a modality or a space) into ``space``.

    ``eval_only``: modalities that go through this (composed) head only in eval mode, so that in training they never
    touch its BatchNorm statistics (FAC's audio -> vat, as in the official code). ``official``: the module's name in
    the released checkpoint (fac graph only).
    """

    name: str
    source: str
    space: str
    form: str = "linear"
    eval_only: tuple[str, ...] = ()
    official: str = ""

    @property
    def composed(self) -> bool:
        return self.source not in MODALITIES


@dataclass(frozen=True)
class Step:
    """One embedding computed for a modality: ``output = head(input)`` (through a ReLU when the head is composed)."""

    head: Head
    input: str  # "f" (the backbone feature) or the key of an embedding computed earlier
    output: str
    eval_only: bool


@dataclass(frozen=True)
class Graph:
    """An embedding graph: its heads, in the order they are built (which fixes their random initialisation)."""

    name: str
    title: str
    heads: tuple[Head, ...]

    def __post_init__(self) -> None:
        for h in self.heads:
            if h.form not in HEAD_FORMS:
                raise ValueError(f"graph {self.name!r}, head {h.name}: form {h.form!r}; expected one of {HEAD_FORMS}")
            if not h.space or any(c not in MODALITIES for c in h.space + h.source):
                raise ValueError(f"graph {self.name!r}, head {h.name}: source and space are made of 'v', 'a', 't'")

    def steps(self, m: str) -> list[Step]:
        """How modality ``m`` reaches each of its spaces: heads from ``f_m`` first, then composed heads (in order)."""
        steps = [Step(h, "f", z_key(m, h.space), m in h.eval_only) for h in self.heads if h.source == m]
        reached = {s.head.space: s for s in steps}
        grew = True
        while grew:  # composed heads may chain (va -> vat -> ...); stop when nothing new is reached
            grew = False
            for h in self.heads:
                if h.composed and h.source in reached and h.space not in reached:
                    prev = reached[h.source]
                    step = Step(h, prev.output, z_key(m, h.space), prev.eval_only or m in h.eval_only)
                    steps.append(step)
                    reached[h.space] = step
                    grew = True
        return steps

    def spaces(self, m: str, training: bool = False) -> dict[str, int]:
        """``{space: heads on the way}`` for each space modality ``m`` reaches (``training``: no eval-only steps)."""
        depth: dict[str, int] = {}
        for s in self.steps(m):
            if not (training and s.eval_only):
                depth[s.head.space] = depth.get(s.head.source, 0) + 1
        return depth

    def space_for(self, m1: str, m2: str) -> str | None:
        """The space where ``m1`` and ``m2`` meet: of the spaces both reach, the nearest (fewest heads in all)."""
        a, b = self.spaces(m1), self.spaces(m2)
        common = [s for s in a if s in b]
        return min(common, key=lambda s: a[s] + b[s]) if common else None

    def pairs(self) -> dict[frozenset, str]:
        """``{frozenset("va"): "va", ...}``: every pair of modalities that has a common space, and that space."""
        out = {}
        for pair in ("va", "vt", "at"):
            space = self.space_for(*pair)
            if space is not None:
                out[frozenset(pair)] = space
        return out

    def head_of(self, key: str) -> Head | None:
        """The head that produces embedding ``key`` (``"z_a_vat"``), or None."""
        m = key.split("_")[1]
        return next((s.head for s in self.steps(m) if s.output == key), None)


GRAPHS: dict[str, Graph] = {
    # FAC (fine and coarse, the released graph): video and audio meet in the fine space va; video goes on through
    # g_va_to_vat to the coarse space vat where text is; audio takes the same road only at evaluation.
    "fac": Graph(
        "fac",
        "FAC: fine (va) then coarse (vat)",
        (
            Head("g_v_to_va", "v", "va", "video", official="vid2audio_embd"),
            Head("g_a_to_va", "a", "va", official="audio_embd"),
            Head("g_va_to_vat", "va", "vat", "linear_bn", eval_only=("a",), official="vis_embd"),
            Head("g_t_to_vat", "t", "vat", official="txt_embd"),
        ),
    ),
    # shared: one space for all three; the video head serves both the audio and the text target.
    "shared": Graph(
        "shared",
        "shared: one space for all three",
        (
            Head("g_v_to_vat", "v", "vat", "video"),
            Head("g_a_to_vat", "a", "vat"),
            Head("g_t_to_vat", "t", "vat"),
        ),
    ),
    # disjoint: one space per pair; audio and text share none.
    "disjoint": Graph(
        "disjoint",
        "disjoint: one space per pair",
        (
            Head("g_v_to_va", "v", "va", "video"),
            Head("g_a_to_va", "a", "va"),
            Head("g_v_to_vt", "v", "vt", "video"),
            Head("g_t_to_vt", "t", "vt"),
        ),
    ),
}


def get_graph(name: str) -> Graph:
    """The graph called ``name``, with an error listing the known ones."""
    if name not in GRAPHS:
        raise ValueError(f"unknown graph {name!r}; expected one of {tuple(GRAPHS)}")
    return GRAPHS[name]


def space_for(graph: str, m1: str, m2: str) -> str:
    """The space in which modalities ``m1`` and ``m2`` (``"v"``, ``"a"``, ``"t"``) are compared in ``graph``.

    >>> space_for("fac", "v", "a"), space_for("fac", "a", "t"), space_for("shared", "v", "a")
    ('va', 'vat', 'vat')
    """
    g = get_graph(graph)
    if len({m1, m2}) != 2 or not {m1, m2} <= set(MODALITIES):
        raise ValueError(f"modalities must be two different letters of 'v', 'a', 't'; got {m1!r}, {m2!r}")
    space = g.space_for(m1, m2)
    if space is None:
        with_pair = [n for n, other in GRAPHS.items() if other.space_for(m1, m2) is not None]
        raise ValueError(
            f"in the {graph!r} graph {m1} and {m2} share no space "
            f"(its spaces: {sorted(set(g.pairs().values()))}); use one of the graphs {with_pair} to compare them"
        )
    return space


def embedding_key(graph: str, m: str, other: str) -> str:
    """Key of ``m``'s embedding when compared with ``other``: ``embedding_key("fac", "v", "a") == "z_v_va"``."""
    return z_key(m, space_for(graph, m, other))
