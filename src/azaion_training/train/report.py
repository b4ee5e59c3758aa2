"""``report.html``: one self-contained page about a training run, written into its run folder.

The page holds the dataset's make-up (groups and annotations per split, class counts per
weather mode), the training curves, the PR curve and confusion matrix of the test split (the
valid split when there is none), the per-class AP table, test images with the predictions beside
the truth, the model gate's decision (read from the run folder's ``metrics.json`` when the gate
wrote one) and, for the demo, frames of the annotated video and the stage timings. Every image is
embedded as base64, so the file can be mailed or opened anywhere without its folder.

Example:
    >>> write_report(result)  # doctest: +SKIP
    PosixPath('.../models/azaion-2026-12-02/report.html')
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from azaion_training.classes import ClassTable, WeatherMode
from azaion_training.errors import LabelError
from azaion_training.fs import atomic_write_text, is_temporary
from azaion_training.labels import read_label
from azaion_training.train.gate import METRICS_FILE

if TYPE_CHECKING:
    from azaion_training.train.evaluate import SplitMetrics
    from azaion_training.train.job import TrainResult

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
"""The report's file name in the run folder."""

GATE_FILE = METRICS_FILE
"""The model gate's record in the run folder (candidate and current scores, the decision)."""

SECTIONS = (
    "dataset",
    "curves",
    "pr-curve",
    "confusion",
    "per-class",
    "predictions",
    "gate",
)
"""The ``id`` of every section a report always has; a demo's adds ``video`` and ``timings``."""

_SPLITS = ("train", "valid", "test")
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-top:.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px}
td{text-align:right}td:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.pair{display:flex;gap:1em}.pair figure{flex:1;margin:0}.note{color:#666}
"""


@dataclass(frozen=True)
class DemoSection:
    """What the demo adds to the report.

    Attributes:
        transport: how the annotations reached the consumer, and why that way.
        timings: wall seconds per stage, in order.
        video_frames: JPEG or PNG bytes of a few frames of the annotated video.
        video_line: the video's scores in one line.
    """

    transport: str
    timings: Mapping[str, float]
    video_frames: Sequence[bytes] = field(default_factory=tuple)
    video_line: str = ""


def write_report(
    result: TrainResult, *, classes: ClassTable | None = None, demo: DemoSection | None = None
) -> Path:
    """Writes ``report.html`` into the run folder (atomically) and returns its path."""
    table = classes or ClassTable.default()
    metrics = result.metrics.get("test") or result.metrics.get("valid")
    parts = [
        f"<h1>Training run {_e(result.run_dir.name)}</h1>",
        _section("dataset", "Dataset", _dataset(result, table)),
        _section("curves", "Training curves", _image(result.run_dir / "results.png")),
        _section("pr-curve", "Precision-recall curve", _plot(metrics, "BoxPR_curve.png")),
        _section(
            "confusion", "Confusion matrix", _plot(metrics, "confusion_matrix_normalized.png")
        ),
        _section("per-class", "Average precision per class", _per_class(result.metrics)),
        _section("predictions", "Test images: truth and predictions", _predictions(metrics)),
        _section("gate", "Model gate", _gate(result.run_dir / GATE_FILE)),
    ]
    if demo is not None:
        parts += [
            _section("video", "Annotated video", _video(demo)),
            _section("timings", "Stages", _timings(demo)),
        ]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>azaion {_e(result.run_dir.name)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
    path = result.run_dir / REPORT_NAME
    atomic_write_text(path, page)
    logger.info("report written to %s", path)
    return path


def class_counts(dataset: Path) -> dict[str, Counter[int]]:
    """Boxes per class slot in each split of a dataset folder (unreadable labels are skipped)."""
    counts: dict[str, Counter[int]] = {}
    for split in _SPLITS:
        counter = counts[split] = Counter()
        labels = dataset / split / "labels"
        for label in sorted(labels.glob("*.txt")) if labels.is_dir() else ():
            if is_temporary(label):
                continue
            try:
                counter.update(box.class_id for box in read_label(label))
            except LabelError:
                continue
    return counts


def _dataset(result: TrainResult, table: ClassTable) -> str:
    rows = [[split, str(c.sources), str(c.samples)] for split, c in result.counts.items()]
    groups = _table(["split", "groups (source annotations)", "annotations (with variants)"], rows)
    counts = class_counts(result.data_yaml.parent)
    splits = [split for split in _SPLITS if split in counts]
    bases = sorted({table[slot].base_id for c in counts.values() for slot in c} - {None})
    modes = list(WeatherMode)
    header = ["class"] + [f"{mode.label} {split}" for mode in modes for split in splits]
    class_rows = [
        [table[base].name]
        + [str(counts[split][base + mode.value]) for mode in modes for split in splits]
        for base in bases
        if base is not None
    ]
    return (
        f"<p>{_e(str(result.data_yaml.parent))}</p>{groups}"
        f"<h3>Boxes per class and weather mode</h3>{_table(header, class_rows)}"
    )


def _per_class(metrics: Mapping[str, SplitMetrics]) -> str:
    if not metrics:
        return "<p class='note'>no split was scored</p>"
    blocks = []
    for split in metrics.values():
        rows = [
            [c.name, str(c.instances), f"{c.map50:.3f}", f"{c.map50_95:.3f}"] for c in split.classes
        ]
        rows.append(
            [
                "all",
                str(sum(c.instances for c in split.classes)),
                f"{split.map50:.3f}",
                f"{split.map50_95:.3f}",
            ]
        )
        blocks.append(
            f"<h3>{_e(split.split)}</h3>" + _table(["class", "instances", "AP50", "AP50-95"], rows)
        )
    return "".join(blocks)


def _predictions(metrics: SplitMetrics | None) -> str:
    if metrics is None:
        return "<p class='note'>no split was scored</p>"
    pairs = []
    for labels in sorted(metrics.plots_dir.glob("val_batch*_labels.jpg")):
        pred = labels.with_name(labels.name.replace("_labels", "_pred"))
        if pred.is_file():
            pairs.append(
                "<div class='pair'>"
                f"<figure>{_image(labels)}<figcaption>truth</figcaption></figure>"
                f"<figure>{_image(pred)}<figcaption>predictions</figcaption></figure></div>"
            )
    return "".join(pairs) or "<p class='note'>the validator drew no batches (plots off)</p>"


def _gate(path: Path) -> str:
    if not path.is_file():
        return "<p class='note'>no gate decision recorded for this run</p>"
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return f"<p class='note'>{_e(path.name)} is unreadable: {_e(str(exc))}</p>"
    if not isinstance(record, dict):
        return f"<p class='note'>{_e(path.name)} holds no record</p>"
    decision = record.get("gate", record)  # the gate's own fields, not every score again
    if not isinstance(decision, dict):
        return f"<p class='note'>{_e(path.name)} holds no gate decision</p>"
    rows = [[_e(str(key)), _e(json.dumps(value))] for key, value in decision.items()]
    return _table(["field", "value"], rows, escape=False)


def _video(demo: DemoSection) -> str:
    frames = "".join(
        _embed(data, "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png")
        for data in demo.video_frames
    )
    return f"<p>{_e(demo.video_line)}</p>{frames or '<p class=note>no frames</p>'}"


def _timings(demo: DemoSection) -> str:
    rows = [[name, f"{seconds:.1f}"] for name, seconds in demo.timings.items()]
    rows.append(["total", f"{sum(demo.timings.values()):.1f}"])
    return f"<p>queue: {_e(demo.transport)}</p>" + _table(["stage", "seconds"], rows)


def _plot(metrics: SplitMetrics | None, name: str) -> str:
    if metrics is None:
        return "<p class='note'>no split was scored</p>"
    return _image(metrics.plots_dir / name)


def _image(path: Path) -> str:
    if not path.is_file():
        return f"<p class='note'>{_e(path.name)} was not drawn</p>"
    return _embed(path.read_bytes(), _MIME.get(path.suffix.lower(), "image/png"), alt=path.name)


def _embed(data: bytes, mime: str, *, alt: str = "") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:{mime};base64,{encoded}'>"


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{_e(title)}</h2>{body}</section>"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, escape: bool = True) -> str:
    quote = _e if escape else str
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{quote(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
