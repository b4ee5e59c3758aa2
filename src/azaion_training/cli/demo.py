"""`azaion-demo`: the whole pipeline on this machine, annotation events to annotated video."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import EXIT_OK, command_parser, run
from azaion_training.config import Settings
from azaion_training.demo.run import DEMO_FOLDER, DemoPlan, run_demo
from azaion_training.errors import ConfigError
from azaion_training.fs import DataTree

PROG = "azaion-demo"
DEFAULT_ROOT = Path("demo-root")

DESCRIPTION = """\
Run the whole pipeline on this machine in a fresh data root (default ./demo-root): synthetic
aerial-like annotations are sent as the platform's messages into the queue consumer (through
RabbitMQ when RABBITMQ_USER/RABBITMQ_PASSWORD are set and the server answers, otherwise straight
into its handler), augmented, formed into a dataset, used to train a small model on the CPU,
exported to ONNX, published encrypted to the embedded local model store, fetched back decrypted in
memory, and run over a generated video. It ends with a report (also in ROOT/demo/report.txt):
counts, mAP on the held-out test split, recall on the video, and the paths of every artefact.

The defaults take about 5 minutes on 2 CPU cores and need no network.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("queue",))
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
        help="a reduced run (24 annotations, 1 epoch) that checks every step in about a minute",
    )
    transport = demo.add_mutually_exclusive_group()
    transport.add_argument(
        "--stream", dest="stream", action="store_true", default=None, help="require RabbitMQ"
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
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(root=DEFAULT_ROOT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_root(args.root, clean=args.clean)
    if args.quick:
        plan = DemoPlan.quick()
    else:
        plan = DemoPlan(
            annotations=args.annotations, epochs=args.epochs, imgsz=args.imgsz, seed=args.seed
        )
    report = run_demo(
        settings,
        DataTree.from_settings(settings),
        plan=plan,
        stream=args.stream,
        progress=not args.no_progress,
    )
    print(report.text())
    return EXIT_OK


def _prepare_root(root: Path, *, clean: bool) -> None:
    if not root.exists() or not any(root.iterdir()):
        return
    if not clean:
        raise ConfigError(f"{root} is not empty: pass --clean to replace the previous demo there")
    if not (root / DEMO_FOLDER).is_dir():
        raise ConfigError(f"{root} does not hold a previous demo; refusing to delete it")
    shutil.rmtree(root)


if __name__ == "__main__":
    raise SystemExit(main())
