"""`RknnEngine`: an ``.rknn`` model on a Rockchip NPU (RK3588) through rknn-toolkit-lite2.

The runtime exists on the board only (``pip install rknn-toolkit-lite2`` there); elsewhere
building the engine fails with one `EngineError`. What runs on the board, per batch:

1. the engine-contract batch ``[B, 3, H, W]`` float32 RGB 0..1 back to NHWC uint8 RGB (the model
   divides by 255 itself; the round trip is exact for letterboxed images);
2. ``RKNNLite.inference`` on the NPU: the raw head ``[B, 4 + nc, anchors]`` (the RKNN export has
   no NMS, see `azaion_training.export.rknn`);
3. `azaion_training.infer.head.decode_predictions` with the ONNX graph's NMS thresholds and
   `to_rows`: ``[B, 300, 6]``, as every engine returns.

Input size, batch and class names come from the metadata file beside the model
(`azaion_training.infer.metadata`, written by the export). A model given as bytes (decrypted in
memory from the store) has no file beside it: pass its `ModelMetadata`, else SPEC's export size
(1280), batch 1 and the class table are assumed, with a warning.

``RKNNLite.load_rknn`` reads a path, so model bytes are handed over through an anonymous in-memory
file (``memfd_create``), never a file on disk. The runtime is a seam (`RknnRuntime`): tests replay
the toolkit simulator's recorded outputs through it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.errors import EngineError
from azaion_training.infer.engine import check_batch, check_output
from azaion_training.infer.head import decode_predictions, to_rows
from azaion_training.infer.metadata import ModelMetadata, metadata_path, read_metadata

logger = logging.getLogger(__name__)

DEFAULT_IMGSZ = 1280


class RknnRuntime(Protocol):
    """The part of ``rknnlite.api.RKNNLite`` the engine uses, after the model is loaded."""

    def inference(self, inputs: list[np.ndarray], data_format: list[str]) -> Any:
        """Runs the model; returns its outputs (a list of arrays) or ``None`` on failure."""
        ...

    def release(self) -> None:
        """Frees the NPU and the model."""
        ...


class RknnEngine:
    """An RKNN model on the board's NPU (see `Engine` for the contract).

    Args:
        model: the ``.rknn`` file or its bytes.
        metadata: the model's metadata; read from the file beside ``model`` when ``None``.
        runtime: a loaded runtime to use instead of rknn-toolkit-lite2 (tests).

    Raises:
        EngineError: rknn-toolkit-lite2 is missing (not on a board), the model does not load, or
            the metadata file is unreadable.
    """

    def __init__(
        self,
        model: Path | bytes,
        *,
        metadata: ModelMetadata | None = None,
        runtime: RknnRuntime | None = None,
    ) -> None:
        self._source = str(model) if isinstance(model, Path) else "<model bytes>"
        if metadata is None:
            metadata = _metadata_of(model)
        self.input_size = (metadata.imgsz, metadata.imgsz)
        self.batch_size: int | None = metadata.batch
        self.class_names = list(metadata.names)
        self._imgsz = metadata.imgsz
        self._rknn = runtime if runtime is not None else _load_runtime(model, self._source)
        self.name = "rknn-lite2/NPU" if runtime is None else f"rknn/{type(runtime).__name__}"
        logger.info(
            "loaded %s on %s (input %s, batch %d)",
            self._source,
            self.name,
            self.input_size,
            metadata.batch,
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        check_batch(batch, input_size=self.input_size, batch_size=self.batch_size)
        images = np.clip(np.rint(batch.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)
        outputs = self._rknn.inference(inputs=[images], data_format=["nhwc"])
        if not outputs:
            raise EngineError(f"{self._source}: the NPU returned no output")
        raw = np.asarray(outputs[0], np.float32)
        expected_rows = 4 + len(self.class_names)
        if raw.ndim != 3 or raw.shape[:2] != (len(images), expected_rows):
            raise EngineError(
                f"{self._source}: model output is {list(raw.shape)}, expected the raw head "
                f"[{len(images)}, {expected_rows}, anchors] (4 + {len(self.class_names)} classes "
                "in the metadata; export with azaion-export --format rknn)"
            )
        rows = to_rows(decode_predictions(raw, imgsz=self._imgsz))
        return check_output(rows, batch=len(images), source=self._source)

    def close(self) -> None:
        self._rknn.release()


def _metadata_of(model: Path | bytes) -> ModelMetadata:
    metadata = read_metadata(model) if isinstance(model, Path) else None
    if metadata is not None:
        return metadata
    where = metadata_path(model) if isinstance(model, Path) else "model bytes"
    logger.warning(
        "no model metadata (%s): assuming input %d, batch 1 and the class table",
        where,
        DEFAULT_IMGSZ,
    )
    return ModelMetadata(imgsz=DEFAULT_IMGSZ, batch=1, names=ClassTable.default().names)


def _load_runtime(model: Path | bytes, source: str) -> RknnRuntime:
    try:
        from rknnlite.api import RKNNLite
    except ImportError as exc:
        raise EngineError(
            "rknn-toolkit-lite2 is not installed: RKNN models run on a Rockchip board "
            "(pip install rknn-toolkit-lite2 there); use the .onnx model elsewhere"
        ) from exc
    rknn = RKNNLite(verbose=False)
    with _readable_path(model) as path:
        if rknn.load_rknn(path) != 0:
            rknn.release()
            raise EngineError(f"{source}: rknn-toolkit-lite2 cannot load the model")
    if rknn.init_runtime(core_mask=RKNNLite.NPU_CORE_AUTO) != 0:
        rknn.release()
        raise EngineError(f"{source}: the NPU runtime does not start (not an RK3588?)")
    return rknn


@contextlib.contextmanager
def _readable_path(model: Path | bytes) -> Iterator[str]:
    """A path the runtime can open: the file itself, or an in-memory file holding the bytes."""
    if isinstance(model, Path):
        yield str(model)
        return
    fd = os.memfd_create("azaion-model.rknn")
    try:
        view = memoryview(model)
        while view:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
