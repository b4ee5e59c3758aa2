"""Storage failures of an augment pass, on a real full disk (a 1 MiB tmpfs): one line, no
traceback, the pass stops and the daemon tries again; formation never takes a source that has
only some of its samples."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from azaion_training.augment import Augmenter
from azaion_training.config import AugmentSettings, load_settings
from azaion_training.dataset.formation import MEMBERS, form_dataset
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.samples import sample_names
from tests import helpers
from tests.dataset.helpers import add_variants_by_linking

pytestmark = pytest.mark.slow

SOURCES = 40


def filled(small_tmpfs: Path) -> tuple[DataTree, subprocess.CompletedProcess[str]]:
    """A tree on the tmpfs whose augment pass (a real `azaion-augment --once`) fills it."""
    tree = DataTree(root=small_tmpfs)
    write_annotations(tree.data, SOURCES, width=64, height=64, seed=3)
    done = subprocess.run(
        [sys.executable, "-m", "azaion_training.cli.augment", "--once", "--root", str(tree.root)],
        env=helpers.subprocess_env({"AZAION_AUGMENT_WORKERS": "2"}),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=small_tmpfs.parent,
    )
    return tree, done


def partial_sources(tree: DataTree) -> dict[str, int]:
    """Sources with some but not all of their 8 labels in ``data-processed/``."""
    labels = {path.stem for path in tree.data_processed.labels.glob("*.txt")}
    counts = {}
    for label in tree.data.labels.glob("*.txt"):
        have = sum(name in labels for name in sample_names(label.stem))
        if 0 < have < 8:
            counts[label.stem] = have
    return counts


def test_a_full_disk_is_one_line_and_formation_takes_all_8_or_none(small_tmpfs: Path) -> None:
    tree, done = filled(small_tmpfs)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert "No space left on device" in output or "database or disk is full" in output, output
    partial = partial_sources(tree)
    assert partial, "the disk did not fill in the middle of a source: the test proves nothing"

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    # How many sources were whole when the disk filled depends on the workers' timing; enough
    # more whole ones that every split gets some, whatever that was.
    more = write_annotations(tree.data_processed, 30, width=64, height=64, seed=4, prefix="whole")
    add_variants_by_linking(tree.data_processed, more)
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    formed = form_dataset(settings, tree, progress=False)
    taken: dict[str, int] = {}
    for line in (formed.path / MEMBERS).read_text().splitlines():
        split, _, source, _ = line.split("\t")
        if split == "train":
            taken[source] = taken.get(source, 0) + 1
    assert not set(partial) & set(taken), "a source with only some samples was taken"
    assert set(taken.values()) == {8}, taken


def test_the_daemon_logs_one_line_and_tries_again(small_tmpfs: Path, caplog) -> None:
    tree = DataTree(root=small_tmpfs)
    write_annotations(tree.data, SOURCES, width=64, height=64, seed=3)
    stop = threading.Event()
    settings = AugmentSettings(workers=2, interval_s=0.5)

    def daemon() -> None:
        with Augmenter(tree, settings) as augmenter:  # SQLite: used from the thread it opened
            augmenter.run_forever(stop=stop, progress=False)

    runner = threading.Thread(target=daemon)
    runner.start()
    deadline = time.monotonic() + 120
    while "next try in" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.2)
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    while (
        len(list(tree.data_processed.labels.glob("*.txt"))) < 8 * SOURCES
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    stop.set()
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert not partial_sources(tree)
    assert len(list(tree.data_processed.labels.glob("*.txt"))) == 8 * SOURCES
    records = [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    assert all(r.exc_info is None for r in records), "a traceback was logged"
    stopped = [r.getMessage() for r in records if "next try in" in r.getMessage()]
    assert stopped, [r.getMessage() for r in records]
    assert all("\n" not in message for message in stopped)
