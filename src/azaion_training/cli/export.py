"""`azaion-export`: Export a trained .pt model to ONNX, a TensorRT engine or RKNN."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import EXIT_OK, at_least, command_parser, run, setting
from azaion_training.config import Settings
from azaion_training.export.dispatch import EXPORTERS, export_model, publish_export
from azaion_training.fs import DataTree

PROG = "azaion-export"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        PROG,
        "Export a trained .pt model to ONNX, a TensorRT engine or RKNN.\n\n"
        "Writes into the models folder of the data tree (beside the current model) unless --out\n"
        "is given: azaion.onnx (NMS in the graph, [batch, 300, 6]),\n"
        "azaion.cc_{major}.{minor}_sm_{multiprocessors}.engine (for the GPU in hand; reused when\n"
        "it is newer than the model) or azaion.{platform}.rknn (built in the RKNN toolkit's own\n"
        "environment, made by scripts/setup_rknn.sh).",
        env_sections=("export",),
    )
    parser.add_argument(
        "model",
        type=Path,
        nargs="?",
        metavar="MODEL.pt",
        help="the trained model (default: the current model, models/azaion.pt)",
    )
    parser.add_argument(
        "--format", required=True, choices=list(EXPORTERS), help="what to export to (required)"
    )
    options = parser.add_argument_group("export options")
    setting(options, "--imgsz", key="export.imgsz", type=int, metavar="N", help="square input size")
    setting(options, "--batch", key="export.batch", type=int, metavar="N", help="fixed batch size")
    setting(
        options,
        "--half",
        key="export.half",
        action=argparse.BooleanOptionalAction,
        help="allow FP16 engine layers where the GPU runs FP16 fast (TensorRT)",
    )
    setting(
        options,
        "--int8",
        key="export.int8",
        action=argparse.BooleanOptionalAction,
        help="INT8: TensorRT calibration / RKNN quantisation on a sample of --data",
    )
    setting(
        options,
        "--calibration-images",
        key="export.calibration_images",
        type=int,
        metavar="N",
        help="images drawn from --data for INT8",
    )
    options.add_argument(
        "--data",
        type=Path,
        metavar="DATASET",
        help="dataset or image folder for INT8 and --verify (default: the newest formed dataset)",
    )
    options.add_argument(
        "--out", type=Path, metavar="DIR", help="folder to write into (default: the models folder)"
    )
    options.add_argument(
        "--verify",
        type=at_least(0),
        default=0,
        metavar="N",
        help="RKNN: run the toolkit's simulator on N images of --data and fail unless its boxes "
        "agree with ONNX Runtime's",
    )
    options.add_argument(
        "--force", action="store_true", help="TensorRT: rebuild even if a matching engine exists"
    )
    options.add_argument(
        "--publish", action="store_true", help="hand the result to the model store afterwards"
    )
    return parser


def export(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings)
    result = export_model(
        args.model or tree.current_model_pt,
        args.format,
        settings=settings.export,
        tree=tree,
        out=args.out,
        data=args.data,
        verify=args.verify,
        force=args.force,
    )
    size = result.path.stat().st_size / 1e6
    print(f"{PROG}: wrote {result.path} ({size:.1f} MB): {result.summary}")
    if args.publish:
        published = publish_export(settings, tree, result.path)
        print(f"{PROG}: published {published.name} to {published.location}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, export)


if __name__ == "__main__":
    raise SystemExit(main())
