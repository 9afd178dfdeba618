"""Interactive apps for the notebooks, built on ipywidgets 7.7 (Colab) and 8 (JupyterLab 4) alike.

Each app is a small class: its inputs are plain widgets (``FloatLogSlider``, ``ToggleButtons``, ``Text``,
``Dropdown``, ``Button``), and every input change calls ONE method that computes with a library function
(:mod:`mmv_lite.viz`, :mod:`mmv_lite.demo`) and shows the result in an ``Output``. The method also returns what it
showed and keeps it in ``app.last``, so plain pytest can drive an app by setting widget values and check the result.

    >>> app = TemperatureApp(scores, positive=0)
    >>> app.widget          # in a notebook: the slider and the figure
    >>> app.slider.value = 0.5; app.last   # the figure for tau = 0.5

Only APIs present in both ipywidgets 7.7 and 8 are used (no ``Text.on_submit``, no ``TagsInput``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import HTML, clear_output, display

from . import viz
from .config import TEMPERATURE


class _App:
    """An ``Output`` plus ``show()``: run ``compute()``, display what it returns, remember it in ``last``."""

    widget: widgets.Widget

    def __init__(self) -> None:
        self.out = widgets.Output()
        self.last: Any = None
        self.error: str | None = None

    def compute(self) -> Any:  # pragma: no cover - every app overrides it
        raise NotImplementedError

    def show(self, *_: Any) -> Any:
        """Recompute and redraw. Errors a user can fix (``ValueError``) are shown as a message, not raised."""
        with self.out:
            clear_output(wait=True)
            try:
                result = self.compute()
                self.error = None
            except ValueError as e:
                self.error, result = str(e), None
                display(HTML(f"<p style='color:#b71c1c'>{html.escape(str(e))}</p>"))
            else:
                _display(result)
        self.last = result
        return result

    def _ipython_display_(self) -> None:  # ipywidgets 7 and IPython both honour this
        display(self.widget)


def _display(result: Any) -> None:
    """Show a figure (then close it so it is not drawn twice), an HTML string, a widget, or a list of those."""
    if isinstance(result, (list, tuple)):
        for r in result:
            _display(r)
    elif isinstance(result, plt.Figure):
        display(result)
        plt.close(result)
    elif isinstance(result, str):
        display(HTML(result))
    elif result is not None:
        display(result)


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
        self.widget = widgets.VBox([self.slider, self.out])
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
        for t in self.toggles.values():
            t.observe(self.show, names="value")
        self.widget = widgets.VBox([*self.toggles.values(), self.out])
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


def hits_view(bank: Any, hits: Sequence[Any], audio: bool = True, narrations: bool = True) -> list[Any]:
    """What a retrieval app shows for ranked hits: one figure of frame strips, then per hit its narrations and an
    audio player (``IPython.display.Audio``). Returns the list of displayable objects."""
    from IPython.display import Audio

    from . import demo

    if not hits:
        return ["<p>no results</p>"]
    media = [demo.clip_media(bank.dataset, h.index) for h in hits]
    fps = bank.dataset.cfg.fps
    fig = viz.show_clips([m[0] for m in media], titles=[_hit_title(r + 1, h) for r, h in enumerate(hits)], fps=fps)
    shown: list[Any] = [fig]
    for r, (h, (_, wave, sr)) in enumerate(zip(hits, media)):
        said = (
            "; ".join(f"“{html.escape(t)}”" for t in h.narrations) if narrations and h.narrations else "(no narration)"
        )
        shown.append(f"<p style='margin:4px 0 0 0'><b>#{r + 1}</b> said nearby: {said}</p>")
        if audio and wave is not None:
            shown.append(Audio(wave, rate=sr, normalize=True))
    return shown


class TextSearchApp(_App):
    """Type a query, press Search (or change the text and leave the box): ranked clips by text -> video similarity."""

    def __init__(self, bank: Any, model: Any, query: str = "a small star spins", k: int = 4, audio: bool = True):
        super().__init__()
        self.bank, self.model, self.k, self.audio = bank, model, k, audio
        self.text = widgets.Text(value=query, description="query", placeholder="e.g. the big red circle bounces")
        self.text.continuous_update = False  # fire on Enter / leaving the box, not on every key
        self.button = widgets.Button(description="Search", button_style="primary")
        self.button.on_click(self.show)
        self.text.observe(self.show, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.text, self.button]), self.out])
        self.show()

    def compute(self):
        from . import demo

        self.hits = demo.search_text(self.bank, self.model, self.text.value, k=self.k)
        return hits_view(self.bank, self.hits, audio=self.audio)


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
        self.widget = widgets.VBox([self.dropdown, self.out])
        self.show()

    def compute(self):
        from IPython.display import Audio

        from . import demo

        i = self.dropdown.value
        self.hits = demo.search_sound(self.bank, i, k=self.k)
        self.texts = demo.sound_to_text(self.bank, i, k=3)
        shown: list[Any] = [f"<p><b>query sound</b> (clip {i})</p>"]
        _, wave, sr = demo.clip_media(self.bank.dataset, i)
        if self.audio and wave is not None:
            shown.append(Audio(wave, rate=sr, normalize=True))
        rows = [{"narration ranked for this sound (audio → text)": t, "cos": s} for t, s in self.texts]
        shown.append(viz.html_table(rows, floatfmt="{:.2f}"))
        return shown + hits_view(self.bank, self.hits, audio=self.audio, narrations=False)
