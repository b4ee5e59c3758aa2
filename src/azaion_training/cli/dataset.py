"""`azaion-dataset`: The annotation catalogue, the datasets and the split ledger."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azaion_training.cli._common import EXIT_OK, command_parser, run
from azaion_training.config import Settings
from azaion_training.fs import DataTree

PROG = "azaion-dataset"

DESCRIPTION = """\
The annotation catalogue, the datasets and the split ledger.

examples:
  azaion-dataset info frame_000123      # one annotation: media, author, history, split
  azaion-dataset info                   # annotations per source media
  azaion-dataset list                   # datasets with their size and the runs trained on them
  azaion-dataset prune --keep 3         # remove old datasets (never one a model came from)
  azaion-dataset resplit                # start a new split ledger generation
  azaion-dataset rebuild-ledger         # a lost ledger, again from the datasets' manifests
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("dataset",))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser(
        "info",
        help="what the catalogue knows of an annotation (or counts per media)",
        description="Show an annotation's catalogue entry, status history and split; without "
        "a name, the number of annotations per source media.",
    )
    info.add_argument("name", nargs="?", metavar="NAME", help="the annotation name")
    commands.add_parser(
        "list",
        help="list the datasets",
        description="List the datasets with their samples per split, ledger generation and "
        "the training runs made on them.",
    )
    prune = commands.add_parser(
        "prune",
        help="remove old datasets",
        description="Remove all but the newest N datasets; a dataset an installed model was "
        "trained on is always kept.",
    )
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="datasets to keep")
    commands.add_parser(
        "resplit",
        help="start a new split ledger generation",
        description="Start a new, empty split ledger generation: the next dataset splits every "
        "group afresh (and says so in its summary). Test scores are then no longer comparable "
        "with those of earlier datasets. It says how many groups of the generation before move "
        "to another split with the ratios now set.",
    )
    rebuild = commands.add_parser(
        "rebuild-ledger",
        help="make a lost split ledger again from the datasets' manifests",
        description="Formation refuses to run when the split ledger is missing or empty while "
        "datasets exist (it would split every group afresh). This records the split of every "
        "group and annotation of the datasets of the newest ledger generation, from their "
        "manifest-members.tsv; the ledger must be missing or empty.",
    )
    rebuild.add_argument(
        "--empty",
        action="store_true",
        help="instead, start an empty ledger on purpose: the next dataset splits every group "
        "afresh (test scores not comparable with earlier datasets)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings)
    if args.command == "info":
        from azaion_training.dataset.inventory import describe_annotation, media_counts

        print(describe_annotation(tree, args.name) if args.name else media_counts(tree))
    elif args.command == "list":
        from azaion_training.dataset.inventory import list_datasets

        for info in list_datasets(tree):
            print(info.line())
    elif args.command == "prune":
        from azaion_training.dataset.inventory import prune_datasets

        removed = prune_datasets(tree, keep=args.keep)
        print(f"removed {len(removed)} dataset(s)" + "".join(f"\n  {p}" for p in removed))
    elif args.command == "resplit":
        from azaion_training.dataset.ledger import SplitLedger

        ratios = settings.dataset.train_ratio, settings.dataset.valid_ratio
        ratios += (settings.dataset.test_ratio,)
        from azaion_training.locks import hold

        with (
            hold(tree.lock_file("formation"), role="dataset formation"),
            SplitLedger.under(tree.root) as ledger,
        ):
            generation, moved, groups = ledger.resplit(ratios)
        print(
            f"split ledger generation {generation} started: {moved} of the {groups} groups of "
            f"generation {generation - 1} move to another split; the next dataset is split "
            "afresh (test scores not comparable with earlier datasets)"
        )
    else:
        _rebuild_ledger(tree, empty=args.empty)
    return EXIT_OK


def _rebuild_ledger(tree: DataTree, *, empty: bool) -> None:
    from azaion_training.dataset.ledger import SplitLedger, rebuild_from_manifests
    from azaion_training.locks import hold

    with (
        hold(tree.lock_file("formation"), role="dataset formation"),
        SplitLedger.under(tree.root) as ledger,
    ):
        if empty:
            ledger.start_empty()
            print(f"split ledger {ledger.path} started empty: the next dataset splits afresh")
            return
        datasets = sorted(path for path in tree.datasets.glob("azaion-*") if path.is_dir())
        generation, groups = rebuild_from_manifests(ledger, datasets)
    print(f"split ledger rebuilt: generation {generation}, {groups} groups from the manifests")


if __name__ == "__main__":
    raise SystemExit(main())
