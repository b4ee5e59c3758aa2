"""What both stores share: split sizes, model names, metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.config import Settings
from azaion_training.errors import (
    StoreError,
    UnsafePathError,
)
from azaion_training.fs import DataTree
from azaion_training.store.models import (
    LocalStore,
    small_part_size,
)
from tests.store.conftest import (
    model_file,
)


@pytest.mark.parametrize(
    ("encrypted", "small"),
    [
        (32, 6),  # the smallest message: 20% rounded down
        (15_359, 3_071),  # just under the 3 KiB cap
        (15_360, 3_072),  # exactly at the cap
        (50_000_016, 3_072),  # a real model: capped at 3 KiB
    ],
)
def test_small_part_size(encrypted: int, small: int) -> None:
    assert small_part_size(encrypted) == small


def test_publish_metadata_must_be_json(tree: DataTree, tmp_path: Path) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    with pytest.raises(StoreError, match="metadata cannot be stored as JSON"):
        store.publish(model_file(tmp_path, 100), name="m", metadata={"when": object()})
    assert not store.models.exists() or not list(store.models.iterdir())


def test_model_names_with_the_version_mark_are_refused(tree: DataTree, tmp_path: Path) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    with pytest.raises(UnsafePathError, match="'@'"):
        store.publish(model_file(tmp_path, 100), name="m@v1")
