"""The engine table: which file suffix runs on which engine, and loading a model into it.

One row per engine kind; the implementation is imported only when a model of that kind loads,
so a host without TensorRT or the RKNN runtime runs ONNX models untouched. A new engine is one
module implementing `Engine` plus one row in `ENGINES`.

Example:
    >>> engine_kind("models/azaion.cc_8.9_sm_128.engine")
    'engine'
    >>> print(engines_help())
    .onnx    ONNX Runtime, CUDA when available
    .engine  TensorRT, for the GPU it was built on
    .rknn    rknn-toolkit-lite2 on a Rockchip RK3588 board
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azaion_training.errors import EngineError
from azaion_training.registry import resolve

if TYPE_CHECKING:
    from azaion_training.config import Settings
    from azaion_training.fs import DataTree
    from azaion_training.infer.engine import Engine


@dataclass(frozen=True)
class EngineType:
    """One row of the engine table.

    Attributes:
        suffixes: model file suffixes (lower case, with the dot) this engine loads.
        implementation: ``"module:Class"``; the class is called with the model (a `Path` or its
            bytes) and returns an `Engine`.
        runtime: what runs the model, in a few words (for ``--help``).
    """

    suffixes: tuple[str, ...]
    implementation: str
    runtime: str

    def load(self, model: Path | bytes) -> Engine:
        """Imports the implementation and builds the engine."""
        factory: Callable[[Path | bytes], Engine] = resolve(self.implementation)
        return factory(model)


ENGINES: dict[str, EngineType] = {
    "onnx": EngineType(
        (".onnx",), "azaion_training.infer.onnx:OnnxEngine", "ONNX Runtime, CUDA when available"
    ),
    "engine": EngineType(
        (".engine",),
        "azaion_training.infer.tensorrt:TensorRtEngine",
        "TensorRT, for the GPU it was built on",
    ),
    "rknn": EngineType(
        (".rknn",),
        "azaion_training.infer.rknn:RknnEngine",
        "rknn-toolkit-lite2 on a Rockchip RK3588 board",
    ),
}
"""Engine kind -> its suffixes and implementation. The kind names the export format too."""

DEFAULT_KIND = "onnx"
"""The kind of a store model whose name has no known suffix."""


def suffixes() -> list[str]:
    """Every model file suffix some engine loads, in table order."""
    return [suffix for row in ENGINES.values() for suffix in row.suffixes]


def engines_help() -> str:
    """One line per suffix: the suffix and its runtime (used by ``azaion-infer --help``)."""
    rows = [(s, row.runtime) for row in ENGINES.values() for s in row.suffixes]
    width = max(len(s) for s, _ in rows)
    return "\n".join(f"{s:<{width}}  {runtime}" for s, runtime in rows)


def engine_kind(name: str | Path) -> str:
    """The engine kind of a model file name, from its suffix (any case).

    Raises:
        EngineError: no engine loads that suffix.
    """
    suffix = Path(name).suffix.lower()
    for kind, row in ENGINES.items():
        if suffix in row.suffixes:
            return kind
    known = ", ".join(suffixes())
    raise EngineError(f"{Path(name).name}: unknown model type {suffix!r} (expected {known})")


def load_engine(model: Path | bytes, *, kind: str | None = None) -> Engine:
    """Loads a model file, or model bytes held in memory, into the engine of its kind.

    Args:
        model: a model file, or its bytes (a model decrypted in memory is never written to disk).
        kind: a key of `ENGINES`; taken from the file suffix when ``None``. Required for bytes.

    Raises:
        EngineError: unknown kind or suffix, missing runtime, or a model the runtime refuses.
    """
    if kind is None:
        if isinstance(model, bytes):
            raise EngineError("the engine kind is required for a model given as bytes")
        kind = engine_kind(model)
    if kind not in ENGINES:
        raise EngineError(f"unknown engine kind {kind!r} (expected one of {sorted(ENGINES)})")
    if isinstance(model, Path) and not model.is_file():
        raise EngineError(f"model {model} does not exist")
    return ENGINES[kind].load(model)


def open_engine(
    settings: Settings, tree: DataTree, *, model: Path | None = None, from_store: str | None = None
) -> Engine:
    """Loads the engine for a run: a model file, a model from the store, or the current model.

    Args:
        model: a model file of a kind in `ENGINES`.
        from_store: a model name in the store; its bytes are decrypted in memory and never
            written to disk. The engine kind follows the name's suffix (`DEFAULT_KIND` without
            a known one).
        (neither): the current model, ``models/azaion.onnx`` under the data root.

    Raises:
        EngineError: unknown model type, missing file or runtime, or a model that does not load.
        StoreError: the store cannot give the model.
    """
    if model is not None and from_store is not None:
        raise ValueError("give a model file or a store name, not both")
    if from_store is not None:
        known = Path(from_store).suffix.lower() in suffixes()
        kind = engine_kind(from_store) if known else DEFAULT_KIND
        from azaion_training.store.models import fetch_model

        return load_engine(fetch_model(settings, tree, from_store), kind=kind)
    return load_engine(model if model is not None else tree.current_model_onnx)
