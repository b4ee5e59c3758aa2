"""What a conversion did: counts of what was converted, and every skip with its reason.

Example:
    >>> report = ConversionReport(images=2, boxes=5)
    >>> report.add_box_skips([Skip(SkipReason.UNKNOWN_CLASS, "a.xml object 1", "'Bus'")])
    >>> print(report.summary())
    converted 2 images, 5 boxes (0 images linked)
    skipped 0 images, 1 boxes:
      1  box: unknown class
           e.g. a.xml object 1: unknown class ('Bus')
    unknown class names (add them with --map NAME=ID, --map NAME=CLASSNAME or --skip NAME): 'Bus' x1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class SkipReason(str, Enum):
    """Why a box or a whole annotation was not converted."""

    # One box (the image is still written with the other boxes).
    UNKNOWN_CLASS = "unknown class"
    SKIPPED_CLASS = "class skipped by the map"
    OUT_OF_RANGE = "box outside the image"
    DEGENERATE = "degenerate box (no area)"
    CROWD = "crowd annotation"
    BAD_BOX = "box does not parse"
    # A whole annotation (neither its image nor its label is written).
    BAD_ANNOTATION = "annotation does not parse"
    IMAGE_MISSING = "image missing"
    IMAGE_UNREADABLE = "image does not decode"
    SIZE_MISMATCH = "image size differs from the annotation"
    BAD_NAME = "unsafe file name"
    DUPLICATE_NAME = "name already converted"


@dataclass(frozen=True)
class Skip:
    """One thing that was not converted: why, where (file, line or object) and any detail."""

    reason: SkipReason
    where: str
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.where}: {self.reason.value}{detail}"


@dataclass
class ConversionReport:
    """The outcome of one conversion run.

    Attributes:
        images: images written (each with its label).
        boxes: boxes written.
        linked: images hard-linked rather than copied.
        skipped_images: annotations whose image and label were not written.
        skipped_boxes: boxes left out of a written label.
    """

    images: int = 0
    boxes: int = 0
    linked: int = 0
    skipped_images: list[Skip] = field(default_factory=list)
    skipped_boxes: list[Skip] = field(default_factory=list)
    class_boxes: Counter[int] = field(default_factory=Counter)
    """Boxes written per class slot."""
    class_names: dict[int, str] = field(default_factory=dict)
    """The names of the slots the map targets (``Class-N`` for a slot the table leaves unnamed)."""
    not_for_queue: Counter[str] = field(default_factory=Counter)
    """Images per format that the queue would refuse (TIFF)."""
    rewritten: int = 0
    """Of those, written as PNG (``queue_ready``)."""
    classes_file: Path | None = None
    """``DEST/classes.json`` when the map added classes."""

    def add_box_skips(self, skips: Iterable[Skip]) -> None:
        self.skipped_boxes.extend(skips)

    def add_image_skip(self, skip: Skip) -> None:
        self.skipped_images.append(skip)

    @property
    def unknown_names(self) -> Counter[str]:
        """How often each unknown class name was met."""
        return Counter(s.detail for s in self.skipped_boxes if s.reason is SkipReason.UNKNOWN_CLASS)

    def counts(self) -> Counter[tuple[str, SkipReason]]:
        """Skips per ``("image" | "box", reason)``."""
        counts: Counter[tuple[str, SkipReason]] = Counter()
        counts.update(("image", s.reason) for s in self.skipped_images)
        counts.update(("box", s.reason) for s in self.skipped_boxes)
        return counts

    def summary(self, *, examples: int = 2) -> str:
        """A few readable lines: what was converted, what was skipped and why.

        Args:
            examples: how many skips to show under each reason.
        """
        lines = [
            f"converted {self.images} images, {self.boxes} boxes ({self.linked} images linked)",
            f"skipped {len(self.skipped_images)} images, {len(self.skipped_boxes)} boxes"
            + (":" if self.skipped_images or self.skipped_boxes else ""),
        ]
        for (kind, reason), count in sorted(self.counts().items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count}  {kind}: {reason.value}")
            skips = self.skipped_images if kind == "image" else self.skipped_boxes
            shown = [s for s in skips if s.reason is reason][:examples]
            lines.extend(f"       e.g. {skip}" for skip in shown)
        unknown = self.unknown_names
        if unknown:
            listed = ", ".join(f"{name} x{count}" for name, count in unknown.most_common())
            lines.append(
                f"unknown class names (add them with --map NAME=ID, --map NAME=CLASSNAME or "
                f"--skip NAME): {listed}"
            )
        lines.extend(self._format_lines())
        lines.extend(self._class_lines())
        return "\n".join(lines)

    def _format_lines(self) -> list[str]:
        lines = []
        for name, count in sorted(self.not_for_queue.items()):
            if self.rewritten:
                lines.append(f"{count} {name} images written as 8-bit RGB PNG (the queue's format)")
            else:
                lines.append(
                    f"{count} {name} images kept as {name}: azaion-augment and azaion-train read "
                    "them; azaion-queue would refuse them (--queue-ready writes them as PNG)"
                )
        return lines

    def _class_lines(self) -> list[str]:
        lines = []
        if self.class_boxes:
            listed = ", ".join(
                f"{self.class_names.get(slot, slot)} ({slot}) x{count}"
                for slot, count in sorted(self.class_boxes.items())
            )
            lines.append(f"boxes per class: {listed}")
        unnamed = [
            slot for slot in self.class_boxes if self.class_names.get(slot, "").startswith("Class-")
        ]
        if unnamed:
            lines.append(
                f"class slots without a name in the class table: {sorted(unnamed)}; name them "
                "with --map NAME=CLASSNAME (or a classes.json given with --classes)"
            )
        if self.classes_file is not None:
            lines.append(
                f"class table with the new classes: {self.classes_file} (train and draw with "
                f"--classes {self.classes_file} or AZAION_CLASSES)"
            )
        return lines

    def nothing_converted(self) -> str | None:
        """Why nothing usable came out (no image, or no box at all), with what to try; else
        ``None``."""
        if self.images == 0:
            return "nothing was converted (see the skips above)"
        if self.boxes == 0:
            hint = (
                "map the class names with --map NAME=ID or --map NAME=CLASSNAME"
                if self.unknown_names
                else "check the skips above"
            )
            return f"{self.images} images converted but no box kept: {hint}"
        return None
