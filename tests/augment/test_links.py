"""Nothing outside the root is read through the tree: symbolic links and special files in
``data/`` (the augmenter's input) and ``data-processed/`` (formation's) are quarantined with a
reason, never followed, copied or hard-linked into a dataset (real files, real links, FIFOs)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from azaion_training.augment import Augmenter
from azaion_training.config import AugmentSettings, Settings
from azaion_training.corrupted import reason_path
from azaion_training.dataset.formation import form_dataset
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from tests.dataset.helpers import write_fake_samples


def outside_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A real annotation outside the root (its bytes must never come in)."""
    outside = DataTree(root=tmp_path / "elsewhere")
    name = write_annotations(outside.data, 1, width=64, height=64, seed=11, prefix="secret")[0]
    return outside.data.images / f"{name}.jpg", outside.data.labels / f"{name}.txt"


def all_bytes(folder: Path) -> set[bytes]:
    return {p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def test_links_and_fifos_in_data_are_quarantined_never_read(tree: DataTree, tmp_path: Path) -> None:
    write_annotations(tree.data, 2, width=64, height=64, seed=1)
    image, label = outside_pair(tmp_path)
    (tree.data.images / "linked.jpg").symlink_to(image)
    shutil.copy(label, tree.data.labels / "linked.txt")
    (tree.data.images / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tree.data.labels / "dangling.txt").write_text("")
    shutil.copy(image, tree.data.images / "piped.jpg")
    os.mkfifo(tree.data.labels / "piped.txt")  # reading it would block the augmenter forever
    with Augmenter(tree, AugmentSettings(workers=1)) as augmenter:
        summary = augmenter.run_pass(progress=False)
    assert (summary.made, summary.corrupted) == (2, 3)
    assert image.read_bytes() not in all_bytes(tree.data_processed.path)
    for name, why in (
        ("linked", "linked.jpg is a symbolic link"),
        ("dangling", "dangling.jpg is a symbolic link"),
        ("piped", "piped.txt is not a regular file"),
    ):
        reason = json.loads(reason_path(tree.data_corrupted, name).read_text())
        assert why in reason["reason"], reason
        assert not any(tree.data.path.rglob(f"{name}.*"))
    moved = tree.data_corrupted.images / "linked.jpg"
    assert moved.is_symlink() and image.exists()  # the link moved, its target untouched


def test_a_link_in_data_processed_is_never_hard_linked_into_a_dataset(
    settings: Settings, tree: DataTree, tmp_path: Path
) -> None:
    write_fake_samples(tree.data_processed, 30)
    image, label = outside_pair(tmp_path)
    victim = "frame_00003_4"  # a variant of a train or other source
    (tree.data_processed.images / f"{victim}.jpg").unlink()
    (tree.data_processed.images / f"{victim}.jpg").symlink_to(image)
    original = "frame_00005"
    (tree.data_processed.labels / f"{original}.txt").unlink()
    (tree.data_processed.labels / f"{original}.txt").symlink_to(label)
    formed = form_dataset(settings, tree, progress=False)
    inside = [p for p in formed.path.rglob("*") if p.is_symlink()]
    assert inside == []
    outside_inodes = {image.stat().st_ino, label.stat().st_ino}
    assert not {p.stat().st_ino for p in formed.path.rglob("*") if p.is_file()} & outside_inodes
    assert formed.corrupted == 2
    for name in (victim, original):
        reason = json.loads(reason_path(tree.data_corrupted, name).read_text())
        assert "is a symbolic link" in reason["reason"], reason
