"""Seeing a dataset: image grids with boxes, statistics plots and table, browsing, model graphs.

Matplotlib is imported inside the functions that draw; figures are built without pyplot so they
render headless (Agg). Functions return Figures; `save_figure` writes them atomically.

Modules: `source` (folders, splits, reproducible picks), `render` (drawing primitives),
`grid` (the image grid), `stats` (numbers and plots), `browse` (interactive window, netron).
"""

from __future__ import annotations

from azaion_training.visualise.browse import Browser, browse, open_model_graph
from azaion_training.visualise.grid import grid_figure, grid_layout
from azaion_training.visualise.render import draw_boxes, save_figure
from azaion_training.visualise.source import (
    LabelledImage,
    class_ids,
    list_images,
    pick,
    resolve_folders,
    with_class,
)
from azaion_training.visualise.stats import (
    SplitStats,
    collect_stats,
    plot_box_sizes,
    plot_boxes_per_image,
    plot_class_counts,
    stats_table,
)

__all__ = [
    "Browser",
    "LabelledImage",
    "SplitStats",
    "browse",
    "class_ids",
    "collect_stats",
    "draw_boxes",
    "grid_figure",
    "grid_layout",
    "list_images",
    "open_model_graph",
    "pick",
    "plot_box_sizes",
    "plot_boxes_per_image",
    "plot_class_counts",
    "resolve_folders",
    "save_figure",
    "stats_table",
    "with_class",
]
