"""Training: a dated dataset in, ``models/azaion.pt`` and ``models/azaion.onnx`` out.

`train` runs the whole job of ``azaion-train``:

1. the dataset: formed from ``data-processed/`` (`azaion_training.dataset.form_dataset`), or
   an existing one (``dataset=``), or, on resume, the one the run was started with;
2. Ultralytics training with every parameter from ``settings.training`` into the run folder
   ``models/azaion-{date}`` (``.2``, ``.3``, ... when that day already has a run); multi-GPU
   through Ultralytics' own DDP (``device="0,1"``);
3. ``best.pt`` copied atomically to ``models/azaion.pt``; ONNX export with NMS in the graph
   (``[batch, 300, 6]``, `azaion_training.export.onnx.export_onnx`) to ``models/azaion.onnx``;
4. `publish_model` (the hook the model store fills);
5. mAP50 and mAP50-95, overall and per class, on the valid and test splits (`evaluate`);
6. ``report.html`` in the run folder (`azaion_training.train.report`).

Resuming (`prepare_resume`) continues the latest run from its ``last.pt``. Ultralytics takes the
epoch count from the checkpoint and ignores a new one, so to raise it the checkpoint's
``train_args["epochs"]`` is rewritten first. A finished run's ``last.pt`` has its optimizer
stripped and cannot resume; with ``save_period=1`` its newest ``epoch{N}.pt`` still can.

Nothing here reaches the network. Ultralytics would otherwise download a font for its plots
(`provide_plot_fonts` gives it matplotlib's DejaVu Sans under the names it looks for) and
``yolo26n.pt`` for its AMP check on a GPU (`OfflineDetectionTrainer` skips that download). The
console script also sets ``YOLO_OFFLINE=1`` before Ultralytics is imported, which stops its
connectivity probe and telemetry.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from azaion_training.config import Settings
from azaion_training.dataset.formation import (
    DATA_YAML,
    FormedDataset,
    SplitCounts,
    count_dataset,
    form_dataset,
)
from azaion_training.errors import AzaionError, ConfigError, DatasetError, TrainingError
from azaion_training.export.onnx import export_onnx
from azaion_training.fs import DataTree, atomic_writer, free_dir
from azaion_training.train.report import write_report

logger = logging.getLogger(__name__)

_RESERVED_EXTRA = frozenset({"data", "project", "name", "exist_ok", "resume", "trainer", "mode"})
_EPOCH_CHECKPOINT = re.compile(r"^epoch(\d+)\.pt$")
_PLOT_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
_FALLBACK_FONT = "DejaVuSans.ttf"
_SPLIT_KEYS = {"valid": "val", "test": "test"}

Callback = Callable[[Any], None]
"""An Ultralytics callback: called with the trainer."""


@dataclass(frozen=True)
class ClassMetrics:
    """Scores of one class on one split."""

    class_id: int
    name: str
    instances: int
    map50: float
    map50_95: float


@dataclass(frozen=True)
class SplitMetrics:
    """Scores of a model on one dataset split.

    Attributes:
        split: ``valid`` or ``test``.
        map50: mean AP at IoU 0.5 over the classes present.
        map50_95: mean AP over IoU 0.5..0.95.
        classes: one row per class present in the split.
        plots_dir: where Ultralytics' validator left its plots (PR curves, confusion matrix).
    """

    split: str
    map50: float
    map50_95: float
    classes: tuple[ClassMetrics, ...]
    plots_dir: Path


@dataclass(frozen=True)
class TrainResult:
    """What a training job produced.

    Attributes:
        run_dir: the Ultralytics run folder (``models/azaion-{date}``).
        data_yaml: the dataset trained on.
        counts: samples per split of that dataset.
        best / last: the run's checkpoints.
        model_pt / model_onnx: the current model (``models/azaion.pt`` / ``.onnx``).
        metrics: per split (``valid``, and ``test`` when the dataset has one).
        plots: the PNG files of the run folder (training curves, labels, validation plots).
        published: whether the model was published to the store.
        formed: the formation result when this job formed the dataset.
    """

    run_dir: Path
    data_yaml: Path
    counts: Mapping[str, SplitCounts]
    best: Path
    last: Path
    model_pt: Path
    model_onnx: Path
    metrics: Mapping[str, SplitMetrics]
    plots: tuple[Path, ...]
    published: bool
    formed: FormedDataset | None = field(default=None, repr=False)

    def summary(self) -> str:
        """A readable multi-line report: dataset, metrics per class, files."""
        lines = [f"dataset {self.data_yaml.parent}"]
        lines += [
            f"  {name:<6} {c.samples:>8} samples  {c.sources:>7} sources"
            for name, c in self.counts.items()
        ]
        for metrics in self.metrics.values():
            lines.append(
                f"{metrics.split}: mAP50 {metrics.map50:.4f}  mAP50-95 {metrics.map50_95:.4f}"
            )
            lines.append(f"  {'class':<28} {'instances':>9} {'mAP50':>7} {'mAP50-95':>8}")
            lines += [
                f"  {c.name:<28} {c.instances:>9} {c.map50:>7.4f} {c.map50_95:>8.4f}"
                for c in metrics.classes
            ]
        lines += [
            f"run       {self.run_dir}",
            f"best      {self.best}",
            f"model     {self.model_pt}",
            f"onnx      {self.model_onnx}",
            *(f"plots     {folder}" for folder in sorted({p.parent for p in self.plots})),
            f"published {'yes' if self.published else 'no'}",
        ]
        return "\n".join(lines)


def train(
    settings: Settings,
    tree: DataTree,
    *,
    dataset: Path | None = None,
    resume: bool = False,
    resume_epochs: int | None = None,
    publish: bool = True,
    date: dt.date | None = None,
    callbacks: Mapping[str, Sequence[Callback]] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Forms the dataset, trains, installs and exports the model, publishes it, and scores it.

    Args:
        settings: ``training`` (Ultralytics parameters), ``dataset`` and ``augment`` (formation),
            ``export`` (ONNX image size and batch).
        tree: the data tree.
        dataset: train on this dataset (its folder or its ``data.yaml``) instead of forming one.
        resume: continue the latest run (`prepare_resume`); only ``device`` and ``workers`` are
            taken from the settings then, everything else from the run's checkpoint.
        resume_epochs: with ``resume``, train up to this many epochs in total (may be higher than
            the run's own count).
        publish: call `publish_model` after the export.
        date: the date in the dataset and run folder names; today when ``None``.
        callbacks: Ultralytics callbacks to add, by event name (``"on_fit_epoch_end"``, ...).
        progress: show progress bars.

    Raises:
        ConfigError: ``training.extra`` repeats or overrides a parameter set elsewhere.
        DatasetError: the dataset cannot be formed or found.
        TrainingError: training failed or left no ``best.pt``.
        ExportError: the ONNX export failed.
    """
    date = date or dt.date.today()
    if resume:
        point = prepare_resume(latest_run(tree), epochs=resume_epochs)
        formed, data_yaml = None, _find_data_yaml(dataset or _trained_on(point))
        arguments = _resume_arguments(settings, last=point.last, data_yaml=data_yaml)
        weights = str(point.last)
    else:
        formed, data_yaml = _dataset_for(
            settings, tree, dataset=dataset, date=date, progress=progress
        )
        run_dir = free_dir(tree.run_dir(date))
        arguments = training_arguments(settings, data_yaml=data_yaml, run_dir=run_dir)
        weights = settings.training.model
    run_dir = _run_ultralytics(weights, arguments, callbacks=callbacks or {})
    best, last = run_dir / "weights" / "best.pt", run_dir / "weights" / "last.pt"
    if not best.is_file():
        raise TrainingError(f"training finished without {best}")
    install_model(best, tree.current_model_pt)
    export_onnx(
        tree.current_model_pt,
        tree.current_model_onnx,
        imgsz=settings.export.imgsz,
        batch=settings.export.batch,
        nms=True,
        device=_first_device(settings.training.device),
    )
    published = publish_model(settings, tree, model=tree.current_model_onnx) if publish else False
    if not publish:
        logger.info("publishing skipped (--no-publish)")
    metrics = {
        split: evaluate(best, data_yaml, split=split, settings=settings, out=run_dir)
        for split in _evaluable_splits(data_yaml)
    }
    result = TrainResult(
        run_dir=run_dir,
        data_yaml=data_yaml,
        counts=formed.counts
        if formed
        else count_dataset(data_yaml.parent, variants=settings.augment.variants),
        best=best,
        last=last,
        model_pt=tree.current_model_pt,
        model_onnx=tree.current_model_onnx,
        metrics=metrics,
        plots=tuple(sorted(run_dir.rglob("*.png"))),
        published=published,
        formed=formed,
    )
    write_report(result)
    return result


def publish_model(settings: Settings, tree: DataTree, *, model: Path) -> bool:
    """Publishes the exported model to the model store (SPEC section 10), under its file name.

    The store is the API + CDN when ``api.url`` is set, else the embedded local store. What is
    published is the ONNX, the form every inference machine starts from (TensorRT engines are
    built from it on the machine that runs them).

    Returns:
        True (the model was published); errors raise.

    Raises:
        StoreError, ApiError, CdnError: the store refused or could not be reached.
    """
    from azaion_training.store.models import publish_file

    publish_file(settings, tree, model)  # the store logs what it published, and where
    return True


def training_arguments(settings: Settings, *, data_yaml: Path, run_dir: Path) -> dict[str, Any]:
    """The keyword arguments of ``YOLO.train`` for a new run, all from ``settings.training``.

    Raises:
        ConfigError: ``training.extra`` names a parameter that is set elsewhere.
    """
    training = settings.training
    arguments: dict[str, Any] = {
        "data": str(data_yaml),
        "epochs": training.epochs,
        "batch": training.batch,
        "imgsz": training.imgsz,
        "save_period": training.save_period,
        "device": training.device,
        "workers": training.workers,
        "patience": training.patience,
        "amp": training.amp,
        "plots": training.plots,
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
    }
    clashes = sorted(set(training.extra) & (set(arguments) | _RESERVED_EXTRA))
    if clashes:
        raise ConfigError(
            f"training.extra sets {', '.join(clashes)}, which azaion-train sets itself; "
            "use the training.* settings or the command-line options instead"
        )
    return {**arguments, **training.extra}


def latest_run(tree: DataTree) -> Path:
    """The run folder under ``models/`` whose ``weights/last.pt`` was written last.

    Raises:
        TrainingError: no run has a ``last.pt``.
    """
    candidates = [
        path
        for path in tree.models.glob("azaion-*")
        if path.is_dir() and (path / "weights" / "last.pt").is_file()
    ]
    if not candidates:
        raise TrainingError(f"no run with weights/last.pt under {tree.models} to resume")
    return max(candidates, key=lambda p: (p / "weights" / "last.pt").stat().st_mtime)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues: its ``last.pt``, the epochs done and planned, its dataset."""

    last: Path
    done: int
    epochs: int
    data: str | None


def prepare_resume(run_dir: Path, *, epochs: int | None = None) -> ResumePoint:
    """Makes ``run_dir/weights/last.pt`` resumable, up to ``epochs`` in total if given.

    An interrupted run's ``last.pt`` resumes as it is. A finished run's ``last.pt`` has lost its
    optimizer, so its newest ``epoch{N}.pt`` (``save_period``) is taken instead. When ``epochs``
    differs from the checkpoint's own count, ``train_args["epochs"]`` is rewritten (Ultralytics
    takes the epoch count from there and ignores a new one on resume). The result is written
    atomically to ``last.pt``.

    Returns:
        The resume point (``last.pt`` and the epochs done / to do).

    Raises:
        TrainingError: nothing resumable, or ``epochs`` is not above the epochs already done.
    """
    import torch

    weights = run_dir / "weights"
    last = weights / "last.pt"
    checkpoint = _load_checkpoint(last)
    source = last
    if checkpoint.get("epoch", -1) < 0 or checkpoint.get("optimizer") is None:
        source = _newest_epoch_checkpoint(weights)
        checkpoint = _load_checkpoint(source)
    done = int(checkpoint["epoch"]) + 1
    planned = int(checkpoint["train_args"]["epochs"])
    target = planned if epochs is None else epochs
    if target <= done:
        raise TrainingError(
            f"{run_dir.name} has trained {done} of {planned} epochs; "
            f"pass a higher epoch count (--epochs N, N > {done}) to continue it"
        )
    if source != last or target != planned:
        checkpoint["train_args"]["epochs"] = target
        with atomic_writer(last) as handle:
            torch.save(checkpoint, handle)
    logger.info("resuming %s after epoch %d of %d (from %s)", run_dir, done, target, source.name)
    data = checkpoint["train_args"].get("data")
    return ResumePoint(last=last, done=done, epochs=target, data=data)


def install_model(weights: Path, target: Path) -> Path:
    """Copies ``weights`` to ``target`` atomically (another process may be reading it)."""
    with open(weights, "rb") as source, atomic_writer(target) as handle:
        shutil.copyfileobj(source, handle, length=1 << 20)
    logger.info("installed %s -> %s", weights, target)
    return target


def evaluate(
    weights: Path, data_yaml: Path, *, split: str, settings: Settings, out: Path
) -> SplitMetrics:
    """Scores ``weights`` on one split with Ultralytics' validator, at its training image size.

    Args:
        split: ``valid`` or ``test``.
        out: the run folder; the validator's plots go to ``out/{split}``.

    Raises:
        TrainingError: the validator failed.
    """
    from ultralytics import YOLO

    provide_plot_fonts()
    try:
        results = YOLO(str(weights)).val(
            data=str(data_yaml),
            split=_SPLIT_KEYS[split],
            batch=settings.training.batch,
            device=_first_device(settings.training.device),
            plots=settings.training.plots,
            project=str(out),
            name=split,
            exist_ok=True,
            verbose=False,
        )
    except Exception as exc:  # Ultralytics raises bare Exceptions of many kinds
        raise TrainingError(f"validation of {weights} on {split} failed: {exc}") from exc
    return _split_metrics(results, split=split, plots_dir=out / split)


def provide_plot_fonts() -> None:
    """Gives Ultralytics the fonts it looks for, so it never downloads them.

    Ultralytics draws labels with ``Arial.ttf`` (``Arial.Unicode.ttf`` for other scripts) and
    downloads the file into its settings folder when it is missing. Matplotlib (a dependency)
    ships DejaVu Sans, which covers both; a copy is put under each name once.
    """
    import matplotlib
    from ultralytics.utils import USER_CONFIG_DIR

    fallback = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / _FALLBACK_FONT
    for name in _PLOT_FONTS:
        target = Path(USER_CONFIG_DIR) / name
        if not target.is_file():
            with open(fallback, "rb") as source, atomic_writer(target) as handle:
                shutil.copyfileobj(source, handle)
            logger.debug("plot font %s <- %s", target, fallback)


@functools.cache
def offline_trainer() -> type:
    """`OfflineDetectionTrainer`, built on first use (Ultralytics is imported lazily)."""
    from ultralytics.engine import trainer as engine
    from ultralytics.models.yolo.detect import DetectionTrainer

    class OfflineDetectionTrainer(DetectionTrainer):
        """Ultralytics' detection trainer with an AMP check that never downloads.

        Ultralytics checks AMP on a GPU by comparing ``yolo26n.pt`` in FP32 and FP16, and
        downloads those weights when they are missing. Here the check runs only when the weights
        are already on disk; otherwise ``amp`` stays as set (``training.amp``). On CPU AMP is off
        either way. Being a class (not a patch at import), it also applies in DDP workers, which
        Ultralytics starts from the trainer class.
        """

        def _setup_train(self) -> None:
            original = engine.check_amp
            engine.check_amp = _offline_check_amp(original)
            try:
                super()._setup_train()
            finally:
                engine.check_amp = original

    return OfflineDetectionTrainer


def _offline_check_amp(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check_amp(model: Any) -> bool:
        from ultralytics.utils import WEIGHTS_DIR

        device = next(model.parameters()).device
        if device.type != "cuda" or (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            return bool(original(model))
        logger.info("AMP check skipped (it would download yolo26n.pt); AMP stays on")
        return True

    return check_amp


def _run_ultralytics(
    weights: str, arguments: dict[str, Any], *, callbacks: Mapping[str, Sequence[Callback]]
) -> Path:
    """Trains with Ultralytics; returns the run folder."""
    from ultralytics import YOLO

    provide_plot_fonts()
    try:
        model = YOLO(weights)
        for event, functions in callbacks.items():
            for function in functions:
                model.add_callback(event, function)
        model.train(trainer=offline_trainer(), **arguments)
    except AzaionError:
        raise
    except Exception as exc:  # Ultralytics raises bare Exceptions of many kinds
        raise TrainingError(f"training failed: {exc}") from exc
    trainer = model.trainer
    if trainer is None:
        raise TrainingError("Ultralytics returned without a trainer")
    return Path(trainer.save_dir)


def _dataset_for(
    settings: Settings, tree: DataTree, *, dataset: Path | None, date: dt.date, progress: bool
) -> tuple[FormedDataset | None, Path]:
    """The given dataset's ``data.yaml``, or a newly formed dataset and its ``data.yaml``."""
    if dataset is not None:
        return None, _find_data_yaml(dataset)
    formed = form_dataset(settings, tree, date=date, progress=progress)
    return formed, formed.data_yaml


def _resume_arguments(settings: Settings, *, last: Path, data_yaml: Path) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "resume": str(last),
        "data": str(data_yaml),
        "workers": settings.training.workers,
        "save_dir": str(last.parent.parent),
    }
    if settings.training.device is not None:
        arguments["device"] = settings.training.device
    return arguments


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(checkpoint, dict) or "train_args" not in checkpoint:
        raise TrainingError(f"{path} is not an Ultralytics training checkpoint")
    return checkpoint


def _newest_epoch_checkpoint(weights: Path) -> Path:
    numbered = [
        (int(match[1]), path)
        for path in weights.glob("epoch*.pt")
        if (match := _EPOCH_CHECKPOINT.match(path.name))
    ]
    if not numbered:
        raise TrainingError(
            f"{weights.parent.name} finished and kept no epoch checkpoint (save_period); "
            "start a new run instead"
        )
    return max(numbered)[1]


def _trained_on(point: ResumePoint) -> Path:
    if not point.data:
        raise DatasetError(f"{point.last} does not name its dataset; pass --dataset")
    return Path(point.data)


def _find_data_yaml(dataset: Path) -> Path:
    data_yaml = dataset / DATA_YAML if dataset.is_dir() else dataset
    if not data_yaml.is_file():
        raise DatasetError(f"no dataset at {dataset} (expected a folder with {DATA_YAML})")
    return data_yaml.resolve()


def _evaluable_splits(data_yaml: Path) -> list[str]:
    try:
        content = yaml.safe_load(data_yaml.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"cannot read {data_yaml}: {exc}") from exc
    return [split for split, key in _SPLIT_KEYS.items() if content.get(key)]


def _split_metrics(results: Any, *, split: str, plots_dir: Path) -> SplitMetrics:
    names = results.names
    counts = results.nt_per_class
    classes = []
    for index, class_id in enumerate(results.ap_class_index):
        _, _, ap50, ap = results.class_result(index)
        classes.append(
            ClassMetrics(
                class_id=int(class_id),
                name=str(names[int(class_id)]),
                instances=int(counts[int(class_id)]) if counts is not None else 0,
                map50=float(ap50),
                map50_95=float(ap),
            )
        )
    return SplitMetrics(
        split=split,
        map50=float(results.box.map50),
        map50_95=float(results.box.map),
        classes=tuple(classes),
        plots_dir=plots_dir,
    )


def _first_device(device: str | None) -> str | None:
    """The first of a device list (``"0,1"`` -> ``"0"``), for single-device steps."""
    return device.split(",")[0].strip() if device else None
