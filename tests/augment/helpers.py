"""Helpers of the augmentation tests: run a pass, list and read the files of a folder."""

from __future__ import annotations

import threading
from pathlib import Path

from azaion_training.augment import Augmenter, PassSummary
from azaion_training.config import AugmentSettings
from azaion_training.fs import AnnotationDir, DataTree

WIDTH, HEIGHT = 128, 96


def run_pass(tree: DataTree, settings: AugmentSettings) -> PassSummary:
    with Augmenter(tree, settings) as augmenter:
        return augmenter.run_pass(stop=threading.Event(), progress=False)


def files(folder: AnnotationDir) -> dict[str, int]:
    """Every file of ``images/`` and ``labels/`` (``images/x.jpg``) -> its mtime in ns."""
    found = {}
    for sub in (folder.images, folder.labels):
        for path in sorted(sub.iterdir()):
            found[f"{sub.name}/{path.name}"] = path.stat().st_mtime_ns
    return found


def contents(folder: AnnotationDir) -> dict[str, bytes]:
    """Every file of ``images/`` and ``labels/`` -> its bytes."""
    return {
        f"{sub.name}/{path.name}": path.read_bytes()
        for sub in (folder.images, folder.labels)
        for path in sorted(sub.iterdir())
    }


def sample_files(name: str, *, extension: str = ".jpg", variants: int = 7) -> set[str]:
    """The 16 files (8 images, 8 labels) of annotation ``name`` in ``data-processed/``."""
    stems = [name] + [f"{name}_{i}" for i in range(1, variants + 1)]
    images = {f"images/{name}{extension}"} | {f"images/{s}.jpg" for s in stems[1:]}
    return images | {f"labels/{s}.txt" for s in stems}


def write_label_text(folder: AnnotationDir, name: str, text: str) -> Path:
    path = folder.label_path(name)
    path.write_text(text, encoding="utf-8")
    return path
