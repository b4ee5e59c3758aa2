"""The report's figures, drawn from the evaluator's scores and frames (PNG bytes).

Each figure says in its title which split it shows and how the model ran (as deployed, at which
confidence and IoU), so a figure copied out of the report still says what it is. matplotlib's
object API (`matplotlib.figure.Figure`) is used without pyplot, so no GUI backend is involved.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.evaluate.scores import Confusion, Scores
from azaion_training.evaluate.sizes import BUCKETS, LARGEST_SIDE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from azaion_training.evaluate.run import ScoredFrame


def confusion_png(confusion: Confusion, *, split: str, conf: float, iou: float) -> bytes:
    """The confusion of the classes present: counts, and the share of each true class's objects."""
    from matplotlib.figure import Figure

    across = [*confusion.names, "(none): missed"]
    down = [*confusion.names, "(none): false alarm"]
    counts = np.array(confusion.counts, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    n = len(across)
    side = max(4.0, 0.55 * n + 2.5)
    figure = Figure(figsize=(2 * side + 1, side), layout="constrained")
    for axes, values, title in zip(
        figure.subplots(1, 2),
        (counts, shares),
        ("objects (counts)", "share of each true class (row sums 1)"),
        strict=True,
    ):
        axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (row, column), value in np.ndenumerate(values):
            if counts[row, column] == 0:
                continue
            text = str(value) if values is counts else f"{value:.2f}"
            dark = shares[row, column] > 0.55
            axes.text(
                column,
                row,
                text,
                ha="center",
                va="center",
                fontsize=9,
                color="white" if dark else "black",
            )
        axes.set_xticks(range(n), across, rotation=45, ha="right", fontsize=9)
        axes.set_yticks(range(n), down, fontsize=9)
        axes.set_xlabel("detected as")
        axes.set_ylabel("true class")
        axes.set_title(title, fontsize=10)
    figure.suptitle(
        f"Confusion on the {split} split, as deployed (conf > {conf:g}, IoU >= {iou:g})",
        fontsize=11,
    )
    return _png(figure)


def curves_png(scores: Scores, *, split: str) -> bytes:
    """Precision, recall and F1 against the confidence threshold; the deployed one marked."""
    from matplotlib.figure import Figure

    curves = scores.curves
    confidence = np.array(curves["confidence"])
    f1 = np.array(curves["f1"])
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    for key, colour in (("precision", "#1f77b4"), ("recall", "#ff7f0e"), ("f1", "#2ca02c")):
        axes.plot(confidence, curves[key], label=key if key != "f1" else "F1", color=colour)
    best = int(f1.argmax())
    axes.axvline(scores.settings.conf, color="#555", linestyle="--", linewidth=1)
    axes.annotate(
        f"deployed conf {scores.settings.conf:g}",
        (scores.settings.conf, 0.02),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize=8,
    )
    axes.plot([confidence[best]], [f1[best]], "o", color="#2ca02c")
    axes.annotate(
        f"best F1 {f1[best]:.2f} at {confidence[best]:.2f}",
        (confidence[best], f1[best]),
        xytext=(6, 6),
        textcoords="offset points",
        fontsize=8,
    )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("confidence threshold")
    axes.set_ylabel("score")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    axes.set_title(
        f"{split} split, as deployed; a detection finds an object of its class "
        f"at IoU >= {scores.settings.match_iou:g}",
        fontsize=9,
    )
    return _png(figure)


def sizes_png(candidate: Scores, current: Scores | None, *, split: str) -> bytes:
    """AP50 and recall at the deployed conf per size bucket, the current model beside."""
    from matplotlib.figure import Figure

    buckets = BUCKETS[:5]
    x = np.arange(len(buckets))
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    panels = figure.subplots(1, 2)
    models = [("candidate", candidate, "#1f77b4")]
    if current is not None:
        models.append(("current", current, "#aaaaaa"))
    width = 0.8 / len(models)
    for axes, field, title in zip(
        panels, ("map50", "recall_at_conf"), ("AP50", "recall at the deployed conf"), strict=True
    ):
        for index, (label, scores, colour) in enumerate(models):
            values = [getattr(scores.size(b.key), field) for b in buckets]
            axes.bar(
                x + (index - (len(models) - 1) / 2) * width,
                [v or 0.0 for v in values],
                width,
                label=label,
                color=colour,
            )
        axes.set_xticks(
            x,
            [f"{_range(b.low, b.high)}\n{candidate.size(b.key).truths} obj." for b in buckets],
            fontsize=7,
        )
        axes.set_ylim(0, 1)
        axes.set_title(title, fontsize=9)
        axes.grid(axis="y", alpha=0.3)
    panels[0].legend(fontsize=8)
    figure.suptitle(
        f"By object size (sqrt of box area in frame pixels), {split} split, as deployed",
        fontsize=10,
    )
    return _png(figure)


def mosaic_png(
    frames: Sequence[ScoredFrame],
    *,
    classes: ClassTable,
    conf: float,
    split: str,
    count: int = 6,
) -> bytes:
    """Frames of the split, truth beside the detections above ``conf``: thin boxes in class
    colours (a confused class shows as a change of colour), the class names in a legend (no
    label chips over small objects)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    chosen = _spread(frames, count)
    figure = Figure(figsize=(10, 2.6 * max(len(chosen), 1) + 0.8), layout="constrained")
    grid = figure.subplots(max(len(chosen), 1), 2, squeeze=False)
    seen: set[int] = set()
    for row, frame in zip(grid, chosen, strict=False):
        image = cv2.imread(str(frame.path), cv2.IMREAD_COLOR)
        rgb = image[:, :, ::-1] if image is not None else np.zeros((*frame.shape, 3), np.uint8)
        kept = frame.detections.confidence > conf
        sides = (
            ("truth", frame.truth.xyxy, frame.truth.class_id),
            ("detections", frame.detections.xyxy[kept], frame.detections.class_id[kept]),
        )
        for axes, (title, boxes, ids) in zip(row, sides, strict=True):
            axes.imshow(rgb)
            for (x1, y1, x2, y2), class_id in zip(boxes.tolist(), ids.tolist(), strict=True):
                seen.add(int(class_id))
                colour = _colour(classes, int(class_id))
                axes.add_patch(
                    Rectangle(
                        (x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=0.8, edgecolor=colour
                    )
                )
            axes.set_axis_off()
            axes.set_title(f"{frame.path.name}: {title} ({len(ids)})", fontsize=8)
    for axes in grid[len(chosen) :].ravel():
        axes.set_axis_off()
    handles = [
        Line2D([], [], color=_colour(classes, c), linewidth=2, label=_name(classes, c))
        for c in sorted(seen)
    ]
    figure.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8
    )
    figure.suptitle(
        f"{split} split, full frames as deployed: truth | detections above conf {conf:g}",
        fontsize=10,
    )
    return _png(figure)


def _range(low: float, high: float) -> str:
    return f"> {low:g} px" if high >= LARGEST_SIDE else f"{low:g}-{high:g} px"


def _spread(frames: Sequence[ScoredFrame], count: int) -> list[ScoredFrame]:
    with_objects = [f for f in frames if len(f.truth.class_id)] or list(frames)
    if len(with_objects) <= count:
        return with_objects
    picks = np.linspace(0, len(with_objects) - 1, count).round().astype(int)
    return [with_objects[i] for i in picks]


def _colour(classes: ClassTable, class_id: int) -> str:
    try:
        return classes[class_id].color
    except KeyError:
        return "#ff00ff"


def _name(classes: ClassTable, class_id: int) -> str:
    try:
        return classes[class_id].name
    except KeyError:
        return f"class {class_id}"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
