from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from azaion_training.dataset.ledger import SplitLedger, bucket, group_keys

RATIOS = (0.7, 0.2, 0.1)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 0.002, "train"),
        (0.698, 0.7, "train"),  # just under the first cut
        (0.7, 0.702, "valid"),  # at or just over it
        (0.898, 0.9, "valid"),
        (0.9, 0.902, "test"),
        (0.998, 1.0, "test"),
    ],
)
def test_bucket_cuts_the_hash_point_at_the_cumulative_ratios(
    low: float, high: float, expected: str
) -> None:
    found = 0
    for index in range(20_000):
        group = f"g{index}"
        point = int(hashlib.sha256(group.encode()).hexdigest()[:16], 16) / 2**64
        if low <= point < high:
            assert bucket(group, RATIOS) == expected
            found += 1
    assert found > 5


def test_bucket_hits_the_ratios_in_expectation() -> None:
    splits = [bucket(f"name:n{i}", RATIOS) for i in range(20_000)]
    shares = [splits.count(s) / len(splits) for s in ("train", "valid", "test")]
    assert all(abs(a - b) < 0.01 for a, b in zip(shares, RATIOS, strict=True))


@pytest.mark.parametrize(
    ("media", "digest", "expected"),
    [
        ("flight-1", "ab", ["media:flight-1", "image:ab", "name:a"]),
        (None, "ab", ["image:ab", "name:a"]),
        ("", None, ["name:a"]),
    ],
)
def test_group_keys_put_the_group_first(media, digest, expected) -> None:
    assert group_keys("a", media=media, digest=digest) == expected


def test_placed_keys_never_move_and_resplit_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with SplitLedger(path) as ledger:
        first, known = ledger.place("a", ["media:m"], RATIOS)
        assert (first, known) == (bucket("media:m", RATIOS), False)
        ledger.commit()
    with SplitLedger(path) as ledger:
        # Another frame of the same media follows it, whatever its own hash says.
        assert ledger.place("b", ["media:m", "name:b"], RATIOS) == (first, True)
        # An uncommitted placement is forgotten.
        ledger.place("c", ["name:c"], RATIOS)
    with SplitLedger(path) as ledger:
        assert ledger.recorded("name:c") is None
        assert ledger.recorded("name:b") is None  # b was never committed either
        assert ledger.recorded("media:m") == first
        assert ledger.resplit(RATIOS) == (
            2,
            int(bucket("media:m", RATIOS, generation=2) != first),
            1,
        )
        assert ledger.recorded("media:m") is None and ledger.size() == 0
    with SplitLedger(path) as ledger:
        assert ledger.generation == 2
