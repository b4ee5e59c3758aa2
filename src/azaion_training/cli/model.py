"""`azaion-model`: Publish encrypted models to the model store, fetch them back, list them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from azaion_training.cli._common import EXIT_OK, command_parser, run
from azaion_training.config import Settings
from azaion_training.fs import DataTree
from azaion_training.store.models import ModelStore, open_store, write_decrypted

PROG = "azaion-model"

DESCRIPTION = """\
Publish encrypted models to the model store, fetch them back, list them.

The store is the Azaion platform (small part on the API, big part on the CDN) when
AZAION_API_URL is set, else the local store in {root}/model-store. Options common to every
command go before the subcommand: azaion-model --root DIR publish FILE.

examples:
  azaion-model publish models/azaion.onnx
  azaion-model publish run/weights/best.onnx --name azaion.onnx
  azaion-model fetch azaion.onnx                        # download and verify only
  azaion-model fetch azaion.onnx --decrypt-to /secure/azaion.onnx
  azaion-model list
"""

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("api", "cdn", "security"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    publish = commands.add_parser(
        "publish",
        help="encrypt, split and publish a model file",
        description="Encrypt a model "
        "with the model key, split it and store both parts (big part first).",
    )
    publish.add_argument("file", type=Path, metavar="FILE", help="the model file to publish")
    publish.add_argument("--name", help="its name in the store (default: the file name)")
    fetch = commands.add_parser(
        "fetch",
        help="fetch and verify a model; write it decrypted only with --decrypt-to",
        description="Fetch a model, decrypt it in memory and check its SHA-256. Nothing is "
        "written unless --decrypt-to is given.",
    )
    fetch.add_argument("name", metavar="NAME", help="the model's name in the store")
    fetch.add_argument(
        "--decrypt-to",
        type=Path,
        metavar="FILE",
        help="write the decrypted model to FILE (mode 0600). The plaintext model is then on "
        "disk: anyone who can read FILE has it",
    )
    commands.add_parser(
        "list",
        help="list the models in the store with their sizes",
        description="List the models in the store with their plaintext sizes and SHA-256 digests.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings, DataTree.from_settings(settings)) as store:
        if args.command == "publish":
            _publish(store, args.file, args.name)
        elif args.command == "fetch":
            _fetch(store, args.name, args.decrypt_to)
        else:
            _list(store)
    return EXIT_OK


def _publish(store: ModelStore, file: Path, name: str | None) -> None:
    published = store.publish(file, name)
    print(
        f"published {published.name}: {_human(published.size)}, sha256 {published.sha256}\n"
        f"  small part {published.small_size} B, big part {_human(published.big_size)}\n"
        f"  to {published.location}"
    )


def _fetch(store: ModelStore, name: str, decrypt_to: Path | None) -> None:
    data = store.fetch(name)
    if decrypt_to is None:
        print(f"fetched {name}: {_human(len(data))}, decrypted in memory and verified")
        return
    write_decrypted(data, decrypt_to, name=name)
    print(f"fetched {name}: {_human(len(data))}, verified, decrypted to {decrypt_to}")


def _list(store: ModelStore) -> None:
    models = store.list()
    if not models:
        print("the store holds no models", file=sys.stderr)
        return
    width = max(len(model.name) for model in models)
    for model in models:
        size = _human(model.size) if model.size is not None else "size unknown"
        digest = model.sha256 or "no digest recorded"
        print(f"{model.name:<{width}}  {size:>12}  {digest}")


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


if __name__ == "__main__":
    raise SystemExit(main())
