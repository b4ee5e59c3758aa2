"""`azaion-train`: Form a dated dataset, train YOLO, export ONNX and publish the model."""

from __future__ import annotations

import argparse
import os
import sys
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
from azaion_training.errors import ConfigError
from azaion_training.fs import DataTree
from azaion_training.train.distributed import DEFAULT_PORT, Master

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
    machines = parser.add_argument_group(
        "several machines (run the same line on each, with its own --node-rank; docs/operations.md)"
    )
    machines.add_argument(
        "--nnodes",
        type=int,
        metavar="N",
        help="train on N machines through PyTorch's launcher (torchrun); rank 0 forms the "
        "dataset and alone writes the run, the gate, export and publish",
    )
    machines.add_argument(
        "--node-rank",
        type=int,
        default=0,
        metavar="R",
        help="this machine's rank, 0..N-1 (default 0); 0 is the master",
    )
    machines.add_argument(
        "--master",
        type=_master,
        metavar="HOST:PORT",
        help=f"the master machine (--node-rank 0) and a free port on it (default port "
        f"{DEFAULT_PORT}); the same on every machine",
    )
    machines.add_argument(
        "--nproc-per-node",
        type=int,
        default=1,
        metavar="G",
        help="ranks on this machine, one per GPU (default 1); --device lists the G GPUs",
    )
    machines.add_argument(
        "--rendezvous",
        choices=("static", "c10d"),
        default="static",
        help="how the machines meet: static (default: --node-rank is the rank, the master "
        "serves the store) or c10d (torchrun's dynamic rendezvous; it orders machines by host "
        "name and ignores --node-rank)",
    )
    return parser


_LAUNCHER_OPTIONS = ("--nnodes", "--node-rank", "--master", "--nproc-per-node", "--rendezvous")


def _master(text: str) -> Master:
    try:
        return Master.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.nnodes is not None:
        if args.master is None:
            parser.error("--nnodes needs --master HOST:PORT")
        if not 0 <= args.node_rank < args.nnodes or args.nproc_per_node < 1:
            parser.error("need 0 <= --node-rank < --nnodes and --nproc-per-node >= 1")
        return run_command(PROG, lambda: _launch(args, argv))
    overrides = {"training.epochs": None if args.resume else args.epochs}
    return run_command(PROG, lambda: _run(args, start(args, overrides=overrides)))


def _launch(args: argparse.Namespace, argv: list[str]) -> int:
    """This machine's part of a multi-machine run: torchrun starts its ranks, each of which
    runs this command without the launcher's options."""
    from azaion_training.train import distributed

    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # c10d's warnings as ranks end
    start(args)  # logging, and the settings checked once before any rank starts
    arguments = distributed.launch_arguments(
        nnodes=args.nnodes,
        node_rank=args.node_rank,
        master=args.master,
        nproc_per_node=args.nproc_per_node,
        rendezvous=args.rendezvous,
        arguments=_without(argv, _LAUNCHER_OPTIONS),
    )
    return distributed.launch(arguments, quiet=not args.verbose)


def _without(argv: list[str], options: Sequence[str]) -> list[str]:
    """``argv`` without ``options`` and their values (``--opt V`` or ``--opt=V``)."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item in options:
            skip = True
        elif item.split("=", 1)[0] not in options:
            kept.append(item)
    return kept


def _run(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings).create()
    if args.form_only:
        from azaion_training.dataset import form_dataset

        formed = form_dataset(settings, tree, progress=not args.no_progress)
        print(formed.summary())
        return EXIT_OK
    from azaion_training.classes import ClassTable
    from azaion_training.train.console import CONSOLE_LOG, epoch_line, quiet_console
    from azaion_training.train.distributed import launched
    from azaion_training.train.job import train
    from azaion_training.train.report import write_report

    launch = launched()
    log = tree.logs / CONSOLE_LOG
    if launch is not None and not launch.leader:  # one console log per rank
        log = log.with_name(f"{log.stem}.rank{launch.rank}{log.suffix}")
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
    if result is None:  # a rank other than 0 of a multi-machine run
        print(
            f"rank {launch.rank if launch else '?'}: trained its part; rank 0 scores, installs "
            f"and publishes (log {log})"
        )
        return EXIT_OK
    report = write_report(result, classes=ClassTable.load(settings.classes))
    print(result.summary())
    print(f"log       {log} (Ultralytics' and OpenCV's own output)")
    print(f"report    {report}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
