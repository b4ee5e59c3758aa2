"""`azaion-demo`: the whole pipeline on this machine, annotation events to annotated video."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    at_least,
    command_parser,
    given_options,
    options_problem,
    row_options,
    run,
)
from azaion_training.config import Settings
from azaion_training.convert.runner import READERS
from azaion_training.demo.run import DemoPlan, data_formats, prepare_root, run_demo
from azaion_training.demo.userdata import UserData
from azaion_training.fs import DataTree
from azaion_training.train.console import CONSOLE_LOG, quiet_console

PROG = "azaion-demo"
DEFAULT_ROOT = Path("demo-root")

DESCRIPTION = """\
Run the whole pipeline on this machine in a fresh data root (default ./demo-root): annotations
of a synthetic aerial-like world (or your own, --data) are sent as the platform's messages through
a RabbitMQ stream into the queue consumer (the configured server when RABBITMQ_USER/PASSWORD are
set and it answers, else a private node the demo starts under ROOT/demo/rabbitmq and stops at the
end; only when neither can be had, straight into the consumer's handler), augmented, formed into
a dataset, used to train a small model on the CPU, exported to ONNX, published encrypted to the
embedded local model store, fetched back decrypted in memory, and run over a video (a generated
one filmed by a moving camera, or yours, --video). Ultralytics' and OpenCV's own output goes to
ROOT/logs/console.log (on the console with -v). It ends with a summary and, on its last line, the
path of report.html: dataset, curves, per-class AP, predictions, the video's frames and timings.

With --data, the model as deployed is scored on the held-out test frames of your data (full
frames) instead of the generated video; --video adds your video (no recall without true boxes).
Your data is checked before the broker starts: no box, or fewer than 3 images with boxes, is exit
1 with the remedy; so is a model that learned nothing on the held-out frames (mAP50 0).

The defaults aim at under 15 minutes on 2 CPU cores and need no network; --quick at 1-2 minutes.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("queue", "images"))
    demo = parser.add_argument_group("demo options")
    defaults = DemoPlan()
    demo.add_argument(
        "--annotations",
        type=int,
        default=defaults.annotations,
        metavar="N",
        help=f"synthetic annotations to send (default {defaults.annotations})",
    )
    demo.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        metavar="N",
        help=f"training epochs (default {defaults.epochs})",
    )
    demo.add_argument(
        "--imgsz",
        type=int,
        default=defaults.imgsz,
        metavar="PX",
        help=f"training and export image size (default {defaults.imgsz})",
    )
    demo.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of every random choice (default 0)"
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="a reduced run (24 annotations, 1 epoch) that checks every step in 1-2 minutes",
    )
    transport = demo.add_mutually_exclusive_group()
    transport.add_argument(
        "--stream",
        dest="stream",
        action="store_true",
        default=None,
        help="require a RabbitMQ stream (fail when none can be had)",
    )
    transport.add_argument(
        "--no-stream",
        dest="stream",
        action="store_false",
        help="skip RabbitMQ: hand the messages straight to the consumer's handler",
    )
    demo.add_argument(
        "--clean",
        action="store_true",
        help="delete the previous demo in ROOT first (only a folder that holds a demo/ report)",
    )
    demo.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="your own labelled images instead of the synthetic world (see --format)",
    )
    demo.add_argument(
        "--format",
        choices=data_formats(),
        default="yolo",
        help="--data's format: yolo (a folder with images/ and labels/, or images beside .txt "
        "labels), or one that azaion-convert reads (see its --help); default yolo",
    )
    row_options(demo, {row.name: row.options for row in READERS.values()})
    demo.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=ID|CLASSNAME,...",
        help="--data's class names to class ids or names, as azaion-convert --map (a name the "
        "class table lacks becomes a new class, e.g. --map Tree=Tree); may be repeated",
    )
    demo.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME,...",
        help="leave boxes of these class names out; may be repeated",
    )
    demo.add_argument(
        "--classes",
        type=Path,
        metavar="FILE",
        help="your class table (classes.json: Id, Name, ShortName, Color) for --data's names",
    )
    demo.add_argument(
        "--chips",
        type=at_least(32),
        metavar="PX",
        help="cut --data's images larger than PX into PX x PX pieces, each its own annotation "
        "(a few large aerial images then give train, valid and test pieces)",
    )
    demo.add_argument(
        "--video", type=Path, metavar="FILE", help="your own video instead of a generated one"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(root=DEFAULT_ROOT)
    for action in parser._actions:  # the common --root: the demo's own default, not /azaion
        if action.dest == "root":
            action.help = f"a fresh folder for the demo's data root (default ./{DEFAULT_ROOT})"
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, _run, check=_check)


def _check(args: argparse.Namespace) -> str | None:
    """A converter option given for a format that does not take it (a usage error)."""
    options = READERS[args.format].options if args.format in READERS else ()
    return options_problem(args.format, options, args, what="format")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    prepare_root(args.root, clean=args.clean)
    if args.quick:
        plan = DemoPlan.quick()
    else:
        plan = DemoPlan(
            annotations=args.annotations, epochs=args.epochs, imgsz=args.imgsz, seed=args.seed
        )
    tree = DataTree.from_settings(settings)
    data = None
    if args.data:
        data = UserData(
            args.data,
            args.format,
            given_options(args),
            maps=args.map,
            skips=args.skip,
            classes=args.classes,
            chips=args.chips,
        )
    log = tree.logs / CONSOLE_LOG
    print(f"{PROG}: Ultralytics' and OpenCV's own output goes to {log}", file=sys.stderr)
    with quiet_console(log, verbose=args.verbose):
        report = run_demo(
            settings,
            tree,
            plan=plan,
            stream=args.stream,
            data=data,
            video=args.video,
            progress=not args.no_progress,
        )
    print(report.text())
    if data is not None and not report.held_out_map50:
        print(
            f"{PROG}: error: the model learned nothing measurable on the held-out frames "
            "(mAP50 0): train longer (--epochs), at a larger --imgsz, or cut large images "
            "with --chips PX",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
