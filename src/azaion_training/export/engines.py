"""TensorRT engine files: their names per GPU, their build records, and when one is reused.

An engine only runs on the kind of GPU it was built on, so its file name carries the GPU's compute
capability and multiprocessor count: ``azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine``
(KEEP). Beside it, its metadata file (`azaion_training.infer.metadata`) holds the class names and
the `BuildRecord`: TensorRT version, size, batch, precision built, SHA-256 of the source ``.pt``.
`decide_engine` reuses the engine of the GPU in hand only when that record equals the request,
and otherwise says which fields changed; engines of other GPUs are left alone.

Everything here runs anywhere (no TensorRT, no GPU); the builder is `export.tensorrt`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azaion_training.errors import EngineError, ExportError
from azaion_training.infer.metadata import ModelMetadata, read_metadata

logger = logging.getLogger(__name__)

ENGINE_NAME = re.compile(r"^azaion\.cc_(?P<major>\d+)\.(?P<minor>\d+)_sm_(?P<sm>\d+)\.engine$")
"""Matches the engine file names written by `engine_file_name`."""


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
