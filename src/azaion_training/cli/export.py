"""`azaion-export`: Export a trained .pt model to ONNX, a TensorRT engine or RKNN."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import (
    EXIT_OK,
    bound_settings,
    command_parser,
    given_options,
    options_problem,
    row_options,
    run,
    setting,
)
from azaion_training.config import Settings
from azaion_training.export.dispatch import EXPORT_FORMATS, export_model, publish_export
from azaion_training.fs import DataTree

PROG = "azaion-export"


def _description() -> str:
    formats = "\n".join(
        f"  {row.name:<8}{row.writes}\n  {'':<8}{row.help}" for row in EXPORT_FORMATS.values()
    )
    return (
        "Export a trained .pt model to ONNX, a TensorRT engine or RKNN.\n\n"
        "Writes into the models folder of the data tree (beside the current model) unless --out\n"
        f"is given.\n\nformats:\n{formats}"
    )


def _readers(setting_name: str) -> str:
    """The formats that read ``export.{setting_name}``, for an option's help."""
    return ", ".join(row.name for row in EXPORT_FORMATS.values() if setting_name in row.settings)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, _description(), env_sections=("export",))
    parser.add_argument(
        "model",
        type=Path,
        nargs="?",
        metavar="MODEL.pt",
        help="the trained model (default: the current model, models/azaion.pt)",
    )
    parser.add_argument(
        "--format", required=True, choices=list(EXPORT_FORMATS), help="what to export to (required)"
    )
    options = parser.add_argument_group("export options")
    setting(options, "--imgsz", key="export.imgsz", type=int, metavar="N", help="square input size")
    setting(options, "--batch", key="export.batch", type=int, metavar="N", help="fixed batch size")
    setting(
        options,
        "--half",
        key="export.half",
        action=argparse.BooleanOptionalAction,
        help=f"{_readers('half')} only: allow FP16 layers where the GPU runs FP16 fast",
    )
    setting(
        options,
        "--int8",
        key="export.int8",
        action=argparse.BooleanOptionalAction,
        help=f"{_readers('int8')} only: INT8, calibrated / quantised on a sample of --data",
    )
    setting(
        options,
        "--calibration-images",
        key="export.calibration_images",
        type=int,
        metavar="N",
        help=f"{_readers('calibration_images')} only: images drawn from --data for INT8",
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
    row_options(options, {row.name: row.options for row in EXPORT_FORMATS.values()})
    options.add_argument(
        "--publish", action="store_true", help="hand the result to the model store afterwards"
    )
    return parser


def check(args: argparse.Namespace) -> str | None:
    """A MODEL that is not a ``.pt``, or an option or setting given for a format that does not
    take it (a usage error)."""
    if args.model is not None and args.model.suffix.lower() != ".pt":
        return (
            f"a .pt checkpoint is expected, got {args.model} (export starts from the trained "
            "PyTorch model, e.g. models/azaion.pt or a run's weights/best.pt)"
        )
    row = EXPORT_FORMATS[args.format]
    problem = options_problem(row.name, row.options, args, what="export format")
    if problem is not None:
        return problem
    read = {name for other in EXPORT_FORMATS.values() for name in other.settings}
    for key, value in bound_settings(args).items():
        name = key.removeprefix("export.")
        if value is not None and name in read and name not in row.settings:
            flag = "--" + name.replace("_", "-")
            return f"{flag} is not read by export format {row.name} (only by {_readers(name)})"
    return None


def export(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings)
    result = export_model(
        args.model or tree.current_model_pt,
        args.format,
        settings=settings.export,
        tree=tree,
        out=args.out,
        data=args.data,
        **given_options(args),
    )
    size = result.path.stat().st_size / 1e6
    print(f"{PROG}: wrote {result.path} ({size:.1f} MB): {result.summary}")
    if args.publish:
        published = publish_export(settings, tree, result.path)
        print(f"{PROG}: published {published.name} to {published.location}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, export, check=check)


if __name__ == "__main__":
    raise SystemExit(main())
