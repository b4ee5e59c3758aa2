"""Making the samples of one annotation: decode once, write the original and every variant.

This runs in the worker processes of the pass (`runner`), one call per annotation. It never
raises for a bad annotation: the outcome says what happened, and the main process acts on it
(records the stamp, or moves the annotation to ``data-corrupted/``).

Writes are atomic (temporary dot-file, rename) but not fsynced one by one: the main process
flushes the disk once before it records a batch of finished annotations in the state, which is
an order of magnitude cheaper than 16 fsyncs per annotation and just as safe, because an
annotation whose samples were not flushed is not recorded and is made again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from azaion_training.augment.functional import variant_seed
from azaion_training.augment.pipeline import BoxDrops, BoxRules, augment, build_pipeline
from azaion_training.augment.plan import output_image_names, output_label_names
from azaion_training.errors import LabelError, MediaError
from azaion_training.fs import AnnotationDir, atomic_write_bytes, atomic_write_text
from azaion_training.images import ToRGB, decode, encode_png, is_model_input, sample_suffix, to_bgr
from azaion_training.labels import Box, clip_boxes, format_label, read_label

if TYPE_CHECKING:
    import albumentations as A


class Outcome(enum.Enum):
    """What became of one annotation."""

    MADE = "made"
    """Every sample was written."""
    CORRUPTED = "corrupted"
    """The image does not decode or the label is invalid; nothing was written."""
    VANISHED = "vanished"
    """The image or label disappeared before it was read (moved by the queue consumer)."""
    FAILED = "failed"
    """Writing failed (disk full, permissions); the annotation is tried again next pass."""


@dataclass(frozen=True)
class SampleJob:
    """One annotation to augment, and how."""

    name: str
    image: Path
    label: Path
    output: AnnotationDir
    variants: int
    rules: BoxRules
    jpeg_quality: int
    to_rgb: ToRGB = field(default_factory=ToRGB)
    """How the image becomes the model's 8-bit 3-channel input (`azaion_training.images`)."""


@dataclass(frozen=True)
class SampleResult:
    """The outcome of one `SampleJob`; ``samples`` counts the image/label pairs written."""

    name: str
    outcome: Outcome
    samples: int = 0
    reason: str = ""
    dropped: BoxDrops = field(default_factory=BoxDrops)
    """Boxes the variants dropped (SPEC 6), by reason."""


_pipeline: A.Compose | None = None

# glibc mallopt parameters (malloc.h), and the size below which freed memory stays in the heap.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 64 * 1024 * 1024


def init_worker() -> None:
    """Prepares a worker process: one OpenCV thread, the pipeline built once, signals ignored.

    The main process alone reacts to SIGINT/SIGTERM (Ctrl-C reaches the whole process group): it
    stops handing out work and lets the workers finish the annotation in hand.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with_parent()
    _keep_freed_memory()
    cv2.setNumThreads(1)
    _get_pipeline()


def _exit_with_parent() -> None:
    """Ends this worker when the daemon that started it is gone (kill -9, out of memory).

    A pool worker otherwise waits for work forever, holding its fork server alive with it.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _keep_freed_memory() -> None:
    """Lets glibc keep freed image buffers in the heap for the next variant.

    Every variant allocates and frees a few image-sized buffers (2.7 MB at 1280x720). A fresh
    process serves each from a new ``mmap``, so every page faults in again: some 40 MB of page
    faults per annotation, a third of a worker's CPU time. A no-op where the C library is not
    glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)


def make_samples(job: SampleJob) -> SampleResult:
    """Writes the original and ``job.variants`` variants of one annotation (see the module)."""
    try:
        boxes = read_label(job.label)
        data = job.image.read_bytes()
    except LabelError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return SampleResult(job.name, Outcome.VANISHED, reason=str(exc))
        return SampleResult(job.name, Outcome.CORRUPTED, reason=_label_reason(exc))
    except FileNotFoundError as exc:
        return SampleResult(job.name, Outcome.VANISHED, reason=str(exc))
    try:
        stored = decode(data, what="image")
        image = to_bgr(stored, job.to_rgb)
    except MediaError as exc:
        return SampleResult(job.name, Outcome.CORRUPTED, reason=str(exc))
    if not (is_model_input(stored) and sample_suffix(job.image.suffix) == job.image.suffix):
        data = encode_png(image[:, :, ::-1])  # the original sample as the model will read it
    try:
        dropped = BoxDrops()
        written = _write_samples(job, data, image, clip_boxes(boxes, min_area=0.0), dropped)
    except (OSError, MediaError) as exc:
        return SampleResult(job.name, Outcome.FAILED, reason=f"cannot write samples: {exc}")
    return SampleResult(job.name, Outcome.MADE, samples=written, dropped=dropped)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR image.

    Raises:
        MediaError: OpenCV could not encode it.
    """
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError("OpenCV could not encode a JPEG")
    return encoded.tobytes()


def _write_samples(
    job: SampleJob, data: bytes, image: np.ndarray, boxes: list[Box], dropped: BoxDrops
) -> int:
    images = output_image_names(job.name, job.image.suffix, variants=job.variants)
    labels = output_label_names(job.name, variants=job.variants)
    _write_pair(job.output, images[0], data, labels[0], boxes)
    pipeline = _get_pipeline()
    for index in range(1, job.variants + 1):
        variant, moved = augment(
            pipeline,
            image,
            boxes,
            seed=variant_seed(job.name, index),
            rules=job.rules,
            drops=dropped,
        )
        encoded = encode_jpeg(variant, job.jpeg_quality)
        _write_pair(job.output, images[index], encoded, labels[index], moved)
    return len(images)


def _write_pair(
    output: AnnotationDir, image_name: str, data: bytes, label_name: str, boxes: list[Box]
) -> None:
    atomic_write_bytes(output.images / image_name, data, durable=False)
    atomic_write_text(output.labels / label_name, format_label(boxes), durable=False)


def _label_reason(exc: LabelError) -> str:
    where = f"line {exc.line}: " if exc.line is not None else ""
    return f"invalid label: {where}{exc.reason}"


def _get_pipeline() -> A.Compose:
    global _pipeline
    if _pipeline is None:
        _pipeline = build_pipeline()
    return _pipeline
