"""`azaion-train`: Form a dated dataset, train YOLO, export ONNX and publish the model."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import (
    EXIT_OK,
    command_parser,
    describe_setting,
    run_command,
    setting,
    start,
)
from azaion_training.config import Settings
from azaion_training.fs import DataTree

PROG = "azaion-train"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        PROG,
        "Form a dated dataset from data-processed/ (70/20/10 by source annotation), train YOLO "
        "with Ultralytics into models/azaion-{date}, score it against the current model on the "
        "test split, and only if it is not worse install best.pt as models/azaion.pt, export "
        "models/azaion.onnx and publish the model. Never downloads anything.",
        env_sections=("training", "dataset", "export"),
    )
    training = parser.add_argument_group("training (override the training.* settings)")
    setting(
        training, "--model", key="training.model", metavar="NAME", help="model config or weights"
    )
    training.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help=f"epochs to train ({describe_setting('training.epochs')}); with --resume, see there",
    )
    setting(
        training, "--batch", key="training.batch", type=int, metavar="N", help="images per batch"
    )
    setting(
        training,
        "--imgsz",
        key="training.imgsz",
        type=int,
        metavar="PX",
        help="training image size",
    )
    setting(
        training,
        "--device",
        key="training.device",
        metavar="DEV",
        default_text="auto",
        help="'cpu', '0', or '0,1' for multi-GPU DDP",
    )
    setting(
        training,
        "--workers",
        key="training.workers",
        type=int,
        metavar="N",
        help="data loader workers",
    )
    setting(
        training,
        "--patience",
        key="training.patience",
        type=int,
        metavar="N",
        help="early-stop patience",
    )
    job = parser.add_argument_group("job")
    job.add_argument(
        "--resume",
        action="store_true",
        help="continue the latest run in models/ from its last.pt; with --epochs N it trains "
        "up to N epochs in total, also past the run's own count or after it finished",
    )
    job.add_argument(
        "--dataset",
        type=Path,
        metavar="PATH",
        help="train on this existing dataset (its folder or data.yaml) instead of forming one",
    )
    job.add_argument("--form-only", action="store_true", help="only form the dataset, then stop")
    job.add_argument(
        "--force",
        action="store_true",
        help="install, export and publish the new model even if it scores worse on the test "
        "split than the current one (by more than training.gate_tolerance)",
    )
    job.add_argument("--no-publish", action="store_true", help="do not publish the model")
    job.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {"training.epochs": None if args.resume else args.epochs}
    return run_command(PROG, lambda: _run(args, start(args, overrides=overrides)))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings).create()
    if args.form_only:
        from azaion_training.dataset import form_dataset

        formed = form_dataset(settings, tree, progress=not args.no_progress)
        print(formed.summary())
        return EXIT_OK
    from azaion_training.train.console import CONSOLE_LOG, epoch_line, quiet_console
    from azaion_training.train.job import train
    from azaion_training.train.report import REPORT_NAME

    log = tree.logs / CONSOLE_LOG
    with quiet_console(log, verbose=args.verbose) as terminal:
        result = train(
            settings,
            tree,
            dataset=args.dataset,
            resume=args.resume,
            resume_epochs=args.epochs if args.resume else None,
            publish=not args.no_publish,
            force=args.force,
            progress=not args.no_progress,
            callbacks={"on_fit_epoch_end": [epoch_line(terminal)]},
        )
    print(result.summary())
    print(f"log       {log} (Ultralytics' and OpenCV's own output)")
    print(f"report    {result.run_dir / REPORT_NAME}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
