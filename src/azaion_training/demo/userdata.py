"""The user's own labelled images for the demo (``azaion-demo --data``), checked before anything
expensive starts (a broker, the augmenter, training).

`prepare_user_data` turns ``--data`` into a folder the queue can send:

- ``yolo`` folders are used as they are; other formats go through `azaion_training.convert`
  with the user's ``--map``/``--skip`` and class table (``--classes``); images the queue refuses
  (TIFF/GeoTIFF) are written as 8-bit RGB PNG (``queue_ready``, the ``images`` settings).
- ``chips``: images larger than ``chips`` pixels are cut into ``chips`` x ``chips`` pieces (no
  overlap, boxes cut by the augmentation rule), each its own annotation, so that a handful of
  large aerial images gives enough pieces for a train, a valid and a test split. Held-out
  pieces are other ground than the training pieces, but from the same images.
- Then the checks, each one line saying why and what to try: no box at all, fewer than
  `MIN_IMAGES` images with boxes; and a warning when the median box would reach the model
  smaller than its stride (`STRIDE`) at the chosen size.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from azaion_training.boxes import cut_to_window, windows
from azaion_training.classes import ClassTable
from azaion_training.errors import DatasetError, LabelError, MediaError
from azaion_training.fs import AnnotationDir, atomic_write_bytes, list_images
from azaion_training.imageheader import image_size
from azaion_training.images import QUEUE_SUFFIXES, ToRGB, encode_png, read_image
from azaion_training.labels import Box, read_label, write_label

logger = logging.getLogger(__name__)

MIN_IMAGES = 3
"""Images with boxes the demo needs: at least one each for train, valid and test."""

STRIDE = 8
"""The finest stride of the YOLO detection head (P3): a box smaller than this at the model's
input covers less than one cell and is hardly learnt."""


@dataclass(frozen=True)
class UserData:
    """The user's own labelled images: a folder (``yolo``, ``voc``) or a JSON file (``coco``).

    Attributes:
        options: the converter's options (``{"images": DIR}`` for ``coco``).
        maps, skips: ``--map`` and ``--skip`` texts (`convert.classmap`).
        classes: the user's class table (``classes.json``), else the configured one.
        chips: cut images larger than this many pixels into pieces of this size.
    """

    path: Path
    format: str = "yolo"
    options: Mapping[str, Any] = field(default_factory=dict)
    maps: Sequence[str] = ()
    skips: Sequence[str] = ()
    classes: Path | None = None
    chips: int | None = None


@dataclass(frozen=True)
class PreparedData:
    """What `prepare_user_data` made: the folder to send and what the run must know."""

    folder: AnnotationDir
    images: int
    boxes: int
    classes: Path | None
    notes: tuple[str, ...] = ()
    """Lines for the console and the report (what was converted, warnings)."""


def prepare_user_data(
    data: UserData,
    work: Path,
    *,
    table: ClassTable,
    to_rgb: ToRGB,
    imgsz: int,
    tiled: bool,
    progress: bool,
) -> PreparedData:
    """Converts and checks the user's data (see the module).

    Args:
        work: an empty folder for the converted and cut images.
        table: the configured class table (``data.classes`` replaces it).
        imgsz: the training size, for the small-box warning.
        tiled: large frames are tiled at native resolution (``dataset.tiles``, ``infer.tiles``).

    Raises:
        DatasetError: nothing usable: no box, too few images with boxes (one line, with what
            to try).
    """
    if data.classes is not None:
        table = ClassTable.from_json(data.classes)
    folder, classes, notes = _source(data, work, table=table, to_rgb=to_rgb, progress=progress)
    if classes is None and data.classes is not None:
        classes = data.classes
    if data.chips:
        folder = _cut(folder, AnnotationDir(work / "chips"), data.chips, to_rgb=to_rgb)
        notes.append(f"cut images larger than {data.chips} px into {data.chips} px pieces")
    counts = _boxes(folder)
    images, boxes = sum(1 for n in counts.values() if n), sum(counts.values())
    if boxes == 0:
        raise DatasetError(
            f"no box in {data.path} ({len(counts)} images): give YOLO labels "
            "(labels/NAME.txt beside images/), or map the class names with --map NAME=CLASSNAME"
        )
    if images < MIN_IMAGES:
        raise DatasetError(
            f"only {images} image(s) with boxes in {data.path}; the demo needs {MIN_IMAGES} "
            "(train, valid, test): add images, or cut large ones into pieces with --chips PX"
        )
    small = _small_box_warning(folder, imgsz=imgsz, tiled=tiled)
    if small:
        logger.warning("%s", small)
        notes.append(f"warning: {small}")
    return PreparedData(folder, images, boxes, classes, tuple(notes))


def _source(
    data: UserData, work: Path, *, table: ClassTable, to_rgb: ToRGB, progress: bool
) -> tuple[AnnotationDir, Path | None, list[str]]:
    if data.format == "yolo":
        if not data.path.is_dir():
            raise DatasetError(f"{data.path} is not a folder of images and YOLO labels")
        folder = AnnotationDir(data.path)
        if any(p.suffix.lower() not in QUEUE_SUFFIXES for p in list_images(folder.images)):
            return _queue_ready(folder, AnnotationDir(work / "queue-ready"), to_rgb), None, []
        return folder, None, []
    from azaion_training.convert.classmap import class_map_from_options
    from azaion_training.convert.runner import convert

    class_map = class_map_from_options(data.maps, data.skips, table=table)
    target = work / "converted"
    report = convert(
        data.format,
        data.path,
        target,
        class_map=class_map,
        progress=progress,
        queue_ready=True,
        to_rgb=to_rgb,
        **data.options,
    )
    logger.info("%s", report.summary())
    problem = report.nothing_converted()
    if problem is not None:
        raise DatasetError(f"{data.path} ({data.format}): {problem}")
    notes = [f"converted {report.images} images, {report.boxes} boxes from {data.path}"]
    if report.rewritten:
        notes.append(f"{report.rewritten} TIFF images sent as 8-bit RGB PNG")
    return AnnotationDir(target), report.classes_file, notes


def _queue_ready(source: AnnotationDir, target: AnnotationDir, to_rgb: ToRGB) -> AnnotationDir:
    """A copy of a YOLO folder whose TIFF images are PNG (the queue's formats)."""
    target.create()
    for image in list_images(source.images):
        label = source.label_path(image.stem)
        boxes = read_label(label) if label.is_file() else []
        if image.suffix.lower() in QUEUE_SUFFIXES:
            atomic_write_bytes(target.images / image.name, image.read_bytes())
        else:
            atomic_write_bytes(target.image_path(image.stem, ".png"), _png(image, to_rgb))
        write_label(target.label_path(image.stem), boxes)
    return target


def _cut(
    source: AnnotationDir, target: AnnotationDir, side: int, *, to_rgb: ToRGB
) -> AnnotationDir:
    """Images larger than ``side`` cut into ``side`` pieces named ``{stem}-x{X}-y{Y}``."""
    target.create()
    for image in list_images(source.images):
        label = source.label_path(image.stem)
        boxes = read_label(label) if label.is_file() else []
        rgb = _rgb(image, to_rgb)
        height, width = rgb.shape[:2]
        if max(width, height) <= side:
            atomic_write_bytes(target.image_path(image.stem, ".png"), encode_png(rgb))
            write_label(target.label_path(image.stem), boxes)
            continue
        scale = np.array([width, height, width, height], np.float64)
        xyxy = np.array([b.xyxy for b in boxes], np.float64).reshape(-1, 4) * scale
        ids = [b.class_id for b in boxes]
        for window in windows((height, width), (side, side), overlap=0.0):
            x1, y1, x2, y2 = window.x, window.y, window.x + window.w, window.y + window.h
            clipped, outside, thin = cut_to_window(
                xyxy, (x1, y1, x2, y2), min_visible_fraction=0.5, min_box_px=2.0
            )
            kept = [
                Box.from_xyxy(
                    ids[i],
                    (clipped[i, 0] - x1) / window.w,
                    (clipped[i, 1] - y1) / window.h,
                    (clipped[i, 2] - x1) / window.w,
                    (clipped[i, 3] - y1) / window.h,
                )
                for i in range(len(ids))
                if not (outside[i] or thin[i])
            ]
            name = f"{image.stem}-x{x1}-y{y1}"
            piece = rgb[y1:y2, x1:x2]
            atomic_write_bytes(target.image_path(name, ".png"), encode_png(piece))
            write_label(target.label_path(name), kept)
    return target


def _rgb(image: Path, to_rgb: ToRGB) -> np.ndarray:
    try:
        return read_image(image, to_rgb)
    except (OSError, MediaError) as exc:
        raise DatasetError(f"{image} cannot be read as an image: {exc}") from exc


def _png(image: Path, to_rgb: ToRGB) -> bytes:
    return encode_png(_rgb(image, to_rgb))


def _boxes(folder: AnnotationDir) -> dict[str, int]:
    """Boxes per image of ``folder`` (0 for an image without a label)."""
    counts = {}
    for image in list_images(folder.images):
        label = folder.label_path(image.stem)
        try:
            counts[image.stem] = len(read_label(label)) if label.is_file() else 0
        except LabelError as exc:
            raise DatasetError(f"{label}: {exc}") from exc
    return counts


def _small_box_warning(folder: AnnotationDir, *, imgsz: int, tiled: bool) -> str | None:
    """A warning when the median box reaches the model smaller than `STRIDE` pixels."""
    sides = []
    for image in list_images(folder.images):
        label = folder.label_path(image.stem)
        if not label.is_file():
            continue
        width, height = image_size(image)
        scale = 1.0 if tiled and max(width, height) > imgsz else imgsz / max(width, height)
        sides.extend(scale * float(np.sqrt(b.w * width * b.h * height)) for b in read_label(label))
    if not sides:
        return None
    median = statistics.median(sides)
    if median >= STRIDE:
        return None
    return (
        f"the median box is {median:.1f} px at the model's input (size {imgsz}), "
        f"smaller than its stride {STRIDE}: it will hardly be learnt; train at a larger "
        "--imgsz, or cut the images into pieces with --chips PX (or tile: dataset.tiles)"
    )
