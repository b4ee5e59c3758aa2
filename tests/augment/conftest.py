"""Fixtures of the augmentation tests: settings and small synthetic annotations."""

from __future__ import annotations

import pytest

from azaion_training.config import AugmentSettings
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from tests.augment.helpers import HEIGHT, WIDTH


@pytest.fixture
def augment_settings() -> AugmentSettings:
    """Two workers (the machine's cores), the default 7 variants and thresholds."""
    return AugmentSettings(workers=2)


@pytest.fixture
def annotations(tree: DataTree) -> list[str]:
    """Three small synthetic annotations in ``data/``."""
    return write_annotations(tree.data, 3, width=WIDTH, height=HEIGHT, seed=7)
