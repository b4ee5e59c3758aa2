"""A formed dataset whose split holds no box stops before training, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.errors import DatasetError
from azaion_training.train.job import check_objects


def _split(dataset: Path, split: str, labels: list[str]) -> None:
    (dataset / split / "images").mkdir(parents=True)
    (dataset / split / "labels").mkdir(parents=True)
    for index, text in enumerate(labels):
        (dataset / split / "images" / f"{index}.jpg").write_bytes(b"")
        (dataset / split / "labels" / f"{index}.txt").write_text(text)


BOX = "1 0.5 0.5 0.2 0.2\n"


@pytest.mark.parametrize(
    ("train", "valid", "test", "message"),
    [
        (["", ""], [BOX], [BOX], "the train split of .* holds no box; nothing to learn"),
        ([BOX], ["\n"], [BOX], "the valid split .* holds no box; .*dataset.valid_ratio"),
        ([BOX], [BOX], [""], "the test split .* holds no box; .*dataset.test_ratio"),
        ([BOX], [BOX], [], None),  # no test images: nothing to check there
    ],
)
def test_a_split_without_a_box_is_refused(
    tmp_path: Path, train: list[str], valid: list[str], test: list[str], message: str | None
) -> None:
    for split, labels in (("train", train), ("valid", valid), ("test", test)):
        _split(tmp_path, split, labels)
    if message is None:
        check_objects(tmp_path)
    else:
        with pytest.raises(DatasetError, match=message):
            check_objects(tmp_path)
