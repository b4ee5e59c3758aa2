"""Whole passes over a small data tree, with the process pool."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from azaion_training.augment import Augmenter
from azaion_training.augment.runner import LOCK_FILE
from azaion_training.augment.state import STATE_FILE
from azaion_training.config import AugmentSettings
from azaion_training.demo.world import write_annotations
from azaion_training.errors import BusyError, ConfigError, StorageError, UnsafePathError
from azaion_training.fs import DataTree
from azaion_training.labels import read_label
from tests.augment.helpers import (
    HEIGHT,
    WIDTH,
    contents,
    files,
    run_pass,
    sample_files,
    write_label_text,
)


def _all_samples(names: list[str]) -> set[str]:
    return set().union(*(sample_files(name) for name in names))


def _changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    """Files added, removed or rewritten."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


@pytest.fixture
def with_empty(tree: DataTree, annotations: list[str]) -> list[str]:
    """The three annotations plus one whose label is empty."""
    empty = write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT, prefix="empty")[0]
    write_label_text(tree.data, empty, "")
    return [*annotations, empty]


def test_first_pass_makes_eight_valid_pairs_per_source(
    tree: DataTree, with_empty: list[str], augment_settings: AugmentSettings
) -> None:
    summary = run_pass(tree, augment_settings)
    assert (summary.sources, summary.made, summary.samples) == (4, 4, 32)
    assert set(files(tree.data_processed)) == _all_samples(with_empty)
    for label in tree.data_processed.labels.iterdir():
        read_label(label)  # raises if invalid
    assert summary.images_per_s > 0


def test_second_pass_changes_nothing(
    tree: DataTree, with_empty: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    before = files(tree.data_processed)
    summary = run_pass(tree, augment_settings)
    assert (summary.made, summary.unchanged, summary.samples, summary.removed) == (0, 4, 0, 0)
    assert files(tree.data_processed) == before


def test_editing_one_label_remakes_exactly_its_samples(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    before = files(tree.data_processed)
    edited = annotations[1]
    write_label_text(tree.data, edited, "1 0.5 0.5 0.25 0.25\n")
    summary = run_pass(tree, augment_settings)
    assert (summary.made, summary.unchanged) == (1, 2)
    assert _changed(before, files(tree.data_processed)) == sample_files(edited)
    assert read_label(tree.data_processed.label_path(edited))[0].w == 0.25


def test_deleting_a_source_removes_its_samples(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    before = files(tree.data_processed)
    gone = annotations[0]
    (tree.data.images / f"{gone}.jpg").unlink()
    tree.data.label_path(gone).unlink()
    summary = run_pass(tree, augment_settings)
    assert (summary.removed, summary.made, summary.sources) == (16, 0, 2)
    assert _changed(before, files(tree.data_processed)) == sample_files(gone)
    assert set(files(tree.data_processed)) == _all_samples(annotations[1:])


def test_deleting_one_output_remakes_it_identically(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    before = contents(tree.data_processed)
    (tree.data_processed.images / f"{annotations[2]}_5.jpg").unlink()
    summary = run_pass(tree, augment_settings)
    assert (summary.made, summary.unchanged) == (1, 2)
    assert contents(tree.data_processed) == before


def test_same_input_twice_gives_identical_bytes(tmp_path: Path) -> None:
    # Different worker counts, so a different order and distribution of the work.
    outputs = []
    for workers, root in ((1, tmp_path / "one"), (2, tmp_path / "two")):
        tree = DataTree(root=root).create()
        write_annotations(tree.data, 3, width=WIDTH, height=HEIGHT, seed=11)
        run_pass(tree, AugmentSettings(workers=workers))
        outputs.append(contents(tree.data_processed))
    assert len(outputs[0]) == 48
    assert outputs[0] == outputs[1]


def test_corrupted_sources_move_to_data_corrupted_with_reasons(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    broken_image, broken_label = annotations[0], annotations[1]
    (tree.data.images / f"{broken_image}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    write_label_text(tree.data, broken_label, "1 0.5 0.5 0.2 0.2\n99 0.5 0.5 0.1 0.1\n")
    summary = run_pass(tree, augment_settings)
    assert (summary.corrupted, summary.made, summary.unchanged) == (2, 0, 1)
    corrupted = tree.data_corrupted
    expected_reasons = {
        broken_image: "image does not decode",
        broken_label: "invalid label: line 2: class id '99' is outside 0..79",
    }
    for name, reason in expected_reasons.items():
        assert (corrupted.images / f"{name}.jpg").is_file()
        assert corrupted.label_path(name).is_file()
        assert not (tree.data.images / f"{name}.jpg").exists()
        assert not tree.data.label_path(name).exists()
        record = json.loads((corrupted.path / "reasons" / f"{name}.json").read_text())
        assert record["reason"] == reason
        assert record["files"] == [f"images/{name}.jpg", f"labels/{name}.txt"]
    # Their old samples are gone too; the valid annotation keeps its own.
    assert set(files(tree.data_processed)) == sample_files(annotations[2])


def test_incomplete_pairs_are_left_alone(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    tree.data.label_path(annotations[0]).unlink()  # an image without its label
    (tree.data.images / f"{annotations[1]}.jpg").unlink()  # a label without its image
    summary = run_pass(tree, augment_settings)
    assert (summary.incomplete, summary.corrupted, summary.made) == (2, 0, 1)
    assert (tree.data.images / f"{annotations[0]}.jpg").exists()
    assert tree.data.label_path(annotations[1]).exists()
    assert set(files(tree.data_processed)) == sample_files(annotations[2])


def test_leftover_temporaries_and_strays_are_removed(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    leftovers = [
        tree.data_processed.images / f".{annotations[0]}_3.jpg.0a1b2c3d.tmp",  # a killed write
        tree.data_processed.images / f"{annotations[0]}_9.jpg",  # past the variants
        tree.data_processed.images / f"{annotations[0]}.png",  # the original in another format
        tree.data_processed.labels / "nobody.txt",  # no such source
    ]
    for path in leftovers:
        path.write_bytes(b"x")
    summary = run_pass(tree, augment_settings)
    assert summary.removed == len(leftovers)
    assert not any(path.exists() for path in leftovers)
    assert set(files(tree.data_processed)) == _all_samples(annotations)


def test_changed_settings_remake_every_source(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    fewer = augment_settings.model_copy(update={"variants": 2})
    summary = run_pass(tree, fewer)
    assert (summary.made, summary.removed) == (3, 3 * 10)
    assert set(files(tree.data_processed)) == set().union(
        *(sample_files(name, variants=2) for name in annotations)
    )


def test_a_name_that_is_also_a_sample_name_is_skipped(
    tree: DataTree, augment_settings: AugmentSettings
) -> None:
    write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT, prefix="a")  # a_000000
    clash = write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT, prefix="a_000000")[0]
    assert clash == "a_000000_000000"  # not a variant name: no clash yet
    (tree.data.images / f"{clash}.jpg").rename(tree.data.images / "a_000000_1.jpg")
    tree.data.label_path(clash).rename(tree.data.label_path("a_000000_1"))
    summary = run_pass(tree, augment_settings)
    assert (summary.made, summary.skipped) == (1, 1)
    assert set(files(tree.data_processed)) == sample_files("a_000000")


def test_stop_before_the_pass_makes_nothing(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    stop = threading.Event()
    stop.set()
    with Augmenter(tree, augment_settings) as augmenter:
        summary = augmenter.run_pass(stop=stop, progress=False)
    assert (summary.made, summary.stopped) == (0, True)
    assert files(tree.data_processed) == {}


def test_only_one_augmenter_per_tree(tree: DataTree, augment_settings: AugmentSettings) -> None:
    with (
        Augmenter(tree, augment_settings),
        pytest.raises(BusyError, match=rf"another azaion-augment .*PID {os.getpid()}"),
    ):
        Augmenter(tree, augment_settings)
    Augmenter(tree, augment_settings).close()  # free again


def test_a_dangling_lock_link_creates_nothing_outside(
    tree: DataTree, augment_settings: AugmentSettings, tmp_path: Path
) -> None:
    target = tmp_path / "outside" / "planted"
    target.parent.mkdir()
    tree.data_processed.path.mkdir(parents=True, exist_ok=True)
    (tree.data_processed.path / LOCK_FILE).symlink_to(target)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        Augmenter(tree, augment_settings)
    assert not target.exists()


def test_missing_source_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AZAION_ROOT_DIR"):
        Augmenter(DataTree(root=tmp_path / "nowhere"), AugmentSettings())


def test_a_damaged_state_stops_with_the_file_and_the_remedy(
    tree: DataTree, annotations: list[str], augment_settings: AugmentSettings
) -> None:
    run_pass(tree, augment_settings)
    state = tree.data_processed.path / STATE_FILE
    state.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match=rf"{state} is damaged .*delete it") as caught:
        run_pass(tree, augment_settings)
    assert "\n" not in str(caught.value)
    assert state.read_bytes() == b"this is not a database" * 100  # never reset behind our back
    state.unlink()  # the operator's choice
    assert run_pass(tree, augment_settings).made == 3


def test_the_pass_summary_counts_the_boxes_variants_dropped(tree: DataTree) -> None:
    name = write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT, prefix="tiny")[0]
    # A sub-pixel box: the original keeps it, every variant drops it as too thin.
    write_label_text(tree.data, name, "1 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.004 0.004\n")
    summary = run_pass(tree, AugmentSettings(workers=1))
    assert (summary.dropped.outside, summary.dropped.thin) == (0, 7)
    assert "0 boxes mostly outside the image, 7 too thin" in summary.line()
    assert [b.class_id for b in read_label(tree.data_processed.label_path(name))] == [1, 3]
