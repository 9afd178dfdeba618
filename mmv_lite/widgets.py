"""Interactive apps for the notebooks, built on ipywidgets 7.7 (Colab) and 8 (JupyterLab 4) alike.

Each app is a small class: its inputs are plain widgets (``FloatLogSlider``, ``ToggleButtons``, ``Text``,
``Dropdown``, ``Button``), and every input change calls ONE method that computes with a library function
(:mod:`mmv_lite.viz`, :mod:`mmv_lite.search`) and shows the result in an ``Output``. The method also returns what it
showed and keeps it in ``app.last``, so plain pytest can drive an app by setting widget values and check the result.

    >>> app = TemperatureApp(scores, positive=0)
    >>> app.widget          # in a notebook: the slider and the figure
    >>> app.slider.value = 0.5; app.last   # the figure for tau = 0.5

Only APIs present in both ipywidgets 7.7 and 8 are used (no ``Text.on_submit``, no ``TagsInput``).

Stable CSS classes (``add_class``) let a browser test find each app: every app's output area has ``mmv-output``;
``mmv-text-search`` (query box ``mmv-query``, button ``mmv-search-button``, results ``mmv-search-results``),
``mmv-sound-search`` (``mmv-sound-picker``, ``mmv-sound-results``), ``mmv-deflation-app`` (``mmv-deflation-mode``
toggle, ``mmv-deflation-clip`` picker, ``mmv-deflation-output``), ``mmv-temperature-app``
(``mmv-temperature-slider``), ``mmv-choice-app`` (one ``mmv-choice-<name>`` per toggle).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import HTML, Audio, Image, display

from . import viz
from .config import TEMPERATURE
from .data.text import tokenize_words
from .retrieval import cosine_similarity
from .search import clip_media, search_embedding, search_sound, search_text, sound_to_text


class _App:
    """An ``Output`` plus ``show()``: run ``compute()``, display what it returns, remember it in ``last``."""

    widget: widgets.Widget

    def __init__(self) -> None:
        self.out = widgets.Output()
        self.out.add_class("mmv-output")  # stable selectors for browser tests: every app's output area
        self.last: Any = None
        self.error: str | None = None

    def compute(self) -> Any:  # pragma: no cover - every app overrides it
        raise NotImplementedError

    def show(self, *_: Any) -> Any:
        """Recompute and redraw. Errors a user can fix (``ValueError``) are shown as a message, not raised.

        The output area is filled by setting its ``outputs`` directly (the records ``append_display_data`` makes), not
        by capturing ``display()`` inside ``with self.out``: the capture route made notebook runners (nbclient, hence
        nbmake) wait for a reply until their cell timeout in about one run in fifteen (measured with a one-widget
        notebook; none in 80 runs with direct outputs)."""
        try:
            result = self.compute()
            self.error = None
            shown = _displayables(result)
        except ValueError as e:
            self.error, result = str(e), None
            shown = [HTML(f"<p style='color:#b71c1c'>{html.escape(str(e))}</p>")]
        self.out.outputs = tuple(_output_record(obj) for obj in shown)
        self.last = result
        return result

    def _ipython_display_(self) -> None:  # ipywidgets 7 and IPython both honour this
        display(self.widget)


def _output_record(obj: Any) -> dict[str, Any]:
    """One ``display_data`` record for an ``Output``'s ``outputs`` (what ``Output.append_display_data`` appends)."""
    from IPython.core.interactiveshell import InteractiveShell

    data, metadata = InteractiveShell.instance().display_formatter.format(obj)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


@dataclass
class HitRow:
    """One ranked clip as an app shows it: its frame strip, and beside it what was said nearby and its sound.

    ``said`` is None where the app does not show narrations (the sound search); ``audio`` is None without a sound."""

    figure: Any
    said: str | None = None
    audio: Any = None

    def to_html(self) -> str:
        """One flex row: the frames as a PNG on the left, the narrations and the audio player right beside them."""
        img = base64.b64encode(_png(self.figure)).decode()
        side = "" if self.said is None else f"<p style='margin:0 0 6px 0'>{self.said}</p>"
        side += "" if self.audio is None else self.audio._repr_html_()
        return (
            "<div class='mmv-hit' style='display:flex;align-items:center;gap:12px;margin:2px 0'>"
            f"<img src='data:image/png;base64,{img}' style='max-width:70%'/><div>{side}</div></div>"
        )


def _png(fig: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed, so the notebook does not draw it a second time."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _displayables(result: Any) -> list[Any]:
    """What to put in an app's output for ``result``: a figure becomes a PNG image (then is closed, so it is not
    drawn twice), a string becomes HTML, a :class:`HitRow` one HTML row, a list is flattened, anything else
    (``Audio``, ``HTML``) is kept."""
    if isinstance(result, (list, tuple)):
        return [d for r in result for d in _displayables(r)]
    if isinstance(result, plt.Figure):
        return [Image(data=_png(result), format="png")]
    if isinstance(result, HitRow):
        return [HTML(result.to_html())]
    if isinstance(result, str):
        return [HTML(result)]
    return [] if result is None else [result]


# --------------------------------------------------------------------------------------------------------------------
# 02 losses: what the temperature does
# --------------------------------------------------------------------------------------------------------------------


class TemperatureApp(_App):
    """A temperature slider over one anchor's similarities: softmax weights and the loss curve (viz.show_temperature).

    Args:
        scores: ``(N,)`` cosine similarities of one anchor with N candidates.
        positive: index of the positive candidate.
        names: optional candidate names for the x axis.
    """

    def __init__(self, scores: Any, positive: int, names: Sequence[str] | None = None, tau: float = TEMPERATURE):
        super().__init__()
        self.scores, self.positive, self.names = scores, positive, names
        self.slider = widgets.FloatLogSlider(
            value=tau, base=10, min=-2, max=0, step=0.05, description="τ", readout_format=".3f", continuous_update=False
        )
        self.slider.observe(self.show, names="value")
        self.slider.add_class("mmv-temperature-slider")
        self.widget = widgets.VBox([self.slider, self.out])
        self.widget.add_class("mmv-temperature-app")
        self.show()

    def compute(self):
        return viz.show_temperature(self.scores, self.positive, tau=self.slider.value, names=self.names)


# --------------------------------------------------------------------------------------------------------------------
# Generic: pick among named views (e.g. 05 deflation: video / naive image / calibrated image)
# --------------------------------------------------------------------------------------------------------------------


class ChoiceApp(_App):
    """One ``ToggleButtons`` per option group; every change calls ``view(**choices)`` and shows what it returns.

    Args:
        options: ``{argument name: [choices]}``, e.g. ``{"mode": ["video", "image"], "bn": ["naive", "calibrated"]}``.
        view: a library function taking those keyword arguments and returning a figure / HTML / list of them.
    """

    def __init__(self, options: Mapping[str, Sequence[str]], view: Callable[..., Any], descriptions=None):
        super().__init__()
        self.view = view
        descriptions = descriptions or {}
        self.toggles = {
            name: widgets.ToggleButtons(
                options=list(opts), value=list(opts)[0], description=descriptions.get(name, name)
            )
            for name, opts in options.items()
        }
        for name, t in self.toggles.items():
            t.observe(self.show, names="value")
            t.add_class(f"mmv-choice-{name}")
        self.widget = widgets.VBox([*self.toggles.values(), self.out])
        self.widget.add_class("mmv-choice-app")
        self.show()

    def compute(self):
        return self.view(**{name: t.value for name, t in self.toggles.items()})


# --------------------------------------------------------------------------------------------------------------------
# 06 retrieval: type a query, pick a sound
# --------------------------------------------------------------------------------------------------------------------


def _hit_title(rank: int, hit: Any) -> str:
    names = {"action": "motion", "sound": "sound", "image": "shape"}
    labels = "  ".join(f"{names.get(k, k)}: {v}" for k, v in hit.labels.items())
    return f"#{rank}  cos {hit.score:.2f}  ·  {hit.video_id} at {hit.start:.1f}s  ·  {labels}"


def said_nearby(rank: int, narrations: Sequence[str]) -> str:
    """The line under a hit: what was said near the clip, or "(no narration)" where nothing was."""
    said = "; ".join(f"“{html.escape(t)}”" for t in narrations) if narrations else "(no narration)"
    return f"<b>#{rank}</b> said nearby: {said}"


def hits_view(bank: Any, hits: Sequence[Any], audio: bool = True, narrations: bool = True) -> list[Any]:
    """What a retrieval app shows for ranked hits: one :class:`HitRow` per hit, its frame strip with its narrations
    (unless ``narrations`` is False: then no narration line at all) and its audio player beside it."""
    if not hits:
        return ["<p>no results</p>"]
    fps = bank.dataset.cfg.fps
    rows: list[Any] = []
    for r, h in enumerate(hits):
        frames, wave, sr = clip_media(bank.dataset, h.index)
        fig = viz.show_clips([frames], titles=[_hit_title(r + 1, h)], fps=fps)
        player = Audio(wave, rate=sr, normalize=True) if audio and wave is not None else None
        rows.append(HitRow(fig, said_nearby(r + 1, h.narrations) if narrations else f"<b>#{r + 1}</b>", player))
    return rows


def out_of_vocabulary(query: str, word_vectors: Any) -> list[str]:
    """The words of ``query`` the text tower cannot read (not in ``word_vectors``' vocabulary), in query order;
    stop words are not counted (the tower drops them by design)."""
    return [w for w in tokenize_words(query) if w not in word_vectors]


class TextSearchApp(_App):
    """Type a query, press Search (or Enter, or leave the box): ranked clips by text -> video similarity.

    A query is searched once: Enter (or leaving the box) and then a click on Search run ONE search, since the click
    finds the query already searched. ``searches`` counts the searches run. Words the vocabulary lacks are named above
    the results (``dropped``) rather than silently left out."""

    def __init__(self, bank: Any, model: Any, query: str = "a small star spins", k: int = 4, audio: bool = True):
        super().__init__()
        self.bank, self.model, self.k, self.audio = bank, model, k, audio
        self.text = widgets.Text(value=query, description="query", placeholder="e.g. the big red circle bounces")
        self.text.continuous_update = False  # fire on Enter / leaving the box, not on every key
        self.button = widgets.Button(description="Search", button_style="primary")
        self.searched: str | None = None  # the query whose results are shown
        self.searches = 0
        self.dropped: list[str] = []
        self.button.on_click(self.search)
        self.text.observe(self.search, names="value")
        self.text.add_class("mmv-query")
        self.button.add_class("mmv-search-button")
        self.out.add_class("mmv-search-results")
        self.widget = widgets.VBox([widgets.HBox([self.text, self.button]), self.out])
        self.widget.add_class("mmv-text-search")
        self.search()

    def search(self, *_: Any) -> Any:
        """Search the box's query, unless its results are already shown."""
        if self.text.value == self.searched:
            return self.last
        self.searched = self.text.value
        return self.show()

    def compute(self):
        self.searches += 1
        query = self.text.value
        self.dropped = out_of_vocabulary(query, self.bank.dataset.word_vectors)
        self.hits = search_text(self.bank, self.model, query, k=self.k)
        shown: list[Any] = []
        if self.dropped:
            words = ", ".join(f"“{html.escape(w)}”" for w in self.dropped)
            shown.append(f"<p class='mmv-dropped'>Left out (not in the vocabulary): {words}</p>")
        return shown + hits_view(self.bank, self.hits, audio=self.audio)


class SoundSearchApp(_App):
    """Pick a clip's sound: the clips whose video matches it (audio -> video), and the narrations it evokes
    (audio -> text, never trained directly)."""

    def __init__(self, bank: Any, options: Sequence[tuple[str, int]], k: int = 4, audio: bool = True):
        super().__init__()
        self.bank, self.k, self.audio = bank, k, audio
        if not options:
            raise ValueError("SoundSearchApp needs at least one (label, clip index) option")
        self.dropdown = widgets.Dropdown(options=list(options), description="sound of")
        self.dropdown.observe(self.show, names="value")
        self.dropdown.add_class("mmv-sound-picker")
        self.out.add_class("mmv-sound-results")
        self.widget = widgets.VBox([self.dropdown, self.out])
        self.widget.add_class("mmv-sound-search")
        self.show()

    def compute(self):
        i = self.dropdown.value
        self.hits = search_sound(self.bank, i, k=self.k)
        self.texts = sound_to_text(self.bank, i, k=3)
        shown: list[Any] = [f"<p><b>query sound</b> (clip {i})</p>"]
        _, wave, sr = clip_media(self.bank.dataset, i)
        if self.audio and wave is not None:
            shown.append(Audio(wave, rate=sr, normalize=True))
        rows = [{"narration ranked for this sound (audio → text)": t, "cos": s} for t, s in self.texts]
        shown.append(viz.html_table(rows, floatfmt="{:.2f}"))
        return shown + hits_view(self.bank, self.hits, audio=self.audio, narrations=False)


# --------------------------------------------------------------------------------------------------------------------
# 05 deflation: the same clip as a video, or one frame of it through the naive / calibrated image network
# --------------------------------------------------------------------------------------------------------------------


def deflation_view(
    bank: Any,
    queries: Mapping[str, Any],
    frames: Any,
    index: int,
    mode: str,
    k: int = 4,
    key: str = "z_v_va",
) -> list[Any]:
    """What the deflation app shows: the query (clip ``index`` as a video, or its middle frame as an image in the
    chosen ``mode``) and the bank's clips ranked for it by cosine in ``key``'s space.

    Args:
        bank: a :class:`~mmv_lite.search.ClipBank` (its ``emb[key]`` are the clips' video embeddings).
        queries: ``{mode: (N, D)}`` query embeddings, row i standing for clip i (``"video"``: the bank's own).
        frames: ``(N, 3, H, W)`` the middle frame of every clip (what the image modes saw).

    Returns ``[HTML summary, figure]``: where the clip itself ranks (a good image embedding finds the video it was
    taken from) and how many of the top ``k`` show the same shape.
    """
    if mode not in queries:
        raise ValueError(f"unknown mode {mode!r}; expected one of {list(queries)}")
    q = queries[mode]
    if not 0 <= index < len(q):
        raise ValueError(f"clip index {index} out of range (0..{len(q) - 1})")
    hits = search_embedding(bank, q[index], key=key, k=k)
    sim = cosine_similarity(q[index : index + 1], bank.emb[key])[0]
    own_rank = int((sim >= sim[index]).sum())  # ties ranked pessimistically, as in retrieval.positive_ranks
    target = bank.hit(index, float(sim[index]))
    shape = target.labels.get("image", "?")
    same = sum(h.labels.get("image") == shape for h in hits)
    what = "the clip (video network)" if mode == "video" else f"its middle frame ({mode} image network)"
    summary = (
        f"<p><b>{mode}</b>: query = clip {index}, {what}. Its own clip ranks <b>#{own_rank}</b> of {len(bank)} "
        f"(cos {float(sim[index]):.2f}); {same} of the top {len(hits)} show a {html.escape(shape)}.</p>"
    )
    media = [clip_media(bank.dataset, h.index)[0] for h in hits]
    titles = [
        f"#{r + 1}  cos {h.score:.2f}  ·  shape: {h.labels.get('image', '?')}"
        + ("  ✓" if h.labels.get("image") == shape else "")
        + ("  (the query's own clip)" if h.index == index else "")
        for r, h in enumerate(hits)
    ]
    fps = bank.dataset.cfg.fps
    if mode == "video":
        query_media, query_title = clip_media(bank.dataset, index)[0], f"query: clip {index} as a video ({shape})"
    else:
        query_media, query_title = frames[index], f"query: one frame of clip {index} ({shape}), {mode} deflation"
    fig = viz.show_query_and_hits(query_media, media, titles, query_title=query_title, fps=fps)
    return [summary, fig]


class DeflationApp(_App):
    """ToggleButtons video / naive / calibrated and a clip picker: the same clip searched for as a video, or one
    frame of it through the naive or the calibrated deflated network (``deflation_view``)."""

    def __init__(
        self,
        bank: Any,
        queries: Mapping[str, Any],
        frames: Any,
        options: Sequence[tuple[str, int]],
        k: int = 4,
        key: str = "z_v_va",
    ):
        super().__init__()
        if not options:
            raise ValueError("DeflationApp needs at least one (label, clip index) option")
        self.bank, self.queries, self.frames, self.k, self.key = bank, queries, frames, k, key
        self.mode = widgets.ToggleButtons(options=list(queries), value=list(queries)[0], description="network")
        self.clip = widgets.Dropdown(options=list(options), description="clip")
        self.mode.add_class("mmv-deflation-mode")
        self.clip.add_class("mmv-deflation-clip")
        self.out.add_class("mmv-deflation-output")
        self.mode.observe(self.show, names="value")
        self.clip.observe(self.show, names="value")
        self.widget = widgets.VBox([self.mode, self.clip, self.out])
        self.widget.add_class("mmv-deflation-app")
        self.show()

    def compute(self):
        return deflation_view(self.bank, self.queries, self.frames, self.clip.value, self.mode.value, self.k, self.key)
