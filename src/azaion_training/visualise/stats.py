"""Dataset statistics: class counts per split, box sizes, boxes per image; a table and plots.

`collect_stats` reads every label once; `stats_table` formats the numbers for the terminal and the
``plot_*`` functions return matplotlib Figures (built without pyplot, so they render headless).

Example:
    >>> stats = collect_stats({"train": list_images(AnnotationDir(train))})  # doctest: +SKIP
    >>> print(stats_table(stats, ClassTable.default()))  # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.errors import LabelError
from azaion_training.visualise.render import new_figure, save_figure
from azaion_training.visualise.source import LabelledImage

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SPLIT_COLOURS = ("#4363d8", "#f58231", "#3cb44b", "#911eb4", "#808080")
"""One colour per split, in order (train, valid, test, ...)."""


@dataclass
class SplitStats:
    """The numbers of one split (or one annotation folder).

    Attributes:
        images: images found.
        unlabelled: images with no label file (counted as having no boxes).
        invalid: images whose label does not parse (left out of every other number).
        class_counts: boxes per class slot.
        widths, heights: every box's width and height, normalised to the image (0..1).
        boxes_per_image: the box count of every image with a readable label.
    """

    images: int = 0
    unlabelled: int = 0
    invalid: int = 0
    class_counts: Counter[int] = field(default_factory=Counter)
    widths: list[float] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)
    boxes_per_image: list[int] = field(default_factory=list)

    @property
    def boxes(self) -> int:
        return sum(self.class_counts.values())

    @property
    def background(self) -> int:
        """Readable images without any box."""
        return sum(1 for count in self.boxes_per_image if count == 0)


def collect_stats(splits: Mapping[str, Iterable[LabelledImage]]) -> dict[str, SplitStats]:
    """Reads every label of every split once and counts."""
    result: dict[str, SplitStats] = {}
    for name, items in splits.items():
        stats = result[name] = SplitStats()
        for item in items:
            stats.images += 1
            if not item.label.is_file():
                stats.unlabelled += 1
            try:
                boxes = item.boxes()
            except LabelError:
                stats.invalid += 1
                continue
            stats.boxes_per_image.append(len(boxes))
            stats.class_counts.update(box.class_id for box in boxes)
            stats.widths.extend(box.w for box in boxes)
            stats.heights.extend(box.h for box in boxes)
    return result


def occurring_classes(stats: Mapping[str, SplitStats]) -> list[int]:
    """Every class slot with at least one box in any split, in id order."""
    return sorted({slot for s in stats.values() for slot in s.class_counts})


def stats_table(stats: Mapping[str, SplitStats], table: ClassTable) -> str:
    """A plain-text table: one row per occurring class (weather modes apart), then totals."""
    splits = list(stats)
    columns = [*splits, "total"] if len(splits) > 1 else splits
    slots = occurring_classes(stats)
    name_width = max([len("images without a label"), *(len(table[s].name) + 5 for s in slots)])

    def row(label: str, values: list[int | str]) -> str:
        return f"{label:<{name_width}}" + "".join(f" {v!s:>9}" for v in values)

    def with_total(values: list[int]) -> list[int | str]:
        return [*values, sum(values)] if len(splits) > 1 else list(values)

    lines = [row("class", list(columns)), "-" * (name_width + 10 * len(columns))]
    for slot in slots:
        lines.append(
            row(
                f"{slot:>2} {table[slot].name}",
                with_total([stats[s].class_counts[slot] for s in splits]),
            )
        )
    lines.append("-" * (name_width + 10 * len(columns)))
    lines.append(row("boxes", with_total([stats[s].boxes for s in splits])))
    lines.append(row("images", with_total([stats[s].images for s in splits])))
    lines.append(row("background images", with_total([stats[s].background for s in splits])))
    lines.append(row("images without a label", with_total([stats[s].unlabelled for s in splits])))
    lines.append(row("invalid labels", with_total([stats[s].invalid for s in splits])))
    lines.append(row("boxes per image (mean)", [_mean(stats[s].boxes_per_image) for s in splits]))
    lines.append(
        row("boxes per image (max)", [max(stats[s].boxes_per_image, default=0) for s in splits])
    )
    lines.append(row("median box w x h (%)", [_median_size(stats[s]) for s in splits]))
    return "\n".join(lines)


def _mean(values: list[int]) -> str:
    return f"{np.mean(values):.1f}" if values else "-"


def _median_size(stats: SplitStats) -> str:
    if not stats.widths:
        return "-"
    return f"{np.median(stats.widths) * 100:.1f}x{np.median(stats.heights) * 100:.1f}"


def plot_class_counts(stats: Mapping[str, SplitStats], table: ClassTable) -> Figure:
    """Horizontal bars: boxes per class slot (every slot that occurs), one bar per split."""
    from matplotlib.ticker import MaxNLocator

    slots = occurring_classes(stats) or [0]
    splits = list(stats)
    row_px = 14 + 13 * max(len(splits), 1)
    figure = new_figure(1000, max(260, 120 + row_px * len(slots)))
    ax = figure.add_subplot()
    height = 0.8 / max(len(splits), 1)
    positions = np.arange(len(slots))
    for index, split in enumerate(splits):
        values = [stats[split].class_counts[slot] for slot in slots]
        offsets = positions - 0.4 + height * (index + 0.5)
        bars = ax.barh(offsets, values, height=height, label=split, color=_split_colour(index))
        ax.bar_label(bars, padding=2, fontsize=7)
    ax.set_yticks(positions, [f"{table[s].name} ({s})" for s in slots], fontsize=8)
    for tick, slot in zip(ax.get_yticklabels(), slots, strict=True):
        tick.set_color(_readable(table[slot].color))
    ax.invert_yaxis()
    ax.set_xlabel("boxes")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Boxes per class and split (weather modes apart)", fontsize=11, weight="bold")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.08)
    figure.tight_layout()
    return figure


def plot_box_sizes(stats: Mapping[str, SplitStats]) -> Figure:
    """Box width against height (share of the image), and the distribution of box size."""
    figure = new_figure(1100, 480)
    scatter, histogram = figure.subplots(1, 2)
    widths = np.concatenate([np.asarray(s.widths, float) for s in stats.values()] or [np.empty(0)])
    heights = np.concatenate(
        [np.asarray(s.heights, float) for s in stats.values()] or [np.empty(0)]
    )
    limit = _axis_limit(widths, heights)
    if widths.size:
        hexes = scatter.hexbin(
            widths,
            heights,
            gridsize=40,
            extent=(0, limit, 0, limit),
            mincnt=1,
            cmap="viridis",
        )
        figure.colorbar(hexes, ax=scatter, label="boxes")
    scatter.set(
        xlim=(0, limit),
        ylim=(0, limit),
        xlabel="width / image width",
        ylabel="height / image height",
    )
    scatter.set_title("Box width and height (all splits)", fontsize=11, weight="bold")
    scatter.set_aspect("equal")
    edges = np.linspace(0, limit, 41)
    for index, (split, split_stats) in enumerate(stats.items()):
        sizes = np.sqrt(
            np.asarray(split_stats.widths, float) * np.asarray(split_stats.heights, float)
        )
        if sizes.size:
            weights = np.full(sizes.size, 100 / sizes.size)
            histogram.hist(
                sizes,
                bins=edges,
                weights=weights,
                histtype="step",
                linewidth=1.6,
                label=f"{split} ({sizes.size})",
                color=_split_colour(index),
            )
    histogram.set(
        xlim=(0, limit), xlabel="box size: sqrt(w x h), share of the image", ylabel="% of boxes"
    )
    histogram.set_title("Box size distribution", fontsize=11, weight="bold")
    if widths.size:
        histogram.legend(fontsize=8)
    histogram.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_boxes_per_image(stats: Mapping[str, SplitStats]) -> Figure:
    """The share of images with 0, 1, 2, ... boxes, per split."""
    figure = new_figure(900, 420)
    ax = figure.add_subplot()
    most = max((max(s.boxes_per_image, default=0) for s in stats.values()), default=0)
    counts = np.arange(most + 1)
    width = 0.8 / max(len(stats), 1)
    for index, (split, split_stats) in enumerate(stats.items()):
        per_image = np.bincount(np.asarray(split_stats.boxes_per_image, int), minlength=most + 1)
        share = per_image / max(per_image.sum(), 1) * 100
        ax.bar(
            counts - 0.4 + width * (index + 0.5),
            share,
            width=width,
            label=f"{split} ({per_image.sum()} images)",
            color=_split_colour(index),
        )
    ax.set(xlabel="boxes in the image", ylabel="% of images")
    ax.set_xticks(counts if most <= 30 else np.linspace(0, most, 11).round())
    ax.set_title("Boxes per image", fontsize=11, weight="bold")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def save_stats_plots(
    stats: Mapping[str, SplitStats], table: ClassTable, *, out: Path
) -> dict[str, Path]:
    """Saves the three plots beside ``out``: ``{stem}-classes.png``, ``{stem}-box-sizes.png``
    and ``{stem}-boxes-per-image.png``; returns their paths by plot name."""
    stem = out.with_suffix("")
    plots = {
        "classes": plot_class_counts(stats, table),
        "box-sizes": plot_box_sizes(stats),
        "boxes-per-image": plot_boxes_per_image(stats),
    }
    return {name: save_figure(figure, Path(f"{stem}-{name}.png")) for name, figure in plots.items()}


def _axis_limit(widths: np.ndarray, heights: np.ndarray) -> float:
    """Up to 1 (the whole image), but zoomed in when every box is small."""
    if not widths.size:
        return 1.0
    largest = float(max(widths.max(), heights.max()))
    return min(1.0, max(0.05, np.ceil(largest * 11) / 10))


def _split_colour(index: int) -> str:
    return SPLIT_COLOURS[index % len(SPLIT_COLOURS)]


def _readable(colour: str) -> str:
    """The class colour, darkened when it is too light to read on white."""
    value = int(colour[1:], 16)
    r, g, b = (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF
    if 0.299 * r + 0.587 * g + 0.114 * b < 170:
        return colour
    return "#{:02x}{:02x}{:02x}".format(*(int(c * 0.6) for c in (r, g, b)))
