"""`OnnxEngine`: ONNX Runtime, on the CUDA provider when it is present, else on the CPU.

The model comes from a file or from bytes (a model decrypted in memory is handed over as bytes and
never written to disk). The input size and batch come from the graph's input shape, the class
names from the Ultralytics metadata ``names``. A graph whose output is not ``[B, 300, 6]`` (an
export without NMS inside, for instance ``[B, 84, 8400]``) is refused when it loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from azaion_training.errors import EngineError
from azaion_training.infer.engine import (
    COLUMNS,
    ROWS,
    check_batch,
    check_output,
    imgsz_from_metadata,
    names_from_metadata,
)

logger = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


class OnnxEngine:
    """An ONNX model on ONNX Runtime (see `Engine` for the contract).

    Args:
        model: the ``.onnx`` file or its bytes.
        providers: execution providers in order of preference; default: CUDA when ONNX Runtime
            offers it, then CPU.

    Raises:
        EngineError: ONNX Runtime cannot load the model, or its input or output shape is not
            that of a detection export with NMS inside (``[B, 3, H, W]`` -> ``[B, 300, 6]``).
    """

    def __init__(self, model: Path | bytes, *, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self._source = str(model) if isinstance(model, Path) else "<model bytes>"
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in (CUDA_PROVIDER, CPU_PROVIDER) if p in available]
        # ONNX Runtime's default session options, as Ultralytics' predictor has them: its worker
        # threads spin between runs. Sleeping threads (tried to leave the CPU to the video
        # threads) were slower end to end in every paired round: 40.6 vs 44.5 video frames/s
        # (median of 4, 1280x720, imgsz 640, 2 CPUs; bench_infer's ours_fps).
        try:
            source = str(model) if isinstance(model, Path) else model
            self._session = ort.InferenceSession(source, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped pybind errors
            raise EngineError(f"{self._source}: ONNX Runtime cannot load the model: {exc}") from exc
        self.name = f"onnxruntime/{self._session.get_providers()[0]}"
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise EngineError(f"{self._source}: expected one image input and an output")
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.class_names = names_from_metadata(metadata)
        self.batch_size, self.input_size = _input_geometry(inputs[0].shape, metadata, self._source)
        _check_output_shape(outputs[0].shape, self._source)
        logger.info(
            "loaded %s on %s (input %s, batch %s)",
            self._source,
            self.name,
            self.input_size,
            self.batch_size or "any",
        )
        if providers[0] == CUDA_PROVIDER and not self.name.endswith(CUDA_PROVIDER):
            logger.warning("the CUDA provider is installed but did not start; running on the CPU")

    def run(self, batch: np.ndarray) -> np.ndarray:
        check_batch(batch, input_size=self.input_size, batch_size=self.batch_size)
        try:
            (rows,) = self._session.run([self._output_name], {self._input_name: batch})
        except Exception as exc:  # onnxruntime raises its own untyped pybind errors
            raise EngineError(f"{self._source}: ONNX Runtime failed: {exc}") from exc
        return check_output(np.asarray(rows), batch=batch.shape[0], source=self._source)

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]


def _input_geometry(
    shape: list[int | str | None], metadata: dict[str, str], source: str
) -> tuple[int | None, tuple[int, int]]:
    if len(shape) != 4 or shape[1] not in (3, "3"):
        raise EngineError(f"{source}: model input is {shape}, expected [B, 3, H, W]")
    batch = shape[0] if isinstance(shape[0], int) else None
    if isinstance(shape[2], int) and isinstance(shape[3], int):
        return batch, (shape[2], shape[3])
    size = imgsz_from_metadata(metadata)
    if size is None:
        raise EngineError(f"{source}: the input size is dynamic and the metadata has no imgsz")
    return batch, size


def _check_output_shape(shape: list[int | str | None], source: str) -> None:
    fixed = [dim if isinstance(dim, int) else None for dim in shape]
    if len(fixed) != 3 or fixed[1] not in (ROWS, None) or fixed[2] not in (COLUMNS, None):
        raise EngineError(
            f"{source}: model output is {shape}, expected [B, {ROWS}, {COLUMNS}]"
            " (export with NMS inside the graph: azaion-export, nms=True)"
        )
