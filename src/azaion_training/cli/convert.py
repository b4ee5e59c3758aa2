"""`azaion-convert`: Convert Pascal VOC, oriented-box or COCO annotations to YOLO labels."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from azaion_training.classes import ClassTable
from azaion_training.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    command_parser,
    given_options,
    options_problem,
    row_options,
    run,
    setting,
)
from azaion_training.config import Settings
from azaion_training.convert import convert
from azaion_training.convert.classmap import class_map_from_options
from azaion_training.convert.runner import READERS

PROG = "azaion-convert"

DESCRIPTION = """\
Convert Pascal VOC, oriented-box or COCO annotations to YOLO labels.

DEST receives images/ (copied, or hard-linked with --link) and labels/ (one YOLO label per image).
Class names are matched case-insensitively: first --skip, then --map, then the default map
(Truck=1, Car=2, Taxi=2, Motorcycle skipped), then the class table's names (Vehicle,
Truck(Wint), ...). --map Tree=Tree adds the class Tree to the table (DEST/classes.json).
Images: every format of the image table (JPEG, PNG, BMP, WebP, TIFF/GeoTIFF); TIFF files are
copied as they are (azaion-augment reads them), or written as PNG with --queue-ready.
Boxes of unknown classes, boxes outside the image and boxes without area are reported and left
out; annotations whose image is missing are reported and skipped. Exit code 0 when images with
boxes were converted, 1 when nothing was, or no box was kept (or on an error).

"""


def _formats() -> str:
    """The ``formats:`` part of the help, from the table of readers."""
    lines = ["formats:"]
    for row in READERS.values():
        first, *rest = row.finds.splitlines()
        lines.append(f"  {row.name:<10}{first}")
        lines.extend(f"  {'':<10}{line}" for line in rest)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        PROG, f"{DESCRIPTION}\n{_formats()}", env_sections=("convert", "images")
    )
    parser.add_argument("format", choices=list(READERS), help="the source format")
    parser.add_argument("source", type=Path, metavar="SRC", help="the annotations to convert")
    parser.add_argument("dest", type=Path, metavar="DEST", help="folder for images/ and labels/")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=ID|CLASSNAME,...",
        help="map class names to class ids (0..79) or to class names of the class table, over "
        "the defaults; a name the table lacks becomes a new class (DEST/classes.json holds the "
        "table then); may be repeated",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME,...",
        help="leave boxes of these class names out (reported as skipped); may be repeated",
    )
    parser.add_argument(
        "--link", action="store_true", help="hard-link images instead of copying them"
    )
    parser.add_argument(
        "--queue-ready",
        action="store_true",
        help="write images the queue refuses (TIFF/GeoTIFF) as 8-bit RGB PNG (images.* settings); "
        "by default they are kept as they are (azaion-augment reads them)",
    )
    setting(
        parser,
        "--classes",
        key="classes",
        type=Path,
        metavar="FILE",
        help="the class table (classes.json) whose names --map may name",
        default_text="the platform's 17 classes x 3 weather modes",
    )
    setting(
        parser,
        "--unknown",
        key="convert.unknown_classes",
        choices=("skip", "error"),
        help="unknown class names: skip the boxes and report them, or stop before writing anything",
    )
    row_options(parser, {row.name: row.options for row in READERS.values()})
    return parser


def check(args: argparse.Namespace) -> str | None:
    """An option given for a format that does not take it (a usage error)."""
    return options_problem(args.format, READERS[args.format].options, args, what="format")


def run_convert(args: argparse.Namespace, settings: Settings) -> int:
    report = convert(
        args.format,
        args.source,
        args.dest,
        class_map=class_map_from_options(
            args.map, args.skip, table=ClassTable.load(settings.classes)
        ),
        link=args.link,
        unknown_classes=settings.convert.unknown_classes,
        edge_tolerance_px=settings.convert.edge_tolerance_px,
        progress=sys.stderr.isatty(),
        queue_ready=args.queue_ready,
        to_rgb=settings.images.rule(),
        **given_options(args),
    )
    print(report.summary())
    problem = report.nothing_converted()
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, run_convert, check=check)


if __name__ == "__main__":
    raise SystemExit(main())
