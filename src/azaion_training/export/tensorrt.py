"""TensorRT engines built from the NMS-in-graph ONNX with the TensorRT Python API, one per GPU.

`export_engine` names the engine and decides whether the one there can be reused
(`export.engines`), and otherwise builds it. The engine has the ONNX's named tensors: input
``images`` ``[batch, 3, imgsz, imgsz]`` (float32 RGB 0..1, letterboxed) and output ``output0``
``[batch, 300, 6]`` (``x1, y1, x2, y2, confidence, class`` in input pixels). FP16 where the GPU
has fast FP16 and ``half`` is asked; INT8 as Ultralytics builds it: min-max calibration on
`form_data_sample` images (`export.calibration`), FP16 for the layers left unquantised, and the
detection head's sigmoid pinned to FP32 so confidences are not compressed. A calibration image
that does not load fails the build with its name. Device buffers are PyTorch CUDA tensors, so no
CUDA toolkit (pycuda) is needed.

Needs the ``tensorrt`` extra and an NVIDIA GPU (`check_tensorrt_available` says what is missing).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azaion_training.errors import ExportError
from azaion_training.export.calibration import make_calibrator
from azaion_training.export.engines import (
    BuildRecord,
    EngineDecision,
    GpuDescription,
    decide_engine,
    engine_precision,
    existing_engines,
    file_sha256,
    workspace_bytes,
)
from azaion_training.export.onnx import export_onnx, onnx_class_names
from azaion_training.fs import atomic_write_bytes
from azaion_training.infer.metadata import (
    ModelMetadata,
    metadata_path,
    read_metadata,
    write_metadata,
)

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'azaion-training[tensorrt]'"


@dataclass(frozen=True)
class EngineExport:
    """The outcome of `export_engine`: the engine, its metadata, and whether it was built."""

    path: Path
    metadata: ModelMetadata
    decision: EngineDecision

    @property
    def summary(self) -> str:
        """One line: what the engine is and whether it was built or reused, and why."""
        build = self.metadata.build
        return (
            f"TensorRT {build.get('tensorrt')} engine, {str(build.get('precision')).upper()}, "
            f"imgsz {self.metadata.imgsz}, batch {self.metadata.batch}; "
            f"{'built' if self.decision.action == 'build' else 'reused'}: {self.decision.reason}"
        )


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
) -> EngineExport:
    """Builds (or reuses) the TensorRT engine of ``weights`` for the GPU in hand, in ``folder``.

    The engine is reused only when its metadata file holds a `BuildRecord` equal to this request
    (TensorRT version, size, batch, precision, digest of ``weights``); otherwise it is rebuilt and
    the log and `EngineExport.summary` say which fields changed.

    Args:
        weights: the trained ``.pt``.
        folder: where the engine goes (named by `engine_file_name`, metadata beside it).
        imgsz: square input size.
        batch: fixed batch size.
        half: FP16 where the GPU has fast FP16.
        int8: INT8, calibrated on ``calibration`` (min-max; the head's sigmoid kept in FP32).
        calibration: images for INT8 calibration (see `form_data_sample`); needed with ``int8``.
        workspace_fraction: the builder's workspace as a fraction of free GPU memory.
        force: build even when a matching engine exists.

    Raises:
        ExportError: TensorRT or the GPU is missing, a calibration image does not load, or the
            build fails.
    """
    check_tensorrt_available()
    import tensorrt as trt

    if int8 and not calibration:
        raise ExportError("INT8 engine export needs calibration images (--data DATASET)")
    if not weights.is_file():
        raise ExportError(f"weights {weights} do not exist")
    gpu = current_gpu()
    wanted = BuildRecord(
        tensorrt=trt.__version__,
        imgsz=imgsz,
        batch=batch,
        precision=engine_precision(gpu, half=half, int8=int8),
        source_sha256=file_sha256(weights),
    )
    decision = decide_engine(folder, gpu, engines=existing_engines(folder), wanted=wanted)
    if decision.action == "reuse" and force:
        decision = EngineDecision("build", decision.path, "forced (--force)")
    if decision.action == "reuse":
        metadata = read_metadata(decision.path)
        if metadata is not None:
            logger.info("reusing %s: %s", decision.path, decision.reason)
            return EngineExport(decision.path, metadata, decision)
        decision = EngineDecision("build", decision.path, "its metadata file is gone")
    logger.info("building %s on %s: %s", decision.path.name, gpu.name, decision.reason)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".engine-") as work:
        onnx = export_onnx(weights, Path(work) / "model.onnx", imgsz=imgsz, batch=batch, device="0")
        names = onnx_class_names(onnx)
        plan = build_serialized_engine(
            onnx,
            precision=wanted.precision,
            calibration=calibration,
            imgsz=imgsz,
            workspace=_free_workspace(workspace_fraction),
        )
    metadata = wanted.metadata(names, gpu)
    metadata_path(decision.path).unlink(missing_ok=True)  # no new engine beside an old record
    atomic_write_bytes(decision.path, plan)
    write_metadata(decision.path, metadata)
    logger.info("wrote %s (%.1f MB, %s)", decision.path, len(plan) / 1e6, wanted.precision)
    return EngineExport(decision.path, metadata, decision)


def build_serialized_engine(
    onnx: Path,
    *,
    precision: str,
    calibration: Sequence[Path],
    imgsz: int,
    workspace: int,
) -> bytes:
    """Parses ``onnx`` and builds a serialized engine (needs TensorRT and a GPU).

    Args:
        precision: one of `PRECISIONS`; ``int8`` as Ultralytics builds it: FP16 and INT8 allowed,
            min-max calibration on ``calibration``, the detection head's sigmoid in FP32.

    Raises:
        ExportError: the ONNX does not parse, a calibration image does not load, or the builder
            returns no engine.
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
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = make_calibrator(
            images=calibration, batch=int(network.get_input(0).shape[0]), imgsz=imgsz
        )
        config.int8_calibrator = calibrator
        kept = keep_head_sigmoid_in_fp32(trt, network)
        if kept:
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        logger.info("INT8: %d head sigmoid layers kept in FP32", kept)
    serialized = builder.build_serialized_network(network, config)
    if calibrator is not None and calibrator.failure is not None:
        raise ExportError(f"INT8 calibration failed: {calibrator.failure}")
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx.name} (see its log)")
    return bytes(serialized)


HEAD_LAYER = re.compile(r"/model\.(\d+)/")
"""Ultralytics' ONNX layer names carry the module index: the head is the highest one."""


def keep_head_sigmoid_in_fp32(trt: Any, network: Any) -> int:
    """Pins the detection head's sigmoid layers to FP32 (as Ultralytics' INT8 export does).

    INT8 sigmoid outputs compress the confidences (ultralytics#24668). Only the head's sigmoids:
    every SiLU elsewhere is a sigmoid too, and pinning those would cost INT8 its speed.

    Returns:
        How many layers were pinned.
    """
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    indices = [int(match[1]) for layer in layers if (match := HEAD_LAYER.search(layer.name))]
    if not indices:
        return 0
    head = f"/model.{max(indices)}/"
    pinned = 0
    for layer in layers:
        is_sigmoid = layer.type == trt.LayerType.ACTIVATION and "sigmoid" in layer.name.lower()
        if head in layer.name and is_sigmoid:
            layer.precision = trt.float32
            for index in range(layer.num_outputs):
                layer.set_output_type(index, trt.float32)
            pinned += 1
    return pinned


def _free_workspace(fraction: float) -> int:
    import torch

    free, _total = torch.cuda.mem_get_info()
    return workspace_bytes(free, fraction)
