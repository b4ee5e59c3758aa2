"""Test doubles around a real engine (no runtime is faked: every batch still runs the model)."""

from __future__ import annotations

import numpy as np

from azaion_training.errors import EngineError
from azaion_training.infer.engine import Engine


class RecordingEngine:
    """Runs a real fixed-batch engine and records the batch size of every call.

    Args:
        inner: the real engine.
        dynamic: report ``batch_size=None`` (an engine that takes any batch); short batches are
            then padded here for the inner engine and its padding rows cut off again.
        fail_after: raise `EngineError` on call number ``fail_after + 1``.
    """

    def __init__(self, inner: Engine, *, dynamic: bool = False, fail_after: int | None = None):
        self._inner = inner
        self.name = f"recording/{inner.name}"
        self.input_size = inner.input_size
        self.class_names = inner.class_names
        self.batch_size = None if dynamic else inner.batch_size
        self._fail_after = fail_after
        self.calls: list[int] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._fail_after is not None and len(self.calls) >= self._fail_after:
            raise EngineError("the engine failed on purpose")
        self.calls.append(batch.shape[0])
        fixed = self._inner.batch_size or batch.shape[0]
        padded = np.zeros((fixed, *batch.shape[1:]), np.float32)
        padded[: batch.shape[0]] = batch
        return self._inner.run(padded)[: batch.shape[0]]

    def close(self) -> None:
        self._inner.close()


class ReplayRuntime:
    """Stands for rknn-toolkit-lite2 on a board: answers each input batch with the raw outputs
    the toolkit's simulator gave for exactly those images (recorded at export time).

    An input it was not recorded for (other pixels, layout or batch) fails the test, so the
    engine must hand the NPU the very NHWC uint8 batches the simulator ran.
    """

    def __init__(self, inputs: np.ndarray, outputs: np.ndarray, *, batch: int) -> None:
        self._answers = {
            inputs[start : start + batch].tobytes(): outputs[start : start + batch]
            for start in range(0, len(inputs), batch)
        }
        self._shape = (batch, *inputs.shape[1:])
        self.calls = 0
        self.released = False

    def inference(self, inputs: list[np.ndarray], data_format: list[str]) -> list[np.ndarray]:
        (images,) = inputs
        assert data_format == ["nhwc"]
        assert images.dtype == np.uint8 and images.shape == self._shape, images.shape
        self.calls += 1
        return [self._answers[images.tobytes()]]

    def release(self) -> None:
        self.released = True
