"""One entry for every export format, as ``azaion-export`` (and training) call it.

`export_model` writes into the models folder of the data tree (beside the current model) unless
another folder is given. The names are fixed: ``azaion.onnx``,
``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine`` and ``azaion.{platform}.rknn``.
Calibration and check images come from ``data`` or, without it, from the newest formed dataset.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azaion_training.config import ExportSettings, Settings
from azaion_training.errors import ExportError
from azaion_training.fs import DataTree
from azaion_training.registry import Option, option_values, resolve

if TYPE_CHECKING:
    from azaion_training.store.models import PublishedModel

logger = logging.getLogger(__name__)

RKNN_BATCH = 1
"""The board runs one image per inference; this is also what `RknnEngine` assumes for a model
without its metadata file (one fetched from the store), so the store's ``.rknn`` runs as is."""


@dataclass(frozen=True)
class ExportResult:
    """What an export produced, with a one-line description for the console."""

    path: Path
    summary: str


@dataclass(frozen=True)
class ExportJob:
    """Everything an exporter is given.

    Attributes:
        weights: the trained ``.pt``.
        folder: the folder to write into.
        settings: image size, batch, precision, calibration size, RKNN environment and platform.
        tree: the data tree (its datasets, for calibration images).
        data: a dataset (or image folder) for INT8 calibration and the RKNN check.
        options: the value of every option of the format (`ExportFormat.options`).
    """

    weights: Path
    folder: Path
    settings: ExportSettings
    tree: DataTree
    data: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def dataset(self, why: str) -> Path:
        """``data``, else the newest formed dataset.

        Raises:
            ExportError: there is neither.
        """
        dataset = self.data if self.data is not None else self.tree.newest_dataset()
        if dataset is None:
            raise ExportError(
                f"{why} needs images: pass --data DATASET (none in {self.tree.datasets})"
            )
        return dataset


Exporter = Callable[[ExportJob], ExportResult]
"""One export format: writes its file into ``job.folder`` and says what it wrote."""


@dataclass(frozen=True)
class ExportFormat:
    """One row of `EXPORT_FORMATS`.

    Attributes:
        name: ``azaion-export --format NAME``; also the engine kind that runs the file
            (`azaion_training.infer.load.ENGINES`).
        exporter: its `Exporter`, as ``"module:function"``, imported when used.
        writes: the file it writes, for ``--help``.
        help: one line on what it is.
        options: the options only this format takes (`ExportJob.options`).
        settings: the ``export.*`` settings it reads besides ``imgsz`` and ``batch`` (``--help``
            of those options names the formats that read them).
    """

    name: str
    exporter: str
    writes: str
    help: str
    options: tuple[Option, ...] = ()
    settings: tuple[str, ...] = ()


def image_count(text: str) -> int:
    """A number of images (0 or more), as an option's type."""
    value = int(text)
    if value < 0:
        raise ValueError(f"must be at least 0, got {value}")
    return value


VERIFY = Option(
    "verify",
    "run the toolkit's simulator on N images of --data and fail unless its boxes agree with "
    "ONNX Runtime's",
    type=image_count,
    default=0,
    metavar="N",
)
FORCE = Option("force", "rebuild even if a matching engine exists", default=False)

EXPORT_FORMATS: dict[str, ExportFormat] = {
    row.name: row
    for row in (
        ExportFormat("onnx", f"{__name__}:export_onnx_job", "azaion.onnx", "NMS in the graph"),
        ExportFormat(
            "engine",
            f"{__name__}:export_engine_job",
            "azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine",
            "a TensorRT engine for the GPU in hand, reused while its build record matches",
            options=(FORCE,),
            settings=("half", "int8", "calibration_images", "workspace_fraction"),
        ),
        ExportFormat(
            "rknn",
            f"{__name__}:export_rknn_job",
            "azaion.{platform}.rknn",
            "built in the RKNN toolkit's own environment (scripts/setup_rknn.sh)",
            options=(VERIFY,),
            settings=("int8", "calibration_images", "rknn_venv", "rknn_platform"),
        ),
    )
}
"""Export format -> its row. ``engine`` is a TensorRT engine, the same name as the engine kind
that runs it (`azaion_training.infer.load.ENGINES`)."""


def export_model(
    weights: Path,
    fmt: str,
    *,
    settings: ExportSettings,
    tree: DataTree,
    out: Path | None = None,
    data: Path | None = None,
    **options: Any,
) -> ExportResult:
    """Exports ``weights`` to ``fmt`` with the export settings.

    Args:
        weights: the trained ``.pt``.
        fmt: a key of `EXPORT_FORMATS`: ``onnx``, ``engine`` or ``rknn``.
        settings: image size, batch, precision, calibration size, RKNN environment and platform.
        tree: the data tree (its models folder and datasets).
        out: the folder to write into; the models folder when ``None``.
        data: a dataset (or image folder) for INT8 calibration and the RKNN check.
        options: options of the format (``verify=`` for rknn, ``force=`` for engine); ``None``
            is not given.

    Raises:
        ExportError: the format is unknown, takes no such option, or the export fails.
        DatasetError: calibration images are needed and none are found.
    """
    row = EXPORT_FORMATS.get(fmt)
    if row is None:
        known = ", ".join(EXPORT_FORMATS)
        raise ExportError(f"unknown export format {fmt!r} (choose from {known})")
    try:
        values = option_values(fmt, row.options, options, what="export format")
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
    if not weights.is_file():
        raise ExportError(f"weights {weights} do not exist")
    folder = out if out is not None else tree.models
    job = ExportJob(weights, folder, settings, tree, data=data, options=values)
    exporter: Exporter = resolve(row.exporter)
    return exporter(job)


def publish_export(settings: Settings, tree: DataTree, path: Path) -> PublishedModel:
    """Hands an exported model to the model store, under its file name.

    Raises:
        StoreError, ApiError, CdnError: the store refused or could not be reached.
    """
    from azaion_training.store.models import publish_file

    return publish_file(settings, tree, path)


def export_onnx_job(job: ExportJob) -> ExportResult:
    """``azaion.onnx``: NMS in the graph, ``[batch, 300, 6]``."""
    from azaion_training.export.onnx import export_onnx

    settings = job.settings
    path = export_onnx(
        job.weights, job.folder / "azaion.onnx", imgsz=settings.imgsz, batch=settings.batch
    )
    return ExportResult(
        path, f"ONNX, NMS in the graph, imgsz {settings.imgsz}, batch {settings.batch}"
    )


def export_engine_job(job: ExportJob) -> ExportResult:
    """``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine``: TensorRT, for the GPU in hand."""
    from azaion_training.export.sample import form_data_sample
    from azaion_training.export.tensorrt import check_tensorrt_available, export_engine

    settings = job.settings
    check_tensorrt_available()
    calibration = []
    if settings.int8:
        dataset = job.dataset("INT8 calibration")
        calibration = form_data_sample(dataset, settings.calibration_images)
    result = export_engine(
        job.weights,
        job.folder,
        imgsz=settings.imgsz,
        batch=settings.batch,
        half=settings.half,
        int8=settings.int8,
        calibration=calibration,
        workspace_fraction=settings.workspace_fraction,
        force=job.options["force"],
    )
    return ExportResult(result.path, result.summary)


def export_rknn_job(job: ExportJob) -> ExportResult:
    """``azaion.{platform}.rknn``, built in the RKNN toolkit's own environment."""
    from azaion_training.export.rknn import export_rknn
    from azaion_training.export.sample import form_data_sample, write_sample_list

    settings, verify = job.settings, job.options["verify"]
    platform = settings.rknn_platform
    if settings.batch != RKNN_BATCH:
        logger.info(
            "RKNN models are exported with batch %d; batch %d is for ONNX and TensorRT",
            RKNN_BATCH,
            settings.batch,
        )
    check_images = []
    if verify:
        check_images = form_data_sample(job.dataset("the simulator check"), verify, seed=1)
    with tempfile.TemporaryDirectory(prefix="azaion-rknn-") as work:
        sample_list = None
        if settings.int8:
            dataset = job.dataset("INT8 quantisation")
            sample = form_data_sample(dataset, settings.calibration_images)
            sample_list = write_sample_list(sample, Path(work) / "dataset.txt")
        result = export_rknn(
            job.weights,
            job.folder / f"azaion.{platform}.rknn",
            imgsz=settings.imgsz,
            batch=RKNN_BATCH,
            platform=platform,
            dataset=sample_list,
            venv=settings.rknn_venv,
            verify=check_images,
        )
    precision = "INT8" if settings.int8 else "FP16"
    summary = f"RKNN {platform}, {precision}, batch {RKNN_BATCH}, rknn-toolkit2 {result.toolkit}"
    if result.agreement is not None:
        summary += f"; simulator agrees with ONNX Runtime on {verify} images: {result.agreement}"
    return ExportResult(result.path, summary)
