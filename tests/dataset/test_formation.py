from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import yaml

from azaion_training.classes import ClassTable
from azaion_training.config import Settings, load_settings
from azaion_training.dataset.formation import (
    MEMBERS,
    SPLITS,
    count_dataset,
    form_dataset,
    group_by_source,
    read_manifest,
)
from azaion_training.dataset.ledger import bucket
from azaion_training.errors import ConfigError, DatasetError
from azaion_training.fs import DataTree
from azaion_training.samples import source_of
from tests.dataset.helpers import split_names, write_fake_samples

DAY = dt.date(2026, 11, 26)
RATIOS = (0.7, 0.2, 0.1)


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
    # Each source is bucketed by the hash of its name (no media, no catalogue entry).
    expected = {s: {n for n in hundred if bucket(f"name:{n}", RATIOS) == s} for s in SPLITS}
    assert sources == expected
    assert {s: (c.sources, c.samples) for s, c in formed.counts.items()} == {
        s: (len(expected[s]), (8 if s == "train" else 1) * len(expected[s])) for s in SPLITS
    }
    assert count_dataset(formed.path, variants=7) == formed.counts
    assert formed.splits == {n: s for s in SPLITS for n in sources[s]}


def test_files_are_hard_links_with_labels_beside_images(
    settings: Settings, tree: DataTree, hundred: list[str]
) -> None:
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    total = sum(c.samples for c in formed.counts.values())
    assert formed.linked == 2 * total and formed.copied == 0
    image = next((formed.path / "valid" / "images").iterdir())
    assert os.path.samefile(image, tree.data_processed.images / image.name)
    assert (formed.path / "valid" / "labels" / f"{image.stem}.txt").is_file()
    assert not list(tree.datasets.glob(".*"))  # no staging folder left


def test_copy_mode_copies(settings: Settings, tree: DataTree, hundred: list[str]) -> None:
    formed = form_dataset(settings, tree, date=DAY, link=False, progress=False)
    total = sum(c.samples for c in formed.counts.values())
    assert formed.linked == 0 and formed.copied == 2 * total
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
        (1, "give no (train|valid) samples"),  # one source: one split is empty
    ],
)
def test_too_little_data_is_a_clear_error(
    settings: Settings, tree: DataTree, sources: int, message: str
) -> None:
    write_fake_samples(tree.data_processed, sources)
    with pytest.raises(DatasetError, match=message):
        form_dataset(settings, tree, date=DAY, progress=False)
    assert not list(tree.datasets.iterdir())


@pytest.mark.parametrize("missing", ["images", "labels"])
def test_a_missing_data_processed_folder_is_no_samples(
    settings: Settings, tree: DataTree, missing: str
) -> None:
    write_fake_samples(tree.data_processed, 20)
    shutil.rmtree(tree.data_processed.path / missing)
    with pytest.raises(DatasetError, match="no valid samples"):
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


def catalogue_media(tree: DataTree, media: dict[str, str], digests: dict[str, bytes] | None = None):
    """Records annotations as the queue would: their media name and, if given, image bytes."""
    from azaion_training.queue.catalogue import Catalogue
    from azaion_training.queue.messages import Annotation, AnnotationStatus, Role

    with Catalogue.for_tree(tree) as catalogue:
        for name in sorted(set(media) | set(digests or {})):
            message = Annotation(
                status=AnnotationStatus.CREATED,
                name=name,
                image_extension=".jpg",
                detections=(),
                role=Role.VALIDATOR,
                image=(digests or {}).get(name),
                original_media_name=media.get(name),
            )
            catalogue.record(message, offset=None, missing=())
        catalogue.commit()


def test_frames_of_one_media_and_identical_images_land_in_one_split(
    settings: Settings, tree: DataTree
) -> None:
    names = write_fake_samples(tree.data_processed, 60)
    media = {name: f"flight-{index % 3}" for index, name in enumerate(names[:30])}
    same = {name: b"the same picture" for name in names[30:40]}
    catalogue_media(tree, media, same)
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    for flight in ("flight-0", "flight-1", "flight-2"):
        assert len({formed.splits[n] for n, m in media.items() if m == flight}) == 1
    assert len({formed.splits[n] for n in same}) == 1
    manifest = read_manifest(formed.path)
    members = (formed.path / MEMBERS).read_text().splitlines()
    groups = {line.split("\t")[2]: line.split("\t")[1] for line in members}
    assert groups[names[0]] == "media:flight-0" and groups[names[50]] == f"name:{names[50]}"
    assert groups[names[30]].startswith("image:")
    assert manifest["ledger_generation"] == 1 and manifest["new_groups"] == 3 + 1 + 20
    assert sum(manifest["splits"][s]["annotations"] for s in SPLITS) == 60
    assert sum(manifest["splits"][s]["groups"] for s in SPLITS) == 24
    listed = hashlib.sha256((formed.path / MEMBERS).read_bytes()).hexdigest()
    assert manifest["members_sha256"] == listed


@pytest.mark.slow
def test_growth_sequence_never_moves_an_annotation_and_keeps_media_together(
    tmp_path: Path, tree: DataTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 annotations, then +20% ten times with deletions in between, then up to 10,000."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    settings = settings.model_copy(
        update={"augment": settings.augment.model_copy(update={"variants": 0})}
    )
    rng = random.Random(7)
    processed = tree.data_processed
    first_split: dict[str, str] = {}
    media_of: dict[str, str] = {}
    alive: list[str] = []
    made = 0

    def add(count: int) -> None:
        nonlocal made
        media = {}
        for _ in range(count):
            name = f"a{made:06d}"
            made += 1
            (processed.images / f"{name}.jpg").write_bytes(b"\xff\xd8jpeg")
            processed.label_path(name).write_text("1 0.5 0.5 0.2 0.1\n")
            if rng.random() < 0.5:  # half are frames of a flight of ~10 frames
                media[name] = media_of[name] = f"flight-{made // 10}"
            alive.append(name)
        catalogue_media(tree, media)

    def delete(count: int) -> None:
        for name in rng.sample(alive, count):
            alive.remove(name)
            (processed.images / f"{name}.jpg").unlink()
            processed.label_path(name).unlink()

    def form(day: int) -> dict[str, str]:
        formed = form_dataset(settings, tree, date=DAY + dt.timedelta(days=day), progress=False)
        assert formed.splits.keys() == set(alive)
        for name, split in formed.splits.items():
            assert first_split.setdefault(name, split) == split, f"{name} moved"
        by_media: dict[str, set[str]] = {}
        for name, split in formed.splits.items():
            if name in media_of:
                by_media.setdefault(media_of[name], set()).add(split)
        assert all(len(splits) == 1 for splits in by_media.values())
        return dict(formed.splits)

    add(1000)
    form(0)
    for step in range(1, 11):
        delete(len(alive) // 50)
        add(len(alive) // 5)
        form(step)
    add(10_000 - len(alive))
    splits = form(11)
    assert len(splits) == 10_000
    shares = [list(splits.values()).count(s) / len(splits) for s in SPLITS]
    assert all(abs(share - ratio) <= 0.02 for share, ratio in zip(shares, RATIOS, strict=True))


def test_annotations_from_other_paths_are_registered_and_identical_images_grouped(
    settings: Settings, tree: DataTree
) -> None:
    from azaion_training.queue.catalogue import Catalogue, image_digest

    names = write_fake_samples(tree.data_processed, 40)
    tree.data.create()
    for index, name in enumerate(names):  # as azaion-convert leaves them in data/
        picture = b"one picture" if index < 10 else f"picture {index}".encode()
        (tree.data.images / f"{name}.PNG").write_bytes(picture)
        tree.data.label_path(name).write_text("1 0.5 0.5 0.2 0.1\n")
    formed = form_dataset(settings, tree, date=DAY, progress=False)
    assert len({formed.splits[name] for name in names[:10]}) == 1
    with Catalogue.for_tree(tree) as catalogue:
        entries = {name: catalogue.get(name) for name in names}
    assert all(e is not None and e.origin == "found" for e in entries.values())
    assert entries[names[0]].digest == image_digest(b"one picture")
    assert read_manifest(formed.path)["new_groups"] == 1 + 30
