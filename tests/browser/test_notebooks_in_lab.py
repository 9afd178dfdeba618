"""The kit's interactive notebooks as students meet them: opened in JupyterLab, run with Run > Run All Cells in
quick mode (``MMV_LITE_MODE=quick``), then driven through their widgets in headless Chromium.

Each test works on a copy of the notebook in the server's temp folder, so nothing is written into ``notebooks/``.
Screenshots of the widgets before and after the interaction go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import time

import pytest
from lab_harness import (
    REPO,
    open_notebook,
    output_signature,
    run_all_cells,
    screenshot,
    wait_signature_change,
)

from mmv_lite.tools.render_notebooks import TIMINGS_ENV, record_timings

pytestmark = pytest.mark.browser

NOTEBOOKS = REPO / "notebooks"
RUN_ALL_TIMEOUT_S = 420  # quick mode on a shared 2-core CPU: 05_deflation took 200-300 s there under load
WIDGET_TIMEOUT_S = 60  # one recompute after an input change


def _open_and_run(lab, page, name: str) -> float:
    """Open ``name`` in JupyterLab and Run All Cells; returns the seconds from the menu click to the kernel idle."""
    src = NOTEBOOKS / name
    assert src.is_file(), f"{src} is missing (the browser test drives it)"
    lab.add_notebook(src)
    open_notebook(page, lab, name)
    t0 = time.perf_counter()
    run_all_cells(page, timeout_s=RUN_ALL_TIMEOUT_S)
    seconds = time.perf_counter() - t0
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    # ipywidgets' front end writes this instead of a widget when the model never reached the browser.
    broken = panel.get_by_text("Error displaying widget")
    assert broken.count() == 0, f"{name}: a widget failed to render: {broken.first.inner_text()}"
    return seconds


def _assert_rendered(output, what: str) -> dict:
    """The Output widget is visible and shows text and decoded images; return its signature."""
    output.wait_for(state="visible", timeout=WIDGET_TIMEOUT_S * 1000)
    output.locator("img").first.wait_for(state="visible", timeout=WIDGET_TIMEOUT_S * 1000)
    sig = output_signature(output)
    assert sig["text"].strip(), f"{what}: the results area is empty"
    assert sig["images"] and sig["loaded"], f"{what}: no rendered figure in the results area"
    return sig


def test_retrieval_query_reranks_clips(jupyter_lab, page):
    """06_retrieval: type a text query into the search app; the ranked clips (frame strips) change."""
    _open_and_run(jupyter_lab, page, "06_retrieval.ipynb")

    # mmv_lite.widgets.TextSearchApp marks its parts with CSS classes (add_class).
    app = page.locator(".mmv-text-search")
    query = app.locator(".mmv-query input")
    results = app.locator(".mmv-search-results")
    query.wait_for(state="visible", timeout=WIDGET_TIMEOUT_S * 1000)
    assert query.input_value().strip(), "the query box starts empty: the app should show a first search"
    before = _assert_rendered(results, "text search")
    assert "#1" in before["text"], f"no ranked hit (#1) in the results:\n{before['text'][:500]}"
    screenshot(page, "06_retrieval-before", target=app)

    # Text.continuous_update is off in the app: the kernel hears the new value on Enter, as a student types it.
    query.fill("a big red circle bounces")
    query.press("Enter")
    after = wait_signature_change(results, before, timeout_s=WIDGET_TIMEOUT_S)
    assert after["images"] != before["images"], "the frame strips did not change for a different query"
    assert "#1" in after["text"]
    assert results.locator("audio").count() >= 1, "the hits come without their sound players"
    screenshot(page, "06_retrieval-after", target=app)


def test_deflation_toggle_switches_network(jupyter_lab, page):
    """05b_deflation_alpha: flip the network toggle (video -> naive -> calibrated); the ranked clips change."""
    _open_and_run(jupyter_lab, page, "05b_deflation_alpha.ipynb")

    # mmv_lite.widgets.DeflationApp marks its parts with CSS classes (add_class).
    app = page.locator(".mmv-deflation-app")
    toggle = app.locator(".mmv-deflation-mode")
    results = app.locator(".mmv-deflation-output")
    toggle.wait_for(state="visible", timeout=WIDGET_TIMEOUT_S * 1000)
    modes = [b.strip() for b in toggle.locator("button").all_inner_texts()]
    assert {"video", "naive", "calibrated"} <= set(modes), f"unexpected toggle buttons {modes}"
    sig = _assert_rendered(results, "deflation (video)")
    screenshot(page, "05b_deflation_alpha-video", target=app)

    for mode in ("naive", "calibrated"):
        toggle.locator("button", has_text=mode).click()
        new = wait_signature_change(results, sig, timeout_s=WIDGET_TIMEOUT_S)
        assert new["images"] != sig["images"], f"the figure did not change when switching to {mode}"
        assert mode in new["text"], f"the results do not say they are for the {mode} network:\n{new['text'][:500]}"
        assert "mod-active" in (toggle.locator("button", has_text=mode).get_attribute("class") or "")
        sig = new
        screenshot(page, f"05b_deflation_alpha-{mode}", target=app)


# --------------------------------------------------------------------------------------------------------------------
# Run All times of every notebook, as a student meets them (the README's table): only when asked, with
# MMV_LAB_TIMINGS=FILE (mmv_lite.tools.render_notebooks.TIMINGS_COMMAND runs them beside nbmake, in one pytest run).

LAB_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab_timings():
    yield LAB_SECONDS
    if LAB_SECONDS and os.environ.get(TIMINGS_ENV):
        record_timings(os.environ[TIMINGS_ENV], "lab", LAB_SECONDS, "JupyterLab in Chromium, Run > Run All Cells")


@pytest.mark.skipif(not os.environ.get(TIMINGS_ENV), reason=f"Run All timings are recorded only with {TIMINGS_ENV}")
@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")))
def test_run_all_time_in_lab(lab_timings, jupyter_lab, page, name):
    """Every notebook runs to the end from the Run menu in JupyterLab; the time it took is recorded."""
    lab_timings[name.removesuffix(".ipynb")] = _open_and_run(jupyter_lab, page, name)
