"""`azaion-visualise`: Draw a dataset's images with their boxes, and its statistics."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from azaion_training.classes import ClassTable
from azaion_training.cli._common import EXIT_OK, at_least, command_parser, run
from azaion_training.config import Settings
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.visualise import (
    LabelledImage,
    browse,
    class_ids,
    collect_stats,
    grid_figure,
    list_images,
    open_model_graph,
    pick,
    resolve_folders,
    save_figure,
    stats_table,
    with_class,
)
from azaion_training.visualise.source import SOURCES, SPLITS
from azaion_training.visualise.stats import save_stats_plots

PROG = "azaion-visualise"

DESCRIPTION = """\
Draw a dataset's images with their boxes, and its statistics.

sources (folders under the data root):
  data        {root}/data              validated annotations (the default)
  seed        {root}/data-seed         unvalidated annotations
  processed   {root}/data-processed    augmented samples
  deleted     {root}/data_deleted      soft-deleted annotations
  corrupted   {root}/data-corrupted    rejected annotations
  dataset [PATH]  a formed dataset (train/valid/test) or any folder with images/ and labels/;
              the newest {root}/datasets/azaion-* when PATH is left out

modes:
  (default)   a grid of --n images picked with --seed, saved to --out
  --stats     class counts per split (weather modes apart), box sizes and boxes per image:
              three PNGs beside --out (NAME-classes.png, NAME-box-sizes.png,
              NAME-boxes-per-image.png) and a table on stdout
  --browse    a window, one image at a time (right/n next, left/p previous, q quit)
  --model F   open the model file F in netron (needs the viz extra); Ctrl-C stops it
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("images",))
    parser.add_argument(
        "source", nargs="?", default="data", choices=SOURCES, help="what to draw (default data)"
    )
    parser.add_argument("path", nargs="?", type=Path, metavar="PATH", help="dataset folder")
    parser.add_argument("--split", choices=SPLITS, help="only this split of a dataset")
    parser.add_argument(
        "--n", type=at_least(1), default=16, metavar="N", help="images in the grid (16)"
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="only images with a box of this class (Truck: every weather mode; Truck(Wint) or 21: "
        "that slot only); grid and browse",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pick (0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("azaion-visualise.png"),
        metavar="FILE.png",
        help="where the grid goes; --stats names its plots after it (default azaion-visualise.png)",
    )
    parser.add_argument("--columns", type=at_least(1), metavar="C", help="images per grid row")
    parser.add_argument(
        "--cell",
        type=at_least(16),
        default=320,
        metavar="PX",
        help="grid cell size in pixels (320)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stats", action="store_true", help="dataset statistics: plots and a table")
    mode.add_argument("--browse", action="store_true", help="browse the images in a window")
    mode.add_argument("--model", type=Path, metavar="FILE", help="open a model graph in netron")
    return parser


def draw(args: argparse.Namespace, settings: Settings) -> int:
    if args.model is not None:
        host, port = open_model_graph(args.model, browse=True, wait=True)
        print(f"netron served {args.model} at http://{host}:{port}")
        return EXIT_OK
    table = ClassTable.default()
    folders = resolve_folders(
        DataTree.from_settings(settings), args.source, path=args.path, split=args.split
    )
    splits = {name: list_images(folder) for name, folder in folders.items()}
    if args.stats:
        return _stats(splits, table, out=args.out)
    items = [item for split_items in splits.values() for item in split_items]
    label = _label(args.source, folders)
    if args.class_name:
        items = with_class(items, class_ids(args.class_name, table))
        label += f" · class {args.class_name}"
    if args.browse:
        browse(items, table, to_rgb=settings.images.rule())
        return EXIT_OK
    chosen = pick(items, n=args.n, seed=args.seed)
    title = f"{label} · {len(chosen)} of {len(items)} images · seed {args.seed}"
    figure = grid_figure(
        chosen,
        table,
        cell_px=args.cell,
        columns=args.columns,
        title=title,
        to_rgb=settings.images.rule(),
    )
    print(f"grid of {len(chosen)} images: {save_figure(figure, args.out)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, draw)


def _label(source: str, folders: dict[str, AnnotationDir]) -> str:
    if source != "dataset":
        return source
    first = next(iter(folders.values())).path
    if set(folders) <= set(SPLITS):
        return f"{first.parent.name} {' + '.join(folders)}"
    return first.name


def _stats(splits: dict[str, list[LabelledImage]], table: ClassTable, *, out: Path) -> int:
    stats = collect_stats(splits)
    print(stats_table(stats, table))
    for name, path in save_stats_plots(stats, table, out=out).items():
        print(f"{name}: {path}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
