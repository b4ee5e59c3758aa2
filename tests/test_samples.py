from __future__ import annotations

import pytest

from azaion_training.samples import sample_names, source_of, variant_index, variant_name


def test_sample_names() -> None:
    assert sample_names("a") == ["a", "a_1", "a_2", "a_3", "a_4", "a_5", "a_6", "a_7"]
    assert variant_name("a", 0) == "a"


@pytest.mark.parametrize(
    ("name", "originals", "source", "index"),
    [
        ("a", {"a"}, "a", 0),  # an original
        ("a_3", {"a"}, "a", 3),  # a variant
        ("a_7", {"a"}, "a", 7),  # the last variant
        ("a_8", {"a"}, "a_8", 0),  # past the variants: an original of its own
        ("video_3", {"video_3"}, "video_3", 0),  # ends in _N but 'video' is no original
        ("video_3_1", {"video_3"}, "video_3", 1),  # variant of a name that ends in _N
        ("frame_000123", {"frame"}, "frame_000123", 0),  # leading zero: not a variant
    ],
)
def test_source_of(name: str, originals: set[str], source: str, index: int) -> None:
    assert source_of(name, originals=originals) == source
    assert variant_index(name, originals=originals) == index
