"""Figures for the notebooks: clips, the embedding graphs, losses, 2-D maps of the shared spaces, results.

Every function takes plain arrays, tensors or result dicts and returns a matplotlib ``Figure`` (or draws on the
``ax`` it is given), so notebooks stay thin and the figures can be tested without a notebook. Nothing here trains,
loads or computes: what a figure shows is computed where its concept lives (``mmv_lite.embedding.project_2d``,
``mmv_lite.losses.anchor_nce``, ``mmv_lite.models.mmv.parameter_counts``, ...).

Shapes follow docs/DESIGN.md: a clip's video is ``(3, T, H, W)`` in [0, 1], its audio a log-mel ``(1, F, n_mels)``.

==================  ====================================================================================
``viz.clips``       frames, spectrograms, narration timelines, a query and its hits
``viz.network``     the embedding graphs (from their table), parameter counts, endpoint shapes
``viz.training``    the temperature, similarity matrices, training curves
``viz.results``     retrieval bars, factor probes, 2-D maps, HTML tables, the design tables
``viz.deflation``   the figures of notebook 05
==================  ====================================================================================
"""

from .clips import (
    frame_strip_image,
    show_clips,
    show_frames,
    show_narration_timeline,
    show_query_and_hits,
    show_spectrogram,
)
from .common import MODALITY_COLOURS, MODALITY_NAMES
from .deflation import DEFLATION_COLOURS, show_boundary_profile, show_calibration, show_gap_by_length, show_mode_bars
from .network import (
    draw_embedding_graph,
    draw_embedding_graphs,
    graph_edges,
    show_endpoint_shapes,
    show_parameter_counts,
)
from .results import (
    FEATURE_NAMES,
    PAPER_COLUMN_FOR,
    html_table,
    show_design_table,
    show_factor_probes,
    show_finding,
    show_map,
    show_retrieval,
    table1_beside_paper,
)
from .training import show_history, show_similarity, show_temperature

__all__ = [
    "DEFLATION_COLOURS",
    "FEATURE_NAMES",
    "MODALITY_COLOURS",
    "MODALITY_NAMES",
    "PAPER_COLUMN_FOR",
    "draw_embedding_graph",
    "draw_embedding_graphs",
    "frame_strip_image",
    "graph_edges",
    "html_table",
    "show_boundary_profile",
    "show_calibration",
    "show_clips",
    "show_design_table",
    "show_endpoint_shapes",
    "show_factor_probes",
    "show_finding",
    "show_frames",
    "show_gap_by_length",
    "show_history",
    "show_map",
    "show_mode_bars",
    "show_narration_timeline",
    "show_parameter_counts",
    "show_query_and_hits",
    "show_retrieval",
    "show_similarity",
    "show_spectrogram",
    "show_temperature",
    "table1_beside_paper",
]
