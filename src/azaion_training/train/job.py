"""Training: a dated dataset in, a scored model out, installed only if it earns its place.

`train` runs the whole job of ``azaion-train``:

1. the dataset: formed from ``data-processed/`` (`azaion_training.dataset.form_dataset`), or
   an existing one (``dataset=``), or, on resume, the one the run was started with (`resume`);
2. Ultralytics training with every parameter from ``settings.training`` into the run folder
   ``models/azaion-{date}`` (``.2``, ``.3``, ... when that day already has a run); multi-GPU
   through Ultralytics' own DDP (``device="0,1"``);
3. ``best.pt`` exported to ONNX with NMS in the graph (``[batch, 300, 6]``,
   `azaion_training.export.onnx.export_onnx`) and scored as deployed on the valid and test
   splits (`evaluate`, `azaion_training.evaluate`), and the current model as deployed on the
   same test split;
4. the gate (`gate`): only a candidate that is not worse (or ``force``) is copied atomically to
   ``models/azaion.pt``, its ONNX to ``models/azaion.onnx``, and published with its scores;
   either way the run's ``metrics.json`` records both scores, the evaluator's settings and the
   dataset.
5. ``report.html`` in the run folder (`azaion_training.train.report`), with the gate's decision.

Everything Ultralytics-specific (offline patches, error translation) is in `_ultralytics`.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azaion_training._ultralytics import (
    launched_trainer,
    offline_trainer,
    provide_plot_fonts,
    ultralytics_errors,
)
from azaion_training.config import Settings
from azaion_training.dataset.formation import (
    DATA_YAML,
    FormedDataset,
    count_dataset,
    form_dataset,
)
from azaion_training.errors import ConfigError, DatasetError, LabelError, TrainingError
from azaion_training.fs import DataTree, atomic_writer, free_dir
from azaion_training.labels import read_label
from azaion_training.train import distributed, gate
from azaion_training.train.evaluate import (
    current_deployed,
    evaluable_splits,
    export_for_scoring,
    previous_run,
    score,
)
from azaion_training.train.result import TrainResult
from azaion_training.train.resume import (
    latest_run,
    prepare_resume,
    resume_arguments,
    trained_on,
)

if TYPE_CHECKING:
    from azaion_training.store.models import PublishedModel

logger = logging.getLogger(__name__)

_RESERVED_EXTRA = frozenset({"data", "project", "name", "exist_ok", "resume", "trainer", "mode"})

Callback = Callable[[Any], None]
"""An Ultralytics callback: called with the trainer."""


def train(
    settings: Settings,
    tree: DataTree,
    *,
    dataset: Path | None = None,
    resume: bool = False,
    resume_epochs: int | None = None,
    publish: bool = True,
    force: bool = False,
    date: dt.date | None = None,
    callbacks: Mapping[str, Sequence[Callback]] | None = None,
    progress: bool = True,
) -> TrainResult | None:
    """Forms the dataset, trains, scores the candidate against the current model, and installs,
    exports and publishes it only if the gate lets it through.

    Args:
        settings: ``training`` (Ultralytics parameters, gate tolerance), ``dataset`` and
            ``augment`` (formation), ``export`` (ONNX image size and batch).
        tree: the data tree.
        dataset: train on this dataset (its folder or its ``data.yaml``) instead of forming one.
        resume: continue the latest run (`prepare_resume`); only ``device`` and ``workers`` are
            taken from the settings then, everything else from the run's checkpoint.
        resume_epochs: with ``resume``, train up to this many epochs in total (may be higher than
            the run's own count).
        publish: publish the installed model (`publish_model`).
        force: install the candidate even if it scores worse than the current model.
        date: the date in the dataset and run folder names; today when ``None``.
        callbacks: Ultralytics callbacks to add, by event name (``"on_fit_epoch_end"``, ...).
        progress: show progress bars.

    Raises:
        ConfigError: ``training.extra`` repeats or overrides a parameter set elsewhere.
        DatasetError: the dataset cannot be formed or found.
        TrainingError: training or scoring failed, or left no ``best.pt``.
        ExportError: the ONNX export failed.
    """
    date = date or dt.date.today()
    launch = distributed.launched()
    if launch is not None:
        return _train_launched(
            launch,
            settings,
            tree,
            prepare=lambda: _prepare(
                settings,
                tree,
                dataset=dataset,
                resume=resume,
                epochs=resume_epochs,
                date=date,
                progress=progress,
            ),
            finish=lambda run: _finish(
                settings, tree, run, publish=publish, force=force, progress=progress
            ),
            callbacks=callbacks or {},
        )
    run = _prepare(
        settings,
        tree,
        dataset=dataset,
        resume=resume,
        epochs=resume_epochs,
        date=date,
        progress=progress,
    )
    run_dir = _run_ultralytics(run.weights, run.arguments, callbacks=callbacks or {})
    return _finish(
        settings,
        tree,
        replace(run, run_dir=run_dir),
        publish=publish,
        force=force,
        progress=progress,
    )


@dataclass(frozen=True)
class _Run:
    """What a training run starts from (rank 0 makes it; every rank trains from it)."""

    data_yaml: Path
    weights: str
    arguments: dict[str, Any]
    run_dir: Path
    formed: FormedDataset | None = None


def _prepare(
    settings: Settings,
    tree: DataTree,
    *,
    dataset: Path | None,
    resume: bool,
    epochs: int | None,
    date: dt.date,
    progress: bool,
) -> _Run:
    """The dataset (formed, given, or the resumed run's), the run folder and Ultralytics'
    arguments."""
    if resume:
        point = prepare_resume(latest_run(tree), epochs=epochs)
        data_yaml = _find_data_yaml(dataset or trained_on(point))
        arguments = resume_arguments(settings, last=point.last, data_yaml=data_yaml)
        return _Run(data_yaml, str(point.last), arguments, point.last.parent.parent)
    formed, data_yaml = _dataset_for(settings, tree, dataset=dataset, date=date, progress=progress)
    run_dir = free_dir(tree.run_dir(date))
    arguments = training_arguments(settings, data_yaml=data_yaml, run_dir=run_dir)
    return _Run(data_yaml, settings.training.model, arguments, run_dir, formed)


def _train_launched(
    launch: distributed.Launch,
    settings: Settings,
    tree: DataTree,
    *,
    prepare: Callable[[], _Run],
    finish: Callable[[_Run], TrainResult],
    callbacks: Mapping[str, Sequence[Callback]],
) -> TrainResult | None:
    """One rank of a multi-machine run (`azaion_training.train.distributed`): rank 0 prepares
    and, after training, finishes alone; the others train and return ``None``."""
    group = distributed.Group(
        launch,
        timeout=dt.timedelta(minutes=settings.training.rank_timeout_min),
        device=settings.training.device,
    )
    group.start()
    try:
        mine: list[_Run] = []
        shared = group.agree(lambda: _shareable(mine, prepare()))
        digest = shared.pop("digest")
        run = mine[0] if mine else _Run(**shared)
        distributed.check_dataset(run.data_yaml, digest, rank=launch.rank)
        arguments = {**run.arguments, "device": group.trainer_device()}
        run_dir = _run_ultralytics(
            run.weights, arguments, callbacks=callbacks, trainer=launched_trainer()
        )
        if not launch.leader:
            return None
        group.alone()
        return finish(replace(run, run_dir=run_dir))
    finally:
        group.close()


def _shareable(mine: list[_Run], run: _Run) -> dict[str, Any]:
    """``run`` as rank 0 sends it to the others (its formation result stays here)."""
    mine.append(run)
    return {
        "data_yaml": run.data_yaml,
        "weights": run.weights,
        "arguments": run.arguments,
        "run_dir": run.run_dir,
        "digest": distributed.dataset_digest(run.data_yaml),
    }


def _finish(
    settings: Settings, tree: DataTree, run: _Run, *, publish: bool, force: bool, progress: bool
) -> TrainResult:
    """Scores, gates, installs, exports and publishes what the run trained (rank 0 alone)."""
    run_dir, data_yaml, formed = run.run_dir, run.data_yaml, run.formed
    best, last = run_dir / "weights" / "best.pt", run_dir / "weights" / "last.pt"
    if not best.is_file():
        raise TrainingError(f"training finished without {best}")
    candidate_onnx = export_for_scoring(best, run_dir / "weights" / "best.onnx", settings)
    evaluations = {
        split: score(candidate_onnx, data_yaml.parent / split, settings, tree, progress=progress)
        for split in evaluable_splits(data_yaml)
    }
    metrics = {split: evaluation.scores for split, evaluation in evaluations.items()}
    split = "test" if "test" in metrics else "valid"
    current_onnx = current_deployed(tree, run_dir, settings)
    current = None
    if current_onnx is not None:
        split_dir = data_yaml.parent / split
        current = score(current_onnx, split_dir, settings, tree, progress=progress).scores
    decision = gate.decide(
        split=split,
        candidate=metrics[split],
        current=current,
        tolerance=settings.training.gate_tolerance,
        force=force,
        settings=settings.evaluate,
    )
    logger.info("gate: %s", decision.reason)
    identity = gate.dataset_identity(data_yaml)
    metrics_json = gate.write_metrics(
        run_dir, decision=decision, candidate=metrics, current=current, dataset=identity
    )
    published = False
    if decision.install:
        install_model(best, tree.current_model_pt)
        install_model(candidate_onnx, tree.current_model_onnx)
        if publish:
            metadata = gate.store_metadata(decision, identity, metrics[split], current)
            publish_model(settings, tree, model=tree.current_model_onnx, metadata=metadata)
            published = True
        else:
            logger.info("publishing skipped (--no-publish)")
    return TrainResult(
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
        decision=decision,
        current_metrics=current,
        metrics_json=metrics_json,
        formed=formed,
        candidate_onnx=candidate_onnx,
        frames=evaluations[split].frames,
        previous_run=previous_run(tree, run_dir),
    )


def publish_model(
    settings: Settings, tree: DataTree, *, model: Path, metadata: Mapping[str, Any] | None = None
) -> PublishedModel:
    """Publishes the exported model to the model store (SPEC section 10), under its file name.

    The store is the API + CDN when ``api.url`` is set, else the embedded local store. What is
    published is the ONNX, the form every inference machine starts from (TensorRT engines are
    built from it on the machine that runs them). ``metadata`` (the scores and the dataset) is
    kept in the store's record of the model.

    Returns:
        What the store recorded (name, where, size); errors raise.

    Raises:
        StoreError, ApiError, CdnError: the store refused or could not be reached.
    """
    from azaion_training.store.models import publish_file

    return publish_file(settings, tree, model, metadata=metadata)  # the store logs it too


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


def install_model(weights: Path, target: Path) -> Path:
    """Copies ``weights`` to ``target`` atomically (another process may be reading it)."""
    with open(weights, "rb") as source, atomic_writer(target) as handle:
        shutil.copyfileobj(source, handle, length=1 << 20)
    logger.info("installed %s -> %s", weights, target)
    return target


def _run_ultralytics(
    weights: str,
    arguments: dict[str, Any],
    *,
    callbacks: Mapping[str, Sequence[Callback]],
    trainer: type | None = None,
) -> Path:
    """Trains with Ultralytics (``trainer``: the offline one by default); returns the run
    folder."""
    from ultralytics import YOLO

    provide_plot_fonts()
    with ultralytics_errors(TrainingError, "training failed"):
        model = YOLO(weights)
        for event, functions in callbacks.items():
            for function in functions:
                model.add_callback(event, function)
        model.train(trainer=trainer or offline_trainer(), **arguments)
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
    check_objects(formed.path)
    return formed, formed.data_yaml


def check_objects(dataset: Path) -> None:
    """Checks, before any training, that the train and valid splits (and a test split that has
    images) hold at least one box.

    Raises:
        DatasetError: a split without a box, in one line with what to try.
    """
    remedies = {
        "train": "nothing to learn: check the labels in data/ (azaion-visualise data) and the "
        "class map of the conversion",
        "valid": "its scores would mean nothing: add annotations, or raise dataset.valid_ratio",
        "test": "the gate would compare nothing: add annotations, or raise dataset.test_ratio",
    }
    for split, remedy in remedies.items():
        labels = dataset / split / "labels"
        if split == "test" and not any((dataset / split / "images").glob("*")):
            continue
        if not any(_has_box(path) for path in labels.glob("*.txt")):
            raise DatasetError(f"the {split} split of {dataset} holds no box; {remedy}")


def _has_box(label: Path) -> bool:
    try:
        return label.stat().st_size > 0 and bool(read_label(label))
    except (OSError, LabelError):
        return False


def _find_data_yaml(dataset: Path) -> Path:
    data_yaml = dataset / DATA_YAML if dataset.is_dir() else dataset
    if not data_yaml.is_file():
        raise DatasetError(f"no dataset at {dataset} (expected a folder with {DATA_YAML})")
    return data_yaml.resolve()
