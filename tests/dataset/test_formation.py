from __future__ import annotations

import datetime as dt
import json
import os
import random
from pathlib import Path

import pytest
import yaml

from azaion_training.classes import ClassTable
from azaion_training.config import Settings, load_settings
from azaion_training.dataset.formation import (
    SPLITS,
    assign_splits,
    count_dataset,
    form_dataset,
    group_by_source,
    split_sizes,
)
from azaion_training.errors import ConfigError, DatasetError
from azaion_training.fs import DataTree
from azaion_training.samples import source_of
from tests.dataset.helpers import split_names, write_fake_samples

DAY = dt.date(2026, 11, 26)
RATIOS = (0.7, 0.2, 0.1)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (100, (70, 20, 10)),  # the reference case
        (0, (0, 0, 0)),  # nothing to split
        (1, (1, 0, 0)),  # one source goes to train
        (7, (5, 1, 1)),  # small counts round half up on the cumulative edges
        (30, (21, 6, 3)),  # the end-to-end test's size
        (12_500, (8750, 2500, 1250)),  # the benchmark's size
    ],
)
def test_split_sizes(count: int, expected: tuple[int, int, int]) -> None:
    assert split_sizes(count, RATIOS) == expected


def test_split_sizes_are_within_one_item_of_the_ratios_for_every_count() -> None:
    for count in range(0, 1000):
        sizes = split_sizes(count, RATIOS)
        assert sum(sizes) == count
        targets = [count * ratio for ratio in RATIOS]
        assert all(abs(size - target) <= 1 for size, target in zip(sizes, targets, strict=True))


def test_hundred_sources_split_70_20_10_and_the_same_way_twice() -> None:
    sources = [f"frame_{i:04d}" for i in range(100)]
    first = assign_splits(sources, ratios=RATIOS)
    shuffled = sources[:]
    random.Random(1).shuffle(shuffled)
    second = assign_splits(shuffled, ratios=RATIOS)
    assert first == second
    assert [list(first.values()).count(split) for split in SPLITS] == [70, 20, 10]


def test_adding_sources_moves_at_most_two_per_new_source() -> None:
    """The cost of exact ratios: only sources next to the two cuts may change split."""
    old = [f"old_{i:05d}" for i in range(1000)]
    new = [f"new_{i:05d}" for i in range(10)]
    before = assign_splits(old, ratios=RATIOS)
    after = assign_splits(old + new, ratios=RATIOS)
    moved = [name for name in old if before[name] != after[name]]
    assert len(moved) <= 2 * len(new)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        # an original and two of its variants
        (["a", "a_1", "a_7"], {"a": ["a", "a_1", "a_7"]}),
        # _8 is beyond 7 variants: its own annotation
        (["a", "a_8"], {"a": ["a"], "a_8": ["a_8"]}),
        # a variant-looking name whose original is absent is an original
        (["b_1"], {"b_1": ["b_1"]}),
        # an annotation named like a variant of a variant stays apart
        (["c", "c_1", "c_1_1"], {"c": ["c", "c_1"], "c_1_1": ["c_1_1"]}),
        # names with digits in the stem
        (["f_12", "f_12_3"], {"f_12": ["f_12", "f_12_3"]}),
    ],
)
def test_group_by_source(names: list[str], expected: dict[str, list[str]]) -> None:
    assert group_by_source(names, variants=7) == expected


@pytest.fixture
def hundred(tree: DataTree) -> list[str]:
    return write_fake_samples(tree.data_processed, 100)


def test_formed_dataset_has_no_leakage(settings: Settings, tree: DataTree, hundred: list[str]):
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    assert formed.path == tree.datasets / "azaion-2026-11-26"
    names = {split: split_names(formed.path, split) for split in SPLITS}
    originals = set(hundred)
    # No annotation (source) appears in two splits.
    sources = {split: {source_of(n, originals=originals) for n in names[split]} for split in SPLITS}
    assert not sources["train"] & sources["valid"]
    assert not sources["train"] & sources["test"]
    assert not sources["valid"] & sources["test"]
    # Valid and test hold only originals; train holds every sample of its sources.
    assert names["valid"] <= originals and names["test"] <= originals
    assert len(names["train"]) == 8 * len(sources["train"])
    assert [len(sources[s]) for s in SPLITS] == [70, 20, 10]
    assert {s: (c.sources, c.samples) for s, c in formed.counts.items()} == {
        "train": (70, 560),
        "valid": (20, 20),
        "test": (10, 10),
    }
    assert count_dataset(formed.path, variants=7) == formed.counts
    assert formed.splits == {n: s for s in SPLITS for n in sources[s]}


def test_files_are_hard_links_with_labels_beside_images(
    settings: Settings, tree: DataTree, hundred: list[str]
) -> None:
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    assert formed.linked == 2 * 590 and formed.copied == 0
    image = next((formed.path / "valid" / "images").iterdir())
    assert os.path.samefile(image, tree.data_processed.images / image.name)
    assert (formed.path / "valid" / "labels" / f"{image.stem}.txt").is_file()
    assert not list(tree.datasets.glob(".*"))  # no staging folder left


def test_copy_mode_copies(settings: Settings, tree: DataTree, hundred: list[str]) -> None:
    formed = form_dataset(settings, tree, date=DAY, link=False, progress=False)
    assert formed.linked == 0 and formed.copied == 2 * 590
    image = next((formed.path / "train" / "images").iterdir())
    assert not os.path.samefile(image, tree.data_processed.images / image.name)


def test_data_yaml_names_80_classes(settings: Settings, tree: DataTree, hundred: list[str]):
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    data = yaml.safe_load(formed.data_yaml.read_text())
    assert data == {
        "path": str(formed.path),
        "train": "train/images",
        "val": "valid/images",
        "test": "test/images",
        "nc": 80,
        "names": ClassTable.default().names,
    }


def test_second_run_on_the_same_day_is_kept_apart_and_splits_the_same(
    settings: Settings, tree: DataTree, hundred: list[str]
) -> None:
    first = form_dataset(settings, tree, date=DAY, progress=False)
    second = form_dataset(settings, tree, date=DAY, progress=False)
    assert second.path == tree.datasets / "azaion-2026-11-26.2"
    assert yaml.safe_load(second.data_yaml.read_text())["path"] == str(second.path)
    for split in SPLITS:
        assert split_names(first.path, split) == split_names(second.path, split)
    assert first.splits == second.splits


def test_invalid_labels_go_to_data_corrupted_with_a_reason(
    settings: Settings, tree: DataTree, hundred: list[str]
) -> None:
    processed = tree.data_processed
    processed.label_path(hundred[0]).write_text("1 0.5 0.5 1.5 0.1\n")  # width above 1
    processed.label_path(f"{hundred[1]}_3").write_text("oops\n")
    (processed.images / "lonely.jpg").write_bytes(b"x")  # no label: skipped, left in place
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    assert formed.corrupted == 2 and formed.incomplete == 1
    corrupted = tree.data_corrupted
    for name in (hundred[0], f"{hundred[1]}_3"):
        assert (corrupted.images / f"{name}.jpg").is_file()
        assert (corrupted.labels / f"{name}.txt").is_file()
        assert not (processed.images / f"{name}.jpg").exists()
        reason = json.loads((corrupted.path / "reasons" / f"{name}.json").read_text())
        assert reason["component"] == "azaion-train" and "invalid label" in reason["reason"]
    everything = set().union(*(split_names(formed.path, s) for s in SPLITS))
    assert hundred[0] not in everything and f"{hundred[1]}_3" not in everything
    assert (processed.images / "lonely.jpg").is_file() and "lonely" not in everything


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (0, "no valid samples"),  # empty data-processed
        (1, "give no valid samples"),  # one source: nothing for valid
    ],
)
def test_too_little_data_is_a_clear_error(
    settings: Settings, tree: DataTree, sources: int, message: str
) -> None:
    write_fake_samples(tree.data_processed, sources)
    with pytest.raises(DatasetError, match=message):
        form_dataset(settings, tree, date=DAY, progress=False)
    assert not list(tree.datasets.iterdir())


@pytest.mark.parametrize(
    "ratios",
    [
        {"train_ratio": 0.7, "valid_ratio": 0.2, "test_ratio": 0.2},  # adds up to 1.1
        {"train_ratio": 0.9, "valid_ratio": 0.0, "test_ratio": 0.1},  # no valid split
    ],
)
def test_ratios_are_checked(tmp_path: Path, ratios: dict[str, float]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"dataset": ratios}))
    with pytest.raises(ConfigError, match="dataset"):
        load_settings(config, environ={}, env_file=None)
