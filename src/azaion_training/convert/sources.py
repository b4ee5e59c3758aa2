"""What a format's reader returns, what it is given, and finding files and images under a folder.

A reader (one per format, beside its parser) turns ``SRC`` into `Sources`: the parsed annotations,
the files or boxes it had to skip, and an `ImageIndex` of the images the annotations refer to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from azaion_training.convert.records import SourceAnnotation
from azaion_training.convert.report import Skip
from azaion_training.errors import DatasetError
from azaion_training.fs import is_image, is_temporary


@dataclass(frozen=True)
class ReadOptions:
    """What `convert` passes every reader.

    Attributes:
        excluded: folders never read (the destination's ``images``/``labels``, resolved).
        values: the value of every option of the format (`runner.InputFormat.options`), by
            name: ``options["corner_order"]``.
    """

    excluded: tuple[Path, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


@dataclass(frozen=True)
class Sources:
    """What a reader found: the annotations, the skips, and where their images are."""

    annotations: list[SourceAnnotation]
    skips: list[Skip]
    images: ImageIndex


Reader = Callable[[Path, ReadOptions], Sources]
"""One source format: ``(SRC, options) -> Sources``.

Raises:
    DatasetError: ``SRC`` holds nothing of the format, or is unreadable as a whole.
"""


def annotation_files(
    source: Path, pattern: str, excluded: tuple[Path, ...], *, what: str
) -> list[Path]:
    """The files matching ``pattern`` below ``source``, sorted; hidden and excluded ones left out.

    Raises:
        DatasetError: ``source`` is not a folder or holds no such file.
    """
    if not source.is_dir():
        raise DatasetError(f"source {source} is not a folder")
    files = [
        path
        for path in sorted(source.rglob(pattern))
        if path.is_file() and not _is_hidden(path, source) and not _under(path, excluded)
    ]
    if not files:
        raise DatasetError(f"no {what} files ({pattern}) under {source}")
    return files


def _is_hidden(path: Path, root: Path) -> bool:
    return any(is_temporary(Path(part)) for part in path.relative_to(root).parts)


def _under(path: Path, folders: tuple[Path, ...]) -> bool:
    resolved = path.resolve()
    return any(folder == resolved or folder in resolved.parents for folder in folders)


class ImageIndex:
    """Every image file under a folder, found by relative path, file name or stem.

    Lookups never build a path from the annotation's text, so a ``file_name`` such as
    ``../../etc/x.jpg`` can only ever match a file that really is under the folder.
    """

    def __init__(self, root: Path, *, excluded: tuple[Path, ...] = ()) -> None:
        self.root = root
        self._by_relative: dict[str, Path] = {}
        self._by_name: dict[str, list[Path]] = defaultdict(list)
        self._by_stem: dict[str, list[Path]] = defaultdict(list)
        for path in self._walk(excluded):
            self._by_relative[path.relative_to(root).as_posix()] = path
            self._by_name[path.name].append(path)
            self._by_stem[path.stem].append(path)

    def _walk(self, excluded: tuple[Path, ...]) -> Iterator[Path]:
        for path in sorted(self.root.rglob("*")):
            if is_image(path) and not _is_hidden(path, self.root) and not _under(path, excluded):
                yield path

    def find(self, recorded: str | None, *, stem: str, near: str | None = None) -> Path | None:
        """The image an annotation means.

        Args:
            recorded: the file name the annotation records (may hold sub-folders), or ``None``.
            stem: the stem to fall back on.
            near: the annotation file; among several candidates, one in its folder wins, else
                the first in sorted order.
        """
        if recorded:
            relative = PurePath(recorded.replace("\\", "/")).as_posix()
            if relative in self._by_relative:
                return self._by_relative[relative]
            candidates = self._by_name.get(PurePath(relative).name)
            if candidates:
                return _prefer_near(candidates, near)
        candidates = self._by_stem.get(stem)
        return _prefer_near(candidates, near) if candidates else None


def _prefer_near(candidates: list[Path], near: str | None) -> Path:
    if near is not None:
        folder = Path(near).parent
        for candidate in candidates:
            if candidate.parent == folder:
                return candidate
    return candidates[0]
