"""Dataset formation: ``data-processed/`` -> ``datasets/azaion-{date}/`` with no leakage.

Every sample in ``data-processed/`` is an original annotation ``{stem}`` or one of its augmented
variants ``{stem}_1`` ... ``{stem}_7`` (see `azaion_training.samples`). Formation:

1. pairs each image with its label; a label that does not pass `labels.read_label` moves, with
   its image, to ``data-corrupted/`` and a reason file ``data-corrupted/reasons/{name}.txt``;
2. groups the samples by source annotation and splits the *sources* 70/20/10 (settings), so an
   annotation and its variants always land in the same split;
3. puts every sample of a train source into ``train/``, and only the original of a valid or test
   source into ``valid/`` or ``test/`` (augmented copies never score a model, nor train it on
   the images it is scored on);
4. hard-links the files (copies only where a link is impossible) into a hidden folder, writes
   ``data.yaml`` (``nc: 80`` and the 80 names) and renames the folder into place, so a dataset
   is either complete or absent.

The split is deterministic: sources are ordered by the SHA-256 of their name and cut at the
ratios (`assign_splits`). A second dataset formed on the same day is written beside the first as
``azaion-{date}.2``, ``.3``, ... (`free_dir`); nothing is ever overwritten.

Layout:

    datasets/azaion-{YYYY-MM-DD}[.N]/
        data.yaml
        {train,valid,test}/images/{name}.jpg
        {train,valid,test}/labels/{name}.txt
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import itertools
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from azaion_training.classes import ClassTable
from azaion_training.config import Settings
from azaion_training.corrupted import quarantine
from azaion_training.errors import DatasetError, LabelError
from azaion_training.fs import (
    AnnotationDir,
    DataTree,
    atomic_write_text,
    free_dir,
    is_temporary,
    link_or_copy,
)
from azaion_training.labels import read_label
from azaion_training.samples import source_of

logger = logging.getLogger(__name__)

SPLITS: tuple[str, str, str] = ("train", "valid", "test")
"""Split folder names, in the order of the ratios."""

DATA_YAML = "data.yaml"
"""Folder of ``data-corrupted/`` that holds one ``{name}.txt`` reason per rejected sample."""


@dataclass(frozen=True)
class Sample:
    """One image with its label in an annotation folder."""

    name: str
    image: Path
    label: Path


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
        incomplete: images without a label or labels without an image (left where they are).
        linked: files hard-linked; ``copied``: files copied instead.
        seconds: wall time of the formation.
    """

    path: Path
    data_yaml: Path
    counts: Mapping[str, SplitCounts]
    corrupted: int = 0
    incomplete: int = 0
    linked: int = 0
    copied: int = 0
    seconds: float = 0.0
    splits: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Source name -> split name, for every source in the dataset."""

    def summary(self) -> str:
        """One line: folder, per-split counts, corrupted and how files were placed."""
        parts = ", ".join(
            f"{name} {c.samples} samples / {c.sources} sources" for name, c in self.counts.items()
        )
        return (
            f"dataset {self.path}: {parts}; {self.corrupted} corrupted, "
            f"{self.incomplete} incomplete; {self.linked} linked, {self.copied} copied "
            f"in {self.seconds:.1f} s"
        )


def split_sizes(count: int, ratios: Sequence[float]) -> tuple[int, ...]:
    """How many of ``count`` items each split gets: cumulative ratios rounded half up.

    Every size is within one item of ``count * ratio``, and the sizes add up to ``count``.

    Example:
        >>> split_sizes(100, (0.7, 0.2, 0.1))
        (70, 20, 10)
        >>> split_sizes(7, (0.7, 0.2, 0.1))
        (5, 1, 1)
    """
    edges, cumulative = [0], 0.0
    for ratio in ratios[:-1]:
        cumulative += ratio
        edges.append(min(math.floor(count * cumulative + 0.5), count))
    edges.append(count)
    return tuple(b - a for a, b in itertools.pairwise(edges))


def source_hash(name: str) -> bytes:
    """The SHA-256 of a source name (UTF-8): its place in the split order."""
    return hashlib.sha256(name.encode("utf-8")).digest()


def assign_splits(
    sources: Iterable[str],
    *,
    ratios: Sequence[float] = (0.7, 0.2, 0.1),
    names: Sequence[str] = SPLITS,
) -> dict[str, str]:
    """Assigns every source to a split: sorted by `source_hash`, cut at the ratios.

    Trade-off: a pure hash bucket (``hash / 2**256 < 0.7`` -> train) keeps every source in its
    split forever, but only hits the ratios on average (on 100 sources train would hold 70 ± 5).
    Cutting the hash order at exact counts hits the ratios (each split within one item) and is
    the same as the pure bucket plus the fewest moves that fix the counts: only sources whose hash
    lies between the fixed threshold and the actual quantile change split. So when annotations
    are added between retrains, a few sources next to the two cuts may move (about ``sqrt(n)``
    of ``n`` in the worst case, fewer as ``n`` grows); every other source keeps its split, and a
    source never sits in two splits of one dataset.

    Returns:
        Source name -> split name.
    """
    ordered = sorted(set(sources), key=lambda name: (source_hash(name), name))
    assignment: dict[str, str] = {}
    start = 0
    for split, size in zip(names, split_sizes(len(ordered), ratios), strict=True):
        for name in ordered[start : start + size]:
            assignment[name] = split
        start += size
    return assignment


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


def find_samples(folder: AnnotationDir) -> tuple[dict[str, Sample], list[Path]]:
    """Pairs the images and labels of an annotation folder by name.

    Returns:
        Name -> sample, and the unpaired files (an image with no label or a label with no
        image; usually a pair another process is still writing). Dot-named files are skipped.
    """
    images = _files_by_stem(folder.images)
    labels = _files_by_stem(folder.labels, suffix=".txt")
    samples = {
        name: Sample(name=name, image=image, label=labels[name])
        for name, image in images.items()
        if name in labels
    }
    unpaired = [p for n, p in images.items() if n not in labels]
    unpaired += [p for n, p in labels.items() if n not in images]
    return samples, sorted(unpaired)


def reject_sample(tree: DataTree, sample: Sample, reason: str) -> None:
    """Moves a rejected sample to ``data-corrupted/`` with its reason (`corrupted.quarantine`)."""
    quarantine(
        tree.data_corrupted,
        name=sample.name,
        image=sample.image,
        label=sample.label,
        reason=reason,
        component="azaion-train",
    )
    logger.warning("rejected %s: %s", sample.name, reason)


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
        names = _files_by_stem(dataset / split / "images")
        counts[split] = SplitCounts(
            sources=len(group_by_source(names, variants=variants)), samples=len(names)
        )
    return counts


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
        settings: the split ratios (``dataset``) and the number of variants (``augment``).
        tree: the data tree.
        date: the dataset's date; today when ``None``.
        link: hard-link files (the default); ``False`` copies them (for comparison).
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: there are no valid samples, or too few sources for a train and a valid
            split, or the dataset folder cannot be written.
    """
    started = time.perf_counter()
    ratios = (
        settings.dataset.train_ratio,
        settings.dataset.valid_ratio,
        settings.dataset.test_ratio,
    )
    samples, unpaired = find_samples(tree.data_processed)
    if unpaired:
        logger.warning("%d unpaired files in %s skipped", len(unpaired), tree.data_processed.path)
    groups = group_by_source(samples, variants=settings.augment.variants)
    corrupted = _reject_invalid(tree, samples, progress=progress)
    groups = {src: [n for n in names if n in samples] for src, names in groups.items()}
    groups = {src: names for src, names in groups.items() if names}
    if not groups:
        raise DatasetError(f"no valid samples in {tree.data_processed.path}")
    splits = assign_splits(groups, ratios=ratios)
    chosen = _choose_members(groups, splits, samples)
    counts = {
        split: SplitCounts(
            sources=sum(1 for s in splits.values() if s == split), samples=len(chosen[split])
        )
        for split in SPLITS
    }
    for split in ("train", "valid"):
        if counts[split].samples == 0:
            raise DatasetError(
                f"{len(groups)} source annotations give no {split} samples; add annotations"
            )
    target, linked = _write_dataset(tree, chosen, date=date, link=link, progress=progress)
    result = FormedDataset(
        path=target,
        data_yaml=target / DATA_YAML,
        counts=counts,
        corrupted=corrupted,
        incomplete=len(unpaired),
        linked=linked,
        copied=2 * sum(counts[s].samples for s in SPLITS) - linked,
        seconds=time.perf_counter() - started,
        splits=splits,
    )
    logger.info("%s", result.summary())
    return result


def _files_by_stem(folder: Path, *, suffix: str | None = None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    for entry in entries:
        path = Path(entry.path)
        if is_temporary(path) or not entry.is_file() or (suffix and path.suffix != suffix):
            continue
        found[path.stem] = path
    return found


def _reject_invalid(tree: DataTree, samples: dict[str, Sample], *, progress: bool) -> int:
    """Checks every label; moves invalid samples to ``data-corrupted/`` and drops them."""
    from tqdm import tqdm

    rejected = 0
    for name in tqdm(
        sorted(samples), desc="checking labels", unit="label", disable=not progress, leave=False
    ):
        try:
            read_label(samples[name].label)
        except LabelError as exc:
            reject_sample(tree, samples.pop(name), f"invalid label: {exc}")
            rejected += 1
    return rejected


def _choose_members(
    groups: dict[str, list[str]], splits: dict[str, str], samples: Mapping[str, Sample]
) -> dict[str, list[Sample]]:
    """Train gets every sample of its sources; valid and test only the originals."""
    chosen: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for source, members in groups.items():
        split = splits[source]
        if split == "train":
            chosen[split].extend(samples[name] for name in members)
        elif members[0] == source:
            chosen[split].append(samples[source])
    return chosen


def _write_dataset(
    tree: DataTree,
    chosen: dict[str, list[Sample]],
    *,
    date: dt.date | None,
    link: bool,
    progress: bool,
) -> tuple[Path, int]:
    """Places the files into a hidden folder and renames it to a free dated name."""
    from tqdm import tqdm

    base = tree.dataset_dir(date or dt.date.today())
    base.parent.mkdir(parents=True, exist_ok=True)
    staging = base.with_name(f".{base.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    linked = 0
    total = sum(len(members) for members in chosen.values())
    try:
        with tqdm(total=total, desc="forming dataset", unit="sample", disable=not progress) as bar:
            for split, members in chosen.items():
                out = AnnotationDir(staging / split)
                out.create()
                for sample in members:
                    linked += _place(sample.image, out.images / sample.image.name, link=link)
                    linked += _place(sample.label, out.labels / sample.label.name, link=link)
                    bar.update()
        target = _publish(staging, base, has_test=bool(chosen["test"]))
    except OSError as exc:
        raise DatasetError(f"cannot write dataset under {base.parent}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, linked


def _place(source: Path, target: Path, *, link: bool) -> bool:
    if link:
        return link_or_copy(source, target)
    shutil.copyfile(source, target)
    return False


def _publish(staging: Path, base: Path, *, has_test: bool) -> Path:
    """Writes ``data.yaml`` for the first free name and renames ``staging`` there."""
    names = ClassTable.default().names
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
