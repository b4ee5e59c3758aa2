"""`TensorRtEngine`: a serialised TensorRT engine (TensorRT 10 named I/O tensors) on the GPU.

Device buffers and the stream are torch CUDA tensors (SPEC section 8: no pycuda); every TensorRT
call that reports failure by its return value is checked. Input size and batch come from the
engine's own input shape; class names from the metadata file beside it
(`azaion_training.infer.metadata`, written by `azaion-export`), else from Ultralytics' metadata
header when the engine starts with one (a 4-byte little-endian length and that much JSON, read and
skipped), else from the class table. TensorRT is imported when
an engine is built, so the rest of the package works without it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

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
from azaion_training.infer.metadata import read_metadata

logger = logging.getLogger(__name__)


def split_engine_header(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Splits Ultralytics' metadata header off a serialised engine.

    Returns:
        ``(metadata, engine bytes)``; ``({}, data)`` when there is no header.
    """
    length = int.from_bytes(data[:4], byteorder="little")
    if 0 < length <= len(data) - 4:
        with contextlib.suppress(ValueError):  # engine bytes are not JSON
            metadata = json.loads(data[4 : 4 + length])
            if isinstance(metadata, dict):
                return metadata, data[4 + length :]
    return {}, data


class TensorRtEngine:
    """A TensorRT engine on the first CUDA device (see `Engine` for the contract).

    Args:
        model: the ``.engine`` file or its bytes.

    Raises:
        EngineError: TensorRT is not installed, there is no CUDA GPU, the engine does not
            deserialise (wrong TensorRT version or GPU), or its I/O is not one image input and a
            ``[B, 300, 6]`` output.
    """

    def __init__(self, model: Path | bytes) -> None:
        self._source = str(model) if isinstance(model, Path) else "<model bytes>"
        trt, torch = _import_runtime()
        data = model.read_bytes() if isinstance(model, Path) else model
        metadata, serialised = split_engine_header(data)
        self._device = torch.device("cuda", 0)
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self._device):
            runtime = trt.Runtime(self._trt_logger)
            engine = runtime.deserialize_cuda_engine(serialised)
            if engine is None:
                raise EngineError(
                    f"{self._source}: TensorRT {trt.__version__} cannot deserialise the engine "
                    "(built with another TensorRT version or for another GPU?)"
                )
            self._engine = engine
            self._context = engine.create_execution_context()
            self._stream = torch.cuda.Stream(device=self._device)
        self._input, self._output = _io_names(trt, engine, self._source)
        input_shape = tuple(engine.get_tensor_shape(self._input))
        if len(input_shape) != 4 or input_shape[1] != 3:
            raise EngineError(
                f"{self._source}: engine input is {list(input_shape)}, expected [B, 3, H, W]"
            )
        dynamic_batch = input_shape[0] < 0
        self.batch_size: int | None = None if dynamic_batch else int(input_shape[0])
        if input_shape[2] > 0 and input_shape[3] > 0:
            self.input_size = (int(input_shape[2]), int(input_shape[3]))
        else:
            size = imgsz_from_metadata(metadata)
            if size is None:
                raise EngineError(
                    f"{self._source}: dynamic input size and no imgsz in the metadata"
                )
            self.input_size = size
        sidecar = read_metadata(model) if isinstance(model, Path) else None
        self.class_names = sidecar.names if sidecar else names_from_metadata(metadata)
        self._input_dtype = _torch_dtype(trt, torch, engine.get_tensor_dtype(self._input))
        self._output_dtype = _torch_dtype(trt, torch, engine.get_tensor_dtype(self._output))
        output_shape = tuple(engine.get_tensor_shape(self._output))
        if len(output_shape) != 3 or output_shape[1:] != (ROWS, COLUMNS):
            raise EngineError(
                f"{self._source}: engine output is {list(output_shape)}, "
                f"expected [B, {ROWS}, {COLUMNS}]"
            )
        self.name = f"tensorrt-{trt.__version__}/{torch.cuda.get_device_name(self._device)}"
        logger.info(
            "loaded %s on %s (input %s, batch %s)",
            self._source,
            self.name,
            self.input_size,
            self.batch_size or "any",
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        check_batch(batch, input_size=self.input_size, batch_size=self.batch_size)
        size = batch.shape[0]
        with torch.cuda.device(self._device), torch.cuda.stream(self._stream):
            images = torch.from_numpy(batch).to(self._device, non_blocking=True)
            images = images.to(self._input_dtype).contiguous()
            if self.batch_size is None and not self._context.set_input_shape(
                self._input, tuple(images.shape)
            ):
                raise EngineError(f"{self._source}: TensorRT refuses input {list(images.shape)}")
            rows = torch.empty((size, ROWS, COLUMNS), dtype=self._output_dtype, device=self._device)
            for name, tensor in ((self._input, images), (self._output, rows)):
                if not self._context.set_tensor_address(name, tensor.data_ptr()):
                    raise EngineError(f"{self._source}: TensorRT refuses the buffer of {name}")
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise EngineError(f"{self._source}: TensorRT failed to run the batch")
            result = rows.float().cpu().numpy()  # waits for the stream
        return check_output(result, batch=size, source=self._source)

    def close(self) -> None:
        self._context = None
        self._engine = None


def _import_runtime() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineError(
            "TensorRT is not installed: pip install 'azaion-training[tensorrt]' on a machine with "
            "an NVIDIA GPU, or use the .onnx model"
        ) from exc
    import torch

    if not torch.cuda.is_available():
        raise EngineError("TensorRT needs an NVIDIA GPU and torch sees none; use the .onnx model")
    return trt, torch


def _io_names(trt: Any, engine: Any, source: str) -> tuple[str, str]:
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise EngineError(f"{source}: expected one input and one output, got {inputs} -> {outputs}")
    return inputs[0], outputs[0]


def _torch_dtype(trt: Any, torch: Any, dtype: Any) -> Any:
    table = {trt.float32: torch.float32, trt.float16: torch.float16}
    if dtype not in table:
        raise EngineError(f"unsupported TensorRT tensor type {dtype}")
    return table[dtype]
