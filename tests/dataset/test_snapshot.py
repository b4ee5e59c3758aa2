"""The link-and-verify snapshot of one image and label pair (`dataset.snapshot`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from azaion_training.config import Settings
from azaion_training.dataset.formation import SPLITS, form_dataset
from azaion_training.dataset.snapshot import SETTLE_S, OpenFolder, Outcome, Pair, take_pair
from azaion_training.fs import DataTree
from tests.dataset.helpers import churn, label_token, write_tokens

DAY = dt.date(2026, 11, 26)
NAMES = ("a.jpg", "a.txt")


@contextlib.contextmanager
def _pair(root: Path, name: str) -> Iterator[Pair]:
    images, labels = root / name / "images", root / name / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    with OpenFolder.open(images) as image_folder, OpenFolder.open(labels) as label_folder:
        yield image_folder, label_folder


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Pair, Pair, Path]]:
    with _pair(tmp_path, "origin") as origin, _pair(tmp_path, "target") as target:
        yield origin, target, tmp_path


def _write(root: Path, *, label: str | None = "1 0.5 0.5 0.2 0.1\n", age_s: float = 10) -> None:
    image = root / "origin" / "images" / "a.jpg"
    image.write_bytes(b"\xff\xd8jpeg")
    then = os.stat(image).st_mtime - age_s
    os.utime(image, (then, then))
    if label is not None:
        (root / "origin" / "labels" / "a.txt").write_text(label)


def _targets(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "target").rglob("*.*"))


@pytest.mark.parametrize(("link", "links"), [(True, 2), (False, 0)])
def test_a_settled_pair_is_placed_linked_or_copied(folders, link: bool, links: int) -> None:
    origin, target, root = folders
    _write(root)
    taken = take_pair(origin, target, NAMES, link=link)
    assert (taken.outcome, taken.links) == (Outcome.PLACED, links)
    assert _targets(root) == ["a.jpg", "a.txt"]
    inodes = {os.stat(root / side / "images" / "a.jpg").st_ino for side in ("origin", "target")}
    assert (len(inodes) == 1) is link


def test_an_image_without_its_label_is_incomplete_and_leaves_nothing(folders) -> None:
    origin, target, root = folders
    _write(root, label=None)
    assert take_pair(origin, target, NAMES, link=True).outcome is Outcome.INCOMPLETE
    assert _targets(root) == []


def test_a_missing_image_has_vanished(folders) -> None:
    origin, target, _ = folders
    assert take_pair(origin, target, NAMES, link=True).outcome is Outcome.VANISHED


def test_a_label_older_than_its_fresh_image_is_recent_until_it_settles(folders) -> None:
    origin, target, root = folders
    _write(root)
    label = root / "origin" / "labels" / "a.txt"
    image = root / "origin" / "images" / "a.jpg"
    os.utime(image)  # the image is new, its label older: half-way through a rewrite
    then = os.stat(image).st_mtime - 5
    os.utime(label, (then, then))
    assert take_pair(origin, target, NAMES, link=True).outcome is Outcome.RECENT
    assert _targets(root) == []
    settled = os.stat(image).st_mtime - 2 * SETTLE_S
    os.utime(image, (settled, settled))
    os.utime(label, (settled, settled))  # equal times count once the image is old enough
    assert take_pair(origin, target, NAMES, link=True).outcome is Outcome.PLACED


def test_an_invalid_label_is_reported_with_its_reason(folders) -> None:
    origin, target, root = folders
    _write(root, label="99 0.5 0.5 0.2\n")
    taken = take_pair(origin, target, NAMES, link=True)
    assert taken.outcome is Outcome.INVALID and taken.reason.startswith("invalid label: ")
    assert _targets(root) == []
    assert (root / "origin" / "labels" / "a.txt").exists()  # the caller quarantines it


@pytest.mark.slow
def test_formation_while_another_process_re_makes_samples(
    settings: Settings, tree: DataTree
) -> None:
    """No false quarantine, no error, and every image with its own label, while the samples
    are deleted and re-made underneath."""
    import multiprocessing

    names = [f"race_{index:03d}" for index in range(150)]
    for index, name in enumerate(names):
        write_tokens(tree.data_processed, name, index)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    writer = context.Process(
        target=churn, args=(str(tree.data_processed.path), names, stop, 3), daemon=True
    )
    writer.start()
    try:
        formed = [
            form_dataset(settings, tree, date=DAY + dt.timedelta(days=day), progress=False)
            for day in range(3)
        ]
    finally:
        stop.set()
        writer.join(timeout=30)
    assert writer.exitcode == 0
    assert not any(tree.data_corrupted.path.rglob("*.*")), "a sample was quarantined"
    for dataset in formed:
        pairs = 0
        for split in SPLITS:
            for image in (dataset.path / split / "images").iterdir():
                name, token = image.read_text().split()
                assert name == image.stem
                label = dataset.path / split / "labels" / f"{image.stem}.txt"
                assert label_token(label.read_text()) == int(token), f"{image.name} mispaired"
                pairs += 1
        assert pairs == sum(c.samples for c in dataset.counts.values()) > 0
