"""`azaion-infer`: Run a model over a video and write detections and an annotated video."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import EXIT_OK, command_parser, deployment_settings, run, setting
from azaion_training.config import Settings
from azaion_training.fs import DataTree
from azaion_training.infer.load import engines_help, suffixes

PROG = "azaion-infer"

DESCRIPTION = """\
Run a model over a video and write detections and an annotated video.

Every --every-th frame is decoded and run through the model in batches of --batch; detections
above --conf are kept and, of two boxes overlapping by more than --iou, the more confident one
(equal: the lower class id). A frame is letterboxed whole into the model input, or, with --tiles,
cut into tiles at native resolution (small targets keep their pixels): tiles of the model input
(auto, when the frame exceeds it by --tile-factor) or of WxH, overlapping by --tile-overlap,
with the whole frame as one more input; the tiles of one or more frames fill each model call,
and boxes of one class from neighbouring tiles are merged. Writes into --out:

  detections.jsonl  one line per inferred frame: frame, time_ms, detections (class id and name,
                    confidence, box as normalised centre/size and in pixels)
  annotated.mp4     the inferred frames with boxes in class colours, at fps / every
  summary.json      frames read, inferred and declared (complete: false when the video ends
                    early), detections per class, seconds, frames/s, engine, tiling

The model is a file of one of these types, a model from the store (decrypted in memory), or by
default the current model models/azaion.onnx under the data root:

"""


def build_parser() -> argparse.ArgumentParser:
    description = DESCRIPTION + textwrap.indent(engines_help(), "  ")
    parser = command_parser(PROG, description, env_sections=("infer",))
    parser.add_argument("video", type=Path, metavar="VIDEO", help="the video file to run over")
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help=f"model file: {', '.join(suffixes())} (default: models/azaion.onnx under the root)",
    )
    model.add_argument(
        "--from-store",
        metavar="NAME",
        help="model NAME from the model store, decrypted in memory and never written to disk",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default: ./VIDEO-NAME-detections)",
    )
    setting(
        parser, "--every", key="infer.every", type=int, metavar="N", help="infer every N-th frame"
    )
    deployment_settings(parser, conf_help="confidence threshold")
    parser.add_argument(
        "--show", action="store_true", help="show the annotated frames in a window as they come"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def infer(args: argparse.Namespace, settings: Settings) -> int:
    from azaion_training.infer.load import open_engine
    from azaion_training.infer.runner import infer_video
    from azaion_training.infer.video import open_video

    open_video(args.video)[0].release()  # a missing or broken video is said before the model loads
    tree = DataTree.from_settings(settings)
    out = args.out if args.out is not None else Path(f"{args.video.stem}-detections")
    engine = open_engine(settings, tree, model=args.model, from_store=args.from_store)
    with contextlib.closing(engine):
        summary = infer_video(
            args.video,
            engine,
            out,
            settings=settings.infer,
            show=args.show and _has_display(),
            progress=not args.no_progress,
        )
    print(f"{summary.line()}; results in {out}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, infer)


def _has_display() -> bool:
    """False on a Linux host without a display (a window would abort there); warns once."""
    if (
        not sys.platform.startswith("linux")
        or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
    ):
        return True
    print(f"{PROG}: warning: no display (DISPLAY is not set); --show is ignored", file=sys.stderr)
    return False


if __name__ == "__main__":
    raise SystemExit(main())
