"""The augmenter against hostile sources and real faults (of `augment/runner.py`): image bombs,
a worker killed for its memory, an unreadable label, and the queue consumer moving, editing and
deleting annotations in another process for a whole pass."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from azaion_training.augment import Augmenter, PassSummary
from azaion_training.config import AugmentSettings
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.labels import clip_boxes, format_label, read_label
from tests import helpers
from tests.augment.helpers import HEIGHT, WIDTH, files, run_pass, sample_files
from tests.poison import BOMB_FORMATS, image_bomb

NOBODY = 65534
_AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


def _reasons(tree: DataTree) -> dict[str, str]:
    folder = tree.data_corrupted.path / "reasons"
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text())["reason"] for p in folder.iterdir()}


@pytest.mark.parametrize("fmt", BOMB_FORMATS)
def test_image_bombs_are_quarantined_from_their_header(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings, fmt: str
) -> None:
    extension = ".jpg" if fmt == "jpeg" else f".{fmt}"
    (tree.data.images / f"bomb{extension}").write_bytes(image_bomb(fmt))
    (tree.data.labels / "bomb.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    summary = run_pass(tree, augment_settings)
    assert (summary.made, summary.corrupted) == (3, 1)
    assert _reasons(tree) == {
        "bomb": "image is 12000x12000 pixels (144.0 megapixels), more than the 100 allowed"
    }
    assert set(files(tree.data_processed)) == set().union(*map(sample_files, annotations))


def _kill_big_workers(
    stop: threading.Event, limit_bytes: int, killed: list[int], spared: set[int]
) -> None:
    """An out-of-memory killer for this test's workers: SIGKILL any descendant over the limit
    but the ``spared`` (the session's own, such as the background build of the test models)."""
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children(recursive=True):
            if child.pid in spared:
                continue
            try:
                if child.memory_info().rss > limit_bytes:
                    child.kill()
                    killed.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.02)


@pytest.mark.slow
def test_a_worker_killed_for_its_memory_quarantines_its_source_and_the_pass_goes_on(
    tree: DataTree, augment_settings: AugmentSettings
) -> None:
    """A 81-megapixel PNG is within the pixel budget, but its worker grows past what this test's
    killer allows (as the kernel's would on a smaller machine); every other source is made."""
    names = write_annotations(tree.data, 6, width=WIDTH, height=HEIGHT, seed=3)
    (tree.data.images / "huge.png").write_bytes(image_bomb("png", 9000, 9000))
    (tree.data.labels / "huge.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    stop, killed = threading.Event(), []
    spared = {child.pid for child in psutil.Process().children(recursive=True)}
    killer = threading.Thread(target=_kill_big_workers, args=(stop, 600 * 2**20, killed, spared))
    killer.start()
    try:
        summary = run_pass(tree, augment_settings)
    finally:
        stop.set()
        killer.join()
    assert len(killed) >= 2  # in the shared pool, then alone
    assert (summary.made, summary.corrupted, summary.failed) == (6, 1, 0)
    assert _reasons(tree) == {
        "huge": "its worker process was killed (out of memory or a signal) while making its samples"
    }
    assert set(files(tree.data_processed)) == set().union(*map(sample_files, names))


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_a_label_that_fails_with_eio_is_reported_and_retried_never_quarantined(
    tree: DataTree,
    annotations: list[str],
    augment_settings: AugmentSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The label is a regular file whose read fails with a real EIO from the kernel, in the
    worker and again in the main process: ``/proc/PID/mem`` of a sleeping process, bind-mounted
    over it (a symbolic link would be quarantined unread, see test_links)."""
    label = tree.data.label_path(annotations[0])
    good = label.read_bytes()
    sleeper = subprocess.Popen(["sleep", "600"])
    mounted = subprocess.run(
        ["mount", "--bind", f"/proc/{sleeper.pid}/mem", str(label)], capture_output=True, text=True
    )
    try:
        helpers.require(None if mounted.returncode == 0 else f"cannot bind-mount: {mounted.stderr}")
        first = run_pass(tree, augment_settings)
        assert (first.made, first.corrupted, first.failed) == (2, 0, 1)
        assert f"annotation {annotations[0]}: cannot read its label (EIO)" in caplog.text
        assert _reasons(tree) == {}
    finally:
        subprocess.run(["umount", str(label)], check=False)
        sleeper.kill()
        sleeper.wait()
    label.write_bytes(good)
    second = run_pass(tree, augment_settings)
    assert (second.made, second.corrupted, second.failed) == (1, 0, 0)
    assert set(files(tree.data_processed)) == set().union(*map(sample_files, annotations))


def _churn(
    root: str,
    names: list[str],
    started: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    actions: multiprocessing.sharedctypes.Synchronized,
) -> None:
    """The queue consumer's side: Deleted, Validated back, Edited boxes, for as long as asked."""
    from azaion_training.labels import Box
    from azaion_training.queue import AnnotationRouter, AnnotationStatus, BulkAnnotations, Role
    from azaion_training.queue.durability import WriteBatch
    from tests.queue.helpers import edited

    tree = DataTree(Path(root))
    router = AnnotationRouter(tree, WriteBatch())
    rng = random.Random(11)
    while not stop.is_set():
        name = rng.choice(names)
        action = rng.random()
        if action < 0.3:
            router.apply(BulkAnnotations(status=AnnotationStatus.DELETED, names=(name,)))
        elif action < 0.5:  # back from data_deleted/ (as an operator would recreate it)
            for sub in ("images", "labels"):
                for path in (tree.data_deleted.path / sub).glob(f"{name}.*"):
                    os.replace(path, tree.data.path / sub / path.name)
        else:
            box = Box(rng.randrange(80), 0.5, 0.5, rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5))
            router.apply(edited(name, role=Role.VALIDATOR, boxes=[box]))
        actions.value += 1
        started.set()
        time.sleep(rng.uniform(0, 0.01))


@pytest.mark.slow
def test_a_pass_under_the_queues_moves_and_deletions_leaves_no_stale_samples(
    tree: DataTree,
) -> None:
    names = write_annotations(tree.data, 60, width=WIDTH, height=HEIGHT, seed=9)
    context = multiprocessing.get_context("spawn")
    started, stop, actions = context.Event(), context.Event(), context.Value("i", 0)
    churn = context.Process(target=_churn, args=(str(tree.root), names, started, stop, actions))
    churn.start()
    try:
        assert started.wait(timeout=60)
        before = actions.value
        with Augmenter(tree, AugmentSettings(workers=2)) as augmenter:
            summary = augmenter.run_pass(stop=threading.Event(), progress=False)
        during = actions.value - before
    finally:
        stop.set()
        churn.join(timeout=60)
    assert churn.exitcode == 0
    assert during >= 50, f"only {during} queue actions during the pass"
    assert not summary.stopped
    assert _reasons(tree) == {}  # nothing valid quarantined
    assert not list(tree.data_corrupted.images.iterdir())
    _assert_samples_match_sources(tree)


def _assert_samples_match_sources(tree: DataTree) -> None:
    # Every sample left belongs to an annotation in data/ and carries its current boxes.
    live = {p.stem for p in tree.data.labels.iterdir()}
    for label in tree.data_processed.labels.iterdir():
        owner = label.stem if label.stem in live else label.stem.rpartition("_")[0]
        assert owner in live, f"stale sample {label.name}: {owner} is not in data/"
        if owner == label.stem:  # the original sample: the source's label, clipped
            expected = clip_boxes(read_label(tree.data.label_path(owner)), min_area=0.0001)
            assert label.read_text() == format_label(expected), f"stale boxes in {label.name}"


@pytest.mark.slow
def test_a_source_edited_while_it_is_made_is_discarded_and_made_again(tree: DataTree) -> None:
    """Deterministic: the label is edited (through the queue's router) once the worker has
    written the first of its samples and is still making the variants of a large image."""
    from azaion_training.labels import Box
    from azaion_training.queue import AnnotationRouter, Role
    from azaion_training.queue.durability import WriteBatch
    from tests.queue.helpers import edited

    (name,) = write_annotations(tree.data, 1, width=2400, height=2400, seed=4)
    router = AnnotationRouter(tree, WriteBatch())
    first_sample = tree.data_processed.label_path(name)
    new_box = Box(7, 0.5, 0.5, 0.2, 0.2)
    result: list[tuple[PassSummary, int]] = []

    def make() -> None:  # the augmenter's SQLite state belongs to the thread that opens it
        with Augmenter(tree, AugmentSettings(workers=1)) as augmenter:
            summary = augmenter.run_pass(stop=threading.Event(), progress=False)
            result.append((summary, augmenter.redone))

    worker = threading.Thread(target=make)
    worker.start()
    while not first_sample.exists() and worker.is_alive():
        time.sleep(0.005)
    assert not tree.data_processed.label_path(f"{name}_7").exists(), "too late to edit"
    router.apply(edited(name, role=Role.VALIDATOR, boxes=[new_box]))
    worker.join(timeout=300)
    ((summary, redone),) = result
    assert redone == 1
    assert (summary.made, summary.corrupted) == (1, 0)
    assert set(files(tree.data_processed)) == sample_files(name)
    assert read_label(first_sample) == [new_box]
    _assert_samples_match_sources(tree)
