"""One entry for every export format, as ``azaion-export`` (and training) call it.

`export_model` writes into the models folder of the data tree (beside the current model) unless
another folder is given. The names are fixed: ``azaion.onnx``,
``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine`` and ``azaion.{platform}.rknn``.
Calibration and check images come from ``data`` or, without it, from the newest formed dataset.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azaion_training.config import ExportSettings, Settings
from azaion_training.errors import ExportError
from azaion_training.fs import DataTree

if TYPE_CHECKING:
    from azaion_training.store.models import PublishedModel

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "engine", "rknn")

RKNN_BATCH = 1
"""The board runs one image per inference; this is also what `RknnEngine` assumes for a model
without its metadata file (one fetched from the store), so the store's ``.rknn`` runs as is."""


@dataclass(frozen=True)
class ExportResult:
    """What `export_model` produced, with a one-line description for the console."""

    path: Path
    summary: str


def export_model(
    weights: Path,
    fmt: str,
    *,
    settings: ExportSettings,
    tree: DataTree,
    out: Path | None = None,
    data: Path | None = None,
    verify: int = 0,
    force: bool = False,
) -> ExportResult:
    """Exports ``weights`` to ``fmt`` with the export settings.

    Args:
        weights: the trained ``.pt``.
        fmt: ``onnx``, ``engine`` or ``rknn``.
        settings: image size, batch, precision, calibration size, RKNN environment and platform.
        tree: the data tree (its models folder and datasets).
        out: the folder to write into; the models folder when ``None``.
        data: a dataset (or image folder) for INT8 calibration and the RKNN check.
        verify: RKNN only: run the simulator on this many images and compare with ONNX Runtime.
        force: TensorRT only: rebuild even when a matching engine exists.

    Raises:
        ExportError: the format is unknown or the export fails.
        DatasetError: calibration images are needed and none are found.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not weights.is_file():
        raise ExportError(f"weights {weights} do not exist")
    folder = out if out is not None else tree.models
    if fmt == "onnx":
        return _export_onnx(weights, folder, settings)
    if fmt == "engine":
        return _export_engine(weights, folder, settings, tree=tree, data=data, force=force)
    return _export_rknn(weights, folder, settings, tree=tree, data=data, verify=verify)


def publish_export(settings: Settings, tree: DataTree, path: Path) -> PublishedModel:
    """Hands an exported model to the model store, under its file name.

    Raises:
        StoreError, ApiError, CdnError: the store refused or could not be reached.
    """
    from azaion_training.store.models import publish_file

    return publish_file(settings, tree, path)


def newest_dataset(tree: DataTree) -> Path | None:
    """The newest ``datasets/azaion-{date}`` folder, or ``None``."""
    formed = sorted(p for p in tree.datasets.glob("azaion-*") if p.is_dir())
    return formed[-1] if formed else None


def _dataset(tree: DataTree, data: Path | None, why: str) -> Path:
    dataset = data if data is not None else newest_dataset(tree)
    if dataset is None:
        raise ExportError(f"{why} needs images: pass --data DATASET (none in {tree.datasets})")
    return dataset


def _export_onnx(weights: Path, folder: Path, settings: ExportSettings) -> ExportResult:
    from azaion_training.export.onnx import export_onnx

    path = export_onnx(weights, folder / "azaion.onnx", imgsz=settings.imgsz, batch=settings.batch)
    return ExportResult(
        path, f"ONNX, NMS in the graph, imgsz {settings.imgsz}, batch {settings.batch}"
    )


def _export_engine(
    weights: Path,
    folder: Path,
    settings: ExportSettings,
    *,
    tree: DataTree,
    data: Path | None,
    force: bool,
) -> ExportResult:
    from azaion_training.export.sample import form_data_sample
    from azaion_training.export.tensorrt import check_tensorrt_available, export_engine

    check_tensorrt_available()
    calibration = []
    if settings.int8:
        dataset = _dataset(tree, data, "INT8 calibration")
        calibration = form_data_sample(dataset, settings.calibration_images)
    result = export_engine(
        weights,
        folder,
        imgsz=settings.imgsz,
        batch=settings.batch,
        half=settings.half,
        int8=settings.int8,
        calibration=calibration,
        workspace_fraction=settings.workspace_fraction,
        force=force,
    )
    return ExportResult(result.path, result.summary)


def _export_rknn(
    weights: Path,
    folder: Path,
    settings: ExportSettings,
    *,
    tree: DataTree,
    data: Path | None,
    verify: int,
) -> ExportResult:
    from azaion_training.export.rknn import export_rknn
    from azaion_training.export.sample import form_data_sample, write_sample_list

    platform = settings.rknn_platform
    if settings.batch != RKNN_BATCH:
        logger.info(
            "RKNN models are exported with batch %d; batch %d is for ONNX and TensorRT",
            RKNN_BATCH,
            settings.batch,
        )
    check_images = []
    if verify:
        check_images = form_data_sample(_dataset(tree, data, "the simulator check"), verify, seed=1)
    with tempfile.TemporaryDirectory(prefix="azaion-rknn-") as work:
        sample_list = None
        if settings.int8:
            dataset = _dataset(tree, data, "INT8 quantisation")
            sample = form_data_sample(dataset, settings.calibration_images)
            sample_list = write_sample_list(sample, Path(work) / "dataset.txt")
        result = export_rknn(
            weights,
            folder / f"azaion.{platform}.rknn",
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
