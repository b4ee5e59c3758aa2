"""The main job on one machine: annotation events in, an encrypted model and an annotated video out.

`run_demo` drives every component through its public functions, in a fresh data root:

1. the annotations: the synthetic world's (`world`, three weather modes), or the user's own
   labelled images (YOLO as they are, Pascal VOC or COCO through `azaion_training.convert`);
2. sent as the platform's messages (`queue.review_messages`: some from an Operator, validated
   in bulk afterwards) through a RabbitMQ stream into `queue`'s consumer (`demo.delivery`): the
   configured server when it answers, else a private node started under the demo's root and
   stopped at the end (`queue.broker`); only when neither can be had, straight into the
   consumer's handler;
3. augmented (`augment`), formed into a dated dataset and used to train a small model on the
   CPU (`train`), which exports ONNX, publishes it to the embedded local model store and writes
   ``report.html`` in its run folder;
4. the model fetched back from the store, decrypted in memory only (`store.models`);
5. `infer` over a video: a generated one filmed by a moving camera over scenes never seen in
   training (scored against its known boxes, `demo.scoring`), or the user's own;
6. the report gains the video's frames (`demo.video`) and the stage timings.

The result is a `DemoReport`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from azaion_training.classes import ClassTable
from azaion_training.config import Settings
from azaion_training.convert.runner import READERS
from azaion_training.demo.delivery import deliver
from azaion_training.demo.scoring import Found, VideoOutcome, collector, video_scores
from azaion_training.demo.userdata import PreparedData, UserData, prepare_user_data
from azaion_training.demo.video import truth_and_detections, video_frames
from azaion_training.errors import ConfigError, TrainingError
from azaion_training.fs import AnnotationDir, DataTree, atomic_write_text, is_temporary
from azaion_training.labels import Box
from azaion_training.train.report import REPORT_NAME, DemoSection, write_report

if TYPE_CHECKING:
    from azaion_training.train.result import TrainResult


logger = logging.getLogger(__name__)

DEMO_FOLDER = "demo"
"""Folder under the data root for the demo's own inputs and outputs."""

MODEL_NAME = "azaion.onnx"
"""The name the trained model is published under, and fetched back by."""


def data_formats() -> tuple[str, ...]:
    """The formats `run_demo` takes the user's own annotations in: YOLO as they are, and every
    format `azaion_training.convert` reads (its table, `convert.runner.READERS`)."""
    return ("yolo", *READERS)


_KEY_PLOTS = ("results.png", "BoxPR_curve.png", "confusion_matrix_normalized.png")
_REPORT_FRAMES = 6


@dataclass(frozen=True)
class DemoPlan:
    """How big the demo is. The defaults aim at under 15 minutes on 2 CPU cores.

    Attributes:
        annotations: synthetic annotations sent through the queue.
        image_size: their width and height in pixels: twice the training size, so formation
            adds native-resolution tiles and inference tiles the frames (``auto``).
        objects: the least and most objects drawn per image.
        object_side: objects are drawn as in an image of this side (`demo.world.make_scene`):
            160 gives 8-32 px cars whatever the image size; the video uses the same scale.
        operator_share: every n-th annotation comes from an Operator and is validated in bulk.
        epochs / imgsz / batch: training on the CPU (``yolo11n.yaml``, from scratch).
        split: train, valid and test shares of the dataset (the test split is large enough for
            every class to have 10+ instances at the default size).
        video_frames / video_size: the generated video for inference, ``(width, height)``.
        seed: every random choice derives from it; the video uses its own seed from it.
    """

    annotations: int = 75
    image_size: int = 320
    objects: tuple[int, int] = (12, 32)
    object_side: int | None = 160
    operator_share: int = 4
    epochs: int = 5
    imgsz: int = 160
    batch: int = 16
    split: tuple[float, float, float] = (0.65, 0.15, 0.2)
    video_frames: int = 240
    video_size: tuple[int, int] = (320, 240)
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoPlan:
        """A reduced run that checks every step in about a minute (mAP is not meaningful)."""
        return cls(
            annotations=24,
            image_size=96,
            objects=(3, 8),
            object_side=None,
            epochs=1,
            imgsz=64,
            video_frames=24,
        )

    @property
    def video_object_side(self) -> int | None:
        """The video scene's object side: its frames show the scene at 0.55-1.1x (3/4 on
        average), so objects in them have the training images' size."""
        return None if self.object_side is None else round(self.object_side * 4 / 3)

    @property
    def video_seed(self) -> int:
        """The video's own seed: its scenes are never among the training images."""
        return self.seed + 1_000_003


@dataclass(frozen=True)
class DemoReport:
    """What the demo produced. Paths are absolute; seconds are wall time per step."""

    root: Path
    transport: str
    transport_reason: str
    annotations_sent: int
    annotations_in_data: int
    samples: int
    split_sources: dict[str, int]
    test_map50: float
    test_map50_95: float
    valid_map50: float
    test_classes: dict[str, float]
    video_recall: float | None
    video_precision: float | None
    video_line: str
    video_detections: int
    frames_inferred: int
    engine: str
    model_pt: Path
    model_onnx: Path
    store_size: int
    annotated_video: Path | None
    detections: Path | None
    plots: list[Path]
    samples_grid: Path
    report_html: Path
    seconds: dict[str, float] = field(default_factory=dict)
    held_out_map50: float | None = None
    """The user's data: mAP50 of the model as deployed on the test split's full frames."""
    held_out_line: str = ""
    notes: tuple[str, ...] = ()
    """What the preparation of the user's data said (conversion, warnings)."""

    def text(self) -> str:
        """A short readable report; its last line is the path of ``report.html``."""
        splits = ", ".join(f"{name} {count}" for name, count in self.split_sources.items())
        steps = ", ".join(f"{name} {secs:.0f}s" for name, secs in self.seconds.items())
        per_class = ", ".join(f"{name} {ap:.2f}" for name, ap in self.test_classes.items())
        return "\n".join(
            [
                f"azaion demo in {self.root}",
                f"  queue      {self.annotations_sent} annotations sent ({self.transport}; "
                f"{self.transport_reason}), {self.annotations_in_data} validated in data/",
                f"  augment    {self.samples} samples in data-processed/",
                f"  dataset    sources per split: {splits}",
                f"  training   test mAP50 {self.test_map50:.3f}, mAP50-95 {self.test_map50_95:.3f}"
                f" (valid mAP50 {self.valid_map50:.3f}), as deployed",
                f"  per class  test AP50: {per_class}",
                f"  store      {MODEL_NAME} published and fetched back "
                f"({self.store_size / 1e6:.1f} MB, decrypted in memory, SHA-256 verified)",
                *([f"  held-out   {self.held_out_line}"] if self.held_out_line else []),
                f"  inference  {self.video_line}",
                f"  model      {self.model_pt}",
                f"             {self.model_onnx}",
                *([f"  video      {self.annotated_video}"] if self.annotated_video else []),
                *([f"  detections {self.detections}"] if self.detections else []),
                f"  samples    {self.samples_grid}",
                *(f"  note       {note}" for note in self.notes),
                f"  time       {steps}, total {sum(self.seconds.values()):.0f}s",
                f"report: {self.report_html}",
            ]
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str) + "\n"


def demo_settings(settings: Settings, plan: DemoPlan) -> Settings:
    """The settings of a demo run: a small CPU training, the embedded local store.

    ``training.extra`` uses AdamW at a fixed learning rate and no mosaic: Ultralytics' automatic
    choice for short runs gives an 80-class head a learning rate too small to learn anything in a
    few epochs, and mosaic shrinks objects that are already small at these image sizes.
    """
    train_ratio, valid_ratio, test_ratio = plan.split
    return settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={
                    "model": "yolo11n.yaml",
                    "epochs": plan.epochs,
                    "imgsz": plan.imgsz,
                    "batch": plan.batch,
                    "device": "cpu",
                    "workers": 0,
                    "patience": plan.epochs,
                    "extra": {
                        "optimizer": "AdamW",
                        "lr0": 0.002,
                        "mosaic": 0.0,
                        "close_mosaic": 0,
                        "warmup_epochs": 1.0 if plan.epochs > 2 else 0.0,
                        "seed": plan.seed,
                        "deterministic": True,
                    },
                }
            ),
            "dataset": settings.dataset.model_copy(
                update={
                    "train_ratio": train_ratio,
                    "valid_ratio": valid_ratio,
                    "test_ratio": test_ratio,
                }
            ),
            "export": settings.export.model_copy(update={"imgsz": plan.imgsz, "batch": 4}),
            "api": settings.api.model_copy(update={"url": None}),
        }
    )


def run_demo(
    settings: Settings,
    tree: DataTree,
    *,
    plan: DemoPlan | None = None,
    stream: bool | None = None,
    data: UserData | None = None,
    video: Path | None = None,
    progress: bool = True,
) -> DemoReport:
    """Runs the whole pipeline in ``tree`` (which should be empty) and writes ``demo/report.*``.

    Args:
        settings: the loaded settings; `demo_settings` adapts training, export and the store.
        tree: a fresh data tree.
        plan: sizes; `DemoPlan` defaults when ``None``.
        stream: require a RabbitMQ stream (True), never use one (False), or use one when one can
            be had (None).
        data: the user's own annotations instead of the synthetic world.
        video: the user's own video instead of a generated one.
        progress: show progress bars.

    Raises:
        AzaionError: a step failed; the message names it.
    """
    plan = plan or DemoPlan()
    settings = demo_settings(settings, plan)
    tree.create()
    folder = tree.root / DEMO_FOLDER
    seconds: dict[str, float] = {}
    with _timed(seconds, "prepare"):
        prepared = _incoming(folder / "incoming", plan, data, settings=settings, progress=progress)
    incoming = prepared.folder
    if prepared.classes is not None:
        settings = settings.model_copy(update={"classes": prepared.classes})
    with _timed(seconds, "queue"):
        delivery = deliver(
            settings.queue,
            tree,
            incoming,
            operator_share=plan.operator_share,
            stream=stream,
            node_folder=folder / "rabbitmq",
        )
    with _timed(seconds, "augment"):
        samples = _augment(settings, tree, progress=progress)
    with _timed(seconds, "train"):
        trained = _train(settings, tree, progress=progress)
    with _timed(seconds, "fetch"):
        model = _fetch_verified(settings, tree, trained.model_onnx)
    held_out = None
    if data is not None:
        with _timed(seconds, "score"):
            held_out = _score_held_out(settings, model, trained, progress=progress)
    outcome = None
    if data is None or video is not None:
        with _timed(seconds, "infer"):
            outcome = _infer(settings, model, folder, plan=plan, video=video, progress=progress)
    grid = _samples_grid(settings, tree, folder / "samples.png", seed=plan.seed)
    annotated = outcome.folder / "annotated.mp4" if outcome is not None else None
    video_line = (
        outcome.line
        if outcome is not None
        else "no video: your data is scored on its held-out test frames (give one with --video)"
    )
    section = DemoSection(
        transport=f"{delivery.transport} ({delivery.reason})",
        timings=seconds,
        video_frames=_video_stills(outcome, annotated, ClassTable.load(settings.classes))
        if outcome is not None and annotated is not None
        else (),
        video_line="; ".join(filter(None, [held_out.line if held_out else "", video_line])),
        matching=(
            f"Every {settings.infer.every}th frame inferred by azaion-infer (conf > "
            f"{settings.infer.conf:g}, overlap removal at IoU {settings.infer.iou:g}, tiles "
            f"{settings.infer.tiles}); a true box is found when a detection of its class "
            "overlaps it with IoU >= 0.5."
        ),
    )
    report = DemoReport(
        root=tree.root.resolve(),
        transport=delivery.transport,
        transport_reason=delivery.reason,
        annotations_sent=delivery.annotations,
        annotations_in_data=_count(tree.data),
        samples=samples,
        split_sources={name: counts.sources for name, counts in trained.counts.items()},
        test_map50=_map(trained, "test", "map50"),
        test_map50_95=_map(trained, "test", "map50_95"),
        valid_map50=_map(trained, "valid", "map50"),
        test_classes=_class_ap(trained, "test"),
        video_recall=outcome.recall if outcome else None,
        video_precision=outcome.precision if outcome else None,
        video_line=video_line,
        video_detections=outcome.summary.detections if outcome else 0,
        frames_inferred=outcome.summary.frames_inferred if outcome else 0,
        engine=outcome.summary.engine if outcome else "",
        model_pt=trained.model_pt,
        model_onnx=trained.model_onnx,
        store_size=len(model),
        annotated_video=annotated,
        detections=outcome.folder / "detections.jsonl" if outcome else None,
        plots=[p for p in trained.plots if p.name in _KEY_PLOTS and p.parent == trained.run_dir],
        samples_grid=grid,
        report_html=trained.run_dir / REPORT_NAME,
        seconds=seconds,
        held_out_map50=held_out.map50 if held_out else None,
        held_out_line=held_out.line if held_out else "",
        notes=prepared.notes,
    )
    write_report(trained, classes=ClassTable.load(settings.classes), demo=section)
    atomic_write_text(folder / "report.json", report.to_json())
    atomic_write_text(folder / "report.txt", report.text() + "\n")
    return report


@contextlib.contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    logger.info("demo: %s", step)
    started = time.perf_counter()
    yield
    seconds[step] = round(time.perf_counter() - started, 1)


def _incoming(
    folder: Path,
    plan: DemoPlan,
    data: UserData | None,
    *,
    settings: Settings,
    progress: bool,
) -> PreparedData:
    """The annotations to send: the synthetic world's, or the user's, converted and checked
    (`demo.userdata`) before the broker starts."""
    if data is None:
        generated = _generate(folder, plan)
        return PreparedData(generated, plan.annotations, 0, None)
    return prepare_user_data(
        data,
        folder,
        table=ClassTable.load(settings.classes),
        to_rgb=settings.images.rule(),
        imgsz=plan.imgsz,
        tiled=settings.dataset.tiles != "off" and settings.infer.tiles != "off",
        progress=progress,
    )


def _generate(folder: Path, plan: DemoPlan) -> AnnotationDir:
    from azaion_training.demo.world import write_annotations

    target = AnnotationDir(folder)
    target.create()
    write_annotations(
        target,
        plan.annotations,
        seed=plan.seed,
        width=plan.image_size,
        height=plan.image_size,
        prefix="scene",
        objects=plan.objects,
        object_side=None if plan.object_side is None else (plan.object_side, plan.object_side),
    )
    return target


def _augment(settings: Settings, tree: DataTree, *, progress: bool) -> int:
    from azaion_training.augment import augment_tree

    summary = augment_tree(
        tree,
        settings.augment,
        once=True,
        stop=threading.Event(),
        progress=progress,
        to_rgb=settings.images.rule(),
    )
    if summary is None or summary.failed or summary.corrupted:
        raise TrainingError(f"augmentation did not make every sample: {summary}")
    return _count(tree.data_processed)


def _train(settings: Settings, tree: DataTree, *, progress: bool) -> TrainResult:
    from azaion_training.train.console import epoch_line
    from azaion_training.train.job import train

    callbacks = {"on_fit_epoch_end": [epoch_line(sys.stderr)]} if progress else {}
    result = train(settings, tree, publish=True, progress=progress, callbacks=callbacks)
    logger.debug("training summary\n%s", result.summary())
    return result


def _fetch_verified(settings: Settings, tree: DataTree, onnx: Path) -> bytes:
    from azaion_training.store.models import fetch_model

    model = fetch_model(settings, tree, MODEL_NAME)
    if model != onnx.read_bytes():
        raise TrainingError(f"the model fetched from the store differs from {onnx}")
    return model


def _infer(
    settings: Settings,
    model: bytes,
    folder: Path,
    *,
    plan: DemoPlan,
    video: Path | None,
    progress: bool,
) -> VideoOutcome:
    from azaion_training.demo.world import write_video
    from azaion_training.infer import infer_video, load_engine

    truths: list[list[Box]] | None = None
    if video is None:
        width, height = plan.video_size
        video = folder / "video.mp4"
        side = plan.video_object_side
        truths = write_video(
            video,
            frames=plan.video_frames,
            width=width,
            height=height,
            seed=plan.video_seed,
            objects=None if side is None else (30, 80),
            object_side=None if side is None else (side, side),
        )
    found: Found = []
    out = folder / "inference"
    engine = load_engine(model, kind="onnx")
    try:
        summary = infer_video(
            video,
            engine,
            out,
            settings=settings.infer,
            progress=progress,
            on_result=collector(found),
        )
    finally:
        engine.close()
    if truths is None:
        return VideoOutcome(summary, out, recall=None, precision=None, found=found, video=video)
    width, height = plan.video_size
    recall, precision = video_scores(found, truths, width=width, height=height)
    return VideoOutcome(summary, out, recall, precision, found=found, truths=truths, video=video)


def _video_stills(outcome: VideoOutcome, annotated: Path, classes: ClassTable) -> list[bytes]:
    """Truth beside detections when the video's truth is known, else the annotated video."""
    if outcome.truths is None or outcome.video is None:
        return video_frames(annotated, count=_REPORT_FRAMES)
    return truth_and_detections(
        outcome.video, outcome.found, outcome.truths, count=_REPORT_FRAMES, classes=classes
    )


@dataclass(frozen=True)
class HeldOut:
    """The model as deployed, scored on the full frames of the user's test split."""

    split: str
    frames: int
    map50: float | None
    map50_95: float | None
    classes: dict[str, float | None]

    @property
    def line(self) -> str:
        if self.map50 is None:
            return f"{self.split} split: {self.frames} frames, no true box to score against"
        per_class = ", ".join(
            f"{name} {ap:.2f}" for name, ap in self.classes.items() if ap is not None
        )
        return (
            f"{self.split} split, {self.frames} full frames, ONNX model as deployed: mAP50 "
            f"{self.map50:.3f}, mAP50-95 {_f(self.map50_95)} ({per_class})"
        )


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _score_held_out(
    settings: Settings, model: bytes, trained: TrainResult, *, progress: bool
) -> HeldOut:
    """Scores the fetched model on the dataset's test split (valid when there is none) with
    the deployed-path evaluator (`azaion_training.evaluate`)."""
    from azaion_training.evaluate.run import evaluate_model
    from azaion_training.infer import load_engine
    from azaion_training.infer.tiles import TilePlan

    dataset = trained.data_yaml.parent
    split = "test" if _count(AnnotationDir(dataset / "test")) else "valid"
    engine = load_engine(model, kind="onnx")
    try:
        evaluation = evaluate_model(
            engine,
            dataset / split,
            conf=settings.infer.conf,
            iou=settings.infer.iou,
            model=MODEL_NAME,
            score_conf=settings.evaluate.score_conf,
            batch=settings.infer.batch,
            tiles=TilePlan.from_settings(settings.infer),
            classes=ClassTable.load(settings.classes),
            progress=progress,
        )
    finally:
        engine.close()
    scores = evaluation.scores
    classes = {c.name: c.map50 for c in scores.classes}
    return HeldOut(split, scores.images, scores.map50, scores.map50_95, classes)


def _samples_grid(settings: Settings, tree: DataTree, path: Path, *, seed: int) -> Path:
    from azaion_training.visualise.grid import grid_figure
    from azaion_training.visualise.render import save_figure
    from azaion_training.visualise.source import list_images, pick

    items = pick(list_images(tree.data_processed), n=16, seed=seed)
    table = ClassTable.load(settings.classes)
    figure = grid_figure(items, table, cell_px=200, title="augmented samples")
    return save_figure(figure, path)


def prepare_root(root: Path, *, clean: bool) -> None:
    """Makes ``root`` ready for a demo: empty, or (with ``clean``) a previous demo removed.

    Raises:
        ConfigError: ``root`` holds something, and ``clean`` is off or it is not a demo.
    """
    if not root.exists() or not any(root.iterdir()):
        return
    if not clean:
        raise ConfigError(f"{root} is not empty: pass --clean to replace the previous demo there")
    if not (root / DEMO_FOLDER).is_dir():
        raise ConfigError(f"{root} does not hold a previous demo; refusing to delete it")
    shutil.rmtree(root)


def _count(folder: AnnotationDir) -> int:
    return sum(1 for p in folder.labels.glob("*.txt") if not is_temporary(p))


def _map(result: TrainResult, split: str, attribute: Literal["map50", "map50_95"]) -> float:
    value = getattr(result.metrics.get(split), attribute, None)  # as deployed; None: no objects
    return float(value) if value is not None else float("nan")


def _class_ap(result: TrainResult, split: str) -> dict[str, float]:
    metrics = result.metrics.get(split)
    classes = metrics.classes if metrics is not None else ()
    return {c.name: c.map50 for c in classes if c.map50 is not None}
