"""The file side of a conversion: find annotations and images, write images and YOLO labels.

``DEST`` receives ``images/{name}{ext}`` (copied, or hard-linked with ``link=True``; with
``queue_ready=True`` an image the queue would refuse, a TIFF, is written as the model's 8-bit RGB
PNG by `azaion_training.images.to_model_rgb`) and ``labels/{name}.txt`` (written through
`azaion_training.labels.write_label`, atomically). An image
is written only together with its label; an annotation whose image is missing or unreadable, whose
recorded size differs from the image, or whose name is unsafe or already used is skipped whole.
Boxes with an unknown class, outside the image or without area are left out of the label. Every
skip is counted in the returned `ConversionReport`. When the class map added classes by name
(``--map Tree=Tree``), ``DEST/classes.json`` holds the table with them (the ``classes`` setting
to train and draw with).

Where the sources are looked for:

- ``voc``: every ``*.xml`` under ``SRC``; each image by ``<filename>`` anywhere under ``SRC``
  (preferring the XML's own folder), else by the XML's stem.
- ``oriented``: every ``*.txt`` under ``SRC``; each image by the text file's stem.
- ``coco``: ``SRC`` is a JSON file, or a folder whose ``*.json`` files are all read; images by
  ``file_name`` under ``images`` (default: the JSON's folder), else by their file name alone.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from azaion_training.convert.classmap import ClassMap
from azaion_training.convert.records import DEFAULT_EDGE_TOLERANCE_PX, SourceAnnotation, to_yolo
from azaion_training.convert.report import ConversionReport, Skip, SkipReason
from azaion_training.convert.sources import ImageIndex, Reader, ReadOptions, Sources
from azaion_training.errors import DatasetError, MediaError, UnsafePathError
from azaion_training.fs import (
    AnnotationDir,
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    check_name,
    link_or_copy,
)
from azaion_training.imageheader import image_size
from azaion_training.images import MODEL_INPUT_SUFFIX, ToRGB, encode_png, format_of, read_image
from azaion_training.labels import write_label
from azaion_training.registry import Option, option_values, resolve

logger = logging.getLogger(__name__)

UnknownPolicy = Literal["skip", "error"]


@dataclass(frozen=True)
class InputFormat:
    """One row of `READERS`.

    Attributes:
        name: ``azaion-convert NAME``.
        reader: its `Reader`, as ``"module:function"``, imported when used.
        finds: where it looks for annotations and images, for ``--help``.
        options: the options only this format takes (`ReadOptions.values`).
    """

    name: str
    reader: str
    finds: str
    options: tuple[Option, ...] = ()


READERS: dict[str, InputFormat] = {
    row.name: row
    for row in (
        InputFormat(
            "voc",
            "azaion_training.convert.voc:read_voc",
            "every *.xml under SRC; images found by <filename> under SRC",
        ),
        InputFormat(
            "oriented",
            "azaion_training.convert.oriented:read_oriented",
            "every *.txt under SRC: 14 columns per box, corners in columns 6-13 (0-based,\n"
            "x1 x2 x3 x4 y1 y2 y3 y4 by default); the class code in column 3 (VEDAI codes:\n"
            "1 car, 2 truck, 7 motorcycle, 9 van, 11 pickup, ...); images found by the file stem",
            options=(
                Option(
                    "corner_order",
                    "how columns 6-13 hold the four corners",
                    type=str,
                    default="xxxxyyyy",
                    choices=("xxxxyyyy", "xyxyxyxy"),
                ),
            ),
        ),
        InputFormat(
            "coco",
            "azaion_training.convert.coco:read_coco",
            "SRC is a COCO JSON file (or a folder of them); images under --images",
            options=(
                Option(
                    "images",
                    "the folder the file_name entries are relative to (default: the JSON's folder)",
                    type=Path,
                    metavar="DIR",
                ),
            ),
        ),
    )
}
"""Source format (``azaion-convert FORMAT``) -> its row."""

CLASSES_FILE = "classes.json"
"""The class table written into ``DEST`` when the map added classes."""

FORMATS: tuple[str, ...] = tuple(READERS)
"""The formats built in (``READERS`` may gain rows at run time)."""


def convert(
    fmt: str,
    source: Path,
    dest: Path,
    *,
    class_map: ClassMap | None = None,
    link: bool = False,
    unknown_classes: UnknownPolicy = "skip",
    edge_tolerance_px: float = DEFAULT_EDGE_TOLERANCE_PX,
    progress: bool = False,
    queue_ready: bool = False,
    to_rgb: ToRGB | None = None,
    **options: Any,
) -> ConversionReport:
    """Converts the annotations at ``source`` into ``dest/images`` and ``dest/labels``.

    Args:
        fmt: a key of `READERS`: ``voc``, ``oriented`` or ``coco``.
        source: a folder (``voc``, ``oriented``), or a JSON file or folder of them (``coco``).
        dest: the folder that receives ``images/`` and ``labels/``.
        class_map: foreign class names -> our slots; `ClassMap.default` when ``None``.
        link: hard-link images instead of copying them (copies across filesystems).
        unknown_classes: ``skip`` reports boxes of unknown classes and leaves them out;
            ``error`` stops before anything is written and names every unknown class.
        edge_tolerance_px: how far a box may cross the border and be clipped, not skipped.
        progress: show a progress bar.
        queue_ready: write images of formats the queue refuses (TIFF) as PNG, by ``to_rgb``.
        to_rgb: how such an image becomes 8-bit RGB (the ``images`` settings).
        options: options of the format (`InputFormat.options`): ``corner_order=`` (the column
            layout of ``oriented``, see `convert.oriented`), ``images=`` (the image folder of
            ``coco``); ``None`` is not given.

    Raises:
        DatasetError: ``source`` is missing or holds no annotations of the format, a COCO file
            does not parse, ``fmt`` is unknown or takes no such option, or
            ``unknown_classes="error"`` and some class is unknown.
    """
    class_map = class_map or ClassMap.default()
    dest_dir = AnnotationDir(Path(dest))
    sources = _read_sources(fmt, Path(source), exclude=dest_dir, options=options)
    if unknown_classes == "error":
        _refuse_unknown(sources.annotations, class_map)
    report = ConversionReport()
    for skip in sources.skips:
        if _is_box_reason(skip):
            report.add_box_skips([skip])
        else:
            report.add_image_skip(skip)
    dest_dir.create()
    if class_map.added:
        report.classes_file = dest_dir.path / CLASSES_FILE
        atomic_write_text(report.classes_file, class_map.table.to_json())
    report.class_names = {
        slot: class_map.table[slot].name for slot in sorted(set(class_map.ids.values()))
    }
    placer = _Placer(link=link, queue_ready=queue_ready, to_rgb=to_rgb or ToRGB())
    written: set[str] = set()
    for annotation in _progress(sources.annotations, enabled=progress, fmt=fmt):
        _convert_one(
            annotation,
            dest=dest_dir,
            images=sources.images,
            class_map=class_map,
            placer=placer,
            edge_tolerance_px=edge_tolerance_px,
            written=written,
            report=report,
        )
    for skip in (*report.skipped_images, *report.skipped_boxes):
        logger.debug("skipped %s", skip)
    return report


def _convert_one(
    annotation: SourceAnnotation,
    *,
    dest: AnnotationDir,
    images: ImageIndex,
    class_map: ClassMap,
    placer: _Placer,
    edge_tolerance_px: float,
    written: set[str],
    report: ConversionReport,
) -> None:
    problem = _check_name(annotation, written)
    image_path = None
    if problem is None:
        image_path = images.find(annotation.image, stem=annotation.name, near=annotation.source)
        if image_path is None:
            wanted = annotation.image or f"{annotation.name}.*"
            problem = Skip(SkipReason.IMAGE_MISSING, annotation.source, wanted)
    size = None
    if problem is None and image_path is not None:
        size, problem = _image_size(image_path, annotation)
    if problem is not None or image_path is None or size is None:
        report.add_image_skip(problem or Skip(SkipReason.IMAGE_MISSING, annotation.source))
        return
    boxes, skips = to_yolo(
        annotation,
        width=size[0],
        height=size[1],
        class_map=class_map,
        edge_tolerance_px=edge_tolerance_px,
    )
    try:
        placer.place(image_path, dest, annotation.name, report)
    except MediaError as exc:
        report.add_image_skip(Skip(SkipReason.IMAGE_UNREADABLE, str(image_path), str(exc)))
        return
    report.add_box_skips(skips)
    write_label(dest.label_path(annotation.name), boxes)
    for box in boxes:
        report.class_boxes[box.class_id] += 1
    written.add(annotation.name)
    report.images += 1
    report.boxes += len(boxes)


def _check_name(annotation: SourceAnnotation, written: set[str]) -> Skip | None:
    try:
        check_name(annotation.name, what="output name")
    except UnsafePathError as exc:
        return Skip(SkipReason.BAD_NAME, annotation.source, str(exc))
    if annotation.name in written:
        return Skip(SkipReason.DUPLICATE_NAME, annotation.source, annotation.name)
    return None


def _image_size(
    path: Path, annotation: SourceAnnotation
) -> tuple[tuple[int, int] | None, Skip | None]:
    try:
        size = image_size(path)
    except (OSError, MediaError) as exc:
        return None, Skip(SkipReason.IMAGE_UNREADABLE, str(path), str(exc))
    if annotation.size is not None and annotation.size != size:
        recorded = f"{annotation.size[0]}x{annotation.size[1]}"
        detail = f"annotation says {recorded}, {path.name} is {size[0]}x{size[1]}"
        return None, Skip(SkipReason.SIZE_MISMATCH, annotation.source, detail)
    return size, None


@dataclass(frozen=True)
class _Placer:
    """Puts each image into ``DEST``: as it is, or (``queue_ready``) a TIFF as an RGB PNG."""

    link: bool
    queue_ready: bool
    to_rgb: ToRGB

    def place(self, source: Path, dest: AnnotationDir, name: str, report: ConversionReport) -> None:
        found = format_of(source)
        if found is not None and not found.queue:
            report.not_for_queue[found.name] += 1
            if self.queue_ready:
                png = encode_png(read_image(source, self.to_rgb))
                atomic_write_bytes(dest.image_path(name, MODEL_INPUT_SUFFIX), png)
                report.rewritten += 1
                return
        target = dest.image_path(name, source.suffix)
        report.linked += _place_image(source, target, link=self.link)


def _place_image(source: Path, target: Path, *, link: bool) -> bool:
    """Puts ``source`` at ``target`` atomically; True when it was hard-linked."""
    if target.exists() and os.path.samefile(source, target):
        return link
    if not link:
        with open(source, "rb") as src, atomic_writer(target) as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        return False
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        linked = link_or_copy(source, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return linked


def _refuse_unknown(annotations: Iterable[SourceAnnotation], class_map: ClassMap) -> None:
    unknown: dict[str, int] = defaultdict(int)
    for annotation in annotations:
        for box in annotation.boxes:
            if class_map.resolve(box.label) is SkipReason.UNKNOWN_CLASS:
                unknown[box.label] += 1
    if unknown:
        listed = ", ".join(f"{name!r} x{count}" for name, count in sorted(unknown.items()))
        raise DatasetError(
            f"unknown class names: {listed}; map them with --map NAME=ID or leave them out with "
            "--skip NAME (nothing was written)"
        )


def _is_box_reason(skip: Skip) -> bool:
    return skip.reason in (SkipReason.BAD_BOX, SkipReason.CROWD)


def _progress(
    annotations: list[SourceAnnotation], *, enabled: bool, fmt: str
) -> Iterable[SourceAnnotation]:
    if not enabled:
        return annotations
    from tqdm import tqdm

    return tqdm(annotations, desc=f"convert {fmt}", unit="image")


def _read_sources(
    fmt: str, source: Path, *, exclude: AnnotationDir, options: dict[str, Any]
) -> Sources:
    row = READERS.get(fmt)
    if row is None:
        raise DatasetError(f"unknown format {fmt!r}; expected one of {', '.join(READERS)}")
    try:
        values = option_values(fmt, row.options, options, what="format")
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    if not source.exists():
        raise DatasetError(f"source {source} does not exist")
    excluded = (exclude.images.resolve(), exclude.labels.resolve())
    reader: Reader = resolve(row.reader)
    return reader(source, ReadOptions(excluded, values))
