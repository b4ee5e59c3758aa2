"""``report.html``: one self-contained page about a training run, written into its run folder.

The caller writes it from the `TrainResult` (``azaion-train`` once, the demo once with its own
sections). The page holds, in order: the gate's decision as a sentence and a table (candidate
vs current, by score and size bucket, with the tolerance); the scores as deployed (the exported
model through ``azaion-infer``'s path on the full frames of the test split) overall, by object
size and per class; the previous run's scores beside this one's; the P/R/F1-confidence curves;
the confusion of the classes present; test frames with the truth beside the detections; the
training curves; the hyperparameters, versions and evaluator settings; the dataset's make-up.
Every figure names its split. Every image is embedded as base64, so the file can be mailed or
opened anywhere without its folder.

Example:
    >>> write_report(result)  # doctest: +SKIP
    PosixPath('.../models/azaion-2026-12-02/report.html')
"""

from __future__ import annotations

import base64
import html
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from azaion_training.classes import ClassTable, WeatherMode
from azaion_training.errors import LabelError
from azaion_training.evaluate.scores import Scores
from azaion_training.evaluate.sizes import BUCKETS
from azaion_training.fs import atomic_write_text, is_temporary
from azaion_training.labels import read_label
from azaion_training.train import plots
from azaion_training.train.gate import GateDecision, read_metrics
from azaion_training.train.result import TrainResult
from azaion_training.train.versions import versions

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
"""The report's file name in the run folder."""

SECTIONS = (
    "gate",
    "scores",
    "sizes",
    "classes",
    "previous",
    "curves",
    "confusion",
    "predictions",
    "training",
    "settings",
    "dataset",
)
"""The ``id`` of every section a report always has; a demo's adds ``video`` and ``timings``."""

KEY_HYPERPARAMETERS = (
    "model",
    "epochs",
    "imgsz",
    "batch",
    "optimizer",
    "lr0",
    "lrf",
    "momentum",
    "weight_decay",
    "patience",
    "mosaic",
    "device",
    "amp",
    "seed",
)
"""The ``args.yaml`` keys shown first; the others follow in a folded table."""

_SPLITS = ("train", "valid", "test")
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-top:.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px}
td{text-align:right}td:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.note{color:#666}.bad{color:#b00}.good{color:#070}.lead{font-size:1.05em}
"""


@dataclass(frozen=True)
class DemoSection:
    """What the demo adds to the report.

    Attributes:
        transport: how the annotations reached the consumer, and why that way.
        timings: wall seconds per stage, in order.
        video_frames: JPEG or PNG bytes of frames of the video (truth beside detections when
            the video's truth is known).
        video_line: the video's scores in one line.
        matching: how a detection was matched to a true box for those scores.
    """

    transport: str
    timings: Mapping[str, float]
    video_frames: Sequence[bytes] = field(default_factory=tuple)
    video_line: str = ""
    matching: str = ""


def write_report(
    result: TrainResult, *, classes: ClassTable | None = None, demo: DemoSection | None = None
) -> Path:
    """Writes ``report.html`` into the run folder (atomically) and returns its path."""
    table = classes or ClassTable.default()
    split = result.gate_split
    scores = result.metrics.get(split) if split else None
    parts = [
        f"<h1>Training run {_e(result.run_dir.name)}</h1>",
        _lead(result, scores),
        _section("gate", "Model gate", _gate(result.decision, scores, result.current_metrics)),
        _section("scores", "Scores as deployed", _scores(result.metrics)),
        _section("sizes", "By object size", _sizes(scores, result.current_metrics)),
        _section("classes", "Per class", _classes(scores)),
        _section("previous", "This run and the previous one", _previous(result, scores)),
        _section("curves", "Precision, recall and F1 against confidence", _curves(scores)),
        _section("confusion", "Confusion of the classes present", _confusion(scores)),
        _section("predictions", "Test frames: truth and detections", _mosaic(result, table)),
        _section("training", "Training curves", _training(result)),
        _section("settings", "Hyperparameters, versions, evaluator", _settings(result, scores)),
        _section("dataset", "Dataset", _dataset(result, table)),
    ]
    if demo is not None:
        parts += [
            _section("video", "Video: truth and detections", _video(demo)),
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


def _lead(result: TrainResult, scores: Scores | None) -> str:
    if scores is None:
        return "<p class='note'>no split was scored</p>"
    s = scores.settings
    return (
        f"<p class='lead'>Dataset {_e(result.data_yaml.parent.name)}. Every score below is of "
        f"the exported model ({_e(s.engine)}, input {s.imgsz[1]}x{s.imgsz[0]}, tiles "
        f"{_e(s.tiles)}) run as <code>azaion-infer</code> runs it, on the full frames of a "
        f"split at their own resolution: COCO AP from detections above {s.score_conf:g}; "
        f"precision, recall and F1 at the deployed confidence {s.conf:g}, where a detection "
        f"finds an object of its class that it overlaps with IoU &ge; {s.match_iou:g} (the "
        "most confident first). Ultralytics' validator only drew the training curves.</p>"
    )


def _gate(decision: GateDecision | None, candidate: Scores | None, current: Scores | None) -> str:
    if decision is None or candidate is None:
        return "<p class='note'>no gate decision recorded for this run</p>"
    if decision.current is None:
        verdict = "There was no current model, so the candidate was installed."
    elif decision.forced:
        verdict = "The candidate is worse, and was installed because the operator forced it."
    elif decision.install:
        verdict = "The candidate is not worse than the current model, so it was installed."
    else:
        verdict = "The candidate is worse than the current model, which stays in place."
    mark = "good" if decision.install and not decision.forced else "bad"
    rows = [
        [
            c.label,
            _f(c.candidate),
            _f(c.current),
            _diff(c.candidate, c.current),
            "yes" if c.passed else "no",
        ]
        for c in decision.conditions
    ]
    conditions = _table(["gate condition", "candidate", "current", "difference", "passes"], rows)
    rows = [
        [b.label, str(candidate.size(b.key).truths), _f(candidate.size(b.key).map50_95)]
        + ([_f(current.size(b.key).map50_95)] if current else [])
        for b in BUCKETS
    ]
    header = ["size", "objects", "candidate mAP50-95"] + (["current"] if current else [])
    how = (
        f"Scored on the {_e(decision.split)} split."
        if decision.current is None
        else f"Both were scored on the {_e(decision.split)} split in this run; the candidate "
        f"may be at most {decision.tolerance:g} below on each condition."
    )
    return (
        f"<p class='{mark}'><b>{_e(verdict)}</b> {how}</p>{conditions}"
        f"<p class='note'>{_e(decision.reason)}</p>"
        f"<h3>mAP50-95 by object size</h3>{_table(header, rows)}"
    )


def _scores(metrics: Mapping[str, Scores]) -> str:
    if not metrics:
        return "<p class='note'>no split was scored</p>"
    rows = [
        [
            split,
            str(s.images),
            str(s.truths),
            _f(s.map50),
            _f(s.map50_95),
            _f(s.precision),
            _f(s.recall),
            _f(s.f1),
        ]
        for split, s in metrics.items()
    ]
    header = ["split", "images", "objects", "mAP50", "mAP50-95", "P @conf", "R @conf", "F1 @conf"]
    return _table(header, rows)


def _sizes(scores: Scores | None, current: Scores | None) -> str:
    if scores is None:
        return "<p class='note'>no split was scored</p>"
    rows = [
        [
            r.label,
            str(r.truths),
            _f(r.map50),
            _f(r.map50_95),
            _f(r.recall),
            _f(r.recall_at_conf),
        ]
        for r in scores.sizes
    ]
    header = ["size (sqrt of area, frame px)", "objects", "AP50", "AP50-95", "AR", "R @conf"]
    split = _split_name(scores)
    return (
        f"<p>{_e(split)} split. AI-TOD's buckets; a box of exactly 8, 16, 32 or 64 px counts in "
        "both neighbours, as COCO's ranges close at both ends. AR: COCO's average recall over "
        "IoU 0.50-0.95.</p>"
        + _table(header, rows)
        + _embed(plots.sizes_png(scores, current, split=split), alt="AP by object size")
    )


def _classes(scores: Scores | None) -> str:
    if scores is None:
        return "<p class='note'>no split was scored</p>"
    rows = [
        [
            c.name,
            str(c.truths),
            str(c.detections),
            _f(c.map50),
            _f(c.map50_95),
            _f(c.precision),
            _f(c.recall),
            _f(c.f1),
        ]
        for c in scores.classes
    ]
    header = ["class", "objects", "detections @conf", "AP50", "AP50-95", "P", "R", "F1"]
    return (
        f"<p>{_e(_split_name(scores))} split; P, R and F1 at conf {scores.settings.conf:g}. "
        "Classes with objects or detections only.</p>" + _table(header, rows)
    )


def _previous(result: TrainResult, scores: Scores | None) -> str:
    if result.previous_run is None:
        return "<p class='note'>this is the first run in this tree</p>"
    record = read_metrics(result.previous_run)
    split = _split_name(scores) if scores else "test"
    before = None
    if record is not None:
        try:
            before = Scores.from_dict(record["candidate"][split])
        except (KeyError, TypeError, ValueError):
            before = None
    name = result.previous_run.name
    if before is None or scores is None:
        return (
            f"<p class='note'>the previous run {_e(name)} has no scores as deployed on the "
            f"{_e(split)} split in its metrics.json</p>"
        )
    keys = [
        ("mAP50", "map50"),
        ("mAP50-95", "map50_95"),
        *((f"mAP50-95 {b.label}", f"{b.key}.map50_95") for b in BUCKETS),
        ("precision @conf", "precision"),
        ("recall @conf", "recall"),
        ("F1 @conf", "f1"),
    ]
    rows = [
        [
            label,
            _f(scores.metric(key)),
            _f(before.metric(key)),
            _diff(scores.metric(key), before.metric(key)),
        ]
        for label, key in keys
    ]
    same = before.split == scores.split
    note = (
        ""
        if same
        else (
            f"<p class='note'>the previous run was scored on another dataset ({_e(before.split)}), "
            "so the numbers compare different frames</p>"
        )
    )
    installed = record.get("gate", {}).get("install") if record else None
    return (
        f"<p>{_e(split)} split: this run against {_e(name)} (its candidate"
        f"{', installed' if installed else ', not installed' if installed is False else ''})."
        f"</p>{note}" + _table(["score", "this run", name, "difference"], rows)
    )


def _curves(scores: Scores | None) -> str:
    if scores is None:
        return "<p class='note'>no split was scored</p>"
    png = plots.curves_png(scores, split=_split_name(scores))
    return _embed(png, alt="precision, recall and F1 against confidence")


def _confusion(scores: Scores | None) -> str:
    if scores is None or not scores.confusion.class_ids:
        return "<p class='note'>no objects and no detections to confuse</p>"
    s = scores.settings
    png = plots.confusion_png(
        scores.confusion, split=_split_name(scores), conf=s.conf, iou=s.match_iou
    )
    return (
        "<p>A true object and a detection of any class pair up when they overlap with IoU "
        f"&ge; {s.match_iou:g}, the largest overlaps first, each once; detections above conf "
        f"{s.conf:g}. An object left over is <i>missed</i>, a detection left over is a "
        "<i>false alarm</i>.</p>" + _embed(png, alt="confusion matrix")
    )


def _mosaic(result: TrainResult, table: ClassTable) -> str:
    scores = result.metrics.get(result.gate_split or "")
    if scores is None or not result.frames:
        return "<p class='note'>no frames were scored</p>"
    png = plots.mosaic_png(
        result.frames, classes=table, conf=scores.settings.conf, split=_split_name(scores)
    )
    return _embed(png, alt="truth and detections")


def _training(result: TrainResult) -> str:
    path = result.run_dir / "results.png"
    if not path.is_file():
        return "<p class='note'>results.png was not drawn (plots off)</p>"
    return (
        "<p>Ultralytics' losses and its validator's scores on the <b>valid</b> split, each epoch "
        "(whole images letterboxed to the training size, the .pt in PyTorch).</p>"
        + _embed(path.read_bytes(), alt=path.name)
    )


def _settings(result: TrainResult, scores: Scores | None) -> str:
    arguments = _arguments(result.run_dir / "args.yaml")
    device = str(arguments.get("device", "")) if arguments else ""
    parts = []
    if arguments:
        key_rows = [[k, _show(arguments[k])] for k in KEY_HYPERPARAMETERS if k in arguments]
        other = [[k, _show(v)] for k, v in arguments.items() if k not in KEY_HYPERPARAMETERS]
        parts.append(
            "<h3>Hyperparameters (args.yaml)</h3>"
            + _table(["parameter", "value"], key_rows)
            + f"<details><summary>all {len(arguments)} parameters</summary>"
            + _table(["parameter", "value"], other)
            + "</details>"
        )
    else:
        parts.append("<p class='note'>the run folder has no args.yaml</p>")
    parts.append(
        "<h3>Versions</h3>" + _table(["", ""], [[k, v] for k, v in versions(device=device).items()])
    )
    if scores is not None:
        rows = [[k, _show(v)] for k, v in vars(scores.settings).items()]
        parts.append("<h3>Evaluator</h3>" + _table(["setting", "value"], rows))
    return "".join(parts)


def _dataset(result: TrainResult, table: ClassTable) -> str:
    rows = [[split, str(c.sources), str(c.samples)] for split, c in result.counts.items()]
    groups = _table(
        ["split", "groups (source annotations)", "annotations (train: original + augmented)"],
        rows,
    )
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
        f"<p>{_e(str(result.data_yaml.parent))}. The train split holds every augmented variant "
        "of its annotations; valid and test hold the originals only.</p>"
        f"{groups}<h3>Boxes per class and weather mode</h3>{_table(header, class_rows)}"
    )


def _video(demo: DemoSection) -> str:
    frames = "".join(
        _embed(data, "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png")
        for data in demo.video_frames
    )
    rule = f"<p class='note'>{_e(demo.matching)}</p>" if demo.matching else ""
    return f"<p>{_e(demo.video_line)}</p>{rule}{frames or '<p class=note>no frames</p>'}"


def _timings(demo: DemoSection) -> str:
    rows = [[name, f"{seconds:.1f}"] for name, seconds in demo.timings.items()]
    rows.append(["total", f"{sum(demo.timings.values()):.1f}"])
    return f"<p>queue: {_e(demo.transport)}</p>" + _table(["stage", "seconds"], rows)


def _arguments(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return content if isinstance(content, dict) else {}


def _split_name(scores: Scores) -> str:
    return Path(scores.split).name


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _diff(mine: float | None, theirs: float | None) -> str:
    return "-" if mine is None or theirs is None else f"{mine - theirs:+.3f}"


def _embed(data: bytes, mime: str = "image/png", *, alt: str = "") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:{mime};base64,{encoded}'>"


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{_e(title)}</h2>{body}</section>"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
