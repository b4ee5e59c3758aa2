"""Azaion AI Training: annotated aerial images in, encrypted deployable YOLO models out.

The public API is re-exported here: import from ``azaion_training`` rather than from modules.
Names are resolved on first use (PEP 562), so ``import azaion_training`` stays cheap and a console
script pays only for the components it runs (boto3, rstream, torch, ... load when needed).

Example:
    >>> import azaion_training as az
    >>> az.ClassTable.default()[21].name
    'Truck(Wint)'
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "augment": ("Augmenter", "PassSummary", "augment_tree"),
    "classes": ("NUM_SLOTS", "ClassInfo", "ClassTable", "WeatherMode"),
    "config": ("Settings", "load_settings"),
    "convert": ("ClassMap", "ConversionReport", "SkipReason", "convert"),
    "dataset": ("FormedDataset", "SplitCounts", "SplitLedger", "form_dataset"),
    "demo.run": ("DemoPlan", "DemoReport", "run_demo"),
    "errors": (
        "ApiError",
        "AuthError",
        "AzaionError",
        "CdnError",
        "CdnUnreachableError",
        "ConfigError",
        "CryptoError",
        "DatasetError",
        "EngineError",
        "ExportError",
        "IntegrityError",
        "LabelError",
        "MediaError",
        "MessageError",
        "QueueError",
        "StoreError",
        "TrainingError",
        "UnsafePathError",
    ),
    "evaluate.run": ("evaluate_model",),
    "export.dispatch": ("ExportResult", "export_model"),
    "export.onnx": ("export_onnx",),
    "export.sample": ("form_data_sample",),
    "fs": (
        "AnnotationDir",
        "DataTree",
        "atomic_move",
        "atomic_write_bytes",
        "atomic_write_text",
        "atomic_writer",
        "check_name",
    ),
    "infer": ("Detections", "Engine", "InferSummary", "infer_video", "load_engine", "open_engine"),
    "labels": (
        "Box",
        "clip_box",
        "clip_boxes",
        "format_label",
        "parse_label",
        "read_label",
        "write_label",
    ),
    "logs": ("setup_logging",),
    "store.models": (
        "LocalStore",
        "ModelStore",
        "PublishedModel",
        "RemoteStore",
        "StoredModel",
        "fetch_model",
        "open_store",
        "publish_file",
    ),
    "queue": (
        "Annotation",
        "AnnotationConsumer",
        "AnnotationRouter",
        "AnnotationStatus",
        "BulkAnnotations",
        "Detection",
        "Role",
        "decode_message",
        "encode_message",
    ),
    "store.security": ("decrypt", "encrypt", "hash_text"),
    "train.job": ("train",),
    "train.result": ("TrainResult",),
    "visualise": ("collect_stats", "grid_figure", "stats_table"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

try:
    __version__ = _metadata.version("azaion-training")
except _metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'azaion_training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"azaion_training.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
