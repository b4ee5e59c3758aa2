"""TensorRT engines, built from the NMS-in-graph ONNX with the TensorRT Python API, one per GPU.

An engine only runs on the kind of GPU it was built on, so its file name carries the GPU's compute
capability and multiprocessor count: ``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine``
(KEEP). Beside it, its metadata file (`azaion_training.infer.metadata`) holds the class names and
the `BuildRecord`: TensorRT version, size, batch, precision built, SHA-256 of the source ``.pt``.
`export_engine` reuses the engine of the GPU in hand only when that record equals the request,
and otherwise rebuilds it, saying which fields changed; engines of other GPUs are left alone.

The engine has the ONNX's named tensors: input ``images`` ``[batch, 3, imgsz, imgsz]`` (float32 RGB
0..1, letterboxed) and output ``output0`` ``[batch, 300, 6]`` (``x1, y1, x2, y2, confidence,
class`` in input pixels). FP16 where the GPU has fast FP16 and ``half`` is asked; INT8 as
Ultralytics builds it: min-max calibration on `form_data_sample` images, FP16 for the layers left
unquantised, and the detection head's sigmoid pinned to FP32 so confidences are not compressed. A
calibration image that does not load fails the build with its name. Device buffers are PyTorch
CUDA tensors, so no CUDA toolkit (pycuda) is needed.

The pure parts (`GpuDescription`, `BuildRecord`, `engine_file_name`, `decide_engine`,
`existing_engines`, `CalibrationFeed`, `workspace_bytes`, `has_fast_fp16`) run anywhere;
`export_engine` needs the ``tensorrt`` extra and an NVIDIA GPU.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from azaion_training.errors import EngineError, ExportError
from azaion_training.export.onnx import export_onnx, onnx_class_names
from azaion_training.fs import atomic_write_bytes
from azaion_training.infer.metadata import (
    ModelMetadata,
    metadata_path,
    read_metadata,
    write_metadata,
)

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


PRECISIONS = ("fp32", "fp16", "int8")
"""What an engine is built as: ``int8`` also allows FP16 for the layers left unquantised."""


@dataclass(frozen=True)
class BuildRecord:
    """How an engine was built; an engine is reused only when all of it matches the request.

    Kept in the engine's metadata file (`azaion_training.infer.metadata`): ``imgsz`` and
    ``batch`` as its own fields, the rest under ``build``.
    """

    tensorrt: str
    """The TensorRT version (plans do not load in another one)."""
    imgsz: int
    batch: int
    precision: str
    """One of `PRECISIONS`: what was built, not what was asked."""
    source_sha256: str
    """SHA-256 of the ``.pt`` the engine was built from."""

    def differences(self, other: BuildRecord) -> list[str]:
        """``field: mine -> other`` for every field that differs."""
        return [
            f"{name} {getattr(self, name)} -> {getattr(other, name)}"
            for name in ("tensorrt", "imgsz", "batch", "precision", "source_sha256")
            if getattr(self, name) != getattr(other, name)
        ]

    def metadata(self, names: list[str], gpu: GpuDescription) -> ModelMetadata:
        """The metadata file of an engine built so, for ``gpu``."""
        build: dict[str, str | int] = {
            "format": "engine",
            "tensorrt": self.tensorrt,
            "precision": self.precision,
            "source_sha256": self.source_sha256,
            "gpu": f"{engine_file_name(gpu).removesuffix('.engine')} {gpu.name}".strip(),
        }
        return ModelMetadata(imgsz=self.imgsz, batch=self.batch, names=names, build=build)

    @classmethod
    def from_metadata(cls, metadata: ModelMetadata) -> BuildRecord | None:
        """The record in an engine's metadata; ``None`` when it is not a complete one."""
        build = metadata.build
        fields = {key: build.get(key) for key in ("tensorrt", "precision", "source_sha256")}
        if build.get("format") != "engine" or not all(
            isinstance(value, str) for value in fields.values()
        ):
            return None
        return cls(imgsz=metadata.imgsz, batch=metadata.batch, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EngineDecision:
    """What `decide_engine` chose: ``build`` a new engine at ``path`` or ``reuse`` the one there."""

    action: str
    path: Path
    reason: str


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
    folder: Path,
    gpu: GpuDescription,
    *,
    engines: Mapping[str, BuildRecord | None],
    wanted: BuildRecord,
) -> EngineDecision:
    """Whether the engine for ``gpu`` in ``folder`` can be reused or must be built.

    Args:
        folder: where the engines live.
        gpu: the GPU in hand.
        engines: the engine files already in ``folder``: name -> its build record (``None``
            when it has none).
        wanted: the record of the engine asked for.

    Returns:
        ``reuse`` when the engine for exactly this GPU exists and its record equals ``wanted``;
        ``build`` otherwise, with the reason (which fields changed).
    """
    name = engine_file_name(gpu)
    path = folder / name
    if name not in engines:
        others = sorted(n for n in engines if engine_gpu(n) is not None)
        found = f"engines here are for other GPUs: {', '.join(others)}" if others else "none here"
        return EngineDecision("build", path, f"no engine for this GPU ({found})")
    record = engines[name]
    if record is None:
        return EngineDecision("build", path, f"{name} has no build record")
    changed = record.differences(wanted)
    if changed:
        return EngineDecision("build", path, f"{name} was built otherwise: {', '.join(changed)}")
    return EngineDecision(
        "reuse",
        path,
        f"{name} was built by TensorRT {wanted.tensorrt} from this model at imgsz "
        f"{wanted.imgsz}, batch {wanted.batch}, {wanted.precision}",
    )


def existing_engines(folder: Path) -> dict[str, BuildRecord | None]:
    """The engine files in ``folder``: name -> the build record in its metadata file, if any."""
    if not folder.is_dir():
        return {}
    return {
        path.name: _record_of(path)
        for path in folder.glob("azaion.cc_*.engine")
        if engine_gpu(path.name) is not None and path.is_file()
    }


def _record_of(engine: Path) -> BuildRecord | None:
    try:
        metadata = read_metadata(engine)
    except EngineError as exc:
        logger.warning("ignoring the metadata of %s: %s", engine.name, exc)
        return None
    return BuildRecord.from_metadata(metadata) if metadata is not None else None


def engine_precision(gpu: GpuDescription, *, half: bool, int8: bool) -> str:
    """What an engine will be built as on ``gpu`` (one of `PRECISIONS`)."""
    if int8:
        return "int8"
    return "fp16" if half and has_fast_fp16(gpu) else "fp32"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _free_workspace(fraction: float) -> int:
    import torch

    free, _total = torch.cuda.mem_get_info()
    return workspace_bytes(free, fraction)
