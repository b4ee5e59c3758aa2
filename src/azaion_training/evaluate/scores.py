"""The evaluator's result: the scores of one model on one split, with what it takes to repeat
them (`EvaluatorSettings`). Plain data, JSON both ways (`Scores.to_dict` / `Scores.from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from azaion_training.evaluate.sizes import bucket


@dataclass(frozen=True)
class EvaluatorSettings:
    """How the scores were made: the model, its engine and the deployed thresholds.

    Attributes:
        model: the model file or store name.
        engine: the engine kind (``onnx``, ``engine``, ``rknn``).
        imgsz: the engine's input ``[height, width]``.
        batch: frames per engine call.
        tiles: how frames were cut: ``off`` (whole frames), ``auto`` or ``WxH``.
        tile_options: every field of the tile plan (`infer.tiles.TilePlan`).
        conf: the deployed confidence threshold (precision, recall, F1, confusion).
        iou: the deployed overlap removal threshold.
        score_conf: the low threshold of the detections that AP is computed from.
        match_iou: the IoU at which a detection finds an object (P/R/F1, confusion).
        max_detections: the most confident detections per frame that count.
    """

    model: str
    engine: str
    imgsz: tuple[int, int]
    batch: int
    tiles: str
    tile_options: Mapping[str, Any]
    conf: float
    iou: float
    score_conf: float
    match_iou: float
    max_detections: int


@dataclass(frozen=True)
class ClassScores:
    """One class: COCO AP (low threshold) and precision/recall/F1 at the deployed ``conf``."""

    class_id: int
    name: str
    truths: int
    detections: int
    map50: float | None
    map50_95: float | None
    precision: float
    recall: float | None
    f1: float


@dataclass(frozen=True)
class SizeScores:
    """One size bucket (`sizes.BUCKETS`): COCO AP and recall, and recall at the deployed conf."""

    key: str
    label: str
    truths: int
    map50: float | None
    map50_95: float | None
    recall: float | None
    recall_at_conf: float | None


@dataclass(frozen=True)
class Confusion:
    """Counts of (true class, detected class) at the deployed ``conf``, for the classes present.

    ``counts[i][j]``: objects of ``class_ids[i]`` detected as ``class_ids[j]``; the extra last
    column counts the missed objects of each class, the extra last row the false alarms.
    """

    class_ids: tuple[int, ...]
    names: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Scores:
    """The scores of one model on one split.

    Attributes:
        split: the split folder.
        images, truths: frames and labelled objects in it.
        map50, map50_95: COCO mAP over the classes present (``None`` without truth).
        precision, recall, f1: at the deployed ``conf`` and ``match_iou``, over all classes.
        classes: one row per class with truth or detections above ``conf``.
        sizes: one row per size bucket.
        curves: ``confidence``, ``precision``, ``recall``, ``f1``: lists of equal length.
        confusion: at the deployed ``conf``.
        settings: how they were made.
        seconds: wall time of the evaluation.
    """

    split: str
    images: int
    truths: int
    map50: float | None
    map50_95: float | None
    precision: float
    recall: float | None
    f1: float
    classes: tuple[ClassScores, ...]
    sizes: tuple[SizeScores, ...]
    curves: Mapping[str, list[float]]
    confusion: Confusion
    settings: EvaluatorSettings
    seconds: float

    def size(self, key: str) -> SizeScores:
        """The row of size bucket ``key``.

        Raises:
            KeyError: no such bucket.
        """
        for row in self.sizes:
            if row.key == key:
                return row
        raise KeyError(f"no size bucket {bucket(key).key!r} in these scores")

    def metric(self, name: str) -> float | None:
        """A score by name: ``map50``, ``map50_95``, ``precision``, ``recall``, ``f1``, or
        ``{bucket}.{map50|map50_95|recall}`` such as ``under_32.map50_95``."""
        if "." in name:
            key, field = name.split(".", 1)
            if field not in ("map50", "map50_95", "recall", "recall_at_conf"):
                raise KeyError(f"unknown size score {name!r}")
            return getattr(self.size(key), field)
        if name not in ("map50", "map50_95", "precision", "recall", "f1"):
            raise KeyError(f"unknown score {name!r}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scores:
        """The scores from `to_dict`'s form (as read from JSON).

        Raises:
            KeyError, TypeError, ValueError: not such a dict.
        """
        values = {f.name: data[f.name] for f in fields(cls)}
        settings = dict(data["settings"])
        settings["imgsz"] = tuple(settings["imgsz"])
        confusion = data["confusion"]
        values.update(
            classes=tuple(ClassScores(**row) for row in data["classes"]),
            sizes=tuple(SizeScores(**row) for row in data["sizes"]),
            curves={key: list(value) for key, value in data["curves"].items()},
            confusion=Confusion(
                class_ids=tuple(confusion["class_ids"]),
                names=tuple(confusion["names"]),
                counts=tuple(tuple(row) for row in confusion["counts"]),
            ),
            settings=EvaluatorSettings(**settings),
        )
        return cls(**values)

    def table(self) -> str:
        """A readable summary: the scores, per size bucket, per class, and the settings."""
        s = self.settings
        lines = [
            f"{self.split}: {self.images} images, {self.truths} objects; model {s.model} "
            f"({s.engine}, input {s.imgsz[1]}x{s.imgsz[0]}, tiles {s.tiles})",
            f"mAP50 {_f(self.map50)}  mAP50-95 {_f(self.map50_95)}  "
            f"(COCO, detections above conf {s.score_conf:g})",
            f"at conf {s.conf:g}, IoU {s.match_iou:g}: precision {_f(self.precision)}  "
            f"recall {_f(self.recall)}  F1 {_f(self.f1)}",
            "",
            f"{'size (sqrt of box area)':<24} {'objects':>7} {'AP50':>6} {'AP50-95':>7} "
            f"{'AR':>6} {'R@conf':>6}",
        ]
        lines += [
            f"{r.label:<24} {r.truths:>7} {_f(r.map50):>6} {_f(r.map50_95):>7} "
            f"{_f(r.recall):>6} {_f(r.recall_at_conf):>6}"
            for r in self.sizes
        ]
        lines += [
            "",
            f"{'class':<28} {'objects':>7} {'dets':>6} {'AP50':>6} {'AP50-95':>7} "
            f"{'P':>6} {'R':>6} {'F1':>6}",
        ]
        lines += [
            f"{c.name:<28} {c.truths:>7} {c.detections:>6} {_f(c.map50):>6} "
            f"{_f(c.map50_95):>7} {_f(c.precision):>6} {_f(c.recall):>6} {_f(c.f1):>6}"
            for c in self.classes
        ]
        lines.append(
            f"\ndets: detections above conf; AR: COCO's average recall; R@conf: recall at conf. "
            f"batch {s.batch}, overlap removal IoU {s.iou:g}, at most {s.max_detections} "
            f"detections per image; {self.seconds:.1f} s"
        )
        return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
