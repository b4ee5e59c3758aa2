"""`azaion-model`: publish encrypted, versioned models; fetch, list and roll them back."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azaion_training.cli._common import EXIT_OK, command_parser, run, setting
from azaion_training.config import Settings
from azaion_training.fs import DataTree
from azaion_training.store.models import (
    ModelStore,
    StoredModel,
    init_key,
    open_store,
    save_plaintext,
)

PROG = "azaion-model"

DESCRIPTION = """\
Publish encrypted, versioned models to the model store, fetch them back, list them, roll back.

The store is the Azaion platform (small part on the API, big part on the CDN) when
AZAION_API_URL is set, else the local store in {root}/model-store. Every publish makes a new
version, verified before it becomes current; the last AZAION_STORE_KEEP_VERSIONS are kept.
Options common to every command go before the subcommand: azaion-model --root DIR publish FILE.

examples:
  azaion-model init-key                                 # a new model key (never replaces one)
  azaion-model publish models/azaion.onnx
  azaion-model publish run/weights/best.onnx --name azaion.onnx
  azaion-model fetch azaion.onnx                        # download and verify only
  azaion-model fetch azaion.onnx --version 3 --decrypt-to /secure/azaion.onnx
  azaion-model list                                     # versions, dates, sizes, digests, scores
  azaion-model rollback azaion.onnx                     # back to the previous version
"""

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, DESCRIPTION, env_sections=("api", "cdn", "store", "security"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    publish = commands.add_parser(
        "publish",
        help="encrypt, split and publish a model file as a new version",
        description="Encrypt a model with the model key, split it, store it as a new version, "
        "read it back, and only then make it current.",
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
    fetch.add_argument("--version", type=_version, help="a kept version (default: the current)")
    fetch.add_argument(
        "--decrypt-to",
        type=Path,
        metavar="FILE",
        help="write the decrypted model to FILE (created with mode 0600). The plaintext model is "
        "then on disk: anyone who can read FILE has it",
    )
    setting(
        fetch,
        "--allow-unverified",
        key="store.allow_unverified",
        action="store_const",
        const=True,
        help="accept a model with no recorded SHA-256 (warned about; it may have been altered)",
    )
    commands.add_parser(
        "list",
        help="list the models and their versions",
        description="List every model with its kept versions: dates, plaintext sizes, SHA-256 "
        "digests and the training scores recorded with them; * marks the current one.",
    )
    rollback = commands.add_parser(
        "rollback",
        help="make an earlier version current again",
        description="Read back and verify a kept version, then make it current.",
    )
    rollback.add_argument("name", metavar="NAME", help="the model's name in the store")
    rollback.add_argument(
        "version",
        nargs="?",
        type=_version,
        metavar="VERSION",
        help="the version (3 or v3); default: the newest one older than the current",
    )
    commands.add_parser(
        "init-key",
        help="create a new model key file",
        description="Create a new random model key in AZAION_MODEL_KEY_FILE, else in "
        "{root}/model-store/model.key (mode 0600). An existing file is never replaced.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    tree = DataTree.from_settings(settings)
    if args.command == "init-key":
        print(f"created a new model key in {init_key(settings, tree)}; back it up")
        return EXIT_OK
    with open_store(settings, tree) as store:
        if args.command == "publish":
            _publish(store, args.file, args.name)
        elif args.command == "fetch":
            checked = not settings.store.allow_unverified
            _fetch(store, args.name, args.version, args.decrypt_to, checked=checked)
        elif args.command == "rollback":
            record = store.rollback(args.name, args.version)
            print(f"{record.name}: v{record.version} ({record.published}) is current again")
        else:
            _list(store)
    return EXIT_OK


def _publish(store: ModelStore, file: Path, name: str | None) -> None:
    published = store.publish(file, name)
    print(
        f"published {published.name} v{published.version}: {_human(published.size)}, "
        f"sha256 {published.sha256}\n"
        f"  small part {published.small_size} B, big part {_human(published.big_size)}\n"
        f"  to {published.location}"
    )


def _fetch(
    store: ModelStore, name: str, version: int | None, decrypt_to: Path | None, *, checked: bool
) -> None:
    data = store.fetch(name, version)
    verified = "verified" if checked else "verified only if no warning said otherwise"
    if decrypt_to is None:
        print(f"fetched {name}: {_human(len(data))}, decrypted in memory, {verified}")
        return
    save_plaintext(data, decrypt_to)
    print(f"fetched {name}: {_human(len(data))}, {verified}, decrypted to {decrypt_to}")


def _list(store: ModelStore) -> None:
    models = store.list()
    if not models:
        print("the store holds no models", file=sys.stderr)
        return
    for model in models:
        print(_model_line(model))
        for record in reversed(model.versions):
            mark = "*" if record.version == model.version else " "
            print(
                f"  {mark} v{record.version:<4} {record.published:<25} {_human(record.size):>10}  "
                f"sha256 {record.sha256}  {_scores(record.metadata)}".rstrip()
            )


def _model_line(model: StoredModel) -> str:
    if model.version is not None:
        return f"{model.name}  (current v{model.version})"
    size = _human(model.size) if model.size is not None else "size unknown"
    digest = model.sha256 or "NO DIGEST RECORDED"
    return f"{model.name}  (published before versions)  {size}  {digest}"


def _scores(metadata: Mapping[str, Any]) -> str:
    """``key=value`` for the scalar entries of the metadata and of its mappings (scores)."""
    items: list[str] = []
    for key, value in metadata.items():
        nested = value.items() if isinstance(value, Mapping) else [(key, value)]
        for name, item in nested:
            if isinstance(item, bool | int | float | str):
                items.append(f"{name}={item:.4g}" if isinstance(item, float) else f"{name}={item}")
    text = ", ".join(items)
    return text if len(text) <= 120 else text[:119] + "…"


def _version(text: str) -> int:
    number = text[1:] if text[:1] in ("v", "V") else text
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r} (expected 3 or v3)")
    return int(number)


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
