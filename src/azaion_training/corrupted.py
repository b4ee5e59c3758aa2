"""Moving a rejected annotation to ``data-corrupted/`` with the reason it was rejected.

One convention for every component that rejects input (the augmenter, dataset formation):

Layout (one annotation ``name``):

    data-corrupted/images/{name}{ext}      the image, moved (renamed) from the source folder
    data-corrupted/labels/{name}.txt       the label, moved likewise
    data-corrupted/reasons/{name}.json     one JSON object: name, reason, component, time, files

The reason lives in its own folder so that ``images/`` and ``labels/`` keep the plain annotation
layout every tool reads. A later rejection of the same name replaces the earlier files.

Example of a reason file:

    {"name": "frame_7", "reason": "invalid label: line 2: class id '99' is outside 0..79",
     "component": "azaion-augment", "time": "2026-05-09T07:35:25+00:00",
     "files": ["images/frame_7.jpg", "labels/frame_7.txt"]}
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from azaion_training.fs import AnnotationDir, atomic_move, atomic_write_text, check_name

REASONS = "reasons"
"""The folder of reason files inside ``data-corrupted/``."""


def reason_path(corrupted: AnnotationDir, name: str) -> Path:
    """``data-corrupted/reasons/{name}.json``."""
    return corrupted.path / REASONS / f"{check_name(name)}.json"


def quarantine(
    corrupted: AnnotationDir,
    *,
    name: str,
    image: Path | None,
    label: Path | None,
    reason: str,
    component: str,
) -> Path:
    """Writes the reason, then moves ``image`` and ``label`` into ``corrupted``.

    Either file may be ``None`` (a lone file that must leave the tree, such as a symbolic link
    without its pair). The reason is written first, so a crash half-way leaves at worst a
    reason whose files are still in the source folder (the next pass rejects them again), never
    unexplained files.

    Returns:
        The reason file.
    """
    moves = [(path, folder) for path, folder in ((image, "images"), (label, "labels")) if path]
    files = [f"{folder}/{path.name}" for path, folder in moves]
    record = {
        "name": name,
        "reason": reason,
        "component": component,
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    path = reason_path(corrupted, name)
    atomic_write_text(path, json.dumps(record, ensure_ascii=False) + "\n")
    for source, folder in moves:  # a symbolic link moves as the link itself, never its target
        atomic_move(source, corrupted.path / folder / source.name)
    return path
