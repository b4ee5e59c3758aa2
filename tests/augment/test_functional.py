from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from azaion_training.augment.functional import (
    arrays_to_boxes,
    boxes_to_arrays,
    child_seeds,
    variant_seed,
)
from azaion_training.labels import Box


@pytest.mark.parametrize(
    "boxes",
    [
        [],  # an empty label
        [Box(0, 0.5, 0.5, 0.2, 0.1)],  # one box
        [Box(79, 0.1, 0.9, 0.05, 0.05), Box(21, 0.0, 1.0, 1.0, 0.5)],  # last slot, edges
    ],
)
def test_box_arrays_round_trip(boxes: list[Box]) -> None:
    bboxes, class_ids = boxes_to_arrays(boxes)
    assert bboxes.shape == (len(boxes), 4)
    assert arrays_to_boxes(bboxes, class_ids) == boxes


def test_arrays_to_boxes_ignores_extra_columns() -> None:
    rows = np.array([[0.5, 0.5, 0.2, 0.1, 7.0]])
    assert arrays_to_boxes(rows, [3]) == [Box(3, 0.5, 0.5, 0.2, 0.1)]


def test_variant_seed_is_stable_across_processes() -> None:
    # Python's hash() of a str differs between processes; the seed must not.
    code = "from azaion_training.augment.functional import variant_seed as s; print(s('a', 3))"
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "random"}
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert int(other.stdout) == variant_seed("a", 3)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("frame", 1), ("frame", 2)),  # another variant
        (("frame", 1), ("frame2", 1)),  # another annotation
        (("a_1", 2), ("a", 12)),  # names and numbers that could run together
    ],
)
def test_variant_seeds_differ(first: tuple[str, int], second: tuple[str, int]) -> None:
    assert variant_seed(*first) != variant_seed(*second)


def test_child_seeds_are_distinct_and_reproducible() -> None:
    seeds = child_seeds(variant_seed("a", 1), 5)
    assert len(set(seeds)) == 5
    assert seeds == child_seeds(variant_seed("a", 1), 5)
