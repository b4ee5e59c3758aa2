"""The one interface every inference engine implements, and the checks they share.

An engine takes a batch of letterboxed images and returns the rows of the NMS-in-graph export
(SPEC section 8): ``[B, 300, 6]`` = ``x1, y1, x2, y2, confidence, class`` in input pixels, rows
with no detection padded with zeros. The engines (ONNX Runtime, TensorRT, RKNN) are one module
each, listed in the table of `azaion_training.infer.load`, which picks one by file suffix.

Example:
    >>> from azaion_training.infer.load import load_engine
    >>> engine = load_engine(Path("models/azaion.onnx"))  # doctest: +SKIP
    >>> rows = engine.run(np.zeros((4, 3, *engine.input_size), np.float32))  # doctest: +SKIP
    >>> rows.shape  # doctest: +SKIP
    (4, 300, 6)
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from azaion_training.boxes import MAX_DETECTIONS
from azaion_training.classes import ClassTable
from azaion_training.errors import EngineError

ROWS = MAX_DETECTIONS
"""Rows per image in the engine output (the export's ``max_det``)."""

COLUMNS = 6
"""Columns of one row: ``x1, y1, x2, y2, confidence, class``."""


@runtime_checkable
class Engine(Protocol):
    """A loaded model that turns image batches into detection rows.

    Attributes:
        name: which backend runs, e.g. ``onnxruntime/CPUExecutionProvider``; shown in logs and
            in ``summary.json``.
        input_size: ``(height, width)`` of the model input.
        batch_size: the batch the model was built for; ``None`` when any batch size runs.
        class_names: the model's class names by class id (its metadata, else the class table).
    """

    name: str
    input_size: tuple[int, int]
    batch_size: int | None
    class_names: list[str]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Runs the model.

        Args:
            batch: ``[B, 3, H, W]`` float32, RGB, values 0..1, letterboxed to `input_size`;
                ``B`` equals `batch_size` when that is set.

        Returns:
            ``[B, 300, 6]`` float32: ``x1, y1, x2, y2, confidence, class`` in input pixels.

        Raises:
            EngineError: the runtime failed or the output is not ``[B, 300, 6]``.
        """
        ...

    def close(self) -> None:
        """Releases the runtime's memory (host and device)."""
        ...


def check_output(rows: np.ndarray, *, batch: int, source: str) -> np.ndarray:
    """Returns ``rows`` as float32 if they are ``[batch, 300, 6]``; raises otherwise.

    Raises:
        EngineError: naming the shape found and the export the engines expect.
    """
    if rows.shape != (batch, ROWS, COLUMNS):
        raise EngineError(
            f"{source}: model output is {list(rows.shape)}, expected [{batch}, {ROWS}, {COLUMNS}]"
            " (export with NMS inside the graph: azaion-export, nms=True)"
        )
    return rows.astype(np.float32, copy=False)


def check_batch(batch: np.ndarray, *, input_size: tuple[int, int], batch_size: int | None) -> None:
    """Checks an engine input: ``[B, 3, H, W]`` float32, and ``B == batch_size`` when fixed.

    Raises:
        EngineError: saying which dimension is wrong.
    """
    shape_ok = batch.ndim == 4 and batch.shape[1:] == (3, *input_size)
    batch_ok = batch_size is None or (batch.ndim > 0 and batch.shape[0] == batch_size)
    if not (shape_ok and batch_ok and batch.dtype == np.float32):
        wanted = [batch_size if batch_size is not None else "B", 3, *input_size]
        raise EngineError(
            f"engine input is {list(batch.shape)} {batch.dtype}, expected {wanted} float32"
        )


def names_from_metadata(metadata: Mapping[str, object]) -> list[str]:
    """Class names from Ultralytics model metadata (``names``: a dict or its ``repr``).

    Falls back to the 80 names of the default `ClassTable` when the metadata has none.
    """
    names = metadata.get("names")
    if isinstance(names, str):
        with contextlib.suppress(ValueError, SyntaxError):
            names = ast.literal_eval(names)
    if isinstance(names, Mapping) and names:
        by_id = {int(k): str(v) for k, v in names.items()}
        return [by_id.get(i, f"Class-{i}") for i in range(max(by_id) + 1)]
    if isinstance(names, list) and names:
        return [str(name) for name in names]
    return ClassTable.default().names


def imgsz_from_metadata(metadata: Mapping[str, object]) -> tuple[int, int] | None:
    """``(h, w)`` from Ultralytics metadata ``imgsz`` (``[h, w]``, an int, or their ``repr``)."""
    value = metadata.get("imgsz")
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None
