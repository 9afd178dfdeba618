"""The notebook apps: widgets wired to library functions; driving the widgets changes what is shown."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mmv_lite import widgets  # noqa: E402


def test_temperature_app_redraws_for_the_new_tau():
    s = np.array([0.5, 0.45, 0.1, -0.2])
    app = widgets.TemperatureApp(s, positive=0)
    first = app.last
    assert first.axes[0].get_title(loc="left").startswith("τ = 0.070")
    app.slider.value = 0.5
    assert app.last is not first
    assert app.last.axes[0].get_title(loc="left").startswith("τ = 0.500")
    # Hotter temperature: the positive's share falls towards 1/N.
    title = app.last.axes[0].get_title(loc="left")
    assert int(title.rsplit(" ", 1)[1].rstrip("%")) < 50


def test_choice_app_calls_the_view_with_every_toggle():
    calls = []

    def view(mode, bn):
        calls.append((mode, bn))
        return f"<b>{mode}/{bn}</b>"

    app = widgets.ChoiceApp({"mode": ["video", "image"], "bn": ["naive", "calibrated"]}, view)
    assert calls == [("video", "naive")] and app.last == "<b>video/naive</b>"
    app.toggles["bn"].value = "calibrated"
    app.toggles["mode"].value = "image"
    assert calls[-1] == ("image", "calibrated") and app.last == "<b>image/calibrated</b>"


def test_user_errors_are_shown_not_raised():
    def view(mode):
        if mode == "bad":
            raise ValueError("no such thing")
        return "ok"

    app = widgets.ChoiceApp({"mode": ["good", "bad"]}, view)
    app.toggles["mode"].value = "bad"
    assert app.last is None and app.error == "no such thing"
    app.toggles["mode"].value = "good"
    assert app.last == "ok" and app.error is None


def test_programming_errors_still_raise():
    def view(mode):
        raise KeyError(mode)

    with pytest.raises(KeyError):
        widgets.ChoiceApp({"mode": ["x"]}, view)


SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "data_samples"
needs_samples = pytest.mark.skipif(not (SAMPLES / "metadata.json").is_file(), reason="data_samples/ not made yet")


@pytest.fixture(scope="module")
def small_bank():
    import torch

    from mmv_lite import build_model, get_config
    from mmv_lite.data.clips import ClipDataset
    from mmv_lite.search import ClipBank

    torch.manual_seed(0)
    ds = ClipDataset(SAMPLES, "val", get_config("lite").data)
    model = build_model("lite", word_vectors=ds.word_vectors.as_tensor()).eval()
    return ClipBank.build(model, ds), model


@needs_samples
def test_text_search_app_follows_the_query_box_and_the_button(small_bank):
    bank, model = small_bank
    app = widgets.TextSearchApp(bank, model, query="red circle", k=3, audio=False)
    first = [h.index for h in app.hits]
    assert len(first) == 3 and isinstance(app.last[0], widgets.HitRow)
    assert "mmv-text-search" in app.widget._dom_classes and "mmv-query" in app.text._dom_classes
    app.text.value = "small purple star orbits"
    assert app.searches == 2 and len(app.hits) == 3  # the new query was searched
    assert app.last[0].figure.axes[0].get_title(loc="left").startswith("#1  cos")
    app.text.value = "zzzz qqqq"
    assert app.last is None and "vocabulary" in app.error


@needs_samples
def test_text_search_runs_once_per_query(small_bank):
    """Enter (the box's value changes) and then a click on Search: one search, one redraw of the results."""
    bank, model = small_bank
    app = widgets.TextSearchApp(bank, model, query="red circle", k=3, audio=False)
    assert app.searches == 1
    redraws = []
    app.out.observe(lambda change: redraws.append(change["new"]), names="outputs")
    app.text.value = "small purple star orbits"  # Enter
    app.button.click()  # then the click
    assert app.searches == 2 and len(redraws) == 1  # one assignment: never a cleared area in between
    assert len(redraws[0]) == 3
    app.button.click()
    assert app.searches == 2
    app.text.value = "red circle"  # a new query searches again
    assert app.searches == 3 and [h.index for h in app.hits] == [
        h.index for h in widgets.TextSearchApp(bank, model, query="red circle", k=3, audio=False).hits
    ]


@needs_samples
def test_text_search_names_the_words_it_left_out(small_bank):
    bank, model = small_bank
    assert "moves" in bank.dataset.word_vectors and "zork" not in bank.dataset.word_vectors
    app = widgets.TextSearchApp(bank, model, query="the red circle moves zork", k=2, audio=False)
    assert app.dropped == ["zork"]  # "the" is a stop word, not a dropped word
    assert isinstance(app.last[0], str) and "“zork”" in app.last[0] and "not in the vocabulary" in app.last[0]
    app.text.value = "red circle"
    assert app.dropped == [] and isinstance(app.last[0], widgets.HitRow)
    assert widgets.out_of_vocabulary("Zork, the qux!", bank.dataset.word_vectors) == ["zork", "qux"]


@needs_samples
def test_narration_label_only_where_no_narration(small_bank):
    """Text search: each row says what was said near its clip, "(no narration)" only for a clip without any;
    sound search: no narration line at all; every row holds its frames and, beside them, its audio player."""
    bank, model = small_bank
    app = widgets.TextSearchApp(bank, model, query="red circle", k=4)
    for hit, row in zip(app.hits, app.last):
        assert ("(no narration)" in row.said) == (not hit.narrations)
        assert all(html_escape(t) in row.said for t in hit.narrations)
        assert row.audio is not None and "<audio" in row.to_html() and "data:image/png" in row.to_html()
    assert widgets.said_nearby(2, []) == "<b>#2</b> said nearby: (no narration)"
    assert "“red box”" in widgets.said_nearby(1, ["red box"])
    with_audio = [int(i) for i in bank.emb["has_audio"].nonzero()[:, 0][:1]]
    sounds = widgets.SoundSearchApp(bank, [(f"clip {i}", i) for i in with_audio], k=3)
    rows = [x for x in sounds.last if isinstance(x, widgets.HitRow)]
    assert len(rows) == 3 and not any("narration" in r.said for r in rows)
    html = app.out.outputs[0]["data"]["text/html"]
    assert html.index("<img") < html.index("<audio")  # one row: the frames, then the player beside them


def html_escape(text):
    import html

    return html.escape(text)


@needs_samples
def test_sound_search_app_excludes_the_query_clip(small_bank):
    bank, _ = small_bank
    with_audio = [int(i) for i in bank.emb["has_audio"].nonzero()[:, 0][:2]]
    app = widgets.SoundSearchApp(bank, [(f"clip {i}", i) for i in with_audio], k=3, audio=False)
    assert with_audio[0] not in [h.index for h in app.hits]
    app.dropdown.value = with_audio[1]
    assert with_audio[1] not in [h.index for h in app.hits] and len(app.texts) == 3
    assert any("audio → text" in x for x in app.last if isinstance(x, str))


@needs_samples
def test_deflation_app_follows_the_toggle_and_the_clip_picker(small_bank):
    import torch

    bank, _ = small_bank
    n = len(bank)
    z = bank.emb["z_v_va"]
    torch.manual_seed(0)
    queries = {"video": z, "naive": torch.randn_like(z), "calibrated": z + 0.01 * torch.randn_like(z)}
    frames = torch.rand(n, 3, 16, 16)
    app = widgets.DeflationApp(bank, queries, frames, [("clip 0", 0), ("clip 5", 5)], k=3)
    assert app.mode.value == "video" and "mmv-deflation-mode" in app.mode._dom_classes
    summary, fig = app.last
    assert "ranks <b>#1</b>" in summary and "(the query's own clip)" in fig.axes[1].get_title(loc="left")
    assert "as a video" in fig.axes[0].get_title(loc="left") and len(fig.axes) == 4
    app.mode.value = "naive"
    summary, fig = app.last
    assert summary.startswith("<p><b>naive</b>") and "naive deflation" in fig.axes[0].get_title(loc="left")
    app.mode.value = "calibrated"
    app.clip.value = 5
    summary, fig = app.last
    assert "query = clip 5" in summary and "ranks <b>#1</b>" in summary  # a nearby query still finds its clip
    assert widgets.deflation_view(bank, queries, frames, 5, "calibrated", k=3)[0] == summary
    app.clip.value = 0
    with pytest.raises(ValueError, match="unknown mode"):
        widgets.deflation_view(bank, queries, frames, 0, "static")


def test_apps_carry_stable_css_classes_for_browser_tests():
    app = widgets.ChoiceApp({"mode": ["a", "b"]}, lambda mode: mode)
    assert "mmv-choice-app" in app.widget._dom_classes and "mmv-choice-mode" in app.toggles["mode"]._dom_classes
    assert "mmv-output" in app.out._dom_classes
    temp = widgets.TemperatureApp(np.array([0.5, 0.1]), positive=0)
    assert "mmv-temperature-app" in temp.widget._dom_classes


def test_the_output_area_holds_what_the_view_returned_and_is_replaced_on_change():
    import matplotlib.pyplot as plt

    def view(mode):
        fig, ax = plt.subplots()
        ax.set_title(mode)
        return [fig, f"<b>{mode}</b>"]

    app = widgets.ChoiceApp({"mode": ["a", "b"]}, view)
    first = app.out.outputs
    assert len(first) == 2 and "image/png" in first[0]["data"] and "<b>a</b>" in first[1]["data"]["text/html"]
    app.toggles["mode"].value = "b"
    second = app.out.outputs
    assert len(second) == 2 and "<b>b</b>" in second[1]["data"]["text/html"]
    assert second[0]["data"]["image/png"] != first[0]["data"]["image/png"]
    assert not plt.fignum_exists(app.last[0].number)  # shown as a PNG, then closed
