"""TensorRT engines, built from the NMS-in-graph ONNX with the TensorRT Python API, one per GPU.

An engine only runs on the kind of GPU it was built on, so its file name carries the GPU's compute
capability and multiprocessor count: ``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine``
(KEEP). `export_engine` reuses the engine of the GPU in hand when it is newer than the model and
builds it otherwise; engines of other GPUs in the folder are left alone.

The engine has the ONNX's named tensors: input ``images`` ``[batch, 3, imgsz, imgsz]`` (float32 RGB
0..1, letterboxed) and output ``output0`` ``[batch, 300, 6]`` (``x1, y1, x2, y2, confidence,
class`` in input pixels). FP16 is used when the GPU has fast FP16 and ``half`` is asked; INT8 (with
an entropy calibrator fed by `form_data_sample` images) when ``int8`` is asked. Device buffers are
PyTorch CUDA tensors, so no CUDA toolkit (pycuda) is needed.

The pure parts (`GpuDescription`, `engine_file_name`, `decide_engine`, `workspace_bytes`,
`has_fast_fp16`) run anywhere; `export_engine` needs the ``tensorrt`` extra and an NVIDIA GPU.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from azaion_training.errors import ExportError
from azaion_training.fs import atomic_write_bytes

logger = logging.getLogger(__name__)

ENGINE_NAME = re.compile(r"^azaion\.cc_(?P<major>\d+)\.(?P<minor>\d+)_sm_(?P<sm>\d+)\.engine$")
"""Matches the engine file names written by `engine_file_name`."""

INSTALL_HINT = "pip install 'azaion-training[tensorrt]'"


@dataclass(frozen=True)
class GpuDescription:
    """What an engine depends on: the GPU's compute capability and multiprocessor count."""

    major: int
    minor: int
    multiprocessors: int
    name: str = ""

    @classmethod
    def from_properties(cls, properties: Any) -> GpuDescription:
        """From ``torch.cuda.get_device_properties(i)`` (or anything with the same fields)."""
        return cls(
            major=int(properties.major),
            minor=int(properties.minor),
            multiprocessors=int(properties.multi_processor_count),
            name=str(getattr(properties, "name", "")),
        )


@dataclass(frozen=True)
class EngineDecision:
    """What `decide_engine` chose: ``build`` a new engine at ``path`` or ``reuse`` the one there."""

    action: str
    path: Path
    reason: str


def engine_file_name(gpu: GpuDescription) -> str:
    """``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine`` for ``gpu``.

    Example:
        >>> engine_file_name(GpuDescription(major=8, minor=6, multiprocessors=82))
        'azaion.cc_8.6_sm_82.engine'
    """
    return f"azaion.cc_{gpu.major}.{gpu.minor}_sm_{gpu.multiprocessors}.engine"


def engine_gpu(name: str) -> GpuDescription | None:
    """The GPU an engine file name was built for, or ``None`` if it is not an engine name."""
    match = ENGINE_NAME.match(name)
    if match is None:
        return None
    return GpuDescription(
        major=int(match["major"]), minor=int(match["minor"]), multiprocessors=int(match["sm"])
    )


def decide_engine(
    folder: Path, gpu: GpuDescription, *, engines: Mapping[str, float], model_mtime: float
) -> EngineDecision:
    """Whether the engine for ``gpu`` in ``folder`` can be reused or must be built.

    Args:
        folder: where the engines live.
        gpu: the GPU in hand.
        engines: the engine files already in ``folder``: name -> modification time (seconds).
        model_mtime: modification time of the model the engine is built from.

    Returns:
        ``reuse`` when an engine for exactly this GPU exists and is not older than the model;
        ``build`` otherwise, with the reason.
    """
    name = engine_file_name(gpu)
    path = folder / name
    if name not in engines:
        others = sorted(n for n in engines if engine_gpu(n) is not None)
        found = f"engines here are for other GPUs: {', '.join(others)}" if others else "none here"
        return EngineDecision("build", path, f"no engine for this GPU ({found})")
    if engines[name] < model_mtime:
        return EngineDecision("build", path, f"{name} is older than the model")
    return EngineDecision("reuse", path, f"{name} matches this GPU and is newer than the model")


def existing_engines(folder: Path) -> dict[str, float]:
    """The engine files in ``folder``: name -> modification time."""
    if not folder.is_dir():
        return {}
    return {
        path.name: path.stat().st_mtime
        for path in folder.glob("azaion.cc_*.engine")
        if engine_gpu(path.name) is not None and path.is_file()
    }


def workspace_bytes(free_bytes: int, fraction: float) -> int:
    """The builder's workspace: ``fraction`` (0 < f <= 1) of the GPU's free memory, in bytes.

    Example:
        >>> workspace_bytes(8 << 30, 0.5) == 4 << 30
        True
    """
    if not 0 < fraction <= 1:
        raise ExportError(f"workspace fraction must be in (0, 1], got {fraction}")
    return int(free_bytes * fraction)


def has_fast_fp16(gpu: GpuDescription) -> bool:
    """Whether the GPU runs FP16 at full speed or better: compute capability 5.3+ except 6.1.

    This stands in for ``Builder.platform_has_fast_fp16``, which TensorRT 10 deprecated.
    """
    capability = (gpu.major, gpu.minor)
    return capability >= (5, 3) and capability != (6, 1)


def check_tensorrt_available() -> None:
    """Checks that TensorRT and a CUDA GPU are both here.

    Raises:
        ExportError: one line naming everything that is missing.
    """
    missing = []
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        missing.append(f"the tensorrt package is not installed ({INSTALL_HINT})")
    import torch

    if not torch.cuda.is_available():
        missing.append("no NVIDIA GPU is visible to PyTorch (torch.cuda.is_available() is False)")
    if missing:
        raise ExportError(
            "TensorRT engine export needs TensorRT and an NVIDIA GPU: " + "; ".join(missing)
        )


def current_gpu(device: int = 0) -> GpuDescription:
    """The description of CUDA device ``device`` (needs a GPU)."""
    import torch

    return GpuDescription.from_properties(torch.cuda.get_device_properties(device))


def export_engine(
    weights: Path,
    folder: Path,
    *,
    imgsz: int,
    batch: int,
    half: bool = True,
    int8: bool = False,
    calibration: Sequence[Path] = (),
    workspace_fraction: float = 0.5,
    force: bool = False,
) -> Path:
    """Builds (or reuses) the TensorRT engine of ``weights`` for the GPU in hand, in ``folder``.

    Args:
        weights: the trained ``.pt``.
        folder: where the engine goes (named by `engine_file_name`).
        imgsz: square input size.
        batch: fixed batch size.
        half: allow FP16 layers where the GPU has fast FP16.
        int8: allow INT8 layers, calibrated on ``calibration``.
        calibration: images for INT8 calibration (see `form_data_sample`); needed with ``int8``.
        workspace_fraction: the builder's workspace as a fraction of free GPU memory.
        force: build even when a matching engine exists.

    Returns:
        The engine path.

    Raises:
        ExportError: TensorRT or the GPU is missing, or the build fails.
    """
    check_tensorrt_available()
    if int8 and not calibration:
        raise ExportError("INT8 engine export needs calibration images (--data DATASET)")
    if not weights.is_file():
        raise ExportError(f"weights {weights} do not exist")
    gpu = current_gpu()
    decision = decide_engine(
        folder, gpu, engines=existing_engines(folder), model_mtime=weights.stat().st_mtime
    )
    if decision.action == "reuse" and not force:
        logger.info("reusing %s: %s", decision.path, decision.reason)
        return decision.path
    logger.info("building %s on %s: %s", decision.path.name, gpu.name, decision.reason)
    from azaion_training.export.onnx import export_onnx

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".engine-") as work:
        onnx = export_onnx(weights, Path(work) / "model.onnx", imgsz=imgsz, batch=batch, device="0")
        plan = build_serialized_engine(
            onnx,
            half=half and has_fast_fp16(gpu),
            int8=int8,
            calibration=calibration,
            imgsz=imgsz,
            workspace=_free_workspace(workspace_fraction),
        )
    atomic_write_bytes(decision.path, plan)
    logger.info("wrote %s (%.1f MB)", decision.path, len(plan) / 1e6)
    return decision.path


def build_serialized_engine(
    onnx: Path,
    *,
    half: bool,
    int8: bool,
    calibration: Sequence[Path],
    imgsz: int,
    workspace: int,
) -> bytes:
    """Parses ``onnx`` and builds a serialized engine (needs TensorRT and a GPU).

    Raises:
        ExportError: the ONNX does not parse or the builder returns no engine.
    """
    import tensorrt as trt

    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx.name}: {errors}")
    for tensor in [network.get_input(i) for i in range(network.num_inputs)] + [
        network.get_output(i) for i in range(network.num_outputs)
    ]:
        logger.info("engine tensor %s %s %s", tensor.name, tuple(tensor.shape), tensor.dtype)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if half and getattr(builder, "platform_has_fast_fp16", True):  # gone after TensorRT 10
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
        input_shape = tuple(network.get_input(0).shape)
        config.int8_calibrator = make_calibrator(
            images=calibration, batch=input_shape[0], imgsz=imgsz
        )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx.name} (see its log)")
    return bytes(serialized)


def calibration_batches(images: Sequence[Path], *, batch: int) -> list[list[Path]]:
    """Splits the calibration images into full batches (a last partial batch is dropped)."""
    return [list(images[i : i + batch]) for i in range(0, len(images) - batch + 1, batch)]


def make_calibrator(*, images: Sequence[Path], batch: int, imgsz: int) -> Any:
    """An ``IInt8EntropyCalibrator2`` that feeds letterboxed images through a CUDA tensor.

    Raises:
        ExportError: fewer images than one batch, or this TensorRT has no implicit calibration.
    """
    import tensorrt as trt
    import torch

    from azaion_training.export.sample import load_letterboxed

    batches = calibration_batches(images, batch=batch)
    if not batches:
        raise ExportError(f"INT8 calibration needs at least {batch} images, got {len(images)}")
    base = getattr(trt, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise ExportError(f"TensorRT {trt.__version__} has no IInt8EntropyCalibrator2 (use 10.x)")

    class EntropyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.pending = iter(batches)
            self.device_batch = torch.empty((batch, 3, imgsz, imgsz), device="cuda")

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            paths = next(self.pending, None)
            if paths is None:
                return None
            host = np.stack([load_letterboxed(path, imgsz) for path in paths])
            tensor = torch.from_numpy(host).permute(0, 3, 1, 2).float().div_(255)
            self.device_batch.copy_(tensor)
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self) -> None:
            return None  # calibrate every build: the model and the images may have changed

        def write_calibration_cache(self, data: Any) -> None:
            pass

    return EntropyCalibrator()


def _free_workspace(fraction: float) -> int:
    import torch

    free, _total = torch.cuda.mem_get_info()
    return workspace_bytes(free, fraction)
