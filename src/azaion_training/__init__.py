"""Azaion AI Training: annotated aerial images in, encrypted deployable YOLO models out.

The public API is re-exported here; import from ``azaion_training`` rather than from modules.
"""

from importlib import metadata as _metadata

from azaion_training.classes import NUM_SLOTS, ClassInfo, ClassTable, WeatherMode
from azaion_training.config import Settings, load_settings
from azaion_training.errors import (
    ApiError,
    AuthError,
    AzaionError,
    CdnError,
    ConfigError,
    CryptoError,
    DatasetError,
    EngineError,
    ExportError,
    IntegrityError,
    LabelError,
    MediaError,
    MessageError,
    QueueError,
    StoreError,
    TrainingError,
    UnsafePathError,
)
from azaion_training.fs import (
    AnnotationDir,
    DataTree,
    atomic_move,
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    check_name,
)
from azaion_training.labels import (
    Box,
    clip_box,
    clip_boxes,
    format_label,
    parse_label,
    read_label,
    write_label,
)
from azaion_training.logs import setup_logging

try:
    __version__ = _metadata.version("azaion-training")
except _metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "NUM_SLOTS",
    "AnnotationDir",
    "ApiError",
    "AuthError",
    "AzaionError",
    "Box",
    "CdnError",
    "ClassInfo",
    "ClassTable",
    "ConfigError",
    "CryptoError",
    "DataTree",
    "DatasetError",
    "EngineError",
    "ExportError",
    "IntegrityError",
    "LabelError",
    "MediaError",
    "MessageError",
    "QueueError",
    "Settings",
    "StoreError",
    "TrainingError",
    "UnsafePathError",
    "WeatherMode",
    "__version__",
    "atomic_move",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_writer",
    "check_name",
    "clip_box",
    "clip_boxes",
    "format_label",
    "load_settings",
    "parse_label",
    "read_label",
    "setup_logging",
    "write_label",
]
