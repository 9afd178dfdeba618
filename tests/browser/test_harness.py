"""The browser harness on a tiny notebook the test writes itself: if this fails, the browser, JupyterLab or the
ipywidgets front end is broken, not the kit's notebooks.

The notebook mirrors the kit's apps (``mmv_lite.widgets``): a ``Text`` query whose ``Output`` shows a ranked
list, and a ``ToggleButtons`` whose ``Output`` switches between two matplotlib figures.
"""

from __future__ import annotations

import nbformat
import pytest
from lab_harness import open_notebook, output_signature, run_all_cells, screenshot, wait_signature_change

pytestmark = pytest.mark.browser

WORDS = ["guitar", "violin", "cooking", "bicycle", "swimming", "drums", "baking"]
CELLS = [
    "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nfrom IPython.display import display, clear_output",
    # Rank words by the number of letters they share with the query: deterministic, and every query changes it.
    f"WORDS = {WORDS!r}\n"
    "query = widgets.Text(description='query', value='music')\n"
    "ranked = widgets.Output()\n"
    "def rank(*_):\n"
    "    q = set(query.value)\n"
    "    order = sorted(WORDS, key=lambda w: (-len(q & set(w)), w))\n"
    "    with ranked:\n"
    "        clear_output(wait=True)\n"
    "        print('ranked for ' + repr(query.value) + ': ' + ', '.join(order))\n"
    "query.observe(rank, names='value')\n"
    "rank()\n"
    "display(widgets.VBox([query, ranked]))",
    "mode = widgets.ToggleButtons(options=['video', 'image'], description='mode')\n"
    "figure = widgets.Output()\n"
    "def draw(*_):\n"
    "    with figure:\n"
    "        clear_output(wait=True)\n"
    "        fig, ax = plt.subplots(figsize=(3, 2))\n"
    "        ax.bar([0, 1], [1, 3] if mode.value == 'video' else [3, 1])\n"
    "        ax.set_title(mode.value + ' mode')\n"
    "        display(fig)\n"
    "        plt.close(fig)\n"
    "mode.observe(draw, names='value')\n"
    "draw()\n"
    "display(widgets.VBox([mode, figure]))",
]


def expected_ranking(query: str) -> str:
    q = set(query)
    return ", ".join(sorted(WORDS, key=lambda w: (-len(q & set(w)), w)))


def test_widgets_render_and_respond_in_jupyterlab(jupyter_lab, page):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    path = jupyter_lab.root / "harness_src.ipynb"
    nbformat.write(nb, path)
    name = jupyter_lab.add_notebook(path, "harness.ipynb")

    open_notebook(page, jupyter_lab, name)
    run_all_cells(page, timeout_s=60)

    text_input = page.locator(".widget-text input").first
    text_input.wait_for(state="visible", timeout=30_000)
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-output")
    assert outputs.count() == 2, "expected the two Output widgets to render"
    ranked, figure = outputs.nth(0), outputs.nth(1)
    ranked.get_by_text("ranked for 'music'").wait_for(timeout=30_000)
    assert expected_ranking("music") in ranked.inner_text()
    figure.locator("img").first.wait_for(state="visible", timeout=30_000)
    screenshot(page, "harness-before", target=ranked)

    # Typing reaches the kernel, which redraws the ranked list.
    before = output_signature(ranked)
    text_input.fill("bake a cake")
    after = wait_signature_change(ranked, before, timeout_s=30)
    assert "ranked for 'bake a cake'" in after["text"]
    assert expected_ranking("bake a cake") in after["text"]
    assert expected_ranking("bake a cake") != expected_ranking("music")

    # Flipping the toggle swaps the figure.
    before = output_signature(figure)
    assert before["images"], "the figure did not render as an image"
    page.locator(".widget-toggle-buttons button", has_text="image").click()
    after = wait_signature_change(figure, before, timeout_s=30)
    assert after["images"] and after["images"] != before["images"]
    screenshot(page, "harness-after", target=figure)
