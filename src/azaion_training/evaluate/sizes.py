"""The object-size buckets of aerial benchmarks (AI-TOD), as the square root of a box's area.

A box is measured in the pixels of its full frame (native resolution), never after letterboxing:
``sqrt(w * h)``. The buckets close at both ends, as COCO's area ranges do, so a box of exactly
8 px counts in ``very_tiny`` and in ``tiny``. ``under_32`` gathers every object up to 32 px (what
COCO calls small); the gate's second condition uses it.

Example:
    >>> [bucket.key for bucket in BUCKETS]
    ['very_tiny', 'tiny', 'small', 'medium', 'large', 'under_32']
    >>> BUCKETS[0].area_range
    (4.0, 64.0)
    >>> bucket_of(12.0 * 12.0)
    'tiny'
"""

from __future__ import annotations

from dataclasses import dataclass

LARGEST_SIDE = 1e5
"""The upper end of the open buckets, in pixels (larger than any frame)."""


@dataclass(frozen=True)
class Bucket:
    """One size bucket.

    Attributes:
        key: its name in scores and JSON.
        label: its name for people, with the range.
        low, high: the range of ``sqrt(area)`` in pixels, both ends included.
    """

    key: str
    label: str
    low: float
    high: float

    @property
    def area_range(self) -> tuple[float, float]:
        """The range of ``w * h`` (COCO's ``areaRng`` entry)."""
        return (self.low**2, self.high**2)


BUCKETS = (
    Bucket("very_tiny", "very tiny (2-8 px)", 2.0, 8.0),
    Bucket("tiny", "tiny (8-16 px)", 8.0, 16.0),
    Bucket("small", "small (16-32 px)", 16.0, 32.0),
    Bucket("medium", "medium (32-64 px)", 32.0, 64.0),
    Bucket("large", "large (> 64 px)", 64.0, LARGEST_SIDE),
    Bucket("under_32", "all up to 32 px", 0.0, 32.0),
)
"""The AI-TOD buckets, then ``under_32`` (the sum of the first three and what is below 2 px)."""

ALL = Bucket("all", "all sizes", 0.0, LARGEST_SIDE)
"""Every object."""


def bucket(key: str) -> Bucket:
    """The bucket named ``key`` (``all`` included).

    Raises:
        KeyError: no such bucket.
    """
    for row in (ALL, *BUCKETS):
        if row.key == key:
            return row
    raise KeyError(f"unknown size bucket {key!r} (expected one of {[b.key for b in BUCKETS]})")


def bucket_of(area: float) -> str | None:
    """The first AI-TOD bucket (not ``under_32``) that holds a box of ``area`` px², if any."""
    side = area**0.5
    for row in BUCKETS[:5]:
        if row.low <= side <= row.high:
            return row.key
    return None
