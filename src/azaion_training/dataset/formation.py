"""Dataset formation: ``data-processed/`` -> ``datasets/azaion-{date}/`` with no leakage.

Every sample in ``data-processed/`` is an original annotation ``{stem}`` or one of its augmented
variants ``{stem}_1`` ... ``{stem}_7`` (see `azaion_training.samples`). Formation streams over the
images once (no list of every sample, one ``mkdir`` per split folder):

1. each sample's source annotation is placed by the split ledger (`dataset.ledger`): its group is
   its source media, else its image content, else itself (from the annotation catalogue,
   `queue.catalogue`, which registers annotations it has never seen); a group placed by an earlier
   dataset keeps its split, a new one is bucketed by its hash, so nothing ever moves;
2. every sample of a train source goes to ``train/``, only the original of a valid or test source
   to ``valid/`` or ``test/`` (augmented copies never score a model); a train sample larger than
   the training size also enters as tiles at native resolution (`dataset.tiles`), in its
   source's group;
3. the image and label are taken as a snapshot (`dataset.snapshot`: hard-linked into a hidden
   folder, copied only where a link is impossible, and checked there); a pair that keeps
   changing is left out, one that vanished is gone, not corrupt; an invalid label moves, with
   its image, to ``data-corrupted/`` with a reason;
4. ``manifest.json`` (ledger generation, catalogue state, groups, annotations and samples per
   split, and the digest of ``manifest-members.tsv``: one ``split, group, annotation, sample``
   line per file pair) and ``data.yaml`` (``nc: 80`` and the 80 names) are written and the folder
   renamed into place, so a dataset is either complete or absent; then the ledger commits.

A second dataset formed on the same day is written beside the first as ``azaion-{date}.2``,
``.3``, ... (`free_dir`); nothing is ever overwritten.

Layout:

    datasets/azaion-{YYYY-MM-DD}[.N]/
        data.yaml, manifest.json, manifest-members.tsv
        {train,valid,test}/images/{name}.jpg
        {train,valid,test}/labels/{name}.txt
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from azaion_training.classes import ClassTable
from azaion_training.config import Settings
from azaion_training.corrupted import quarantine
from azaion_training.dataset.ledger import SPLITS, SplitLedger, group_keys
from azaion_training.dataset.snapshot import SETTLE_S, OpenFolder, Outcome, Pair, take_pair
from azaion_training.dataset.tiles import TrainTiles
from azaion_training.errors import DatasetError
from azaion_training.fs import AnnotationDir, DataTree, atomic_write_text, free_dir, is_temporary
from azaion_training.images import SUFFIX_SPELLINGS
from azaion_training.locks import hold
from azaion_training.queue.catalogue import Catalogue
from azaion_training.samples import sample_names, source_of

logger = logging.getLogger(__name__)

DATA_YAML = "data.yaml"
MANIFEST = "manifest.json"
MEMBERS = "manifest-members.tsv"

REGISTER_BATCH = 200
"""Catalogue entries registered on first sight per commit (the queue waits for each commit)."""

RECHECK_PAUSES_S = (SETTLE_S, SETTLE_S / 3, SETTLE_S / 3)
"""Pauses before each new look at the pairs that were too recent; those still recent after the
last are left out as changing."""


@dataclass(frozen=True)
class SplitCounts:
    """What one split holds: source annotations and samples (image + label pairs)."""

    sources: int
    samples: int


@dataclass(frozen=True)
class FormedDataset:
    """The outcome of `form_dataset`.

    Attributes:
        path: the dataset folder.
        data_yaml: its ``data.yaml``, ready for Ultralytics.
        counts: per split name (``train``, ``valid``, ``test``).
        corrupted: samples moved to ``data-corrupted/`` by this run.
        incomplete: images without a label (left where they are; usually still being written).
        vanished: samples removed (or changing) while the dataset formed; left out, not corrupt.
        linked: files hard-linked; ``copied``: files copied instead.
        tiles: train tiles written (`dataset.tiles`; image and label each), counted in the
            train samples.
        seconds: wall time of the formation.
        generation: the split ledger's generation.
        resplit: the generation is newer than that of every earlier dataset (`SplitLedger.resplit`).
        new_groups: groups this dataset placed for the first time.
        manifest: the dataset's ``manifest.json``.
        splits: source name -> split name, for every source in the dataset.
    """

    path: Path
    data_yaml: Path
    counts: Mapping[str, SplitCounts]
    corrupted: int = 0
    incomplete: int = 0
    vanished: int = 0
    linked: int = 0
    copied: int = 0
    tiles: int = 0
    seconds: float = 0.0
    generation: int = 1
    resplit: bool = False
    new_groups: int = 0
    manifest: Path | None = None
    splits: Mapping[str, str] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """One line: folder, per-split counts, the ledger, what was left out, how files went."""
        parts = ", ".join(
            f"{name} {c.samples} samples / {c.sources} sources" for name, c in self.counts.items()
        )
        ledger = f"split ledger generation {self.generation} ({self.new_groups} new groups)"
        tiles = f", {self.tiles} train tiles written" if self.tiles else ""
        if self.resplit:
            ledger = (
                f"NEW {ledger}: every group was split afresh, test scores are not comparable "
                "with earlier datasets"
            )
        return (
            f"dataset {self.path}: {parts}; {ledger}; {self.corrupted} corrupted, "
            f"{self.incomplete} incomplete, {self.vanished} vanished; {self.linked} linked, "
            f"{self.copied} copied{tiles} in {self.seconds:.1f} s"
        )


def group_by_source(names: Iterable[str], *, variants: int) -> dict[str, list[str]]:
    """Groups sample names by their source annotation, the original first.

    Originals are the names that are not a variant (``_1`` .. ``_{variants}``) of another present
    name; every other name joins its original's group.
    """
    present = set(names)
    originals = {n for n in present if source_of(n, originals=present, variants=variants) == n}
    groups: dict[str, list[str]] = {}
    for name in sorted(present):
        groups.setdefault(source_of(name, originals=originals, variants=variants), []).append(name)
    for source, members in groups.items():
        if source in members:
            members.remove(source)
            members.insert(0, source)
    return groups


def data_yaml_text(path: Path, *, has_test: bool, names: Sequence[str]) -> str:
    """The ``data.yaml`` of a dataset at ``path`` (absolute, as Ultralytics resolves it)."""
    content: dict[str, object] = {
        "path": str(path),
        "train": "train/images",
        "val": "valid/images",
    }
    if has_test:
        content["test"] = "test/images"
    content["nc"] = len(names)
    content["names"] = list(names)
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True)


def count_dataset(dataset: Path, *, variants: int) -> dict[str, SplitCounts]:
    """Sources and samples per split of a dataset folder, counted on disk."""
    counts = {}
    for split in SPLITS:
        names = _stems(dataset / split / "images")
        counts[split] = SplitCounts(
            sources=len(group_by_source(names, variants=variants)), samples=len(names)
        )
    return counts


def read_manifest(dataset: Path) -> dict[str, object]:
    """The ``manifest.json`` of a dataset folder (empty for datasets formed before manifests)."""
    try:
        return dict(json.loads((dataset / MANIFEST).read_text()))
    except FileNotFoundError:
        return {}


def form_dataset(
    settings: Settings,
    tree: DataTree,
    *,
    date: dt.date | None = None,
    link: bool = True,
    progress: bool = True,
) -> FormedDataset:
    """Forms ``datasets/azaion-{date}`` from ``data-processed/`` (see the module docstring).

    Args:
        settings: the split ratios (``dataset``), the number of variants (``augment``) and the
            class table (``classes``: the names in ``data.yaml``).
        tree: the data tree.
        date: the dataset's date; today when ``None``.
        link: hard-link files (the default); ``False`` copies them (for comparison).
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: there are no valid samples, or too few sources for a train and a valid
            split, or the dataset folder cannot be written, or the split ledger is damaged or
            lost while datasets exist (`SplitLedger.for_formation`).
        BusyError: another formation runs on this root (its PID is named).
    """
    with hold(tree.lock_file("formation"), role="dataset formation"):
        remove_leftovers(tree.datasets)
        return _form_dataset(settings, tree, date=date, link=link, progress=progress)


def remove_leftovers(datasets: Path) -> int:
    """Removes the staging folders of formations that did not finish (``.azaion-*.partial``,
    and ``.*.removing`` of an interrupted prune); call with the formation lock held or free.
    Returns how many were removed."""
    removed = 0
    for leftover in [*datasets.glob(".azaion-*.partial"), *datasets.glob(".azaion-*.removing")]:
        logger.info("removing %s, left by a formation or prune that did not finish", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
        removed += 1
    return removed


def _form_dataset(
    settings: Settings, tree: DataTree, *, date: dt.date | None, link: bool, progress: bool
) -> FormedDataset:
    started = time.perf_counter()
    base = tree.dataset_dir(date or dt.date.today())
    base.parent.mkdir(parents=True, exist_ok=True)
    staging = base.with_name(f".{base.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    earlier = _latest_generation(tree.datasets)
    formed = len([path for path in tree.datasets.glob("azaion-*") if path.is_dir()])
    try:
        with (
            SplitLedger.for_formation(tree.root, datasets=formed) as ledger,
            Catalogue.for_tree(tree) as catalogue,
        ):
            formation = _Formation(settings, tree, staging, ledger, catalogue, link=link)
            try:
                formation.run(progress=progress)
                target = formation.publish(base)
            finally:
                catalogue.commit()  # entries registered on first sight stay, whatever happens
            ledger.commit()
    except OSError as exc:
        raise DatasetError(f"cannot write dataset under {base.parent}: {exc}") from exc
    except sqlite3.Error as exc:
        raise DatasetError(
            f"cannot use the split ledger or catalogue in {tree.root}: {exc}"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = formation.result(
        target, seconds=time.perf_counter() - started, resplit=formation.ledger.generation > earlier
    )
    logger.info("%s", result.summary())
    return result


class _Formation:
    """One formation: streams the samples into ``staging`` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        tree: DataTree,
        staging: Path,
        ledger: SplitLedger,
        catalogue: Catalogue,
        *,
        link: bool,
    ) -> None:
        self.tree = tree
        self.staging = staging
        self.ledger = ledger
        self.catalogue = catalogue
        self.link = link
        self.variants = settings.augment.variants
        self.names = ClassTable.load(settings.classes).names
        self.ratios = (
            settings.dataset.train_ratio,
            settings.dataset.valid_ratio,
            settings.dataset.test_ratio,
        )
        self.splits: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.samples = dict.fromkeys(SPLITS, 0)
        self.sources: dict[str, set[str]] = {split: set() for split in SPLITS}
        self.linked = self.corrupted = self.incomplete = self.vanished = self.new_groups = 0
        self._originals: dict[str, bool] = {}
        self._completed: dict[str, bool] = {}
        self._origin: Pair  # data-processed/{images,labels}, open in `run`
        self._registered = 0
        self._data_labels = str(tree.data.labels)
        self._members_digest = hashlib.sha256()
        self.tiles = TrainTiles.from_settings(settings)
        self.tiles_written = 0

    def run(self, *, progress: bool) -> None:
        processed = self.tree.data_processed
        if not (processed.images.is_dir() and processed.labels.is_dir()):
            raise DatasetError(f"no valid samples in {processed.path}")
        with contextlib.ExitStack() as folders:
            self._origin = (
                folders.enter_context(OpenFolder.open(processed.images)),
                folders.enter_context(OpenFolder.open(processed.labels)),
            )
            outs = {}
            for split in SPLITS:
                out = AnnotationDir(self.staging / split)
                out.create()  # the only mkdir: one per split folder
                outs[split] = (
                    folders.enter_context(OpenFolder.open(out.images)),
                    folders.enter_context(OpenFolder.open(out.labels)),
                )
            self._form(outs, progress=progress)
        if not any(self.samples.values()):
            raise DatasetError(f"no valid samples in {processed.path}")
        for split in ("train", "valid"):
            if self.samples[split] == 0:
                raise DatasetError(
                    f"{len(self.splits)} source annotations give no {split} samples; "
                    "add annotations"
                )

    def _form(self, outs: dict[str, Pair], *, progress: bool) -> None:
        """Streams every image of ``data-processed/`` into its split (the folders are open)."""
        from tqdm import tqdm

        deferred: list[tuple[str, str, str]] = []
        with (
            open(self.staging / MEMBERS, "w", encoding="utf-8") as members,
            tqdm(desc="forming dataset", unit="sample", disable=not progress) as bar,
        ):
            for image in _images(self.tree.data_processed.images):
                bar.update()
                stem = image[: image.rfind(".")]
                source = self._source(stem)
                if not self._complete(source):
                    self._count(Outcome.INCOMPLETE, members, split="", source=source, stem=stem)
                    continue
                split = self.splits.get(source) or self._place(source)
                if split != "train" and stem != source:
                    continue  # valid and test hold only originals
                if not self._take_counted(image, source, split, outs[split], members):
                    deferred.append((image, source, split))
            # Pairs written just now: look at all of them again once a writer would have
            # finished, a few rounds at most, so a busy writer delays formation by seconds, not
            # by a pause per pair.
            for pause in RECHECK_PAUSES_S:
                if not deferred:
                    break
                time.sleep(pause)
                deferred = [
                    (image, source, split)
                    for image, source, split in deferred
                    if not self._take_counted(image, source, split, outs[split], members)
                ]
            for image, source, split in deferred:
                stem = image[: image.rfind(".")]
                logger.info("%s kept changing while the dataset formed; left out", stem)
                self._count(Outcome.CHANGING, members, split=split, source=source, stem=stem)

    def _take_counted(
        self,
        image: str,
        source: str,
        split: str,
        targets: Pair,
        members: IO[str],
    ) -> bool:
        """Takes one pair into ``targets`` and counts what became of it; False when it was
        written too recently to take yet (nothing is counted then)."""
        stem = image[: image.rfind(".")]
        outcome = self._take((image, f"{stem}.txt"), targets, stem)
        if outcome is Outcome.RECENT:
            return False
        self._count(outcome, members, split=split, source=source, stem=stem)
        if outcome is Outcome.PLACED and split == "train" and self.tiles is not None:
            self._add_tiles(image, source, members)
        return True

    def _add_tiles(self, image: str, source: str, members: IO[str]) -> None:
        """Writes the tiles of a placed train sample beside it, as members of its source."""
        assert self.tiles is not None
        train = AnnotationDir(self.staging / "train")
        stem = image[: image.rfind(".")]
        for tile in self.tiles.write(
            train.images / image, train.labels / f"{stem}.txt", train.images, train.labels
        ):
            self.tiles_written += 1
            self._count(Outcome.PLACED, members, split="train", source=source, stem=tile)

    def _count(
        self, outcome: Outcome, members: IO[str], *, split: str, source: str, stem: str
    ) -> None:
        if outcome is Outcome.PLACED:
            self.samples[split] += 1
            self.sources[split].add(source)
            line = f"{split}\t{self.groups[source]}\t{source}\t{stem}\n"
            members.write(line)
            self._members_digest.update(line.encode("utf-8"))
        elif outcome is Outcome.INVALID:
            self.corrupted += 1
        elif outcome is Outcome.INCOMPLETE:
            self.incomplete += 1
        else:
            self.vanished += 1

    def _complete(self, source: str) -> bool:
        """True when every sample of ``source`` (the original and its variants) has its label
        in ``data-processed/``: a source is taken with all its samples or not at all (a pass
        that stopped half-way through it, a disk that filled up, leaves it out until the next
        pass completes it)."""
        complete = self._completed.get(source)
        if complete is None:
            labels = self._origin[1]
            names = sample_names(source, variants=self.variants)
            complete = all(labels.exists(f"{name}.txt") for name in names)
            self._completed[source] = complete
            if not complete:
                logger.info("%s has not all its %d samples yet; left out", source, len(names))
        return complete

    def _source(self, stem: str) -> str:
        """The source of sample ``stem``: a variant's original is an original sample on disk."""
        return source_of(stem, originals=_Originals(self), variants=self.variants)

    def is_original(self, stem: str) -> bool:
        known = self._originals.get(stem)
        if known is None:
            exists = self._origin[1].exists(f"{stem}.txt")
            known = exists and self._source(stem) == stem
            self._originals[stem] = known
        return known

    def _place(self, source: str) -> str:
        entry = self.catalogue.get(source)
        if entry is None and os.path.exists(f"{self._data_labels}/{source}.txt"):
            entry = self.catalogue.register(
                source, folder=self.tree.data_name, image=_image_of(self.tree.data, source)
            )
            self._registered += 1
            if self._registered % REGISTER_BATCH == 0:
                self.catalogue.commit()  # short transactions: the queue writes it too
        keys = group_keys(
            source,
            media=None if entry is None else entry.media,
            digest=None if entry is None else entry.digest,
        )
        split, known = self.ledger.place(source, keys, self.ratios)
        self.new_groups += not known
        self.splits[source] = split
        self.groups[source] = keys[0]
        return split

    def _take(self, names: tuple[str, str], targets: Pair, stem: str) -> Outcome:
        """Takes one pair (image and label ``names`` in ``data-processed/``) into the folders
        ``targets`` (`snapshot.take_pair`); an invalid label goes to ``data-corrupted/``."""
        taken = take_pair(self._origin, targets, names, link=self.link)
        if taken.outcome is Outcome.PLACED:
            self.linked += taken.links
        elif taken.outcome is Outcome.CHANGING:
            logger.info("%s kept changing while the dataset formed; left out", stem)
        elif taken.outcome is Outcome.INVALID:
            image, label = (Path(self._origin[i].path, names[i]) for i in (0, 1))
            return self._reject(image, label, stem, taken.reason)
        return taken.outcome

    def _reject(self, image: Path, label: Path, stem: str, reason: str) -> Outcome:
        try:
            quarantine(
                self.tree.data_corrupted,
                name=stem,
                image=image,
                label=label,
                reason=reason,
                component="azaion-train",
            )
        except FileNotFoundError:
            return Outcome.VANISHED
        logger.warning("rejected %s: %s", stem, reason)
        return Outcome.INVALID

    def publish(self, base: Path) -> Path:
        """Writes the manifest and ``data.yaml`` and renames the staging folder into place."""
        manifest = {
            "ledger_generation": self.ledger.generation,
            "new_groups": self.new_groups,
            "catalogue": self.catalogue.state(),
            "splits": {
                split: {
                    "groups": len({self.groups[s] for s in self.sources[split]}),
                    "annotations": len(self.sources[split]),
                    "samples": self.samples[split],
                }
                for split in SPLITS
            },
            "members": MEMBERS,
            "members_sha256": self._members_digest.hexdigest(),
            "tiles": None
            if self.tiles is None
            else {**self.tiles.describe(), "written": self.tiles_written},
        }
        atomic_write_text(self.staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        return _publish(self.staging, base, has_test=self.samples["test"] > 0, names=self.names)

    def result(self, target: Path, *, seconds: float, resplit: bool) -> FormedDataset:
        total = sum(self.samples.values())
        return FormedDataset(
            path=target,
            data_yaml=target / DATA_YAML,
            counts={
                split: SplitCounts(len(self.sources[split]), self.samples[split])
                for split in SPLITS
            },
            corrupted=self.corrupted,
            incomplete=self.incomplete,
            vanished=self.vanished,
            linked=self.linked,
            copied=2 * (total - self.tiles_written) - self.linked,
            tiles=self.tiles_written,
            seconds=seconds,
            generation=self.ledger.generation,
            resplit=resplit,
            new_groups=self.new_groups,
            manifest=target / MANIFEST,
            splits={s: self.splits[s] for split in SPLITS for s in self.sources[split]},
        )


class _Originals:
    """The originals of ``data-processed/``, looked up on disk as a `Container`."""

    def __init__(self, formation: _Formation) -> None:
        self._formation = formation

    def __contains__(self, stem: object) -> bool:
        return isinstance(stem, str) and self._formation.is_original(stem)


def _images(folder: Path) -> Iterator[str]:
    """The image file names of a folder, streamed (dot-named temporary files skipped)."""
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            if (
                not is_temporary(entry)
                and "." in entry.name
                and not entry.is_dir(follow_symlinks=False)
            ):  # links and special files too: `take_pair` rejects them (never followed)
                yield entry.name


def _stems(folder: Path) -> list[str]:
    return [name[: name.rfind(".")] for name in _images(folder)]


def _image_of(folder: AnnotationDir, name: str) -> Path | None:
    """The image of ``name`` in ``folder`` by trying the allowed extensions (listing a folder of
    millions of files once per annotation would be quadratic)."""
    images = str(folder.images)
    for extension in SUFFIX_SPELLINGS:
        candidate = f"{images}/{name}{extension}"
        if os.path.isfile(candidate):
            return Path(candidate)
    return None


def _latest_generation(datasets: Path) -> int:
    """The newest ledger generation among the datasets' manifests (a large number if none, so
    the first dataset is not called a re-split)."""
    generations = [
        int(manifest.get("ledger_generation", 0))  # type: ignore[call-overload]
        for path in datasets.glob("azaion-*")
        if (manifest := read_manifest(path))
    ]
    return max(generations, default=1 << 30)


def _publish(staging: Path, base: Path, *, has_test: bool, names: Sequence[str]) -> Path:
    """Writes ``data.yaml`` (the class table's 80 ``names``) for the first free name and renames
    ``staging`` there."""
    while True:
        target = free_dir(base)
        atomic_write_text(
            staging / DATA_YAML, data_yaml_text(target, has_test=has_test, names=names)
        )
        try:
            os.rename(staging, target)
        except OSError as exc:  # another run took the name in between: try the next one
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            continue
        if target != base:
            logger.warning("%s exists; this dataset is %s", base.name, target.name)
        return target
