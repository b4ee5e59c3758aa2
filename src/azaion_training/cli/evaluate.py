"""`azaion-evaluate`: score a model as it is deployed on a formed dataset split."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import EXIT_OK, command_parser, deployment_settings, run, setting
from azaion_training.config import Settings
from azaion_training.errors import DatasetError, StoreError
from azaion_training.fs import DataTree, atomic_write_text
from azaion_training.infer.load import engines_help, suffixes

PROG = "azaion-evaluate"

DESCRIPTION = """\
Score a model as it is deployed, on the full frames of a formed dataset split.

The model runs as azaion-infer runs it (its engine, letterbox, batch, overlap removal at --iou)
over every image of the split at their own size. Scores:

  mAP50, mAP50-95       COCO (faster-coco-eval), from detections above --score-conf
  by object size        AP and recall per size bucket, sqrt of the box area in frame pixels:
                        very tiny 2-8, tiny 8-16, small 16-32, medium 32-64, large > 64 px,
                        and all up to 32 px
  P, R, F1              at the deployed --conf; a detection finds an object of its class
                        that it overlaps with IoU >= 0.5 (most confident first)
  per class             AP, precision, recall, F1
  confusion             of the classes present, at --conf

Prints a table and writes every score, the curves and the settings as JSON (--out).

MODEL is a model file of one of these types, or a model name in the model store:

"""


def build_parser() -> argparse.ArgumentParser:
    description = DESCRIPTION + textwrap.indent(engines_help(), "  ")
    parser = command_parser(PROG, description, env_sections=("infer", "evaluate"))
    parser.add_argument(
        "model",
        metavar="MODEL",
        help=f"model file ({', '.join(suffixes())}) or store model name; "
        "default: models/azaion.onnx under the root",
        nargs="?",
    )
    parser.add_argument(
        "--split",
        default="test",
        metavar="SPLIT",
        help="test, valid, or a folder: a split (with images/ and labels/) or a dataset "
        "(its test split, else valid); default test of the newest dataset under the root",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        metavar="DIR",
        help="the dataset of --split test|valid (default: the newest datasets/azaion-* under "
        "the root)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="the JSON file to write (default: ./evaluation-MODEL-SPLIT.json)",
    )
    deployment_settings(parser, conf_help="deployed confidence: P, R, F1 and confusion")
    setting(
        parser,
        "--score-conf",
        key="evaluate.score_conf",
        type=float,
        metavar="P",
        help="lowest confidence of the detections AP is computed from",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from azaion_training.evaluate.model import evaluate_with_settings

    tree = DataTree.from_settings(settings)
    split = _split_folder(args, tree)
    model, from_store = _model(args.model)
    try:
        evaluation = evaluate_with_settings(
            settings, tree, split, model=model, from_store=from_store, progress=not args.no_progress
        )
    except StoreError as error:
        if from_store is None:
            raise
        raise StoreError(f"{from_store} is no file here, and {error}") from error
    scores = evaluation.scores
    out = args.out or Path(f"evaluation-{Path(scores.settings.model).stem}-{split.name}.json")
    atomic_write_text(out, json.dumps(scores.to_dict(), indent=2) + "\n")
    print(scores.table())
    print(f"scores written to {out}")
    return EXIT_OK


def _split_folder(args: argparse.Namespace, tree: DataTree) -> Path:
    from azaion_training.evaluate.split import SPLITS, resolve_split

    if args.split not in SPLITS:
        return resolve_split(Path(args.split))
    dataset = args.dataset or tree.newest_dataset()
    if dataset is None:
        raise DatasetError(f"no dataset under {tree.datasets}; give --dataset or --split DIR")
    return resolve_split(dataset, args.split)


def _model(name: str | None) -> tuple[Path | None, str | None]:
    """A file when it exists (or names a path), else a store name."""
    if name is None:
        return None, None
    path = Path(name)
    if path.exists() or len(path.parts) > 1:
        return path, None
    return None, name


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, evaluate)


if __name__ == "__main__":
    raise SystemExit(main())
