"""INT8 calibration as Ultralytics does it: min-max, on letterboxed dataset images.

`CalibrationFeed` (runs anywhere) cuts the images into full batches and keeps a load failure
instead of ending the data silently; `make_calibrator` wraps it in TensorRT's
``IInt8MinMaxCalibrator`` with a PyTorch CUDA tensor as the device buffer (needs TensorRT and a
GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from azaion_training.errors import ExportError


def calibration_batches(images: Sequence[Path], *, batch: int) -> list[list[Path]]:
    """Splits the calibration images into full batches (a last partial batch is dropped)."""
    return [list(images[i : i + batch]) for i in range(0, len(images) - batch + 1, batch)]


class CalibrationFeed:
    """Letterboxed calibration batches, one at a time; a failure is kept, not swallowed.

    TensorRT's Python wrapper turns an exception in ``get_batch`` into "no more data", which would
    end calibration silently on a bad image. `next_batch` records the failure instead, so the
    build can be failed with the image's name (`failure`).
    """

    def __init__(self, images: Sequence[Path], *, batch: int, imgsz: int) -> None:
        self.batches = calibration_batches(images, batch=batch)
        if not self.batches:
            raise ExportError(f"INT8 calibration needs at least {batch} images, got {len(images)}")
        self.imgsz = imgsz
        self.pending = iter(self.batches)
        self.failure: str | None = None

    def next_batch(self) -> np.ndarray | None:
        """``[batch, imgsz, imgsz, 3]`` uint8 RGB, or ``None`` at the end or after a failure."""
        from azaion_training.export.sample import load_letterboxed

        paths = next(self.pending, None)
        if paths is None or self.failure is not None:
            return None
        loaded = []
        for path in paths:
            try:
                loaded.append(load_letterboxed(path, self.imgsz))
            except Exception as exc:  # any failure must stop the build, not end the data
                self.failure = f"calibration image {path} does not load: {exc}"
                return None
        return np.stack(loaded)


def make_calibrator(*, images: Sequence[Path], batch: int, imgsz: int) -> Any:
    """An ``IInt8MinMaxCalibrator`` (Ultralytics' choice) fed by a `CalibrationFeed`.

    The calibrator's ``failure`` is ``None`` unless an image failed to load.

    Raises:
        ExportError: fewer images than one batch, or this TensorRT has no implicit calibration.
    """
    import tensorrt as trt
    import torch

    feed = CalibrationFeed(images, batch=batch, imgsz=imgsz)
    base = getattr(trt, "IInt8MinMaxCalibrator", None)
    if base is None:
        raise ExportError(f"TensorRT {trt.__version__} has no IInt8MinMaxCalibrator (use 10.x)")

    class MinMaxCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.device_batch = torch.empty((batch, 3, imgsz, imgsz), device="cuda")

        @property
        def failure(self) -> str | None:
            return feed.failure

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            host = feed.next_batch()
            if host is None:
                return None
            tensor = torch.from_numpy(host).permute(0, 3, 1, 2).float().div_(255)
            self.device_batch.copy_(tensor)
            torch.cuda.current_stream().synchronize()
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self) -> None:
            return None  # calibrate every build: the model and the images may have changed

        def write_calibration_cache(self, data: Any) -> None:
            pass

    return MinMaxCalibrator()
