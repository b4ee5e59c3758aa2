"""Shared fixtures: a clean environment, a throwaway data tree and settings pointing at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from azaion_training.config import ENVIRONMENT, Settings, load_settings
from azaion_training.fs import DataTree

# Ultralytics must never reach the network in tests (weights, fonts, datasets, telemetry).
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ["MPLBACKEND"] = "Agg"

_OUR_PREFIXES = ("AZAION_", "RABBITMQ_", "TRAINING_", "EXPORT_", "INFER_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removes every variable the toolkit reads, so the developer's shell cannot leak in."""
    for name in list(os.environ):
        if name in ENVIRONMENT or name.startswith(_OUR_PREFIXES):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tree(tmp_path: Path) -> DataTree:
    """A created data tree under a temporary root."""
    return DataTree(root=tmp_path / "azaion").create()


@pytest.fixture
def settings(tree: DataTree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose root is the temporary tree, read with no config file and no .env."""
    monkeypatch.chdir(tmp_path)
    yield load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
