"""How augmented samples are named, and how a sample is traced back to its source annotation.

Augmentation turns annotation ``{stem}`` into the original sample ``{stem}`` and the variants
``{stem}_1`` ... ``{stem}_7`` in ``data-processed/`` (KEEP: the original's names). The queue, the
augmenter and dataset formation all use these functions, so the rule lives in one place.

Example:
    >>> sample_names("frame_12", variants=2)
    ['frame_12', 'frame_12_1', 'frame_12_2']
    >>> source_of("frame_12_2", originals={"frame_12"})
    'frame_12'
    >>> source_of("frame_12", originals={"frame_12"})
    'frame_12'
"""

from __future__ import annotations

import re
from collections.abc import Container

DEFAULT_VARIANTS = 7
"""Augmented variants per annotation (so 8 samples with the original)."""

_VARIANT = re.compile(r"^(?P<stem>.+)_(?P<index>[1-9][0-9]*)$")


def variant_name(stem: str, index: int) -> str:
    """The name of variant ``index`` (1-based) of annotation ``stem``; 0 is the original."""
    return stem if index == 0 else f"{stem}_{index}"


def sample_names(stem: str, *, variants: int = DEFAULT_VARIANTS) -> list[str]:
    """Every sample name of annotation ``stem``: the original first, then the variants."""
    return [variant_name(stem, index) for index in range(variants + 1)]


def source_of(name: str, *, originals: Container[str], variants: int = DEFAULT_VARIANTS) -> str:
    """The source annotation of sample ``name``.

    ``name`` is a variant when it ends in ``_N`` (1 <= N <= ``variants``) and the part before is
    itself a known original; otherwise it is an original. ``originals`` is the set of sample names
    that are originals (in practice: the annotations that were augmented).
    """
    match = _VARIANT.match(name)
    if match and int(match["index"]) <= variants and match["stem"] in originals:
        return match["stem"]
    return name


def family(name: str, *, variants: int = DEFAULT_VARIANTS) -> str:
    """``name`` without any trailing ``_N`` (1 <= N <= ``variants``), repeatedly.

    Every sample name of an annotation has the annotation's own family, whatever the other
    annotations are, so a sample file can be traced to the family that owns it from its name
    alone (`azaion-augment --shard` deals out families).

    Example:
        >>> family("frame_12_3_1", variants=7), family("frame_12", variants=7)
        ('frame_12', 'frame_12')
    """
    while (match := _VARIANT.match(name)) and int(match["index"]) <= variants:
        name = match["stem"]
    return name


def variant_index(name: str, *, originals: Container[str], variants: int = DEFAULT_VARIANTS) -> int:
    """0 for an original sample, N for variant ``_N`` (see `source_of`)."""
    source = source_of(name, originals=originals, variants=variants)
    return 0 if source == name else int(name[len(source) + 1 :])
