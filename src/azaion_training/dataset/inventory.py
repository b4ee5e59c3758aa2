"""The datasets under ``datasets/``: what each holds, which runs trained on it, and pruning.

A run folder (``models/azaion-*``) names its dataset in Ultralytics' ``args.yaml`` (``data:``);
a run whose ``metrics.json`` says the gate installed it made a model that was (or is) in use. The
datasets of such runs are never pruned, so every published score can still be traced to its data.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from azaion_training.dataset.formation import SPLITS, read_manifest, remove_leftovers
from azaion_training.fs import DataTree, is_temporary
from azaion_training.locks import is_held

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset folder.

    Attributes:
        path: the folder.
        samples: image/label pairs per split.
        generation: the split ledger generation it was formed with (``None``: no manifest).
        runs: the run folders trained on it.
        installed: runs trained on it whose model the gate installed.
    """

    path: Path
    samples: dict[str, int]
    generation: int | None
    runs: tuple[Path, ...]
    installed: tuple[Path, ...]

    def line(self) -> str:
        """One line for a listing."""
        counts = " ".join(f"{split} {self.samples[split]}" for split in SPLITS)
        runs = ", ".join(
            run.name + (" (installed)" if run in self.installed else "") for run in self.runs
        )
        generation = "-" if self.generation is None else str(self.generation)
        return f"{self.path.name:<24} {counts:<40} gen {generation:<3} {runs or 'no runs'}"


def list_datasets(tree: DataTree) -> list[DatasetInfo]:
    """Every dataset under ``datasets/``, oldest first, with the runs trained on it."""
    runs = _runs_by_dataset(tree)
    found = []
    for path in sorted(p for p in tree.datasets.glob("azaion-*") if p.is_dir()):
        manifest = read_manifest(path)
        on_it = runs.get(path.resolve(), [])
        found.append(
            DatasetInfo(
                path=path,
                samples=_samples(path, manifest),
                generation=manifest.get("ledger_generation"),  # type: ignore[arg-type]
                runs=tuple(run for run, _ in on_it),
                installed=tuple(run for run, installed in on_it if installed),
            )
        )
    return sorted(found, key=lambda info: _age(info.path))


def prune_datasets(tree: DataTree, *, keep: int) -> list[Path]:
    """Removes all but the newest ``keep`` datasets, sparing any an installed model came from.

    Also removes what killed formations left (``.azaion-*.partial`` staging folders) while no
    formation runs.

    Returns:
        The folders removed.
    """
    if tree.datasets.is_dir() and not is_held(tree.lock_file("formation")):
        remove_leftovers(tree.datasets)
    datasets = list_datasets(tree)
    spared = {info.path for info in datasets[len(datasets) - keep :]} if keep > 0 else set()
    removed = []
    for info in datasets:
        if info.path in spared or info.installed:
            continue
        doomed = info.path.with_name(f".{info.path.name}.removing")
        os.rename(info.path, doomed)  # gone from the listing at once, whatever happens next
        shutil.rmtree(doomed, ignore_errors=True)
        logger.info("removed dataset %s", info.path)
        removed.append(info.path)
    return removed


def _runs_by_dataset(tree: DataTree) -> dict[Path, list[tuple[Path, bool]]]:
    runs: dict[Path, list[tuple[Path, bool]]] = {}
    for run in sorted(tree.models.glob("azaion-*")):
        try:
            data = yaml.safe_load((run / "args.yaml").read_text("utf-8")).get("data")
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if not data:
            continue
        runs.setdefault(Path(data).resolve().parent, []).append((run, _installed(run)))
    return runs


def _installed(run: Path) -> bool:
    try:
        return bool(json.loads((run / "metrics.json").read_text())["gate"]["install"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _samples(path: Path, manifest: dict[str, object]) -> dict[str, int]:
    splits = manifest.get("splits")
    if isinstance(splits, dict):
        return {split: int(splits.get(split, {}).get("samples", 0)) for split in SPLITS}
    counts = {}
    for split in SPLITS:
        try:
            with os.scandir(path / split / "images") as entries:
                counts[split] = sum(1 for entry in entries if not is_temporary(entry))
        except FileNotFoundError:
            counts[split] = 0
    return counts


def _age(path: Path) -> tuple[str, int]:
    """Sorts ``azaion-2026-01-02`` before ``azaion-2026-01-02.2`` before ``...-03``."""
    stem, _, number = path.name.partition(".")
    return stem, int(number) if number.isdigit() else 1


def describe_annotation(tree: DataTree, name: str) -> str:
    """What the catalogue and the split ledger know of annotation ``name``, as text."""
    from azaion_training.dataset.ledger import SplitLedger, group_keys
    from azaion_training.queue.catalogue import Catalogue

    with Catalogue.for_tree(tree) as catalogue:
        entry = catalogue.get(name)
        history = catalogue.history(name)
    if entry is None:
        return f"{name}: not in the catalogue {tree.root}"
    keys = group_keys(name, media=entry.media, digest=entry.digest)
    with SplitLedger.under(tree.root) as ledger:
        split = next((s for s in map(ledger.recorded, [f"name:{name}", *keys]) if s), None)
        generation = ledger.generation
    fields = {
        "media": entry.media,
        "time (ticks)": entry.time_ticks,
        "role": entry.role,
        "author": entry.email,
        "source": entry.source,
        "created": entry.created,
        "folder": entry.folder,
        "deleted": entry.deleted,
        "image sha256": entry.digest,
        "entry from": entry.origin,
        "group": keys[0],
        "split": f"{split or 'not placed yet'} (ledger generation {generation})",
    }
    lines = [name, *(f"  {key:<13} {value}" for key, value in fields.items())]
    lines += [
        "  history",
        *(f"    offset {o}: status {s} {d or ''} {e or ''}" for o, s, d, e in history),
    ]
    return "\n".join(line.rstrip() for line in lines)


def media_counts(tree: DataTree) -> str:
    """Annotations per source media in the catalogue, as text."""
    from azaion_training.queue.catalogue import Catalogue

    with Catalogue.for_tree(tree) as catalogue:
        counts = catalogue.media_counts()
    return "\n".join(f"{count:>8}  {media or '(no media)'}" for media, count in counts)
