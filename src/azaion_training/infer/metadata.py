"""The metadata file written beside every exported model: ``{model file name}.json``.

``azaion.rk3588.rknn`` gets ``azaion.rk3588.rknn.json``, ``azaion.cc_8.6_sm_82.engine`` gets
``azaion.cc_8.6_sm_82.engine.json``. It says what the engine on the target needs and cannot read
from the model itself (an ``.rknn`` carries no input size or class names), and how the model was
built (``build``: precision, toolkit and its version, the digest of the source model...), which is
TensorRT's build record (`azaion_training.export.engines.decide_engine`), and how frames are
meant to be cut for it (``tiles``: the ``--tiles`` choice, its overlap and ``auto`` factor, as
`azaion_training.infer.tiles.TilePlan.parse` reads them; files without it mean the defaults).

Example:
    >>> metadata = ModelMetadata(imgsz=640, batch=1, names=["car"], build={"precision": "fp16"})
    >>> ModelMetadata.from_json(metadata.to_json()) == metadata
    True
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from azaion_training.errors import EngineError
from azaion_training.fs import atomic_write_text

SUFFIX = ".json"

DEFAULT_TILES: dict[str, str | float] = {"tiles": "auto", "overlap": 0.2, "factor": 1.5}
"""The tiling of a model whose metadata says none (the ``infer`` settings' defaults)."""


@dataclass(frozen=True)
class ModelMetadata:
    """What an exported model is: input size, batch, class names, and how it was built."""

    imgsz: int
    """Square input size in pixels."""
    batch: int
    """The batch the model was built for."""
    names: list[str]
    """Class names by class id."""
    build: dict[str, str | int] = field(default_factory=dict)
    """How it was built (format-specific keys; the TensorRT build record)."""
    tiles: dict[str, str | float] = field(default_factory=lambda: dict(DEFAULT_TILES))
    """How frames are cut for it: ``{"tiles": "auto"|"off"|"WxH", "overlap": F, "factor": X}``."""

    def to_json(self) -> str:
        """The file's text."""
        body = {
            "imgsz": self.imgsz,
            "batch": self.batch,
            "names": self.names,
            "build": self.build,
            "tiles": self.tiles,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "metadata") -> ModelMetadata:
        """Parses the file's text.

        Raises:
            EngineError: not JSON, or a field missing or of the wrong type.
        """
        try:
            body = json.loads(text)
            imgsz, batch, names = body["imgsz"], body["batch"], body["names"]
            build = body.get("build", {})
            tiles = {**DEFAULT_TILES, **body.get("tiles", {})}
        except (ValueError, TypeError, KeyError) as exc:
            raise EngineError(f"{source}: not a model metadata file ({exc!r})") from exc
        valid = (
            _positive_int(imgsz)
            and _positive_int(batch)
            and isinstance(names, list)
            and all(isinstance(name, str) for name in names)
            and isinstance(build, dict)
            and _tiles_valid(tiles)
        )
        if not valid:
            raise EngineError(
                f"{source}: imgsz and batch must be positive integers, names a list of strings, "
                'tiles {"tiles": auto|off|WxH, "overlap": 0..1, "factor": >= 1}'
            )
        return cls(imgsz=imgsz, batch=batch, names=names, build=build, tiles=tiles)


def metadata_path(model: Path) -> Path:
    """The metadata file of ``model``: its name with ``.json`` appended."""
    return model.with_name(model.name + SUFFIX)


def write_metadata(model: Path, metadata: ModelMetadata) -> Path:
    """Writes the metadata file of ``model`` atomically; returns its path."""
    path = metadata_path(model)
    atomic_write_text(path, metadata.to_json())
    return path


def read_metadata(model: Path) -> ModelMetadata | None:
    """The metadata file of ``model``, or ``None`` when there is none.

    Raises:
        EngineError: the file exists but cannot be read or parsed.
    """
    path = metadata_path(model)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(f"cannot read {path}: {exc}") from exc
    return ModelMetadata.from_json(text, source=str(path))


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _tiles_valid(tiles: object) -> bool:
    if not isinstance(tiles, dict):
        return False
    choice, overlap, factor = tiles.get("tiles"), tiles.get("overlap"), tiles.get("factor")
    return (
        isinstance(choice, str)
        and re.fullmatch(r"auto|off|[1-9][0-9]*x[1-9][0-9]*", choice) is not None
        and isinstance(overlap, (int, float))
        and 0 <= overlap < 1
        and isinstance(factor, (int, float))
        and factor >= 1
    )
