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
