"""`RknnEngine`: an ``.rknn`` model on a Rockchip NPU (RK3588) through rknn-toolkit-lite2.

The runtime exists on the board only (``pip install rknn-toolkit-lite2`` there); elsewhere
building the engine fails with one `EngineError`. RKNN models take NHWC uint8 RGB input (the
conversion puts the 1/255 scaling into the model), so `run` turns the engine-contract batch back
into that form and runs the images one at a time (RKNN exports have batch 1).

``RKNNLite.load_rknn`` reads a path, so model bytes (decrypted in memory) are handed over through
an anonymous in-memory file (``memfd_create``), never a file on disk. The input size and class
names come from Ultralytics' ``metadata.yaml`` beside the model when there is one, else from
``imgsz`` (default: SPEC's export size, 1280) and the class table.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from azaion_training.errors import EngineError
from azaion_training.infer.engine import (
    check_batch,
    check_output,
    imgsz_from_metadata,
    names_from_metadata,
)

logger = logging.getLogger(__name__)

DEFAULT_IMGSZ = 1280


class RknnEngine:
    """An RKNN model on the board's NPU (see `Engine` for the contract).

    Args:
        model: the ``.rknn`` file or its bytes.
        imgsz: the square input size when no ``metadata.yaml`` says it.

    Raises:
        EngineError: rknn-toolkit-lite2 is missing (not on a board), or the model does not load.
    """

    batch_size: int | None = None

    def __init__(self, model: Path | bytes, *, imgsz: int = DEFAULT_IMGSZ) -> None:
        self._source = str(model) if isinstance(model, Path) else "<model bytes>"
        try:
            from rknnlite.api import RKNNLite
        except ImportError as exc:
            raise EngineError(
                "rknn-toolkit-lite2 is not installed: RKNN models run on a Rockchip board "
                "(pip install rknn-toolkit-lite2 there); use the .onnx model elsewhere"
            ) from exc
        metadata = _sidecar_metadata(model) if isinstance(model, Path) else {}
        self.input_size = imgsz_from_metadata(metadata) or (imgsz, imgsz)
        self.class_names = names_from_metadata(metadata)
        self._rknn: Any = RKNNLite(verbose=False)
        with _readable_path(model) as path:
            if self._rknn.load_rknn(path) != 0:
                raise EngineError(f"{self._source}: rknn-toolkit-lite2 cannot load the model")
        if self._rknn.init_runtime(core_mask=RKNNLite.NPU_CORE_AUTO) != 0:
            raise EngineError(f"{self._source}: the NPU runtime does not start (not an RK3588?)")
        self.name = "rknn-lite2/NPU"
        logger.info("loaded %s on %s (input %s)", self._source, self.name, self.input_size)

    def run(self, batch: np.ndarray) -> np.ndarray:
        check_batch(batch, input_size=self.input_size, batch_size=None)
        images = np.clip(np.rint(batch.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)
        rows = []
        for image in images:
            outputs = self._rknn.inference(inputs=[image[None]], data_format=["nhwc"])
            if not outputs:
                raise EngineError(f"{self._source}: the NPU returned no output")
            output = np.asarray(outputs[0])
            rows.append(output.reshape(-1, *output.shape[-2:]))
        return check_output(np.concatenate(rows), batch=len(images), source=self._source)

    def close(self) -> None:
        self._rknn.release()


def _sidecar_metadata(model: Path) -> dict[str, Any]:
    for candidate in (
        model.with_name("metadata.yaml"),
        model.parent / model.stem / "metadata.yaml",
    ):
        if candidate.is_file():
            with contextlib.suppress(OSError, yaml.YAMLError):
                loaded = yaml.safe_load(candidate.read_text("utf-8"))
                if isinstance(loaded, dict):
                    return loaded
    return {}


@contextlib.contextmanager
def _readable_path(model: Path | bytes):  # type: ignore[no-untyped-def]
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
