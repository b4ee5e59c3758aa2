"""`azaion-augment`: Turn every validated annotation into 8 training samples."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.augment import augment_tree, stop_on_signals
from azaion_training.augment.plan import Shard
from azaion_training.cli._common import EXIT_ERROR, EXIT_OK, command_parser, run, setting
from azaion_training.config import Settings
from azaion_training.errors import ConfigError
from azaion_training.fs import DataTree

PROG = "azaion-augment"
DESCRIPTION = """\
Turn every validated annotation into 8 training samples.

For each annotation in {root}/data/ (images/NAME.ext + labels/NAME.txt) writes the original and 7
augmented variants NAME_1..NAME_7 (JPEG) with their labels into {root}/data-processed/. Unchanged
annotations are skipped; samples whose annotation is gone are removed; an annotation whose image
does not decode or whose label is invalid is moved to {root}/data-corrupted/ with a reason in
data-corrupted/reasons/NAME.json. Without --once, a pass runs every interval until SIGTERM or
Ctrl-C, which finish the annotations in hand and exit 0.

With --shard I/N, N augmenters (machines or processes over one shared tree) share the work: each
makes the annotations whose name hashes into its shard and removes only their stale samples,
with its own lock and state file; together they write what one augmenter writes, byte for byte.

exit codes: 0 done (or stopped), 1 an error (or, with --once, samples that could not be written)"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("augment", "images"))
    parser.add_argument("--once", action="store_true", help="run a single pass, then exit")
    setting(
        parser,
        "--workers",
        key="augment.workers",
        type=int,
        metavar="N",
        default_text="the number of CPUs",
        help="worker processes",
    )
    setting(
        parser,
        "--interval",
        key="augment.interval_s",
        type=float,
        metavar="SECONDS",
        help="seconds between passes without --once",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        default=Shard(),
        help="make only shard I of N (1 <= I <= N; every shard of a tree must use the same N; "
        "default 1/1: everything)",
    )
    return parser


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def augment(args: argparse.Namespace, settings: Settings) -> int:
    with stop_on_signals() as stop:
        summary = augment_tree(
            DataTree.from_settings(settings),
            settings.augment,
            once=args.once,
            stop=stop,
            shard=args.shard,
            to_rgb=settings.images.rule(),
        )
    return EXIT_ERROR if summary is not None and summary.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, augment)


if __name__ == "__main__":
    raise SystemExit(main())
