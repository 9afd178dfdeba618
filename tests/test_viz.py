"""Figures of mmv_lite.viz: they draw what they are given, label it, and refuse inputs of the wrong shape."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmv_lite import build_model, viz  # noqa: E402
from mmv_lite.config import TEMPERATURE  # noqa: E402
from mmv_lite.graphs import GRAPHS  # noqa: E402
from mmv_lite.losses import candidate_weights  # noqa: E402
from mmv_lite.models.mmv import parameter_counts  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_frame_strip_keeps_frame_order_and_pixels():
    T, H, W = 6, 5, 7
    video = torch.zeros(3, T, H, W)
    for t in range(T):
        video[0, t] = t / (T - 1)  # red channel encodes the frame index
    strip = viz.frame_strip_image(video, max_frames=3, gap=2)
    assert strip.shape == (H, 3 * W + 2 * 2, 3)
    # Evenly spaced frames 0, 2 or 3, 5: the first and last are the clip's ends.
    assert strip[0, 0, 0] == pytest.approx(0.0)
    assert strip[0, -1, 0] == pytest.approx(1.0)
    assert strip[0, W, 0] == 1.0 and strip[0, W, 1] == 1.0  # the white gap
    # (T, H, W, 3) uint8 input gives the same picture.
    as_uint8 = (video.permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_allclose(viz.frame_strip_image(as_uint8, max_frames=3), strip, atol=1 / 255)


def test_frame_strip_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(3, T, H, W\)"):
        viz.frame_strip_image(np.zeros((3, 8, 8)))


def test_show_frames_and_spectrogram_label_their_axes():
    fig = viz.show_frames(torch.rand(3, 8, 16, 16), max_frames=4, fps=5.0, title="a clip")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.0s", "0.4s", "1.0s", "1.4s"]
    fig = viz.show_spectrogram(torch.randn(1, 50, 80), seconds=1.6, colorbar=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "mel bin"
    assert ax.images[0].get_array().shape == (80, 50)  # mel bins vertical, time horizontal
    with pytest.raises(ValueError, match="n_mels"):
        viz.show_spectrogram(np.zeros((2, 3, 4, 5)))


def test_narration_timeline_highlights_candidates():
    caps = {"start": [0.0, 2.0, 5.0], "end": [1.5, 4.0, 6.0], "text": ["first we cut", "then we pour", "and stir"]}
    fig = viz.show_narration_timeline(
        caps, clip=(2.5, 4.1), events=[(3.0, 5.0, "pour")], candidates=[1, 2], misaligned=[0]
    )
    ax = fig.axes[0]
    crosses = [ln for ln in ax.lines if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert len(crosses) == 1 and crosses[0].get_ydata()[0] == 3  # caption 0 is drawn on the top row
    drawn = [ln for ln in ax.lines if len(ln.get_xdata())]  # legend proxies have no data
    grey = [ln for ln in drawn if ln.get_color() == "#9e9e9e"]
    green = [ln for ln in drawn if ln.get_color() == viz.MODALITY_COLOURS["t"]]
    assert len(grey) == 1 and len(green) == 2
    assert "pour" in [t.get_text() for t in ax.texts]
    with pytest.raises(ValueError, match="equal-length"):
        viz.show_narration_timeline({"start": [0.0], "end": [], "text": ["x"]})


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_graph_diagram_draws_the_heads_of_the_table(graph):
    # One arrow per head of the table, labelled g_<source>→<space>; every compared pair listed under the figure.
    fig = viz.draw_embedding_graph(graph)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for h in GRAPHS[graph].heads:
        assert f"g_{h.source}→{h.space}" in texts
    compared = next(t for t in texts if t.startswith("compared in"))
    for pair, space in GRAPHS[graph].pairs().items():
        assert f"{''.join(m for m in 'vat' if m in pair)} in S_{space}" in compared
    assert fig.axes[0].get_title() == GRAPHS[graph].title
    assert any("at eval only" in t for t in texts) == (graph == "fac")


def test_draw_embedding_graphs_has_one_panel_per_graph():
    fig = viz.draw_embedding_graphs()
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="unknown graph"):
        viz.draw_embedding_graph("late_fusion")


def test_show_temperature_marks_the_chosen_tau():
    s = np.array([0.6, 0.2, 0.1, 0.4])
    fig = viz.show_temperature(s, positive=0, tau=0.2)
    left, right = fig.axes
    p0 = candidate_weights(s, 0.2).numpy()[0]
    assert left.get_title(loc="left") == f"τ = 0.200: positive (green) gets {p0:.0%}"
    bars = [b.get_height() for b in left.patches]
    np.testing.assert_allclose(sorted(bars, reverse=True), np.sort(candidate_weights(s, 0.2).numpy())[::-1])
    vertical = [list(ln.get_xdata()) for ln in right.lines if len(ln.get_xdata()) == 2]
    assert [0.2, 0.2] in vertical and [TEMPERATURE, TEMPERATURE] in vertical
    with pytest.raises(ValueError, match="positive"):
        viz.show_temperature(s, positive=7)
    with pytest.raises(ValueError, match="tau"):
        viz.show_temperature(s, positive=0, tau=0.0)


def test_show_history_skips_missing_values():
    hist = [{"step": 0, "loss": 3.0}, {"step": 10, "loss": 2.0, "R@1": 0.1}, {"step": 20, "loss": 1.5}]
    fig = viz.show_history(hist)
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert set(lines) == {"loss", "R@1"}
    assert list(lines["R@1"].get_xdata()) == [10]
    with pytest.raises(ValueError, match="empty"):
        viz.show_history([])


def test_show_map_colours_by_label_and_names_them():
    pts = {"video": np.zeros((4, 2)), "audio": np.ones((3, 2))}
    labels = {"video": np.array([0, 1, 1, -1]), "audio": np.array([0, 0, 1])}
    fig = viz.show_map(pts, labels, label_names=["pour", "cut"], title="vat")
    names = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert names == ["video", "audio", "unknown", "pour", "cut"]


def test_html_table_escapes_and_formats():
    out = viz.html_table([{"name": "<a>", "R@1": 0.123456}], floatfmt="{:.2f}")
    assert "&lt;a&gt;" in out and "0.12" in out and "<th>R@1</th>" in out


def test_show_similarity_outlines_positives_and_checks_shapes():
    sim = np.array([[0.9, 0.1, 0.0, 0.2], [0.0, 0.2, 0.8, 0.1]])
    pos = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
    fig = viz.show_similarity(sim, pos, col_groups=2)
    ax = fig.axes[0]
    outlined = [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle) and not p.get_fill()]
    assert sorted((int(p.get_x() + 0.5), int(p.get_y() + 0.5)) for p in outlined) == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert any(np.allclose(ln.get_xdata(), [1.5, 1.5]) for ln in ax.lines)  # the clip separator
    with pytest.raises(ValueError, match="same shape"):
        viz.show_similarity(sim, pos[:, :3])


def test_show_endpoint_shapes_reads_5d_endpoints():
    eps = {"a": torch.zeros(1, 8, 4, 16, 16), "b": torch.zeros(1, 32, 2, 8, 8), "Embeddings": torch.zeros(1, 32)}
    fig = viz.show_endpoint_shapes(eps)
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [8, 32]
    assert list(fig.axes[1].lines[0].get_ydata()) == [4 * 16 * 16, 2 * 8 * 8]
    with pytest.raises(ValueError, match="T, H, W"):
        viz.show_endpoint_shapes({"Embeddings": torch.zeros(1, 4)})


def test_show_clips_one_row_per_clip_and_checks_counts():
    fig = viz.show_clips([torch.rand(3, 4, 8, 8)] * 3, [torch.randn(1, 20, 80)] * 3, titles=["a", "b", "c"], fps=5.0)
    assert len(fig.axes) == 6
    assert [fig.axes[i].get_title(loc="left") for i in (0, 2, 4)] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="spectrograms"):
        viz.show_clips([torch.rand(3, 4, 8, 8)] * 2, [torch.randn(1, 20, 80)])


def test_show_map_gives_twelve_classes_twelve_colours():
    lab = np.arange(12)
    fig = viz.show_map({"audio": np.random.default_rng(0).normal(size=(12, 2))}, lab, [f"c{i}" for i in lab])
    colours = {tuple(c) for c in fig.axes[0].collections[0].get_facecolors()}
    assert len(colours) == 12


def test_show_retrieval_draws_models_and_chance():
    res = {"a": {"t2v": {"R@5": 40.0}, "v2a": {"R@5": 20.0}}, "b": {"t2v": {"R@5": 60.0}, "v2a": {"R@5": 10.0}}}
    fig = viz.show_retrieval(res, chance={"t2v": {"R@5": 30.0}, "v2a": {"R@5": 10.0}})
    ax = fig.axes[0]
    assert sorted(p.get_height() for p in ax.patches) == [10.0, 20.0, 40.0, 60.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["text→video", "video→audio"]
    assert [list(ln.get_ydata()) for ln in ax.lines if len(ln.get_ydata())] == [[30.0, 30.0], [10.0, 10.0]]
    with pytest.raises(ValueError, match="no results"):
        viz.show_retrieval({})


def test_show_boundary_profile_marks_borders_and_middle():
    prof = {"Conv2d_1a_7x7": np.array([0.5, 0.0, 0.0, 0.4]), "Mixed_5c": np.array([0.3, 0.2])}
    fig = viz.show_boundary_profile(prof, num_frames=8, endpoints=["Conv2d_1a_7x7"])
    left, right = fig.axes[:2]
    (line,) = left.get_lines()
    assert np.allclose(line.get_xdata(), [1, 3, 5, 7]) and np.allclose(line.get_ydata(), [50, 0, 0, 40])
    border = [b.get_height() for b in right.containers[0]]
    middle = [b.get_height() for b in right.containers[1]]
    assert border == pytest.approx([50, 30]) and middle == pytest.approx([0, 20])
    with pytest.raises(ValueError, match="not in the profile"):
        viz.show_boundary_profile(prof, num_frames=8, endpoints=["Mixed_4b"])


def test_show_gap_by_length_and_calibration():
    fig = viz.show_gap_by_length({16: 0.25, 4: 0.5, 8: 0.5}, trained_length=8)
    ax = fig.axes[0]
    assert list(ax.get_lines()[0].get_xdata()) == [4, 8, 16] and "8" in ax.get_legend().get_texts()[0].get_text()
    fig = viz.show_calibration([0.02, 0.01, 0.005], before=0.02, after=0.004, held_out=(0.021, 0.006))
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("naive: 0.0200" in t for t in texts) and any("0.0210 → 0.0060" in t for t in texts)
    with pytest.raises(ValueError, match="empty"):
        viz.show_calibration([], 1.0, 0.5)


def test_show_mode_bars_with_chance_and_paper():
    fig = viz.show_mode_bars(
        {"naive": 30.0, "calibrated": 60.0}, "acc", chance=20.0, paper={"naive": 20.7, "calibrated": 45.2}
    )
    ax = fig.axes[0]
    ours, paper = ax.containers[0], ax.containers[-1]
    assert [b.get_height() for b in ours] == [30.0, 60.0] and [b.get_height() for b in paper] == [20.7, 45.2]
    assert ours[0].get_facecolor()[:3] != ours[1].get_facecolor()[:3]  # one colour per mode
    assert any("chance" in t.get_text() for t in ax.get_legend().get_texts())
    assert viz.show_mode_bars({"naive": 1.0}, "x").axes[0].get_legend() is None


def test_show_query_and_hits_puts_the_query_first():
    img = np.zeros((3, 8, 8), dtype=np.float32)
    clips = [np.zeros((3, 4, 8, 8), dtype=np.float32)] * 2
    fig = viz.show_query_and_hits(img, clips, ["#1", "#2"], query_title="the query")
    assert [a.get_title(loc="left") for a in fig.axes] == ["the query", "#1", "#2"]
    with pytest.raises(ValueError, match="titles"):
        viz.show_query_and_hits(img, clips, ["#1"])


def test_show_design_table_draws_rows_references_and_the_paper():
    cell = lambda m, s=0.0: {"mean": m, "std": s, "n": 3 if m is not None else 0}  # noqa: E731
    table = {
        "name": "table1a",
        "title": "Table 1a analogue",
        "columns": [{"title": "action probe (acc %)", "key": "probe_action"}, {"title": "v2a R@1", "key": "v2a_R@1"}],
        "paper_columns": ["UCF101"],
        "rows": [
            {
                "label": "VA",
                "cells": {"probe_action": cell(27.0, 3.0), "v2a_R@1": cell(5.0, 1.0)},
                "paper": {"UCF101": 75.5},
            },
            {
                "label": "VT",
                "cells": {"probe_action": cell(23.0, 8.0), "v2a_R@1": cell(None)},
                "paper": {"UCF101": 82.7},
            },
            {"label": "supervised", "cells": {"probe_action": cell(44.0), "v2a_R@1": cell(None)}, "paper": {}},
            {"label": "chance", "cells": {"probe_action": cell(14.3), "v2a_R@1": cell(2.0)}, "paper": {}},
        ],
    }
    fig = viz.show_design_table(table)
    action, v2a = fig.axes
    assert [t.get_text() for t in action.get_xticklabels()] == ["VA", "VT"]  # reference rows are lines, not bars
    heights = sorted(round(p.get_height(), 1) for p in action.patches)
    assert heights == [23.0, 27.0, 75.5, 82.7]  # ours and the paper's
    legend = [t.get_text() for t in action.get_legend().get_texts()]
    assert "chance: 14" in legend and "supervised: 44" in legend and "paper: UCF101" in legend
    assert [round(p.get_height(), 1) for p in v2a.patches] == [5.0]  # no paper column, VT has no value
    assert any(t.get_text() == "n/a" for t in v2a.texts)
    with pytest.raises(ValueError, match="none of the columns"):
        viz.show_design_table(table, columns=["t2v_R@10"])


def test_show_factor_probes_one_bar_per_feature_and_factor():
    def p(acc, chance):
        return {"accuracy": acc, "chance": chance}

    probes = {"f_v": {"kind": p(20, 24), "background": p(63, 33)}, "f_a": {"kind": p(41, 24)}}
    fig = viz.show_factor_probes(probes, title="t")
    ax = fig.axes[0]
    heights = sorted(round(b.get_height()) for b in ax.patches)
    assert heights == [20, 41, 63]  # f_a has no background probe: no bar
    assert [t.get_text() for t in ax.get_xticklabels()] == ["kind", "background"]
    dashes = [ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert sorted(round(ln.get_ydata()[0]) for ln in dashes) == [24, 33]
    with pytest.raises(ValueError):
        viz.show_factor_probes({})


def test_show_parameter_counts_uses_a_log_scale():
    with torch.device("meta"):
        counts = parameter_counts(build_model("s3dg", vocab_size=10))
    fig = viz.show_parameter_counts({"s3dg": counts})
    assert fig.axes[0].get_xscale() == "log"


def test_show_finding_draws_a_finding_with_its_control_and_a_condition_alone():
    from mmv_lite.experiments.findings import CONDITIONS, FINDINGS, evaluate_condition, evaluate_finding

    series = {"vat_fac": [60.0, 62.0, 64.0], "vat_fac_nce": [40.0, 41.0, 42.0]}
    series |= {"vat_fac_aligned": [70.0, 71.0, 72.0], "vat_fac_nce_aligned": [70.0, 72.0, 71.0]}
    runs = {arm: [{"t2v_R@10": v} for v in vs] for arm, vs in series.items()}
    fig = viz.show_finding(evaluate_finding(FINDINGS["mil_nce"], runs))
    assert len(fig.axes) == 2 and "holds" in fig._suptitle.get_text()
    assert fig.axes[0].get_title().startswith("finding") and fig.axes[1].get_title().startswith("control")
    motion = {"vat_fac_aligned": [80.0, 82.0, 84.0], "va": [60.0, 61.0, 62.0], "vt_aligned": [95.0, 96.0, 97.0]}
    runs = {arm: [{"f_v.motion": m, "t2v_R@10": 50.0} for m in ms] for arm, ms in motion.items()}
    fig = viz.show_finding(evaluate_condition(CONDITIONS["modalities_aligned"], runs))
    assert len(fig.axes) == 3 and all(ax.get_title().startswith("condition") for ax in fig.axes)
    assert "condition of modalities, does not pass" in fig._suptitle.get_text()
    plt.close("all")
